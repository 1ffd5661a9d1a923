"""``releasetui lock -m WHY``: the fleet's lock taken by hand and kept, with no process behind it (never STALE),
until ``unlock``; every other operation exits 4 and shows why."""

from __future__ import annotations

import json

import pytest

from .support.helpers import deploy_ok, plant_lock


@pytest.mark.ssh
def test_a_manual_lock_holds_every_operation_until_unlock(ssh_project):
    p = ssh_project
    v1 = deploy_ok(p)
    held = p.cli("--headless", "lock", "-m", "incident 4711: hold deploys")
    assert held.returncode == 0, held.stdout + held.stderr
    for host in ("web1", "web2"):
        info = json.loads((p.roots[host] / "deploy.lock" / "info.json").read_text())
        assert info["operation"] == "lock" and info["message"] == "incident 4711: hold deploys"
        assert info["pid"] is None, "no process holds a manual lock, so it can never be called stale"
    p.write_app("v2")
    refused = p.cli("--headless", "deploy")
    assert refused.returncode == 4, refused.stdout + refused.stderr
    assert "manual lock (releasetui lock) by " in refused.stdout and "incident 4711: hold deploys" in refused.stdout
    assert "STALE" not in refused.stdout
    assert p.current("web1") == p.current("web2") == v1
    assert p.cli("--headless", "rollback").returncode == 4
    again = p.cli("--headless", "lock", "-m", "me too")
    assert again.returncode == 4 and "incident 4711" in again.stdout
    listing = p.cli("--headless", "builds")
    assert listing.returncode == 0 and "incident 4711: hold deploys" in listing.stdout
    released = p.cli("--headless", "unlock")
    assert released.returncode == 0, released.stdout + released.stderr
    assert not (p.roots["web1"] / "deploy.lock").exists() and not (p.roots["web2"] / "deploy.lock").exists()
    deploy_ok(p)
    events = [r["event"] for r in p.history("web1")]
    assert events == ["deploy", "lock", "unlock", "deploy"], events


def test_a_lock_must_say_why_and_changes_nothing_otherwise(local_pair):
    p = local_pair
    proc = p.cli("--headless", "lock")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "lock needs -m TEXT" in proc.stderr
    assert not (p.roots["a"] / "deploy.lock").exists()


def test_a_lock_is_taken_on_every_host_or_none(local_pair):
    p = local_pair
    deploy_ok(p)
    other = plant_lock(p.roots["b"], who="carol@ci", where="ci-7", since="2031-01-01T00:00:00Z", operation="deploy")
    proc = p.cli("--headless", "lock", "-m", "freeze")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert not (p.roots["a"] / "deploy.lock").exists(), "the lock taken on a is given back"
    assert (other / "token").read_text() == "0123456789abcdef\n"
