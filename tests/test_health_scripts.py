"""The health-check parts of the remote scripts, as text and run by a real sh (no SSH, no network)."""

from __future__ import annotations

import json
import subprocess
import sys

from releasetui import commands
from releasetui.config import HealthCheck

BUILD = "20260101120000"
PREVIOUS = "20260101110000"


def make_root(tmp_path):
    """A project root with two complete builds, current at PREVIOUS."""
    root = tmp_path / "root"
    for build in (PREVIOUS, BUILD):
        (root / "builds" / build).mkdir(parents=True)
        (root / "builds" / build / commands.META_FILE).write_text(commands.meta_json({"id": build, "complete": True}) + "\n")
    (root / "current").symlink_to(f"builds/{PREVIOUS}")
    return root


def activate(root, restart: str, health: HealthCheck) -> subprocess.CompletedProcess:
    """Run the activate script for BUILD under sh."""
    failed = commands.meta_json({"id": BUILD, "complete": True, "failed": True})
    script = commands.activate_script(str(root), BUILD, PREVIOUS, restart, '{"event": "deploy"}', python=sys.executable,
                                      health=health, failed_meta=failed, health_failed_history='{"event": "health-failed"}')
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=60)


def test_build_id_placeholder_is_filled_and_quoted():
    health = HealthCheck(url="http://127.0.0.1:8000/health?b={build_id}", expect="ok build={build_id}")
    script = commands.activate_script("/srv/app", BUILD, PREVIOUS, "true", "{}", health=health, failed_meta="{}",
                                      health_failed_history="{}")
    assert f"'http://127.0.0.1:8000/health?b={BUILD}' 'ok build={BUILD}'" in script
    assert "{build_id}" not in script


def test_healthy_build_stays(tmp_path):
    root = make_root(tmp_path)
    proc = activate(root, "true", HealthCheck(command="readlink current", expect="builds/{build_id}", timeout=2, interval=0.1))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SWITCHED" in proc.stdout.split()
    assert (root / "current").readlink().name == BUILD
    assert not (root / "deploy.lock").exists()


def test_check_answered_by_the_previous_build_does_not_pass(tmp_path):
    """What a graceful reload looks like for a moment: the old build still answers."""
    root = make_root(tmp_path)
    answer = tmp_path / "answer"
    answer.write_text(f"ok build={PREVIOUS}\n")
    proc = activate(root, "true", HealthCheck(command=f"cat {answer}", expect="ok build={build_id}", timeout=0.5,
                                              interval=0.1))
    assert proc.returncode == 1 and "UNHEALTHY" in proc.stdout.split()
    assert (root / "current").readlink().name == PREVIOUS
    meta = json.loads((root / "builds" / BUILD / commands.META_FILE).read_text())
    assert meta["failed"] is True
    assert [json.loads(line)["event"] for line in (root / "history.jsonl").read_text().splitlines()] == \
        ["deploy", "health-failed"]


def test_failed_restart_switches_back_without_polling(tmp_path):
    root = make_root(tmp_path)
    # Fails while current is the new build, works again once switched back.
    restart = f"test \"$(readlink current)\" != builds/{BUILD}"
    proc = activate(root, restart, HealthCheck(command="true", timeout=30))
    assert proc.returncode == 1 and "UNHEALTHY" in proc.stdout.split()
    assert "restart failed: not polled" in proc.stdout
    assert (root / "current").readlink().name == PREVIOUS


def test_rollback_marks_the_build_it_leaves_failed(tmp_path):
    root = make_root(tmp_path)
    (root / "current").unlink()
    (root / "current").symlink_to(f"builds/{BUILD}")
    meta = commands.meta_json({"id": BUILD, "complete": True, "failed": True, "failure": "it's broken; \"really\""})
    script = commands.rollback_script(str(root), PREVIOUS, "true", "{}", "ci", "2026-01-01T00:00:00Z", "web1",
                                      mark_failed=(BUILD, meta))
    proc = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert (root / "current").readlink().name == PREVIOUS
    assert json.loads((root / "builds" / BUILD / commands.META_FILE).read_text())["failure"] == "it's broken; \"really\""
