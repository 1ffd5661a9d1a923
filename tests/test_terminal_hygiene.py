"""What reaches a terminal: each failure said once in the stream the README promises, no library noise, and
no control character or escape sequence from a host (logs, metadata, locks, hook and restart output, error
text, history) in any output; JSON stays valid JSON."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from .support.helpers import REPO, deploy_ok, summary

# Any C0/C1 control character except newline (tab is shown as spaces by the cleaner).
RAW_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
HOSTILE = "ok \x1b[2J\x1b[H\x1b]0;pwned\x07 \x1b[31mred\x1b[0m \rback\x08\x08 \x9b31m end"


def assert_clean(text: str, where: str, whole_sequences: bool = True) -> None:
    """No raw control character; with ``whole_sequences`` the escape sequences went whole (parameters too).

    Text a host script relays (restart and hook output, its error lines) is neutralised on the host already:
    the control characters are gone there, their printable parameters stay (``[31m``), harmless.
    """
    found = RAW_CONTROL.search(text)
    assert found is None, f"{where}: raw {found.group()!r} near {text[max(0, found.start() - 40):found.end() + 40]!r}"
    if whole_sequences:
        assert "pwned" not in text, f"{where}: an OSC title's text reached the output"


# --- 12: each failure said once -------------------------------------------------------------------

def test_a_mistyped_rollback_id_on_two_hosts_is_one_line_on_stdout_and_nothing_on_stderr(local_pair):
    v1 = deploy_ok(local_pair)
    proc = local_pair.cli("--headless", "rollback", "20990101000000")
    assert proc.returncode == 1
    assert proc.stderr == ""
    said = [line for line in proc.stdout.splitlines() if "20990101000000" in line]
    assert said == [f"rollback a, b: refused: build 20990101000000 does not exist there (builds you can choose: "
                    f"{v1})"], proc.stdout
    assert proc.stdout.splitlines()[-1] == f"live now: {v1} on a, b"


def test_a_malformed_id_is_a_usage_error_said_once_on_stderr(local_pair):
    proc = local_pair.cli("--headless", "rollback", "2026-bad")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("invalid build id") == 1 and len(proc.stderr.splitlines()) == 1, proc.stderr


def test_a_locked_host_is_said_once_per_stream_it_belongs_to(local_pair):
    deploy_ok(local_pair)
    lock = local_pair.roots["b"] / "deploy.lock"
    lock.mkdir()
    (lock / "info.json").write_text(json.dumps({"who": "bob@lap", "where": "lap", "since": "2026-11-28T10:00:00Z",
                                                "operation": "deploy"}))
    proc = local_pair.cli("--headless", "rollback")
    assert proc.returncode == 4 and proc.stderr == ""
    outcome = [line for line in proc.stdout.splitlines() if line.startswith("rollback b:")]
    assert len(outcome) == 1 and "locked by another operation: deploy by bob@lap" in outcome[0], proc.stdout
    assert "locked: locked" not in proc.stdout


def test_unreachable_hosts_in_builds_json_are_in_the_document_only(tmp_path, wheelhouse):
    from .support.helpers import make_project, need
    from .support.sshd import free_port
    need("rsync")
    p = make_project(tmp_path, wheelhouse, {"a": {"transport": "local"},
                                            "gone": {"address": "127.0.0.1", "port": free_port()}})
    proc = p.cli("--headless", "builds", "--json")
    assert proc.returncode == 3
    assert proc.stderr == "", "said in the JSON document already"
    gone = [h for h in json.loads(proc.stdout)["hosts"] if h["name"] == "gone"][0]
    assert "Connection refused" in gone["error"]
    deploy = p.cli("--headless", "deploy")
    assert deploy.returncode == 3 and deploy.stderr == ""
    said = [line for line in deploy.stdout.splitlines() if line.startswith("deploy gone:")]
    assert len(said) == 1 and "unreachable: unreachable" not in said[0], deploy.stdout


# --- 13: no library noise ---------------------------------------------------------------------------

def test_paramiko_logging_never_reaches_stderr():
    # Without a handler, Python's last-resort handler prints WARNING and above to stderr: exactly what
    # paramiko's "Socket exception: Bad file descriptor (9)" looked like.
    code = ("import logging\n"
            "from releasetui.executors.connect import load_paramiko\n"
            "load_paramiko()  # wherever releasetui brings paramiko in\n"
            "for name in ('paramiko', 'paramiko.transport', 'paramiko.transport.sftp'):\n"
            "    logging.getLogger(name).error('Socket exception: Bad file descriptor (9)')\n"
            "    logging.getLogger(name).critical('Exception (client): Error reading SSH protocol banner')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    bare = subprocess.run([sys.executable, "-c", code.replace("load_paramiko()", "import paramiko")],
                          capture_output=True, text=True, timeout=60)
    assert "Socket exception" in bare.stderr, "the check above would not see the noise"


# --- 14: nothing from a host reaches a terminal raw ----------------------------------------------------

def test_log_lines_are_cleaned_in_human_and_json_output(local_project):
    p = local_project
    deploy_ok(p)
    (p.dir / "app.log").write_text("plain line\n" + HOSTILE + "\n")
    proc = p.cli("--headless", "logs", "-n", "2")
    assert proc.returncode == 0, proc.stderr
    assert_clean(proc.stdout + proc.stderr, "logs")
    # Whole sequences go (the title's text with them); other control characters show as "?".
    assert proc.stdout.splitlines() == ["box | plain line", "box | ok  red ?back??  end"], proc.stdout
    as_json = p.cli("--headless", "logs", "-n", "2", "--json")
    assert as_json.returncode == 0
    assert_clean(as_json.stdout, "logs --json")
    logs = [json.loads(line) for line in as_json.stdout.splitlines() if '"log"' in line]
    assert logs[0]["message"] == "plain line" and "red" in logs[1]["message"]


def test_hostile_metadata_and_lock_text_are_cleaned_in_builds_and_refusals(local_project):
    p = local_project
    build = deploy_ok(p)
    meta_path = p.roots["box"] / "builds" / build / ".releasetui-build.json"
    meta = json.loads(meta_path.read_text())
    meta["git_subject"] = HOSTILE
    meta["deployed_by"] = "mallory\x1b]0;pwned\x07@host"
    meta_path.write_text(json.dumps(meta))
    lock = p.roots["box"] / "deploy.lock"
    lock.mkdir()
    (lock / "info.json").write_text(json.dumps({"who": "eve\x1b[2J", "where": "x\x07", "since": "now\x1b[1m",
                                                "operation": "deploy", "message": HOSTILE}))
    builds = p.cli("--headless", "builds")
    assert builds.returncode == 0, builds.stderr
    assert_clean(builds.stdout + builds.stderr, "builds")
    assert "mallory@host" in builds.stdout and "eve" in builds.stdout
    as_json = p.cli("--headless", "builds", "--json")
    assert_clean(as_json.stdout, "builds --json")
    json.loads(as_json.stdout)
    refused = p.cli("--headless", "deploy")
    assert refused.returncode == 4
    assert_clean(refused.stdout + refused.stderr, "deploy refused by a hostile lock")
    refused_json = p.cli("--headless", "deploy", "--json")
    assert_clean(refused_json.stdout, "deploy --json")
    assert summary(refused_json)["exit_code"] == 4
    unlock = p.cli("--headless", "unlock")
    assert unlock.returncode == 0
    assert_clean(unlock.stdout + unlock.stderr, "unlock")
    history = p.cli("--headless", "history")
    assert_clean(history.stdout + history.stderr, "history")


def test_restart_and_hook_output_and_error_text_are_cleaned(local_project):
    p = local_project
    deploy_ok(p)
    hostile = HOSTILE.replace("\\", "\\\\").replace("'", "")
    script = p.dir / "noisy.sh"
    script.write_text("#!/bin/sh\nprintf '%s\\n' \"$(cat " + str(p.dir / "noise.txt") + ")\"\nexit ${1:-0}\n")
    script.chmod(0o755)
    (p.dir / "noise.txt").write_text(hostile)
    p.set("restart", f"'{script} 3'")
    p.set("hooks", f"{{local_before: ['{script} 0']}}")
    p.write_app("v2")
    for args in ((), ("--json",)):
        proc = p.cli("--headless", "deploy", *args)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert_clean(proc.stdout + proc.stderr, f"deploy {' '.join(args)}", whole_sequences=False)
        if args:
            for line in proc.stdout.splitlines():
                json.loads(line)
        else:
            assert "restart failed (exit 3)" in proc.stdout and " red " in proc.stdout, proc.stdout


def test_a_failing_install_s_error_text_is_cleaned(local_project):
    p = local_project
    wrapper = p.dir / "bad-python"
    real = p.config.read_text().split("python: ", 1)[1].split("\n", 1)[0]
    wrapper.write_text("#!/bin/sh\ncase \"$*\" in *\" wheel \"*) printf 'pip: \\033[31mno\\033]0;pwned\\007 way\\n' >&2; "
                       f"exit 1;; esac\nexec {real} \"$@\"\n")
    wrapper.chmod(0o755)
    p.config.write_text(p.config.read_text().replace(f"python: {real}", f"python: {wrapper}"))
    p.set("installer", "pip")  # the hostile text comes from `pip wheel`
    proc = p.cli("--headless", "deploy")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert_clean(proc.stdout + proc.stderr, "a failed install", whole_sequences=False)
    assert "31mno" in proc.stdout and "way" in proc.stdout, proc.stdout


@pytest.mark.parametrize("text", [HOSTILE, "\x00\x01\x1b", "a\u202eb", "x" * 5000])
def test_the_cleaner_leaves_nothing_that_drives_a_terminal(text):
    from releasetui.text import clean, clean_line
    for cleaned in (clean(text), clean_line(text), clean_line(text, 80)):
        assert RAW_CONTROL.search(cleaned.replace("\n", "")) is None
        assert "\x1b" not in cleaned


def test_outcome_messages_are_clean_in_the_json_summary_too():
    from releasetui.models import HostOutcome, OperationResult
    result = OperationResult("deploy")
    result.outcomes["a"] = HostOutcome("a", "unreachable", "Disconnect: \x1b]0;pwned\x07server \x1b[5msays\x1b[0m bye")
    text = json.dumps(result.to_dict())
    assert json.loads(text)["hosts"][0]["message"] == "Disconnect: server says bye"
