"""Fifty hosts on one screen: the CLI's closing lines and ``builds`` group the hosts that share a state and
list one by one only the hosts that differ."""

from __future__ import annotations

import io
import json
import re

from releasetui.models import BuildInfo, HostOutcome, HostState, LockInfo, OperationResult
from releasetui.listings import print_builds
from releasetui.output import HumanPrinter
from releasetui.rules import fleet_current

from .support.helpers import make_project, need

HOSTS = [f"web{i:02d}" for i in range(1, 51)]
A, B, C = "20261201000000", "20261202000000", "20261203000000"


def closing(result: OperationResult) -> list[str]:
    out = io.StringIO()
    HumanPrinter(out).summary(result)
    return out.getvalue().splitlines()


def test_fifty_hosts_that_all_succeeded_are_one_line_and_live_now_is_one_line():
    result = OperationResult("deploy", build_id=B, duration=3.0)
    for name in HOSTS:
        result.outcomes[name] = HostOutcome(name, "ok", f"live: {B} (was {A})", current=B, previous=A)
    assert closing(result) == [f"deploy all 50 hosts: ok: live: {B} (was {A})", "deploy ok in 3.00s (exit 0)",
                               f"live now: {B} on all 50 hosts"]


def test_48_ok_and_2_failed_name_only_the_two():
    result = OperationResult("deploy", build_id=B, duration=3.0)
    for name in HOSTS:
        if name in ("web07", "web31"):
            result.outcomes[name] = HostOutcome(name, "failed", f"build {B}: HTTP 502; switched back to {A}",
                                                current=A)
        else:
            result.outcomes[name] = HostOutcome(name, "aborted", f"switched back to {A}: another host failed: "
                                                "web07, web31", current=A)
    assert closing(result) == [
        f"deploy web07, web31: failed: build {B}: HTTP 502; switched back to {A}",
        f"deploy 48 hosts (web01..web06, web08..web30, web32..web50): aborted: switched back to {A}: another host "
        "failed: web07, web31",
        "deploy failed in 3.00s (exit 1)",
        f"live now: {A} on all 50 hosts"]


def test_a_mixed_fleet_says_which_hosts_serve_what_and_that_they_disagree():
    result = OperationResult("rollback", build_id=A, duration=1.0)
    for i, name in enumerate(HOSTS):
        if i < 47:
            result.outcomes[name] = HostOutcome(name, "ok", f"live: {A} (was {B})", current=A)
        elif i < 49:
            result.outcomes[name] = HostOutcome(name, "unreachable", f"connection lost ({name})", current=B)
        else:
            result.outcomes[name] = HostOutcome(name, "failed", "its lock was removed during the switch", current=None)
    lines = closing(result)
    assert len(lines) == 6, lines
    assert lines[0] == "rollback web48: unreachable: connection lost (web48)"
    assert lines[-1] == (f"live now: {A} on 47 hosts (web01..web47); nothing on web50; unknown on web48, web49 "
                         "(unreachable) — HOSTS DISAGREE")


def state(name: str, current: str, ids=(A, B, C), lock=None, failed=()) -> HostState:
    builds = [BuildInfo(i, complete=True, failed=i in failed, current=i == current, created_at="2026-12-01T00:00:0"
                        + str(hash(name) % 10) + "Z", requirements_sha256="ab" * 32, deployed_by="ci@runner",
                        git_commit="c0ffee" * 6 + "abcd", git_subject="ship it") for i in ids]
    return HostState(name, current=current, builds=builds, lock=lock)


def test_builds_of_fifty_hosts_is_a_summary_then_one_block_for_the_same_and_one_per_host_that_differs():
    states = {name: state(name, C) for name in HOSTS}
    states["web07"] = state("web07", C, failed=(B,))
    states["web20"] = state("web20", C, ids=(B, C))
    states["web33"] = state("web33", C, lock=LockInfo(who="bob@lap", where="lap", since="2026-12-03T10:00:00Z",
                                                      operation="deploy"))
    states["web50"] = OSError("cannot connect to 10.0.0.50:22: Connection refused")
    out = io.StringIO()
    print_builds(states, out)
    text = out.getvalue()
    lines = text.splitlines()
    assert lines[:8] == [
        f"fleet: {C} on 49 hosts (web01..web49)",
        "unreachable: web50",
        "locked: web33: deploy by bob@lap on lap since 2026-12-03T10:00:00Z",
        "builds (newest first):",
        f"  {C}  on all 49 hosts, current",
        f"  {B}  on all 49 hosts, failed on web07",
        f"  {A}  on 48 hosts (not on web20)",
        ""]
    blocks = [line for line in lines[8:] if line and not line.startswith(" ")]
    assert blocks == [f"web01..web06, web08..web19, web21..web32, web34..web49 (46 hosts): current {C}",
                      f"web07: current {C}", f"web20: current {C}",
                      f"web33: current {C}, locked: deploy by bob@lap on lap since 2026-12-03T10:00:00Z",
                      "web50: unreachable: cannot connect to 10.0.0.50:22: Connection refused"], blocks
    # The creation times differed by host; the shared block shows the earliest.
    assert text.count("2026-12-01") <= 3 * 4 + 2 + 3, "one table per block, not per host"
    assert len(lines) < 45


def test_hosts_that_disagree_are_grouped_in_the_fleet_line_and_in_refusals():
    states = {name: state(name, C if name < "web40" else B) for name in HOSTS}
    out = io.StringIO()
    print_builds(states, out)
    assert out.getvalue().splitlines()[0] == (f"fleet: HOSTS DISAGREE: {C} on 39 hosts (web01..web39); "
                                              f"{B} on 11 hosts (web40..web50)")
    assert fleet_current(states).describe() == f"{C} on web01..web39; {B} on web40..web50"


def test_cli_end_of_run_and_builds_over_eight_local_hosts_two_failing(tmp_path, wheelhouse):
    need("rsync")
    hosts = {f"web{i}": {"transport": "local"} for i in range(1, 9)}
    project = make_project(tmp_path, wheelhouse, hosts, extra="parallel: 4")
    first = project.cli("--headless", "deploy")
    assert first.returncode == 0, first.stdout + first.stderr
    v1 = project.current("web1")
    assert first.stdout.splitlines()[-3] == f"deploy all 8 hosts: ok: live: {v1} (was none)"
    assert first.stdout.splitlines()[-1] == f"live now: {v1} on all 8 hosts"
    # Two hosts whose restart fails: they are named, the six others are one line.
    text = project.config.read_text()
    for name in ("web3", "web6"):
        text = text.replace(f"  {name}: {{root: {project.roots[name]}, transport: local}}",
                            f"  {name}: {{root: {project.roots[name]}, transport: local, restart: 'exit 3'}}")
    project.config.write_text(text)
    project.write_app("v2")
    second = project.cli("--headless", "deploy")
    assert second.returncode == 1, second.stdout + second.stderr
    assert second.stderr == ""
    tail = second.stdout.splitlines()[-4:]
    v2 = re.search(r" info +build (\d{14}) on ", second.stdout).group(1)
    assert tail[0].startswith(f"deploy web3, web6: failed: build {v2}: restart failed (exit 3)"), tail
    assert tail[0] == (f"deploy web3, web6: failed: build {v2}: restart failed (exit 3); switched back to {v1}; "
                       "ITS RESTART FAILED TOO"), tail
    assert tail[1] == (f"deploy 6 hosts (web1, web2, web4, web5, web7, web8): aborted: switched back to {v1}: "
                       "another host failed: web3, web6"), tail
    assert tail[3] == f"live now: {v1} on all 8 hosts"
    builds = project.cli("--headless", "builds")
    assert builds.returncode == 0, builds.stderr
    lines = builds.stdout.splitlines()
    assert lines[0] == f"fleet: {v1} on all 8 hosts"
    assert f"  {v2}  on all 8 hosts, failed" in lines
    # The same two builds everywhere, the new one failed for one of two reasons: one block per reason.
    assert [line for line in lines if line.startswith("web")] == [
        f"web1, web2, web4, web5, web7, web8 (6 hosts): current {v1}", f"web3, web6 (2 hosts): current {v1}"]
    assert "failed: switched back: the deploy failed on another host" in builds.stdout
    as_json = json.loads(project.cli("--headless", "builds", "--json").stdout)
    assert [h["name"] for h in as_json["hosts"]] == list(hosts), "--json stays one entry per host"


def test_what_was_left_on_a_host_is_always_said():
    result = OperationResult("rollback", duration=1.0)
    result.outcomes["web1"] = HostOutcome("web1", "unreachable", "connection lost", current=A,
                                          left=["the rollback lock (token 0123456789abcdef)"])
    result.outcomes["web2"] = HostOutcome("web2", "aborted", "switched back", current=A)
    assert closing(result)[0] == ("rollback web1: unreachable: connection lost; left on the host: the rollback lock "
                                  "(token 0123456789abcdef)")


def test_hosts_switched_back_by_ctrl_c_say_so_and_a_verdict_is_not_echoed():
    from types import SimpleNamespace

    from releasetui.commands.activate import ActivateReport
    from releasetui.operations.activation import HostActivation, outcome_of

    def item(why: str) -> HostActivation:
        done = HostActivation(SimpleNamespace(name="web1"), B, A, "", lambda: "", 60.0, started=True)
        done.report = ActivateReport(switched=True, back_on=A, healthy=True, why=why)
        return done

    assert outcome_of(item(""), "deploy", False, interrupted=True).message == f"switched back to {A}: interrupted (Ctrl-C)"
    assert outcome_of(item("switched back: BACK another host failed: web07, web31"), "deploy", False).message == \
        f"switched back to {A}: another host failed: web07, web31"
