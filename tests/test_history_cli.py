"""``releasetui --headless history [-n N] [--json]``: every operation on the fleet, one line each, end to end
over local hosts and over two loopback sshd servers."""

from __future__ import annotations

import json
import re
import signal
from datetime import datetime, timezone

import pytest

from releasetui import clock
from releasetui.history import merge
from releasetui.listings import history_line

from .support.helpers import TEST_CLOCK, deploy_ok, gated_python, plant_lock, wait_for

STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"


def history(project, *args):
    proc = project.cli("--headless", "history", *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def foreign_lock(root, who="carol@ci"):
    plant_lock(root, who=who, where="ci-7", since="2026-11-28T10:00:00Z", operation="deploy")


def test_history_over_two_local_hosts(local_pair):
    p = local_pair
    v1 = deploy_ok(p)
    p.write_app("v2")
    v2 = deploy_ok(p, "--message", "hotfix \x1b[31mfor #12")
    ci = {"CIRCLE_BUILD_URL": "https://circleci.com/gh/acme/shop/77", "CIRCLE_USERNAME": "dana",
          "CIRCLE_BUILD_NUM": "77"}
    rollback = p.cli("--headless", "rollback", env=ci)
    assert rollback.returncode == 0, rollback.stdout + rollback.stderr
    foreign_lock(p.roots["b"])
    assert p.cli("--headless", "unlock", "--host", "b").returncode == 0
    proc = history(p)
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert len(lines) == 4, lines
    assert re.match(rf"^{STAMP}  deploy +ok +none → {v1}  on a, b  by \S+  in \d+\.\ds$", lines[0]), lines[0]
    assert re.match(rf"^{STAMP}  deploy +ok +{v1} → {v2}  on a, b  by \S+  in \d+\.\ds  “hotfix for #12”$",
                    lines[1]), lines[1]
    assert re.match(rf"^{STAMP}  rollback +ok +{v2} → {v1}  on a, b  by dana \(CircleCI build 77\)  in \d+\.\ds  "
                    r"https://circleci.com/gh/acme/shop/77$", lines[2]), lines[2]
    assert re.match(rf"^{STAMP}  unlock +ok +removed the lock of deploy by carol@ci since 2026-11-28T10:00:00Z  "
                    r"on b  by ", lines[3]), lines[3]
    assert "\x1b" not in proc.stdout
    # -n: the newest N operations.
    assert history(p, "-n", "2").stdout.splitlines() == lines[2:]
    # --json: lossless, one object per operation with every host's outcome and move.
    doc = json.loads(history(p, "--json").stdout)
    assert [o["event"] for o in doc["operations"]] == ["deploy", "deploy", "rollback", "unlock"]
    assert doc["operations"][1]["message"] == "hotfix for #12"
    assert doc["operations"][2]["moves"] == {"a": {"from": v2, "to": v1}, "b": {"from": v2, "to": v1}}
    assert doc["operations"][2]["ci_url"] == "https://circleci.com/gh/acme/shop/77"
    assert doc["problems"] == {}


def test_a_garbage_line_is_skipped_and_counted_on_stderr_and_hostile_text_is_cleaned(local_pair):
    p = local_pair
    v1 = deploy_ok(p)
    later = TEST_CLOCK.tick()  # on the clock the deploy read: after it, whatever the machine's date
    with (p.roots["b"] / "history.jsonl").open("a") as f:
        f.write("this is not json\n")
        f.write(json.dumps({"event": "deploy\x1b]0;owned\x07", "when": clock.iso(later), "who": "eve\x1b[2J",
                            "host": "b", "op": "feedfacefeedface", "from": v1,
                            "to": clock.build_id_at(later) + "\x1b[1m", "outcome": "ok"}) + "\n")
        f.write('{"event": "deploy", "when": \n')   # a record cut short
    proc = history(p)
    assert proc.stderr == "releasetui: b: 2 line(s) of its history.jsonl could not be read and were skipped\n"
    lines = proc.stdout.splitlines()
    assert len(lines) == 2, lines
    assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout
    assert "owned" not in lines[1] and "eve" in lines[1], lines[1]
    doc = json.loads(history(p, "--json").stdout)
    assert doc["problems"] == {"b": "2 line(s) of its history.jsonl could not be read and were skipped"}
    assert "\x1b" not in json.dumps(doc, ensure_ascii=False)


def test_history_lines_of_fifty_hosts_group_what_differs():
    records = {}
    for i in range(1, 51):
        name = f"web{i:02d}"
        outcome = "failed" if name in ("web07", "web31") else "switched-back"
        records[name] = [
            {"event": "deploy", "when": "2026-11-28T10:00:05Z", "started": "2026-11-28T10:00:00Z", "who": "ci",
             "op": "a" * 16, "from": "20261127000000", "to": "20261128100000", "outcome": outcome},
            {"event": "prune", "when": "2026-11-28T10:05:00Z", "started": "2026-11-28T10:04:59Z", "who": "ci",
             "op": "b" * 16, "removed": ["20261120000000"] if i > 2 else []},
        ]
    entries = merge(records)
    deploy, prune = (history_line(e, 50) for e in entries)
    local = datetime(2026, 11, 28, 10, 0, 0, tzinfo=timezone.utc).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    assert deploy == (f"{local}  deploy    failed  20261127000000 → 20261128100000  on all 50 hosts  by ci  in 5.0s  "
                      "(switched-back on 48 hosts (web01..web06, web08..web30, web32..web50); failed on web07, web31)")
    assert prune.endswith("prune     ok      removed 20261120000000 on 48 hosts (web03..web50); removed nothing on "
                          "web01, web02  on all 50 hosts  by ci  in 1.0s")


@pytest.mark.ssh
def test_history_over_two_sshd_hosts_with_a_failed_health_check(health_project):
    p = health_project
    v1 = deploy_ok(p)
    p.write_app("v2")
    v2 = deploy_ok(p)
    (p.roots["web2"] / "unhealthy").touch()
    p.write_app("v3")
    failed = p.cli("--headless", "deploy")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    (p.roots["web2"] / "unhealthy").unlink()
    assert p.cli("--headless", "pin", v1).returncode == 0
    pruned = p.cli("--headless", "prune")
    assert pruned.returncode == 0, pruned.stdout + pruned.stderr
    foreign_lock(p.roots["web1"])
    assert p.cli("--headless", "unlock", "--host", "web1").returncode == 0
    with (p.roots["web2"] / "history.jsonl").open("a") as f:
        f.write("\x00garbage\n")
    proc = p.cli("--headless", "history")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr == "releasetui: web2: 1 line(s) of its history.jsonl could not be read and were skipped\n"
    lines = proc.stdout.splitlines()
    events = [line.split()[2] for line in lines]
    assert events == ["deploy", "deploy", "deploy", "pin", "prune", "unlock"], lines
    assert all("on web1, web2" in line for line in lines[:5]), lines
    assert "on web1  " in lines[5]
    v3 = re.search(rf"{v2} → (\d{{14}})", lines[2]).group(1)
    # The failure's own words, worst first; the duration covers the 1 s health check that failed.
    assert re.match(rf"^{STAMP}  deploy +failed +{v2} → {v3}  on web1, web2  by \S+  in \d+\.\ds  "
                    r"\(switched-back on web1; failed on web2\)  — web2: unhealthy after 1s: exit 1; "
                    r"web1: switched back: another host failed: web2$", lines[2]), lines[2]
    assert re.match(rf"^{STAMP}  pin +ok +{v1}  on web1, web2", lines[3]), lines[3]
    assert re.match(rf"^{STAMP}  prune +ok +removed {v3}  on web1, web2", lines[4]), lines[4]
    assert "removed the lock of deploy by carol@ci" in lines[5]
    doc = json.loads(p.cli("--headless", "history", "--json", "-n", "4").stdout)
    assert [o["event"] for o in doc["operations"]] == ["deploy", "pin", "prune", "unlock"]
    assert doc["operations"][0]["hosts"] == {"web1": "switched-back", "web2": "failed"}


# --- what a record says: the real from, who interrupted, the failure's words, the whole duration ----------------

def last_operation(project) -> tuple[dict, str]:
    """The newest operation as ``history --json`` gives it, and its text line."""
    doc = json.loads(history(project, "--json").stdout)
    return doc["operations"][-1], history(project).stdout.splitlines()[-1]


def outcome_word(line: str) -> str:
    """The outcome a history text line gives (after the date, the time and the event)."""
    return line.split()[3]


def test_ctrl_c_during_a_before_activate_hook_exits_130_and_is_recorded_as_interrupted(local_pair):
    p = local_pair
    v1 = deploy_ok(p)
    marker, gate = p.dir / "hooking", p.dir / "hook-gate"
    p.set("hooks", f"{{before_activate: 'touch {marker}; until [ -e {gate} ]; do sleep 0.05; done'}}")
    p.write_app("v2")
    proc = p.popen("--headless", "deploy")
    try:
        wait_for(marker.exists, 60, "the before_activate hook to run")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        gate.touch()
    assert proc.returncode == 130, out + err
    assert p.current("a") == p.current("b") == v1
    op, line = last_operation(p)
    assert (op["outcome"], op["interrupted_by"]) == ("interrupted", "Ctrl-C"), op
    assert op["hosts"] == {"a": "interrupted", "b": "interrupted"}
    assert {m["from"] for m in op["moves"].values()} == {v1}, op["moves"]
    assert outcome_word(line) == op["outcome"]
    assert re.match(rf"^{STAMP}  deploy +interrupted +{v1} → \d{{14}}  on a, b  .*  — interrupted by Ctrl-C$",
                    line), line


@pytest.mark.parametrize("sig, by", [(signal.SIGINT, "Ctrl-C"), (signal.SIGTERM, "SIGTERM")])
def test_a_deploy_stopped_while_preparing_exits_130_and_records_who_stopped_it(local_pair, sig, by):
    p = local_pair
    v1 = deploy_ok(p)
    marker, gate = p.dir / "installing", p.dir / "install-gate"
    gated_python(p, "venv", marker, gate)
    p.write_app("v2", "tinylib==2.0")  # new requirements: a new venv, where the gate holds the deploy
    proc = p.popen("--headless", "deploy")
    try:
        wait_for(marker.exists, 60, "the venv step")
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        gate.touch()
    assert proc.returncode == 130, out + err
    assert p.current("a") == p.current("b") == v1
    assert not (p.roots["a"] / "deploy.lock").exists() and not (p.roots["b"] / "deploy.lock").exists()
    op, line = last_operation(p)
    assert (op["outcome"], op["interrupted_by"]) == ("interrupted", by), op
    assert op["reasons"] == {"a": f"interrupted by {by}", "b": f"interrupted by {by}"}
    assert {m["from"] for m in op["moves"].values()} == {v1}, op["moves"]
    assert outcome_word(line) == "interrupted" and line.endswith(f"— interrupted by {by}"), line


@pytest.mark.ssh
def test_a_failed_health_check_keeps_its_words_and_its_duration_covers_the_wait(health_project):
    p = health_project
    p.config.write_text(p.config.read_text().replace("timeout: 1,", "timeout: 3,"))
    v1 = deploy_ok(p)
    (p.roots["web2"] / "unhealthy").touch()
    p.write_app("v2")
    failed = p.cli("--headless", "deploy")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    op, line = last_operation(p)
    assert op["outcome"] == outcome_word(line) == "failed", (op, line)
    assert op["hosts"] == {"web1": "switched-back", "web2": "failed"}
    assert op["reasons"]["web2"] == "unhealthy after 3s: exit 1", op["reasons"]
    assert {m["from"] for m in op["moves"].values()} == {v1}
    # From the start to the end of the operation: at least the check's wait (it polls every 0.2 s until its next
    # try would pass its 3 s), to the millisecond.
    assert op["duration"] >= 3.0 - 0.2, op
    assert op["when"] < op["ended"], op
    assert "— web2: unhealthy after 3s: exit 1;" in line, line
