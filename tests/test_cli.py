"""The headless CLI contract: exit codes, stdout vs stderr, JSON shape, and no Textual import."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys

import pytest

from releasetui.models import ExitCode

from .support.helpers import HOST_PYTHON, REPO, TEST_CLOCK, deploy_ok, make_project
from .support.sshd import free_port


def test_exit_codes_are_the_documented_ones():
    assert {c.name: int(c) for c in ExitCode} == {"OK": 0, "FAILED": 1, "USAGE": 2, "UNREACHABLE": 3, "LOCKED": 4,
                                                   "INTERRUPTED": 130}


def test_core_and_cli_never_import_textual():
    code = ("import sys\n"
            "import releasetui.cli, releasetui.operations, releasetui.executors, releasetui.commands, "
            "releasetui.config, releasetui.models, releasetui.rules, releasetui.present, releasetui.output, "
            "releasetui.manifest, releasetui.metadata, releasetui.runner, releasetui.history\n"
            "rc = releasetui.cli.main(['--headless', 'builds', '--config', '/nonexistent.yml'])\n"
            "assert rc == 2, rc\n"
            "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
            "print(bad)\n"
            "sys.exit(1 if bad else 0)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# Code a plain headless deploy or rollback has no use for, so never imports: the TUI, the jump-host code (no host
# has one), diff, init's inventory reading, Fabric/Invoke (paramiko is used directly) and, off a terminal, Rich.
NOT_ON_A_PLAIN_RUN = ("textual", "releasetui.tui", "releasetui.live", "rich", "releasetui.executors.jump",
                      "releasetui.diffing", "releasetui.operations.diff", "releasetui.init.ansible",
                      "releasetui.init.inventory", "releasetui.init.starter", "releasetui.demo", "releasetui.docgen",
                      "fabric", "invoke", "asyncio", "unittest", "importlib.metadata", "email")


def test_plain_headless_deploy_and_rollback_import_only_what_they_need(ssh_project):
    code = ("import json, sys\n"
            "from releasetui.cli import main\n"
            "rc = main(sys.argv[2:])\n"
            "open(sys.argv[1], 'w').write(json.dumps(sorted(sys.modules)))\n"
            "sys.exit(rc)\n")
    env = {**__import__("os").environ, "PYTHONPATH": str(REPO)}
    deploy_ok(ssh_project)  # something to roll back to
    ssh_project.write_app("v2")
    for action in ("deploy", "rollback"):
        listing = ssh_project.dir / f"{action}.modules.json"
        argv = [sys.executable, "-c", code, str(listing), "--config", str(ssh_project.config), "--headless", action,
                "--json"]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=180,
                              env={**env, **TEST_CLOCK.env()}, stdin=subprocess.DEVNULL)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        loaded = json.loads(listing.read_text())
        assert "paramiko" in loaded  # it did connect
        bad = [m for m in loaded if any(m == name or m.startswith(name + ".") for name in NOT_ON_A_PLAIN_RUN)]
        assert bad == [], f"{action} imported {bad}"


def test_paramiko_imported_without_importlib_metadata_still_knows_its_version():
    code = ("import sys\n"
            "from releasetui.executors.connect import load_paramiko\n"
            "paramiko = load_paramiko(version_stand_in=True)\n"
            "assert 'importlib.metadata' not in sys.modules, 'the real module was imported'\n"
            "ident = paramiko.transport.Transport._CLIENT_ID\n"
            "import importlib.metadata\n"
            "print(paramiko.__version__, ident, importlib.metadata.version('paramiko'))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**__import__("os").environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    ours, ident, real = proc.stdout.split()
    assert ours == real and ident == f"paramiko_{real}"
    # Anywhere else (the TUI imports paramiko in a worker thread while others run), the real module, as always.
    plain = code.replace("load_paramiko(version_stand_in=True)", "load_paramiko()")
    proc = subprocess.run([sys.executable, "-c", plain], capture_output=True, text=True, timeout=60,
                          env={**__import__("os").environ, "PYTHONPATH": str(REPO)})
    assert "the real module was imported" in proc.stderr


def test_usage_errors_exit_2(local_project):
    bad_flag = local_project.cli("--headless", "deploy", "--frobnicate")
    assert bad_flag.returncode == 2 and "unrecognized arguments" in bad_flag.stderr
    no_action = local_project.cli("--headless")
    assert no_action.returncode == 2
    unknown_host = local_project.cli("--headless", "builds", "--host", "nope")
    assert unknown_host.returncode == 2 and "no host named 'nope'" in unknown_host.stderr
    bad_id = local_project.cli("--headless", "rollback", "../../etc")
    assert bad_id.returncode == 2 and "invalid build id" in bad_id.stderr


def test_missing_config_says_where_it_looked(tmp_path):
    env = {k: v for k, v in __import__("os").environ.items() if k != "RELEASETUI_CONFIG"}
    proc = subprocess.run([sys.executable, "-m", "releasetui", "--headless", "builds"], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2
    assert str(tmp_path / "hosts.yml") in proc.stderr and "releasetui demo" in proc.stderr


def test_unreachable_host_exits_3(tmp_path, wheelhouse, ssh_env):
    port = free_port()  # nothing listens there
    p = make_project(tmp_path, wheelhouse, {"gone": {"address": "127.0.0.1", "port": port}}, ssh_env=ssh_env)
    builds = p.cli("--headless", "builds")
    assert builds.returncode == 3 and f"127.0.0.1:{port}" in builds.stdout and builds.stderr == ""
    deploy = p.cli("--headless", "deploy", "--json")
    assert deploy.returncode == 3
    summary = json.loads(deploy.stdout.splitlines()[-1])
    assert summary["hosts"][0]["status"] == "unreachable"


def test_builds_json_shape(local_project):
    assert local_project.cli("--headless", "deploy").returncode == 0
    proc = local_project.cli("--headless", "builds", "--json")
    assert proc.returncode == 0
    doc = json.loads(proc.stdout)
    (host,) = doc["hosts"]
    assert set(host) >= {"name", "current", "locked_by", "builds"}
    (build,) = host["builds"]
    assert set(build) >= {"id", "created_at", "requirements_sha256", "current", "complete", "git_commit", "deployed_by"}
    assert build["current"] is True and host["current"] == build["id"]


def test_json_events_are_one_object_per_line(local_project):
    proc = local_project.cli("--headless", "deploy", "--json")
    assert proc.returncode == 0
    objects = [json.loads(line) for line in proc.stdout.splitlines()]
    steps = [o for o in objects if o["event"] == "step"]
    assert steps and all(set(o) >= {"host", "step", "status", "duration", "message"} for o in steps)
    assert objects[-1]["event"] == "summary" and objects[-1]["exit_code"] == 0


def test_human_output_has_no_ansi_when_piped_and_diagnostics_on_stderr(local_project):
    proc = local_project.cli("--headless", "deploy")
    assert proc.returncode == 0
    assert "\x1b[" not in proc.stdout
    step_line = re.compile(r"^\d\d:\d\d:\d\d box +(\S+) +ok +\d+\.\d\ds")
    steps = [m.group(1) for m in map(step_line.match, proc.stdout.splitlines()) if m]
    assert steps == ["lock", "ship", "venv", "build", "switch", "restart"]
    assert proc.stderr == ""


def test_reader_going_away_does_not_change_what_happens(local_project):
    """`deploy | head -1`: the deploy still completes and the exit code is the deploy's, not the pipe's."""
    proc = subprocess.Popen([sys.executable, "-m", "releasetui", "--config", str(local_project.config),
                             "--headless", "deploy"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline()
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert local_project.current("box") is not None


# --- refusing what cannot mean what was typed; one line for a usage error -------------------------

def test_a_usage_error_is_one_line_on_stderr_that_points_at_help(local_project):
    for args, words in ((("--headless", "deploy", "--frobnicate"), "unrecognized arguments: --frobnicate"),
                        (("--headless",), "--headless needs an ACTION"),
                        (("--headless", "logs", "-n", "-5"), "argument -n: expected a whole number >= 0, got '-5'"),
                        (("--headless", "deploy", "--batch", "0"), "argument --batch")):
        proc = local_project.cli(*args)
        assert proc.returncode == 2 and proc.stdout == "", (args, proc.stdout, proc.stderr)
        assert len(proc.stderr.splitlines()) == 1 and "usage:" not in proc.stderr, proc.stderr
        assert proc.stderr.startswith("releasetui: ") and words in proc.stderr, proc.stderr
        assert re.search(r"\(see releasetui( \w+)? --help\)$", proc.stderr.rstrip("\n")), proc.stderr
    assert local_project.builds("box") == []


def test_a_canary_that_leaves_no_host_to_wait_is_refused_before_anything_happens(local_pair):
    for action, canary, words in (("deploy", "7", "7 hosts first would switch all 2 targeted hosts in one wave"),
                                  ("deploy", "2", "use fewer than 2"),
                                  ("deploy", "a,b", "names all 2 targeted hosts"),
                                  ("rollback", "3", "one wave")):
        proc = local_pair.cli("--headless", action, "--canary", canary)
        assert proc.returncode == 2, (canary, proc.stdout, proc.stderr)
        assert proc.stdout == "" and len(proc.stderr.splitlines()) == 1, proc.stderr
        assert "--canary" in proc.stderr and words in proc.stderr, proc.stderr
    one = local_pair.cli("--headless", "deploy", "--canary", "1", "--host", "a")
    assert one.returncode == 2 and "the only targeted host" in one.stderr, one.stderr
    assert local_pair.builds("a") == local_pair.builds("b") == [], "nothing was shipped"


def test_unpin_of_a_build_pinned_nowhere_is_refused_and_names_the_hosts(local_pair):
    build = deploy_ok(local_pair)
    proc = local_pair.cli("--headless", "unpin", build)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"unpin a, b: refused: build {build} is not pinned (no build is pinned there)" in proc.stdout, proc.stdout
    assert "unpinned" not in proc.stdout
    assert local_pair.cli("--headless", "pin", build).returncode == 0
    again = local_pair.cli("--headless", "unpin", build)
    assert again.returncode == 0 and f"{build} unpinned" in again.stdout, again.stdout


def test_ctrl_c_ends_logs_follow_with_a_short_line_and_exit_0(local_project):
    proc = local_project.popen("--headless", "logs", "-n", "1", "-f")
    try:
        assert proc.stdout.readline().strip() == "box | line 20"
    finally:
        proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, out + err
    assert err == "releasetui: logs: stopped\n", "stopping a tail is its normal end: no deploy's words"


# --- the words an operation says -----------------------------------------------------------------

def test_lock_wait_says_once_whom_it_waits_for_and_until_when_then_nothing_until_it_gives_up(local_pair):
    deploy_ok(local_pair)
    lock = local_pair.roots["a"] / "deploy.lock"
    lock.mkdir()
    (lock / "token").write_text("0123456789abcdef")
    (lock / "info.json").write_text(json.dumps({"who": "bob@lap", "where": "lap", "since": "2026-11-28T10:00:00Z",
                                                "operation": "deploy"}))
    proc = local_pair.cli("--headless", "deploy", "--lock-wait", "3")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    waiting = [line for line in lines if "waiting for" in line]
    assert len(waiting) == 1, lines
    assert re.search(r"waiting for a's lock, held by deploy by bob@lap on lap since 2026-11-28T10:00:00Z, "
                     r"until \d\d:\d\d:\d\d \(--lock-wait 3\)", waiting[0]), waiting[0]
    assert not any("failed" in line for line in lines), "a CI log grepped for 'failed' finds nothing: " + proc.stdout
    assert [line for line in lines if "gave up waiting" in line], lines
    assert any(line.startswith("deploy a: locked by another operation: deploy by bob@lap") for line in lines)


def test_builds_with_every_host_unreachable_says_so_in_the_fleet_line(tmp_path, wheelhouse):
    from .support.sshd import free_port as port
    p = make_project(tmp_path, wheelhouse, {"gone1": {"address": "127.0.0.1", "port": port()},
                                            "gone2": {"address": "127.0.0.1", "port": port()}})
    proc = p.cli("--headless", "builds")
    assert proc.returncode == 3
    fleet = proc.stdout.splitlines()[0]
    assert fleet == "fleet: unknown: none of the 2 hosts could be read", proc.stdout


def test_a_missing_interpreter_is_named_not_python_none(local_project):
    p = local_project
    p.config.write_text(p.config.read_text().replace(f"python: {HOST_PYTHON}", "python: /nonexistent/python9"))
    proc = p.cli("--headless", "deploy")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "None" not in proc.stdout, proc.stdout
    assert "python: '/nonexistent/python9' does not run there" in proc.stdout, proc.stdout


def test_a_shared_file_missing_on_several_hosts_is_one_grouped_line(local_pair):
    local_pair.set("shared", "{files: [.env]}")
    proc = local_pair.cli("--headless", "deploy")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    said = [line for line in proc.stdout.splitlines() if "shared file .env is missing" in line]
    assert said == ["deploy a, b: refused: shared file .env is missing: create ROOT/shared/.env on a, b "
                    "(it is never shipped)"], proc.stdout


def test_after_a_stale_lock_is_removed_the_message_no_longer_says_how_to_remove_it(local_project):
    deploy_ok(local_project)
    lock = local_project.roots["box"] / "deploy.lock"
    lock.mkdir()
    (lock / "token").write_text("0123456789abcdef")
    (lock / "info.json").write_text(json.dumps({"who": "ghost", "where": socket.gethostname(), "pid": 4_000_000,
                                                "since": "2026-01-01T00:00:00Z", "operation": "deploy"}))
    refused = local_project.cli("--headless", "deploy")
    assert refused.returncode == 4 and "`releasetui --headless unlock` removes it" in refused.stdout
    proc = local_project.cli("--headless", "unlock")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "removed the lock held for deploy by ghost" in proc.stdout and "STALE" in proc.stdout, proc.stdout
    assert "removes it" not in proc.stdout, proc.stdout
    assert not lock.exists()


def test_invoke_is_loaded_for_paramiko_only_when_the_ssh_config_has_match_exec(tmp_path):
    pytest.importorskip("invoke")  # paramiko runs `Match exec` through Invoke; without it there is nothing to keep
    code = ("import sys\n"
            "from releasetui.executors.connect import load_paramiko\n"
            "paramiko = load_paramiko()\n"
            "print(paramiko.config.invoke is not None, 'invoke' in sys.modules)\n")
    results = {}
    for name, text in (("plain", "Host web*\n  User deploy\n"), ("exec", "Match exec \"true\"\n  User deploy\n")):
        home = tmp_path / name
        (home / ".ssh").mkdir(parents=True)
        (home / ".ssh" / "config").write_text(text)
        env = {**__import__("os").environ, "HOME": str(home), "PYTHONPATH": str(REPO)}
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
        assert proc.returncode == 0, proc.stderr
        results[name] = proc.stdout.split()
    assert results == {"plain": ["False", "False"], "exec": ["True", "True"]}
