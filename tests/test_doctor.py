"""``releasetui doctor``: one read-only round trip per host finds what would make a deploy fail, grouped across
hosts, exit 0 only when every check passes."""

from __future__ import annotations

import json
import re
import socket
from datetime import datetime, timedelta, timezone

import pytest

from releasetui import clock
from releasetui.commands.doctor import DoctorReport, parse_doctor
from releasetui.config import load_config
from releasetui.models import HostState
from releasetui.operations.doctor import host_problems, local_problems

from .support.helpers import deploy_ok

REAL_CLOCK = {clock.ENV_VAR: ""}   # the machine's own clock: the hosts share it, so no skew


@pytest.mark.ssh
def test_doctor_passes_on_healthy_hosts_then_finds_each_planted_problem(ssh_project):
    p = ssh_project
    deploy_ok(p)
    clean = p.cli("--headless", "doctor", env=REAL_CLOCK)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert clean.stdout == "doctor: every check passed on 2 host(s) and here\n"

    # A stale lock on web1 (taken here by a process that is gone), a damaged build on both, a missing shared
    # file everywhere, and an interpreter web2 does not have.
    lock = p.roots["web1"] / "deploy.lock"
    lock.mkdir()
    (lock / "token").write_text("0123456789abcdef")
    (lock / "info.json").write_text(json.dumps({"who": "ghost", "where": socket.gethostname(), "pid": 4_000_000,
                                                "since": "2031-01-01T00:00:00Z", "operation": "deploy"}))
    for root in p.roots.values():
        damaged = root / "builds" / "20300101000000"
        damaged.mkdir()
        (damaged / ".releasetui-build.json").write_text("{not json")
    text = p.config.read_text().replace("hosts:\n", "shared: {files: [.env]}\nhosts:\n", 1)
    text = re.sub(r"(  web2: \{[^}]*)\}", r"\1, python: /nonexistent/python3}", text)
    p.config.write_text(text)
    proc = p.cli("--headless", "doctor", env=REAL_CLOCK)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.startswith("web2: python: ") for line in lines), lines
    assert any(line.startswith("web1: lock: STALE: deploy by ghost") for line in lines), lines
    assert "web1, web2: build 20300101000000: damaged: " in proc.stdout
    assert "web1, web2: shared: .env is missing under shared/ (a deploy refuses this host)" in lines
    assert lines[-1].startswith("doctor: ") and lines[-1].endswith("on web1, web2 (exit 1)")
    doc = json.loads(p.cli("--headless", "doctor", "--json", env=REAL_CLOCK).stdout)
    assert doc["ok"] is False and doc["hosts"]["web1"]["checks"]["mv"]["status"] == "ok"
    assert not any(p.roots[h].joinpath("deploy.lock", "worker.pid").exists() for h in p.roots), "nothing changed"


@pytest.mark.ssh
def test_doctor_measures_clock_skew_against_this_machine(ssh_project):
    p = ssh_project
    ahead = clock.iso(datetime.now(timezone.utc) + timedelta(hours=1))   # this machine an hour ahead of its hosts
    proc = p.cli("--headless", "doctor", "--json", env={clock.ENV_VAR: ahead})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    for host in ("web1", "web2"):
        assert -3610 < doc["hosts"][host]["clock_skew_seconds"] < -3590
        problems = doc["hosts"][host]["problems"]
        assert any(re.match(r"clock: 3(59\d|60\d)s behind this machine.s", line) for line in problems)


def test_disk_inodes_and_failed_checks_are_problems(tmp_path):
    config_path = tmp_path / "hosts.yml"
    config_path.write_text("project: shop\nroot: /srv/shop\nhosts:\n  web1: {address: a}\n")
    host = load_config(config_path).hosts[0]
    report = parse_doctor("CHECK\tpython\tok\t3.11.7\nCHECK\tsudo\tfail\tsudo -n needs a password (restart uses sudo)\n"
                          "CLOCK\t1900000000.5\nDISK\t204800\nINODES\t512\n")
    assert report.clock == 1900000000.5
    problems = host_problems(host, report, HostState(name="web1"), skew=0.2, this_machine="here")
    assert problems == ["sudo: sudo -n needs a password (restart uses sudo)",
                        "disk: 0.2 GiB free under /srv/shop (want at least 1 GiB)",
                        "inodes: 512 free under /srv/shop (want at least 20000)"]
    assert host_problems(host, DoctorReport(checks={"python": ("ok", "3.11")}), HostState(name="web1"), 0.0,
                         "here") == []


def test_this_machine_needs_rsync_and_git_for_a_git_source(tmp_path):
    (tmp_path / "app" / ".git").mkdir(parents=True)
    config_path = tmp_path / "hosts.yml"
    config_path.write_text("project: shop\nsource: app\nroot: /srv/shop\nhosts:\n  web1: {address: a}\n")
    config = load_config(config_path)
    assert local_problems(config, which=lambda tool: None) == [
        "rsync is not installed here (Debian: apt-get install rsync)",
        "git is not installed here, and the source is a git work tree"]
    assert local_problems(config, which=lambda tool: f"/usr/bin/{tool}") == []
