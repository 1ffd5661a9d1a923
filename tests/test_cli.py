"""The headless CLI contract: exit codes, stdout vs stderr, JSON shape, and no Textual import."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from releasetui.models import ExitCode

from .helpers import make_project
from .sshd import free_port


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
