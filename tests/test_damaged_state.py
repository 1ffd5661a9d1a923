"""Damaged state on a host (issue 14, section 6): what is not what releasetui made is refused before anything
changes, and a failed switch ends like any other failure (lock released, the build in one state everywhere).

Over two real loopback sshd hosts.
"""

from __future__ import annotations

import json
import os

import pytest

from .support.helpers import deploy_ok, statuses, summary

pytestmark = pytest.mark.ssh


def snapshot(p) -> dict:
    """Each host's build directories and whether it is locked."""
    return {h: (p.builds(h), (p.roots[h] / "deploy.lock").exists()) for h in ("web1", "web2")}


@pytest.mark.parametrize("kind", ["directory", "file"])
def test_a_current_that_is_not_a_link_is_refused_before_anything_changes(ssh_project, kind):
    p = ssh_project
    v1 = deploy_ok(p)
    current = p.roots["web2"] / "current"
    current.unlink()
    if kind == "directory":
        current.mkdir()
        (current / "index.html").write_text("served by hand\n")
    else:
        current.write_text("not a link\n")
    before = snapshot(p)
    p.write_app("v2")
    proc = p.cli("--headless", "deploy")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"web2: refused: current is a {kind}, not a link to a build: move it away (e.g. mv current " \
           "current.old) and deploy" in proc.stdout, proc.stdout
    assert f"live now: {v1} on web1; a {kind} (not a build) on web2" in proc.stdout
    assert snapshot(p) == before == {"web1": ([v1], False), "web2": ([v1], False)}, "nothing shipped, no lock left"
    assert p.current("web1") == v1 and (current.is_dir() if kind == "directory" else current.is_file())
    # A rollback would switch too: refused the same way.
    proc = p.cli("--headless", "rollback", v1)
    assert proc.returncode == 1 and f"web2: refused: current is a {kind}" in proc.stdout, proc.stdout
    assert snapshot(p) == before


def test_a_switch_that_fails_releases_the_lock_and_marks_the_build_failed_everywhere(ssh_project):
    p = ssh_project
    v1 = deploy_ok(p)
    p.write_app("v2")
    # `mv -T` cannot put the new link over `current` on web2: a non-empty directory took the temporary name's
    # place after the read (the read saw a good link), so web2's switch itself fails.
    blocker = p.roots["web2"] / "current.releasetui-new"
    blocker.mkdir()
    (blocker / "keep").write_text("x")
    proc = p.cli("--headless", "deploy", "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    result = summary(proc)
    v2 = result["build_id"]
    assert statuses(proc)["web2"] == "failed"
    web2 = next(h for h in result["hosts"] if h["host"] == "web2")
    assert "switch" in web2["message"] and web2["current"] == v1, web2
    for host in ("web1", "web2"):
        assert p.current(host) == v1
        assert not (p.roots[host] / "deploy.lock").exists(), f"the lock on {host} is released"
    builds = {}
    for host in ("web1", "web2"):
        doc = p.cli("--headless", "builds", "--json", "--host", host)
        assert doc.returncode == 0, doc.stdout + doc.stderr
        host_doc = json.loads(doc.stdout)["hosts"][0]
        builds[host] = {b["id"]: b["state"] for b in host_doc["builds"]}
    assert builds["web1"] == builds["web2"] == {v1: "complete", v2: "failed"}, builds
    assert os.path.isdir(blocker)


def tree(path) -> dict:
    """Every file and directory under ``path`` with its size (what an outside directory holds)."""
    return {str(p.relative_to(path)): (p.stat().st_size if p.is_file() else None)
            for p in sorted(path.rglob("*"))}


@pytest.mark.parametrize("directory", ["builds", "venvs"])
def test_a_layout_directory_linked_out_of_the_root_is_refused_and_never_followed(ssh_project, tmp_path, directory):
    p = ssh_project
    v1 = deploy_ok(p)
    p.write_app("v2")
    v2 = deploy_ok(p)
    assert p.cli("--headless", "rollback", v1).returncode == 0  # v2 is now rolled-away: prune would remove it
    outside = tmp_path / f"elsewhere-{directory}"
    (p.roots["web2"] / directory).rename(outside)
    (p.roots["web2"] / directory).symlink_to(outside)
    before = tree(outside)
    for args in (("deploy",), ("prune", "--keep", "2"), ("rollback", v2), ("pin", v1)):
        proc = p.cli("--headless", *args)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert f"web2: refused: {directory} is a symlink (to {outside})" in proc.stdout, proc.stdout
        assert tree(outside) == before, f"{args[0]} changed what the link points to"
        assert not any((p.roots[h] / "deploy.lock").exists() for h in ("web1", "web2")), "no lock is left"
    assert p.current("web1") == p.current("web2") == v1 and p.builds("web1") == [v1, v2]
