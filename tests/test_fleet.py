"""One fleet, one truth (issue 7): every operation all-or-nothing across hosts, over two real loopback sshd hosts.

Each test here reproduces one finding of the issue; each failed on the
engine before the redesign.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time

import pytest

from .support.helpers import builds_doc, deploy_ok, statuses, summary, wait_for

pytestmark = pytest.mark.ssh


def gate_restart(p, gate, marker, once: bool = False) -> None:
    """The restart waits until ``gate`` exists (after touching ``marker``): an operation that holds its locks.

    With ``once`` only each host's first restart waits (a switch back's restart then goes through).
    """
    wait = f"touch {marker}; until [ -e {gate} ]; do sleep 0.05; done"
    if once:
        wait = f"[ -e restart-gated ] || {{ touch restart-gated; {wait}; }}"
    p.set("restart", f"'{wait}'")


# 1. rollback <id> where the build exists on web1 only: refused, nothing switched anywhere.
def test_rollback_to_a_build_missing_on_one_host_switches_no_host(ssh_project):
    p = ssh_project
    v1 = deploy_ok(p)
    p.write_app("v2")
    only_web1 = deploy_ok(p, "--host", "web1")
    p.write_app("v3")
    deploy_ok(p, "--host", "web1")
    proc = p.cli("--headless", "rollback", only_web1, "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert statuses(proc) == {"web1": "aborted", "web2": "refused"}
    assert f"build {only_web1} does not exist there" in summary(proc)["hosts"][1]["message"]
    assert p.current("web2") == v1 and p.current("web1") != only_web1, "no host switched"
    assert not (p.roots["web1"] / "deploy.lock").exists() and not (p.roots["web2"] / "deploy.lock").exists()


# 2. the default target is the FLEET's previous good build; hosts that disagree refuse the default.
def test_default_rollback_is_refused_when_hosts_disagree_and_names_each_current(ssh_project):
    p = ssh_project
    v1 = deploy_ok(p)
    p.write_app("v2")
    v2 = deploy_ok(p, "--host", "web1")
    proc = p.cli("--headless", "rollback")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"{v2} on web1; {v1} on web2" in proc.stdout and "name the build" in proc.stdout
    assert p.current("web1") == v2 and p.current("web2") == v1
    # Named, it works: both hosts end on v1.
    named = p.cli("--headless", "rollback", v1)
    assert named.returncode == 0, named.stdout
    assert p.current("web1") == p.current("web2") == v1


def test_default_rollback_is_refused_when_one_host_has_nothing_older(ssh_project):
    p = ssh_project
    deploy_ok(p, "--host", "web1")
    p.write_app("v2")
    v2 = deploy_ok(p)  # web1: v1, v2; web2: v2 only
    proc = p.cli("--headless", "rollback")
    assert proc.returncode == 1, proc.stdout
    assert "no build older than" in proc.stdout
    assert p.current("web1") == p.current("web2") == v2


# 3. two operations started at the same moment: exactly one proceeds, the other exits 4, every time.
def test_concurrent_operations_exactly_one_proceeds(ssh_project):
    p = ssh_project
    deploy_ok(p)
    p.write_app("v2")
    deploy_ok(p)
    for round_, (first, second) in enumerate([("deploy", "deploy"), ("deploy", "rollback"), ("rollback", "deploy")]):
        gate, marker = p.dir / f"gate{round_}", p.dir / f"restarting{round_}"
        gate_restart(p, gate, marker)
        p.write_app(f"v-race-{round_}")
        procs = [p.popen("--headless", action) for action in (first, second)]
        try:
            wait_for(lambda: any(pr.poll() is not None for pr in procs), 120, "one of them to give up")
            wait_for(marker.exists, 120, "the other one to switch")
            assert sum(pr.poll() is None for pr in procs) == 1, "one holds every lock while the other was refused"
        finally:
            gate.touch()
        outputs = [pr.communicate(timeout=120) for pr in procs]
        codes = sorted(pr.returncode for pr in procs)
        assert codes == [0, 4], (codes, outputs)
        loser_out = outputs[[pr.returncode for pr in procs].index(4)][0]
        assert "locked by another operation" in loser_out and "since" in loser_out
        assert p.current("web1") == p.current("web2")
        for host in ("web1", "web2"):
            assert not (p.roots[host] / "deploy.lock").exists()


def test_lock_wait_waits_for_the_holder_then_proceeds_and_the_lock_says_who(ssh_project):
    p = ssh_project
    v1 = deploy_ok(p)
    p.write_app("v2")
    deploy_ok(p)
    gate, marker = p.dir / "gate", p.dir / "restarting"
    gate_restart(p, gate, marker)
    holder = p.popen("--headless", "rollback", "--message", "hotfix for #123",
                     env={"CIRCLE_BUILD_URL": "https://circleci.example/job/42"})
    try:
        wait_for(marker.exists, 120, "the rollback to hold its locks")
        info = json.loads((p.roots["web2"] / "deploy.lock" / "info.json").read_text())
        assert info["operation"] == "rollback" and info["pid"] == holder.pid
        assert info["ci_url"] == "https://circleci.example/job/42" and info["message"] == "hotfix for #123"
        assert info["where"] == socket.gethostname()
        refused = p.cli("--headless", "deploy")
        assert refused.returncode == 4 and "hotfix for #123" in refused.stdout
        waiter = p.popen("--headless", "deploy", "--lock-wait", "120")
        time.sleep(2)
        assert waiter.poll() is None, "it waits instead of exiting 4"
    finally:
        gate.touch()
    assert holder.wait(timeout=120) == 0
    out, err = waiter.communicate(timeout=180)
    assert waiter.returncode == 0, out + err
    assert "waiting for" in out
    assert p.current("web1") == p.current("web2") != v1


def test_a_lock_whose_process_is_gone_is_called_stale(ssh_project):
    p = ssh_project
    deploy_ok(p)
    lock = p.roots["web1"] / "deploy.lock"
    lock.mkdir()
    (lock / "token").write_text("0123456789abcdef")
    dead = 4_000_000  # above pid_max: no such process
    (lock / "info.json").write_text(json.dumps({"who": "ghost", "where": socket.gethostname(), "pid": dead,
                                                "since": "2026-01-01T00:00:00Z", "operation": "deploy"}))
    proc = p.cli("--headless", "deploy")
    assert proc.returncode == 4
    assert "STALE" in proc.stdout and f"pid {dead}" in proc.stdout and "unlock" in proc.stdout


# 4. timeouts: a hung restart is a failed restart; a second Ctrl-C stops waiting and switches every host back.
def test_a_restart_that_hangs_times_out_and_every_host_goes_back(ssh_project):
    p = ssh_project
    v1 = deploy_ok(p)
    p.write_app("v2")
    p.set("restart", "'sleep 30'")
    p.set("restart_timeout", "2")
    started = time.monotonic()
    proc = p.cli("--headless", "deploy", "--json")
    assert time.monotonic() - started < 25
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "restart timed out after 2s" in proc.stdout
    assert p.current("web1") == p.current("web2") == v1


def test_second_ctrl_c_during_the_switch_switches_every_host_back(ssh_project):
    p = ssh_project
    v1 = deploy_ok(p)
    p.write_app("v2")
    gate, marker = p.dir / "gate", p.dir / "restarting"
    gate_restart(p, gate, marker, once=True)
    proc = p.popen("--headless", "deploy")
    try:
        wait_for(marker.exists, 120, "the switch")
        proc.send_signal(signal.SIGINT)
        time.sleep(1)
        assert proc.poll() is None, "the first Ctrl-C lets the wave finish"
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert time.monotonic() - started < 30, "the second Ctrl-C stops waiting for the hung restart"
    finally:
        gate.touch()
    assert proc.returncode == 130, out + err
    assert p.current("web1") == p.current("web2") == v1
    assert "switched back" in out and f"live now: {v1} on web1, web2" in out.splitlines()[-1]
    for host in ("web1", "web2"):
        assert not (p.roots[host] / "deploy.lock").exists()


# 5. failed builds never take keep_builds slots.
def test_prune_removes_failed_builds_before_any_good_one(health_project):
    p = health_project
    p.set("keep_builds", "2")
    good = [deploy_ok(p)]
    p.write_app("v2")
    good.append(deploy_ok(p))
    for n in range(2):
        (p.roots["web2"] / "unhealthy").write_text("")
        p.write_app(f"bad{n}")
        assert p.cli("--headless", "deploy").returncode == 1
        (p.roots["web2"] / "unhealthy").unlink()
    for host in ("web1", "web2"):
        ids = {b["id"]: b for b in next(h for h in builds_doc(p)["hosts"] if h["name"] == host)["builds"]}
        assert sorted(b["state"] for b in ids.values()) == ["complete", "complete", "failed", "failed"]
    proc = p.cli("--headless", "prune")
    assert proc.returncode == 0, proc.stdout
    assert p.builds("web1") == p.builds("web2") == good


# 7. builds says `current, failed`; refusals mark failed builds among the choices.
def test_builds_and_refusals_mark_failed_builds(health_project):
    p = health_project
    (p.roots["web1"].mkdir(parents=True))
    (p.roots["web1"] / "unhealthy").write_text("")
    first = p.cli("--headless", "deploy", "--json")
    assert first.returncode == 1
    failed = summary(first)["build_id"]
    builds = p.cli("--headless", "builds")
    assert f"{failed}    current, failed" in builds.stdout, builds.stdout
    refused = p.cli("--headless", "rollback", "20200101000000")
    assert f"{failed} (failed)" in refused.stdout


# 9. prune --keep obeys the same minimum as keep_builds.
def test_prune_keep_has_the_config_minimum(ssh_project):
    proc = ssh_project.cli("--headless", "prune", "--keep", "1")
    assert proc.returncode == 2 and "at least 2" in proc.stderr


def test_rollout_canary_failure_leaves_the_other_hosts_untouched(health_project):
    p = health_project
    v1 = deploy_ok(p)
    p.write_app("v2")
    (p.roots["web1"] / "unhealthy").write_text("")
    proc = p.cli("--headless", "deploy", "--canary", "web1", "--batch", "1", "--json")
    assert proc.returncode == 1, proc.stdout
    assert statuses(proc) == {"web1": "failed", "web2": "aborted"}
    assert p.current("web1") == p.current("web2") == v1
    new = summary(proc)["build_id"]
    # First deploy: both hosts restarted; then only the canary (its switch, then its switch back).
    assert (p.dir / "restarts.log").read_text().count("restarted") == 2 + 2
    for host in ("web1", "web2"):  # the build is marked failed everywhere, so it is never a default target
        meta = json.loads((p.roots[host] / "builds" / new / ".releasetui-build.json").read_text())
        assert meta["failed"] is True
    waves = [e["message"] for e in map(json.loads, proc.stdout.splitlines()) if e.get("step") == "wave"]
    assert waves == ["wave 1/2: web1"], "the second wave never started"


def test_rollout_in_batches_commits_after_the_last_wave(health_project):
    p = health_project
    deploy_ok(p)
    p.write_app("v2")
    proc = p.cli("--headless", "deploy", "--canary", "1", "--batch", "1", "--json")
    assert proc.returncode == 0, proc.stdout
    waves = [e["message"] for e in map(json.loads, proc.stdout.splitlines()) if e.get("step") == "wave"]
    assert waves == ["wave 1/2: web1", "wave 2/2: web2"]
    new = summary(proc)["build_id"]
    assert p.current("web1") == p.current("web2") == new
    assert os.path.exists(p.roots["web1"] / "builds" / new)
