"""What a deploy's prepare script starts on a host, counted: every process is CPU on every host of every deploy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from releasetui import commands
from releasetui.manifest import Manifest

TOKEN = "0123456789abcdef"
VENV = "0123456789abcdef-py3.11"
BUILD = "20260101120000"


def shims(tmp_path: Path, tools) -> tuple[Path, Path]:
    """A PATH directory whose ``tools`` log each start to a file, then run the real program."""
    directory, log = tmp_path / "shims", tmp_path / "calls"
    directory.mkdir()
    for tool in tools:
        real = subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True, text=True).stdout.strip()
        (directory / tool).write_text(f'#!/bin/sh\necho {tool} >> {log}\nexec {real} "$@"\n')
        (directory / tool).chmod(0o755)
    return directory, log


def test_a_prepare_with_its_venv_reused_makes_no_log_file_and_checks_the_lock_twice(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    (app / "requirements.txt").write_text("tinylib==1.0\n")
    (app / "app.py").write_text("print('hi')\n")
    root = tmp_path / "root"
    (root / "venvs" / VENV / "bin").mkdir(parents=True)
    (root / "venvs" / VENV / "bin" / "python").symlink_to(sys.executable)
    (root / "venvs" / VENV / ".releasetui-complete").write_text("pip\n")
    for name in ("builds", "wheels", "pins", "shared"):
        (root / name).mkdir()
    (root / "deploy.lock").mkdir()
    (root / "deploy.lock" / "token").write_text(TOKEN)
    manifest = Manifest.of(app, git=False)
    stream = b"".join(manifest.payload(manifest.to_send(None), None).chunks())
    script = commands.prepare_script(str(root), TOKEN, BUILD, requirements="requirements.txt", venv=VENV,
                                     python=sys.executable, pip_args=[], meta_incomplete='{"complete": false}',
                                     meta_complete='{"complete": true}', install_timeout=60,
                                     inline=commands.inline_payload(stream))
    path, log = shims(tmp_path, ("mktemp", "rm", "head", "tail", "cat"))
    proc = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PATH": f"{path}:{os.environ['PATH']}"})
    report = commands.parse_prepare(proc.stdout)
    assert proc.returncode == 0 and report["complete"] and report["shipped"][0] == 2, proc.stdout + proc.stderr
    assert "received 2 files" in proc.stdout, "the helper's summary is the ship step's message"
    calls = log.read_text().split()
    assert "mktemp" not in calls and "rm" not in calls and "tail" not in calls and "cat" not in calls, calls
    assert calls.count("head") == 3, calls  # the lock at the start and before `complete`, the venv's marker
    assert (root / "builds" / BUILD / "app.py").read_text() == "print('hi')\n"
