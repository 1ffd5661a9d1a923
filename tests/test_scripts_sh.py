"""The remote scripts run by a real ``sh`` on a project root on disk (no SSH, no network).

Each test builds a root by hand (builds with metadata, venvs, a lock), runs
one script, and checks what it did to the root and what it said.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shlex
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from releasetui import commands
from releasetui.commands import ActivateRecords, LockRequest
from releasetui.commands.base import owner_check
from releasetui.config import HealthCheck
from releasetui.metadata import META_FILE, complete_meta, meta_json, new_meta

OLD, NEW = "20260101110000", "20260101120000"
TOKEN = "0123456789abcdef"
VENV = "0123456789abcdef-py3.11"


def make_root(tmp_path: Path, builds=(OLD, NEW), current: str = OLD, lock_token: str = TOKEN) -> Path:
    """A project root with complete builds (each with its venv), ``current`` and a lock held by ``lock_token``."""
    root = tmp_path / "root"
    (root / "venvs" / VENV / "bin").mkdir(parents=True)
    (root / "venvs" / VENV / "bin" / "python").symlink_to(sys.executable)
    (root / "venvs" / VENV / ".releasetui-complete").touch()
    for build in builds:
        (root / "builds" / build).mkdir(parents=True)
        (root / "builds" / build / "env").symlink_to(f"../../venvs/{VENV}")
        meta = complete_meta(new_meta(build, project="p", created_at="2026-01-01T00:00:00Z",
                                      requirements_sha256="a" * 64, python_version="3.11.7", venv=VENV,
                                      deployed_by="me"))
        (root / "builds" / build / META_FILE).write_text(meta_json(meta) + "\n")
    (root / "current").symlink_to(f"builds/{current}")
    if lock_token:
        (root / "deploy.lock").mkdir()
        (root / "deploy.lock" / "token").write_text(lock_token)
        (root / "deploy.lock" / "info.json").write_text('{"who": "me"}')
    return root


def activate(root: Path, *, restart: str = "true", health=None, verdict: bytes = b"COMMIT\n",
             restart_timeout: float = 30, prune=(), decided: bool = False,
             elapsed: float = 0.0) -> subprocess.CompletedProcess:
    records = ActivateRecords(history={"event": "deploy", "from": OLD, "to": NEW},
                              failed_meta=meta_json({"id": NEW, "failed": True, "failure": "it's broken; \"really\""}),
                              back_meta=meta_json({"id": NEW, "failed": True, "failure": "back"}))
    script = commands.activate_script(str(root), TOKEN, target=NEW, previous=OLD, restart=restart,
                                      restart_timeout=restart_timeout, python=sys.executable, health=health, hooks=[],
                                      hook_env={}, records=records, verdict_timeout=30, prune_builds=prune,
                                      decided=decided, elapsed=elapsed)
    return subprocess.run(["sh", "-c", script], input=verdict, capture_output=True, timeout=60)


def current(root: Path) -> str:
    return os.readlink(root / "current").split("/")[-1]


def outcomes(root: Path) -> list[str]:
    return [json.loads(line)["outcome"] for line in (root / "history.jsonl").read_text().splitlines()]


def test_healthy_build_commits_prunes_and_releases_the_lock(tmp_path):
    root = make_root(tmp_path, builds=("20260101100000", OLD, NEW))
    (root / "pins").mkdir()
    proc = activate(root, health=HealthCheck(command="readlink current", expect="builds/{build_id}", timeout=2,
                                             interval=0.1), prune=["20260101100000"])
    report = commands.parse_activate(proc.stdout.decode())
    assert proc.returncode == 0, proc.stderr
    assert report.healthy and report.committed and report.removed == ("20260101100000",)
    assert current(root) == NEW and not (root / "builds" / "20260101100000").exists()
    assert not (root / "deploy.lock").exists()
    assert outcomes(root) == ["ok"]


def test_a_pinned_or_current_build_is_never_pruned_even_when_planned(tmp_path):
    root = make_root(tmp_path, builds=("20260101100000", OLD, NEW))
    (root / "pins").mkdir()
    (root / "pins" / "20260101100000").touch()
    proc = activate(root, prune=["20260101100000", NEW])
    assert proc.returncode == 0, proc.stderr
    assert (root / "builds" / "20260101100000").is_dir() and (root / "builds" / NEW).is_dir()


def test_back_verdict_or_eof_switches_back_and_marks_the_build(tmp_path):
    for verdict in (b"BACK another host failed: web2\n", b""):
        root = make_root(tmp_path / str(len(verdict)))
        proc = activate(root, verdict=verdict)
        report = commands.parse_activate(proc.stdout.decode())
        assert report.healthy and not report.committed and report.back_on == OLD, proc.stdout
        assert report.why == ("switched back: another host failed: web2" if verdict else
                              "switched back: no verdict from releasetui")
        assert current(root) == OLD
        assert json.loads((root / "builds" / NEW / META_FILE).read_text())["failure"] == "back"
        assert outcomes(root) == ["switched-back"]
        assert not (root / "deploy.lock").exists()


def test_a_host_that_is_the_whole_operation_commits_without_a_verdict(tmp_path):
    # One host decides alone: its script commits once healthy, reading nothing (stdin at EOF says nothing)...
    root = make_root(tmp_path / "alone")
    proc = activate(root, verdict=b"", decided=True)
    report = commands.parse_activate(proc.stdout.decode())
    assert proc.returncode == 0 and report.committed and current(root) == NEW, proc.stdout
    assert outcomes(root) == ["ok"] and not (root / "deploy.lock").exists()
    # ...but only when healthy: a failed restart still switches back.
    root = make_root(tmp_path / "alone-failing")
    proc = activate(root, restart="exit 3", verdict=b"", decided=True)
    report = commands.parse_activate(proc.stdout.decode())
    assert proc.returncode == 1 and not report.committed and current(root) == OLD
    assert outcomes(root) == ["failed"]


def test_the_restart_command_keeps_the_default_sigpipe(tmp_path):
    """The activate script survives a lost connection by catching SIGPIPE; its children must not inherit an
    ignored SIGPIPE (a daemon the restart starts would keep it for its whole life)."""
    root = make_root(tmp_path)
    seen = tmp_path / "sigign"
    proc = activate(root, restart=f"grep SigIgn /proc/self/status > {seen}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ignored = int(seen.read_text().split()[1], 16)
    assert not ignored & (1 << 12), "SIGPIPE (13) is ignored in the restart command"


def test_an_inline_stream_builds_what_a_stream_on_stdin_builds(tmp_path):
    header = {"files": {"a.txt": ["f", 0o644, hashlib.sha256(b"data").hexdigest(), 4, None]}, "sent": ["a.txt"],
              "link_from": None}
    stream = _stream(header, {"a.txt": b"data"})
    (tmp_path / "builds").mkdir()
    script = (f"python3 -I -S -c {shlex.quote(commands.SHIP_PY)} builds/{NEW} 0 b64 <<'END'\n"
              f"{commands.inline_payload(stream)}END\n")
    proc = subprocess.run(["sh", "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0 and "SHIPPED\t1\t0\t4" in proc.stdout, proc.stderr
    assert (tmp_path / "builds" / NEW / "a.txt").read_bytes() == b"data"
    assert commands.inline_payload(os.urandom(100_000)) is None, "too big for a command line: it goes on stdin"


def test_a_delta_header_rebuilds_the_manifest_or_asks_for_it_whole(tmp_path):
    """A header with only what differs from the build linked from: the host rebuilds the full manifest and checks
    its digest; when what it has differs from what the client read, it writes nothing and says FULLMANIFEST."""
    from releasetui.manifest import Manifest
    app = tmp_path / "app"
    (app / "pkg").mkdir(parents=True)
    for i in range(300):
        (app / "pkg" / f"m{i}.py").write_text(f"x = {i}\n" * 40)
    (tmp_path / "builds").mkdir()

    def ship(stream: bytes, build: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-I", "-S", "-c", commands.SHIP_PY, f"builds/{build}", "0"],
                              cwd=tmp_path, input=stream, capture_output=True)

    first = Manifest.of(app)
    assert ship(b"".join(first.payload(first.to_send(None), None).chunks()), "A").returncode == 0
    (app / "pkg" / "m0.py").write_text("changed\n")
    (app / "pkg" / "m1.py").unlink()
    second = Manifest.of(app)
    stored = json.loads((tmp_path / "builds" / "A" / ".releasetui-manifest.json").read_text())["files"]
    stream = b"".join(second.payload(second.to_send(stored), "builds/A", base=stored).chunks())
    full = b"".join(second.payload(second.to_send(stored), "builds/A").chunks())
    assert len(stream) < len(full) // 5, "the delta does not grow with the app"
    proc = ship(stream, "B")
    assert proc.returncode == 0 and b"SHIPPED\t1\t298\t" in proc.stdout, proc.stderr
    written = json.loads((tmp_path / "builds" / "B" / ".releasetui-manifest.json").read_text())["files"]
    assert {path: entry[:5] for path, entry in written.items()} == second.files
    assert not (tmp_path / "builds" / "B" / "pkg" / "m1.py").exists()
    # The build linked from changed since the client read it: nothing is written, the client must send it whole.
    stored["pkg/m2.py"][3] += 1
    (tmp_path / "builds" / "A" / ".releasetui-manifest.json").write_text(json.dumps({"files": stored}))
    proc = ship(stream, "C")
    assert proc.returncode == 4 and proc.stdout == b"FULLMANIFEST\n" and not (tmp_path / "builds" / "C").exists()


def test_check_answered_by_the_previous_build_does_not_pass(tmp_path):
    """What a graceful reload looks like for a moment: the old build still answers."""
    root = make_root(tmp_path)
    answer = tmp_path / "answer"
    answer.write_text(f"ok build={OLD}\n")
    proc = activate(root, health=HealthCheck(command=f"cat {answer}", expect="ok build={build_id}", timeout=0.5,
                                             interval=0.1))
    report = commands.parse_activate(proc.stdout.decode())
    assert proc.returncode == 1 and report.healthy is False and report.back_on == OLD
    assert current(root) == OLD
    meta = json.loads((root / "builds" / NEW / META_FILE).read_text())
    assert meta["failed"] is True and meta["failure"] == "it's broken; \"really\""
    assert outcomes(root) == ["failed"]


def test_a_failed_host_records_its_own_words_and_a_duration_to_its_real_end(tmp_path):
    """The record is written once the host is back: its duration covers the health wait and the switch-back's
    restart (on top of the time the operation had run before the script started), to the millisecond."""
    root = make_root(tmp_path / "health")
    back_restart = f"test \"$(readlink current)\" = builds/{NEW} || sleep 0.5"  # slow only once switched back
    proc = activate(root, restart=back_restart, elapsed=2.25,
                    health=HealthCheck(command="exit 3", timeout=1, interval=0.2))
    assert proc.returncode == 1 and current(root) == OLD
    record = json.loads((root / "history.jsonl").read_text())
    assert record["outcome"] == "failed" and record["from"] == OLD and record["to"] == NEW
    assert record["reason"] == "unhealthy after 1s: exit 3", record
    # The check polls until its next try would pass its 1 s (every 0.2 s): at least 0.8 s of it.
    assert record["duration"] >= 2.25 + (1 - 0.2) + 0.5, record
    # The words of a failed restart, quotes and backslashes included, stay valid JSON.
    root = make_root(tmp_path / "restart")
    restart = (f"if [ \"$(readlink current)\" = builds/{NEW} ]; then echo 'not \"ready\" \\ yet'; exit 3; fi")
    proc = activate(root, restart=restart)
    record = json.loads((root / "history.jsonl").read_text())
    assert record["reason"] == 'restart failed (exit 3): not "ready" \\ yet', record


def test_an_interrupted_fleet_records_each_host_interrupted_by_whom(tmp_path):
    root = make_root(tmp_path)
    proc = activate(root, verdict=b"BACK interrupted by SIGTERM\n")
    assert proc.returncode == 0 and current(root) == OLD
    record = json.loads((root / "history.jsonl").read_text())
    assert (record["outcome"], record["interrupted_by"]) == ("interrupted", "SIGTERM"), record
    assert record["reason"] == "switched back: interrupted by SIGTERM"


def test_failed_restart_switches_back_without_polling(tmp_path):
    root = make_root(tmp_path)
    restart = f"test \"$(readlink current)\" != builds/{NEW}"  # fails on the new build, works on the old
    proc = activate(root, restart=restart, health=HealthCheck(command="true", timeout=30))
    assert proc.returncode == 1
    assert "restart failed (exit 1)" in proc.stdout.decode()
    assert current(root) == OLD


def test_a_restart_that_hangs_is_stopped_by_its_timeout_and_switched_back(tmp_path):
    root = make_root(tmp_path)
    marker = tmp_path / "hung"
    started = time.monotonic()
    proc = activate(root, restart=f"test \"$(readlink current)\" = builds/{OLD} || {{ touch {marker}; sleep 60; }}",
                    restart_timeout=1)
    assert time.monotonic() - started < 20
    report = commands.parse_activate(proc.stdout.decode())
    assert report.healthy is False and "restart timed out after 1s" in report.why
    assert marker.exists() and current(root) == OLD


def test_a_phase_that_finds_its_lock_replaced_changes_nothing(tmp_path):
    root = make_root(tmp_path, lock_token="fedcba9876543210")
    proc = activate(root)
    report = commands.parse_activate(proc.stdout.decode())
    assert proc.returncode == commands.LOST_LOCK_EXIT and report.lost_lock
    assert current(root) == OLD
    assert (root / "deploy.lock" / "token").read_text() == "fedcba9876543210", "another's lock is never removed"
    release = subprocess.run(["sh", "-c", commands.release_script(str(root), TOKEN, NEW)], capture_output=True,
                             text=True)
    assert commands.parse_finish(release.stdout).lost_lock
    assert (root / "deploy.lock").is_dir() and (root / "builds" / NEW).is_dir()


def test_prune_records_what_it_actually_removed(tmp_path):
    root = make_root(tmp_path, builds=("20260101090000", "20260101100000", OLD, NEW), current=NEW)
    (root / "pins").mkdir()
    (root / "pins" / "20260101090000").touch()
    script = commands.prune_script(str(root), TOKEN, ["20260101090000", "20260101100000", "20260101050000", NEW],
                                   [VENV], {"event": "prune", "op": TOKEN})
    proc = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    record = json.loads((root / "history.jsonl").read_text())
    # the pinned build, a build that is not there and the current build are not removed, nor a venv in use
    assert record["removed"] == ["20260101100000"]
    assert commands.parse_finish(proc.stdout).removed == ["20260101100000"]
    assert not (root / "deploy.lock").exists()


def test_history_appends_start_on_a_fresh_line(tmp_path):
    root = make_root(tmp_path)
    (root / "history.jsonl").write_text('{"event": "deploy", "outcome": "ok"}\n{"event": "depl')  # cut short
    assert activate(root).returncode == 0
    records, skipped = commands.parse_history((root / "history.jsonl").read_text())
    assert skipped == 1 and records[-1]["outcome"] == "ok" and records[-1]["to"] == NEW


def test_unlock_clears_any_lock_it_was_shown_and_only_that(tmp_path):
    root = make_root(tmp_path, lock_token="")
    lock = root / "deploy.lock"
    lock.write_text("not a directory")
    proc = subprocess.run(["sh", "-c", commands.unlock_script(str(root), "", "{}")], capture_output=True, text=True)
    assert commands.parse_finish(proc.stdout).unlocked and not lock.exists()

    lock.mkdir()
    (lock / "info.json").write_text('{"who": "' + "x" * 5_000_000 + '"}')
    proc = subprocess.run(["sh", "-c", commands.unlock_script(str(root), "", "{}")], capture_output=True, text=True)
    assert commands.parse_finish(proc.stdout).unlocked and not lock.exists()
    assert len(proc.stdout) < 10_000, "a 5 MB lock file is never read whole"

    lock.mkdir()
    (lock / "token").write_text("fedcba9876543210")
    proc = subprocess.run(["sh", "-c", commands.unlock_script(str(root), TOKEN, "{}")], capture_output=True, text=True)
    assert commands.parse_finish(proc.stdout).changed and lock.is_dir(), "a lock taken since it was shown stays"


def test_a_lock_whose_files_are_not_regular_files_never_hangs_a_script(tmp_path):
    """A FIFO or /dev/zero where the lock's token or info is would block every reader; unlock must still clear it,
    and an operation's own lock check must say the lock is no longer its own."""
    for kind in ("fifo", "zero"):
        root = make_root(tmp_path / kind, lock_token="")
        lock = root / "deploy.lock"
        lock.mkdir()
        for name in ("token", "info.json"):
            if kind == "fifo":
                os.mkfifo(lock / name)
            else:
                (lock / name).symlink_to("/dev/zero")
        proc = activate(root)  # its owner check reads the token first
        assert proc.returncode == commands.LOST_LOCK_EXIT and current(root) == OLD
        proc = subprocess.run(["sh", "-c", commands.unlock_script(str(root), "", "{}")], capture_output=True,
                              text=True, timeout=20)
        assert commands.parse_finish(proc.stdout).unlocked and not lock.exists(), proc.stdout + proc.stderr


def test_history_is_appended_only_to_a_regular_file(tmp_path):
    """A FIFO named history.jsonl would hang the phase that records; a symlink could lead out of the root."""
    outside = tmp_path / "outside.txt"
    outside.write_text("untouched\n")
    for kind in ("fifo", "symlink"):
        root = make_root(tmp_path / kind)
        if kind == "fifo":
            os.mkfifo(root / "history.jsonl")
        else:
            (root / "history.jsonl").symlink_to(outside)
        proc = activate(root)
        assert proc.returncode == 0 and current(root) == NEW, proc.stdout
        assert b"@@step\thistory\toutput\t\thistory.jsonl is not a regular file" in proc.stdout
    assert outside.read_text() == "untouched\n"


def test_only_a_token_file_holding_exactly_the_token_is_ours(tmp_path):
    for text, ours in ((TOKEN, True), (TOKEN + "\n", True), (TOKEN + "\njunk", False), (TOKEN + "x", False)):
        root = make_root(tmp_path / str(len(text)) / str(ours))
        (root / "deploy.lock" / "token").write_text(text)
        proc = activate(root)
        assert (proc.returncode == 0) is ours, (text, proc.stdout)
        assert current(root) == (NEW if ours else OLD)


def test_the_interpreter_is_asked_in_the_project_root(tmp_path):
    """As the prepare script runs it: a relative path, or a version manager's shim, answers for the root."""
    root = make_root(tmp_path, lock_token="")
    shim = root / "pyshim"
    shim.write_text("#!/bin/sh\necho 'Python 3.99.1'\n")
    shim.chmod(0o755)
    state = commands.parse_read("h", subprocess.run(["sh", "-c", commands.read_script(str(root), python="./pyshim")],
                                                    capture_output=True, text=True, cwd=tmp_path).stdout)
    assert state.python_version == "3.99.1"


def test_hostile_locks_are_read_bounded_and_marked_damaged(tmp_path):
    root = make_root(tmp_path, lock_token="")
    lock = root / "deploy.lock"
    lock.mkdir()
    (lock / "info.json").write_text(json.dumps({"who": 5, "operation": ["x"], "since": "\x1b[2Jnow"}))
    state = commands.parse_read("h", subprocess.run(["sh", "-c", commands.read_script(str(root))], capture_output=True,
                                                    text=True).stdout)
    assert state.lock is not None and state.lock.damaged
    assert "\x1b" not in state.lock.describe()
    (lock / "info.json").write_text("{" + " " * 5_000_000 + "}")
    out = subprocess.run(["sh", "-c", commands.read_script(str(root))], capture_output=True, text=True).stdout
    assert len(out) < 20_000
    state = commands.parse_read("h", out)
    assert "bytes (not read)" in state.lock.damaged and len(state.lock.describe()) <= 300


def test_the_read_takes_the_lock_before_it_lists(tmp_path):
    root = make_root(tmp_path, lock_token="")
    script = commands.read_script(str(root), lock=LockRequest(TOKEN, '{"who": "me"}'))
    state = commands.parse_read("h", subprocess.run(["sh", "-c", script], capture_output=True, text=True).stdout, TOKEN)
    assert state.locked_by_us and state.lock.token == TOKEN
    again = commands.read_script(str(root), lock=LockRequest("fedcba9876543210", '{"who": "other"}'))
    other = commands.parse_read("h", subprocess.run(["sh", "-c", again], capture_output=True, text=True).stdout,
                                "fedcba9876543210")
    assert not other.locked_by_us and other.lock.token == TOKEN


def _stream(header: dict, members: dict) -> bytes:
    raw = io.BytesIO()
    raw.write(json.dumps(header).encode() + b"\n")
    with tarfile.open(fileobj=raw, mode="w|") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue())


def test_the_ship_helper_refuses_paths_outside_the_build(tmp_path):
    dest = tmp_path / "builds" / NEW
    (tmp_path / "builds").mkdir()
    for name in ("../evil", "/etc/evil", "a/../../evil"):
        header = {"files": {name: ["f", 0o644, "0" * 64, 4, None]}, "sent": [name], "link_from": None}
        proc = subprocess.run([sys.executable, "-c", commands.SHIP_PY, str(dest), "0"], cwd=tmp_path,
                              input=_stream(header, {name: b"evil"}), capture_output=True)
        assert proc.returncode != 0 and b"refusing" in proc.stderr, proc.stderr
        assert not (tmp_path / "evil").exists() and not (tmp_path / "builds" / "evil").exists()
        if dest.exists():
            os.rmdir(dest)
    header = {"files": {"a.txt": ["f", 0o644, "0" * 64, 4, None]}, "sent": ["a.txt"], "link_from": None}
    proc = subprocess.run([sys.executable, "-c", commands.SHIP_PY, str(dest), "0"], cwd=tmp_path,
                          input=_stream(header, {"b.txt": b"evil"}), capture_output=True)
    assert proc.returncode != 0 and b"not in the manifest" in proc.stderr


def test_a_huge_token_file_is_read_only_at_its_start(tmp_path):
    """The lock check runs before every change; `read` went through a 5 MB token file byte by byte (seconds)."""
    check = owner_check(TOKEN)
    assert "head -c 18 deploy.lock/token" in check and "read -r _o" not in check
    for name, text in (("junk-after", TOKEN + "x" * 5_000_000), ("second-line", TOKEN + "\n" + "y" * 5_000_000)):
        root = make_root(tmp_path / name)
        (root / "deploy.lock" / "token").write_text(text)
        proc = activate(root)
        assert proc.returncode == commands.LOST_LOCK_EXIT and current(root) == OLD, proc.stdout
        assert len(proc.stdout) < 10_000
        proc = subprocess.run(["sh", "-c", commands.unlock_script(str(root), TOKEN, "{}")], capture_output=True,
                              text=True, timeout=60)
        assert commands.parse_finish(proc.stdout).unlocked and not (root / "deploy.lock").exists(), proc.stdout
    root = make_root(tmp_path / "ours")
    (root / "deploy.lock" / "token").write_text(TOKEN + "\n")
    assert activate(root).returncode == 0 and current(root) == NEW


def test_no_script_writes_or_removes_through_a_linked_layout_directory(tmp_path):
    """The read phase refuses a `builds` (venvs, wheels, pins) that is a symlink; should one appear after it, the
    scripts that remove or write under it still never follow it, and release their lock."""
    def linked_root(name: str) -> tuple[Path, Path]:
        root = make_root(tmp_path / name, builds=("20260101100000", OLD, NEW))
        outside = tmp_path / name / "outside"
        (root / "builds").rename(outside)
        (root / "builds").symlink_to(outside)
        return root, outside

    root, outside = linked_root("prune")
    proc = subprocess.run(["sh", "-c", commands.prune_script(str(root), TOKEN, ["20260101100000"], [], {})],
                          capture_output=True, text=True)
    assert proc.returncode == commands.REFUSED_EXIT and "builds is a symlink" in proc.stdout, proc.stdout
    assert (outside / "20260101100000").is_dir() and not (root / "deploy.lock").exists()

    root, outside = linked_root("release")
    written = (outside / NEW / META_FILE).read_text()
    for meta in (None, '{"failed": true}'):
        (root / "deploy.lock").mkdir(exist_ok=True)
        (root / "deploy.lock" / "token").write_text(TOKEN)
        proc = subprocess.run(["sh", "-c", commands.release_script(str(root), TOKEN, NEW, meta=meta)],
                              capture_output=True, text=True)
        assert commands.parse_finish(proc.stdout).released and not (root / "deploy.lock").exists()
        assert (outside / NEW / META_FILE).read_text() == written, "neither removed nor rewritten"

    root, outside = linked_root("activate")
    proc = activate(root)
    assert proc.returncode == commands.REFUSED_EXIT and b"builds is a symlink" in proc.stdout
    assert current(root) == OLD and not (root / "deploy.lock").exists()

    root, outside = linked_root("pin")
    proc = subprocess.run(["sh", "-c", commands.pin_script(str(root), TOKEN, OLD, True, "{}")],
                          capture_output=True, text=True)
    assert proc.returncode == commands.REFUSED_EXIT and not (root / "pins" / OLD).exists()
    assert not (root / "deploy.lock").exists()
