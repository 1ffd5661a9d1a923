"""Hardening (issue 8): lock ownership, prune under the lock, damaged builds and locks, a network cut mid-operation.

Over two real loopback sshd hosts; each test reproduces a finding of the
fault-injection pass and failed on the engine before the redesign.
"""

from __future__ import annotations

import json
import time

import pytest

from .support.helpers import builds_doc, deploy_ok, gated_python, make_project, ssh_hosts, statuses, summary, wait_for
from .support.netcut import CuttableForwarder

pytestmark = pytest.mark.ssh

FOREIGN = "fedcba9876543210"


def foreign_lock(root, token: str = FOREIGN, **info) -> None:
    """A lock as another releasetui operation holds it."""
    lock = root / "deploy.lock"
    lock.mkdir()
    (lock / "token").write_text(token)
    (lock / "info.json").write_text(json.dumps({"who": "next@ci", "where": "elsewhere", "since": "2026-01-01T00:00:00Z",
                                                "operation": "deploy", "token": token, **info}))


# 1. A deploy that lost its lock never switches, and never removes the next holder's lock.
def test_a_deploy_whose_lock_was_taken_over_stops_and_leaves_the_new_lock(ssh_project):
    p = ssh_project
    v1 = deploy_ok(p)
    marker, gate = p.dir / "shipping", p.dir / "ship-gate"
    gated_python(p, "gzip", marker, gate)  # the ship helper (it opens the gzip stream) waits for the gate
    p.write_app("v2")
    proc = p.popen("--headless", "deploy", "--json")
    try:
        wait_for(marker.exists, 120, "the ship to start")
        unlocked = p.cli("--headless", "unlock")  # someone removes the locks mid-deploy...
        assert unlocked.returncode == 0, unlocked.stdout
        for host in ("web1", "web2"):  # ...and another operation takes them
            foreign_lock(p.roots[host])
    finally:
        gate.touch()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode != 0, out
    assert p.current("web1") == p.current("web2") == v1, "nothing switched"
    for host in ("web1", "web2"):
        assert (p.roots[host] / "deploy.lock" / "token").read_text() == FOREIGN, "the other operation's lock stays"
        assert not (p.roots[host] / "deploy.lock" / "worker.pid").exists()
    assert "Traceback" not in err


# 2. Prune decides under its own lock: a prune while a rollback runs is refused, removes nothing.
def test_prune_while_another_operation_holds_the_lock_removes_nothing(ssh_project):
    p = ssh_project
    deploy_ok(p)
    p.write_app("v2")
    deploy_ok(p)
    before = {h: p.builds(h) for h in ("web1", "web2")}
    gate, marker = p.dir / "gate", p.dir / "restarting"
    p.set("restart", f"'touch {marker}; until [ -e {gate} ]; do sleep 0.05; done'")
    rollback = p.popen("--headless", "rollback")
    try:
        wait_for(marker.exists, 120, "the rollback to switch")
        pruned = p.cli("--headless", "prune", "--keep", "2")
        assert pruned.returncode == 4, pruned.stdout
    finally:
        gate.touch()
    assert rollback.wait(timeout=120) == 0
    assert {h: p.builds(h) for h in ("web1", "web2")} == before
    # Run for real, history records exactly what was removed.
    p.set("restart", "'true'")
    for n in range(2):
        p.write_app(f"v{3 + n}")
        deploy_ok(p)
    ahead = p.builds("web1")
    proc = p.cli("--headless", "prune", "--keep", "2")
    assert proc.returncode == 0
    last = p.history("web1")[-1]
    removed = {r for r in last["removed"] if not r.startswith("venv:")}
    assert last["event"] == "prune" and removed and removed == set(ahead) - set(p.builds("web1"))


# 3. One definition of complete: metadata cut mid-file is damaged everywhere, and never a rollback target.
def test_truncated_metadata_is_damaged_and_refused_as_a_target(ssh_project):
    p = ssh_project
    v1 = deploy_ok(p)
    p.write_app("v2")
    v2 = deploy_ok(p)
    meta = p.roots["web2"] / "builds" / v1 / ".releasetui-build.json"
    meta.write_text('{"complete": true, "id": "2001010100')
    doc = builds_doc(p)
    build = next(b for b in doc["hosts"][1]["builds"] if b["id"] == v1)
    assert build["complete"] is False and build["state"] == "damaged" and "JSON" in build["damaged"]
    proc = p.cli("--headless", "rollback", v1)
    assert proc.returncode == 1 and "damaged" in proc.stdout
    assert p.current("web1") == p.current("web2") == v2
    assert "damaged" in p.cli("--headless", "builds").stdout


# 8. Metadata with wrong value types: builds never crashes, the build is damaged, never current-eligible.
def test_hostile_metadata_types_are_shown_as_damaged(ssh_project):
    p = ssh_project
    v1 = deploy_ok(p)
    p.write_app("v2")
    deploy_ok(p)
    meta_path = p.roots["web1"] / "builds" / v1 / ".releasetui-build.json"
    meta = json.loads(meta_path.read_text())
    meta.update({"requirements_sha256": 5, "created_at": 12345, "deployed_by": ["x"], "git_subject": "\x1b[31mred"})
    meta_path.write_text(json.dumps(meta))
    proc = p.cli("--headless", "builds")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    assert "damaged: metadata 'created_at' is not what releasetui writes" in proc.stdout
    assert "\x1b" not in proc.stdout
    assert p.cli("--headless", "rollback", v1).returncode == 1
    assert p.cli("--headless", "rollback").returncode == 1, "the fleet's default target must be good on every host"


# 9. Hostile locks: exit 4 (never a crash), a bounded message, and unlock always clears them.
@pytest.mark.parametrize("kind", ["operation-not-text", "plain-file", "five-megabytes"])
def test_hostile_locks_refuse_with_4_and_unlock_clears_them(ssh_project, kind):
    p = ssh_project
    deploy_ok(p)
    lock = p.roots["web2"] / "deploy.lock"
    if kind == "plain-file":
        lock.write_text("locked")
    else:
        lock.mkdir()
        text = json.dumps({"operation": 5, "who": ["x"]}) if kind == "operation-not-text" else \
            '{"who": "' + "x" * 5_000_000 + '"}'
        (lock / "info.json").write_text(text)
    proc = p.cli("--headless", "deploy")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stdout) < 20_000
    assert "damaged lock" in proc.stdout
    unlock = p.cli("--headless", "unlock")
    assert unlock.returncode == 0, unlock.stdout + unlock.stderr
    assert not lock.exists() and not lock.is_symlink()
    assert p.cli("--headless", "deploy").returncode == 0


# 11. A connection lost mid-operation: exit 3, and per host what was left behind and how to clear it.
def test_a_network_cut_during_the_ship_exits_3_and_says_what_was_left(tmp_path, wheelhouse, ssh_env):
    hosts = ssh_hosts(ssh_env)
    forwarder = CuttableForwarder(ssh_env.servers[1].port)
    # web2 is reached through the forwarder; its known_hosts line names the forwarder's port.
    hosts["web2"] = {"address": "127.0.0.1", "port": forwarder.port}
    known = tmp_path / "known_hosts"
    known.write_text(ssh_env.known_hosts.read_text()
                     + f"[127.0.0.1]:{forwarder.port} {ssh_env.servers[1].host_public_key}\n")
    p = make_project(tmp_path / "p", wheelhouse, hosts, ssh_env=ssh_env)
    p.config.write_text(p.config.read_text().replace(f"known_hosts: {ssh_env.known_hosts}", f"known_hosts: {known}"))
    v1 = deploy_ok(p)
    marker, gate = p.dir / "shipping", p.dir / "ship-gate"
    gated_python(p, "gzip", marker, gate)
    p.write_app("v2")
    proc = p.popen("--headless", "deploy", "--json")
    try:
        wait_for(marker.exists, 120, "the ship to start")
        time.sleep(0.5)
        forwarder.cut()
    finally:
        gate.touch()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, out + err
    assert "Traceback" not in err and "Socket exception" not in err
    result = statuses(type("P", (), {"stdout": out, "stderr": err})())
    assert result["web2"] == "unreachable" and result["web1"] == "aborted"
    web2 = next(h for h in summary(type("P", (), {"stdout": out, "stderr": err})())["hosts"] if h["host"] == "web2")
    assert any("lock" in item for item in web2["left"]) and "unlock --host web2" in web2["message"]
    assert p.current("web1") == p.current("web2") == v1
    assert p.builds("web1") == [v1] and not (p.roots["web1"] / "deploy.lock").exists(), "web1 was cleaned up"

