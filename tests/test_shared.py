"""Shared files and folders over two real loopback sshd hosts: they live under ROOT/shared/, every build links to
them before its before_activate hooks run, they are never shipped, and deploys, rollbacks, aborts and prunes keep
them."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from .support.helpers import Project, summary

pytestmark = pytest.mark.ssh


def edit(p: Project, change) -> None:
    doc = yaml.safe_load(p.config.read_text())
    change(doc)
    p.config.write_text(yaml.safe_dump(doc, sort_keys=False))


def deploy(p: Project, *args: str):
    return p.cli("--headless", "deploy", "--json", *args)


@pytest.fixture
def shared_project(ssh_project) -> Project:
    """Two hosts sharing .env, config/local.cfg, instance/ and uploads/; the laptop has its own copies of them."""
    p = ssh_project
    edit(p, lambda doc: doc.update(
        shared={"files": [".env", "config/local.cfg"], "dirs": ["instance", "uploads"]},
        # Proves the links exist before before_activate: the hook reads the host's .env through the new build.
        hooks={"before_activate": "cat .env; cat config/local.cfg; test -d instance && test -d uploads"}))
    # What a developer has locally: none of it may ever reach a host.
    (p.source / ".env").write_text("SECRET=laptop\n")
    (p.source / "config").mkdir()
    (p.source / "config" / "app.cfg").write_text("shipped = yes\n")
    (p.source / "config" / "local.cfg").write_text("where = laptop\n")
    (p.source / "instance").mkdir()
    (p.source / "instance" / "app.db").write_text("laptop database\n")
    return p


def put_shared(p: Project, host: str) -> None:
    shared = p.roots[host] / "shared"
    (shared / "config").mkdir(parents=True, exist_ok=True)
    (shared / ".env").write_text(f"SECRET={host}\n")
    (shared / "config" / "local.cfg").write_text(f"where = {host}\n")


def test_a_missing_shared_file_refuses_the_deploy_naming_host_and_file(shared_project):
    p = shared_project
    put_shared(p, "web1")
    (p.roots["web2"] / "shared").mkdir(parents=True)
    (p.roots["web2"] / "shared" / ".env").write_text("SECRET=web2\n")  # but no config/local.cfg
    proc = deploy(p)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    hosts = {h["host"]: h for h in summary(proc)["hosts"]}
    assert hosts["web2"]["status"] == "refused"
    assert hosts["web2"]["message"] == (f"shared file config/local.cfg is missing: create "
                                        f"{p.roots['web2']}/shared/config/local.cfg on web2 (it is never shipped)")
    assert hosts["web1"]["status"] == "aborted" and "refused on web2" in hosts["web1"]["message"]
    for host in ("web1", "web2"):
        assert p.builds(host) == [] and p.current(host) is None
        assert not (p.roots[host] / "deploy.lock").exists()
    # The human output says the same, on one line.
    human = p.cli("--headless", "deploy")
    assert human.returncode == 1
    assert f"deploy web2: refused: shared file config/local.cfg is missing: create {p.roots['web2']}/shared/" \
           "config/local.cfg on web2" in human.stdout


def test_shared_paths_are_linked_never_shipped_and_survive_everything(shared_project):
    p = shared_project
    for host in ("web1", "web2"):
        put_shared(p, host)
    first = deploy(p)
    assert first.returncode == 0, first.stdout + first.stderr
    v1 = summary(first)["build_id"]
    # The hook ran inside the new build and read each host's own files through the links.
    hook_output = [(e["host"], e["message"]) for e in map(json.loads, first.stdout.splitlines())
                   if e.get("step") == "before_activate" and e.get("status") == "output"]
    assert ("web1", "SECRET=web1") in hook_output and ("web2", "where = web2") in hook_output
    assert not any("laptop" in message for _, message in hook_output)

    for host in ("web1", "web2"):
        build = p.roots[host] / "builds" / v1
        assert os.readlink(build / ".env") == "../../shared/.env"
        assert os.readlink(build / "config" / "local.cfg") == "../../../shared/config/local.cfg"
        assert os.readlink(build / "instance") == "../../shared/instance"
        assert (build / "config" / "app.cfg").read_text() == "shipped = yes\n"
        manifest = json.loads((build / ".releasetui-manifest.json").read_text())["files"]
        assert not {".env", "config/local.cfg", "instance", "instance/app.db", "uploads"} & set(manifest)
        # The app writes its data through the link: it lands in shared/, not in the build.
        (p.roots[host] / "current" / "instance" / "app.db").write_text(f"{host} data\n")
        (p.roots[host] / "current" / "uploads" / "cat.png").write_text("meow")

    def survived(when: str) -> None:
        for host in ("web1", "web2"):
            live = p.roots[host] / "current"
            assert (live / ".env").read_text() == f"SECRET={host}\n", when
            assert (live / "config" / "local.cfg").read_text() == f"where = {host}\n", when
            assert (live / "instance" / "app.db").read_text() == f"{host} data\n", when
            assert (live / "uploads" / "cat.png").read_text() == "meow", when

    p.write_app("v2")
    second = deploy(p)
    assert second.returncode == 0, second.stdout + second.stderr
    v2 = summary(second)["build_id"]
    survived("after a deploy")
    assert p.cli("--headless", "rollback").returncode == 0 and p.current("web1") == v1
    survived("after a rollback")

    # A deploy that aborts after the links were made (its hook fails) removes its build, not what it linked to.
    edit(p, lambda doc: doc.update(hooks={"before_activate": "exit 1"}))
    assert deploy(p).returncode == 1
    assert p.builds("web1") == [v1, v2]
    survived("after an aborted deploy")
    edit(p, lambda doc: doc.pop("hooks"))
    assert p.cli("--headless", "rollback", v2).returncode == 0
    third = deploy(p)
    assert third.returncode == 0
    prune = p.cli("--headless", "prune", "--keep", "2")
    assert prune.returncode == 0, prune.stdout + prune.stderr
    assert v1 not in p.builds("web1"), "prune removed the oldest build (and its links)"
    survived("after a prune")
