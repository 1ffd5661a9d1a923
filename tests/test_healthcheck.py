"""Health checks and automatic rollback, for real: two loopback sshd hosts, real rsync, venvs and scripts.

The checks here are commands (cheap and deterministic); the real HTTP check
against uwsgi is in test_stack.py.
"""

from __future__ import annotations

import json

import pytest

from .support.helpers import builds_doc, make_project, need, summary

pytestmark = pytest.mark.ssh


def history(project, host: str) -> list[dict]:
    """The host's history.jsonl, parsed."""
    return [json.loads(line) for line in (project.roots[host] / "history.jsonl").read_text().splitlines()]


def test_unhealthy_host_switches_back_everywhere_and_build_is_never_a_default_target(health_project):
    p = health_project
    first = p.cli("--headless", "deploy")
    assert first.returncode == 0, first.stdout + first.stderr
    v1 = p.current("web1")
    assert "health" in first.stdout and f"builds/{v1}" in first.stdout
    p.write_app("v2")
    (p.roots["web2"] / "unhealthy").write_text("")
    bad = p.cli("--headless", "deploy", "--json")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    result = summary(bad)
    v2 = result["build_id"]
    statuses = {h["host"]: h["status"] for h in result["hosts"]}
    # web2 failed its check and switched itself back; web1 was healthy and is taken back too.
    assert statuses == {"web1": "aborted", "web2": "failed"}, result
    assert p.current("web1") == p.current("web2") == v1
    assert f"build {v2}: unhealthy after 1s" in bad.stdout and f"switched back to {v1}" in bad.stdout
    # Restarted on the switch and again on the switch back (web2), and on the compensation (web1).
    assert (p.dir / "restarts.log").read_text().count("restarted") == 2 + 4

    for host in builds_doc(p)["hosts"]:
        by_id = {b["id"]: b for b in host["builds"]}
        assert by_id[v2]["failed"] is True and by_id[v2]["complete"] is True, host
        assert host["current"] == v1 and host["locked_by"] is None
    assert [(h["event"], h["outcome"]) for h in history(p, "web2")] == [("deploy", "ok"), ("deploy", "failed")]
    assert history(p, "web2")[-1]["to"] == v2 and history(p, "web2")[-1]["from"] == v1
    assert [(h["event"], h["outcome"]) for h in history(p, "web1")] == [("deploy", "ok"), ("deploy", "switched-back")]

    # A failed build can still be chosen by name (someone may know better); rollback checks health too.
    (p.roots["web2"] / "unhealthy").unlink()
    named = p.cli("--headless", "rollback", v2)
    assert named.returncode == 0, named.stdout + named.stderr
    assert p.current("web1") == p.current("web2") == v2
    assert p.cli("--headless", "rollback", v1).returncode == 0

    # The next deploy prunes the failed build first (it takes no keep_builds slot).
    p.write_app("v3")
    good = p.cli("--headless", "deploy")
    assert good.returncode == 0, good.stdout + good.stderr
    v3 = p.current("web1")
    assert v3 > v2 and p.current("web2") == v3
    assert p.builds("web1") == p.builds("web2") == [v1, v3]
    back = p.cli("--headless", "rollback")
    assert back.returncode == 0, back.stdout + back.stderr
    assert p.current("web1") == p.current("web2") == v1


def test_rollback_to_an_unhealthy_build_switches_every_host_back(health_project):
    p = health_project
    assert p.cli("--headless", "deploy").returncode == 0
    v1 = p.current("web1")
    p.write_app("v2")
    assert p.cli("--headless", "deploy").returncode == 0
    v2 = p.current("web1")
    (p.roots["web1"] / "unhealthy").write_text("")
    back = p.cli("--headless", "rollback", "--json")
    assert back.returncode == 1, back.stdout + back.stderr
    assert {h["host"]: h["status"] for h in summary(back)["hosts"]} == {"web1": "failed", "web2": "aborted"}
    assert p.current("web1") == p.current("web2") == v2
    skipped = p.cli("--headless", "rollback", "--no-health")
    assert skipped.returncode == 0, skipped.stdout
    assert p.current("web1") == p.current("web2") == v1


def test_human_output_of_an_unhealthy_deploy_ends_with_what_is_live(health_project):
    p = health_project
    assert p.cli("--headless", "deploy").returncode == 0
    v1 = p.current("web1")
    p.write_app("v2")
    for host in ("web1", "web2"):
        (p.roots[host] / "unhealthy").write_text("")
    bad = p.cli("--headless", "deploy")
    assert bad.returncode == 1
    lines = bad.stdout.splitlines()
    assert lines[-1] == f"live now: {v1} on web1, web2"
    steps = [line.split()[1:4] for line in lines if line[:2].isdigit()]  # HH:MM:SS host step status ...
    assert sorted(s for s in steps if s[1] == "health") == [["web1", "health", "failed"], ["web2", "health", "failed"]]
    assert sorted(s for s in steps if s[1] == "switch-back") == [["web1", "switch-back", "ok"], ["web2", "switch-back", "ok"]]


def test_restart_that_fails_counts_as_unhealthy(tmp_path, wheelhouse):
    """The new build cannot even start: it must not stay current."""
    need("rsync")
    p = make_project(tmp_path, wheelhouse, {"box": {"transport": "local"}},
                     extra='healthcheck: {command: "true", timeout: 1}')
    text = p.config.read_text().replace(f"restart: echo restarted >> {tmp_path}/restarts.log",
                                        "restart: test ! -e current/BROKEN")
    p.config.write_text(text)
    assert p.cli("--headless", "deploy").returncode == 0
    v1 = p.current("box")
    (p.source / "BROKEN").write_text("")
    bad = p.cli("--headless", "deploy", "--json")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert p.current("box") == v1
    v2 = summary(bad)["build_id"]
    meta = json.loads((p.roots["box"] / "builds" / v2 / ".releasetui-build.json").read_text())
    assert meta["failed"] is True
