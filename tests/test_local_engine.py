"""The engine through the ``local`` transport: the same scripts, no SSH; fast checks of the rules end to end."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from releasetui import commands
from releasetui.config import load_config
from releasetui.executors import ExecutorPool
from releasetui.models import Event
from releasetui.operations import Operations

from .support.helpers import make_project, summary


def deploy(project, build_id: str, version: str, requirement: str = "tinylib==1.0") -> None:
    project.write_app(version, requirement)
    config = load_config(project.config)
    ops = Operations(config)
    result = ops.deploy(config.hosts, build_id=build_id)
    assert result.ok, {h: o.message for h, o in result.outcomes.items()}


def test_default_rollback_picks_by_id_not_mtime(local_project):
    p = local_project
    ids = ["20260101000001", "20260101000002", "20260101000003"]
    for n, build_id in enumerate(ids):
        deploy(p, build_id, f"v{n}")
    # Make the OLDEST build look newest on disk: the seed's `ls -t` logic would now pick it.
    old = p.roots["box"] / "builds" / ids[0]
    future = time.time() + 3600
    os.utime(old, (future, future))
    proc = p.cli("--headless", "rollback")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert p.current("box") == ids[1]


def test_same_second_gets_a_suffix_and_the_same_id_everywhere(local_pair):
    p = local_pair
    config = load_config(p.config)
    first = Operations(config).deploy(config.hosts, build_id="20260101000000")
    p.write_app("v2")
    second = Operations(config).deploy(config.hosts, build_id="20260101000000")
    assert first.build_id == "20260101000000" and second.build_id == "20260101000000-01"
    assert p.current("a") == p.current("b") == "20260101000000-01"


def test_unchanged_files_are_hard_links_and_excludes_are_honoured(local_project):
    p = local_project
    deploy(p, "20260101000001", "v1")
    deploy(p, "20260101000002", "v2")
    builds = p.roots["box"] / "builds"
    big1, big2 = builds / "20260101000001" / "static" / "big.txt", builds / "20260101000002" / "static" / "big.txt"
    assert os.stat(big1).st_ino == os.stat(big2).st_ino, "an unchanged file is linked, not copied"
    assert (builds / "20260101000002" / "app.py").read_text() == "VERSION = 'v2'\n"
    assert not (builds / "20260101000002" / "notes.tmp").exists(), "excludes_file is honoured"
    manifest = json.loads((builds / "20260101000002" / ".releasetui-manifest.json").read_text())["files"]
    assert set(manifest) == {"app.py", "requirements.txt", "static", "static/big.txt"}


def test_a_file_edited_in_place_in_the_old_build_is_sent_not_linked(local_project):
    """Builds are never edited, but if one was, the deploy must not link the edited bytes into the next build."""
    p = local_project
    deploy(p, "20260101000001", "v1")
    tampered = p.roots["box"] / "builds" / "20260101000001" / "static" / "big.txt"
    tampered.write_text("y" * 100_000)  # same size; stored manifest says the old hash
    deploy(p, "20260101000002", "v2")
    new = p.roots["box"] / "builds" / "20260101000002" / "static" / "big.txt"
    assert new.read_text() == "x" * 100_000
    assert os.stat(new).st_ino != os.stat(tampered).st_ino


def test_symlinks_modes_and_empty_dirs_ship_as_they_are(local_project):
    p = local_project
    (p.source / "bin").mkdir()
    script = p.source / "bin" / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    (p.source / "static" / "latest.txt").symlink_to("big.txt")
    (p.source / "empty").mkdir()
    deploy(p, "20260101000001", "v1")
    build = p.roots["box"] / "builds" / "20260101000001"
    assert os.stat(build / "bin" / "run.sh").st_mode & 0o777 == 0o755
    assert os.readlink(build / "static" / "latest.txt") == "big.txt"
    assert (build / "empty").is_dir()


def test_dry_run_changes_nothing_and_prints_commands(local_project):
    p = local_project
    deploy(p, "20260101000001", "v1")
    before = sorted(os.listdir(p.roots["box"] / "builds"))
    history = (p.roots["box"] / "history.jsonl").read_text()
    p.write_app("v2", "tinylib==2.0")
    proc = p.cli("--headless", "deploy", "--dry-run")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "would run ship" in proc.stdout and "send 2 of 3 files, link the rest" in proc.stdout
    assert "would run activate" in proc.stdout and "mv -Tf current.releasetui-new current" in proc.stdout
    assert sorted(os.listdir(p.roots["box"] / "builds")) == before
    assert (p.roots["box"] / "history.jsonl").read_text() == history
    assert p.current("box") == "20260101000001"
    assert not (p.roots["box"] / "deploy.lock").exists()

    deploy(p, "20260101000002", "v2")
    roll = p.cli("--headless", "rollback", "--dry-run", "--json")
    assert roll.returncode == 0, roll.stderr
    result = summary(roll)
    assert result["dry_run"] and "would switch 20260101000002 -> 20260101000001" in result["hosts"][0]["message"]
    assert p.current("box") == "20260101000002"


def test_prune_keeps_good_builds_current_and_the_rollback_target(local_project):
    p = local_project
    ids = [f"2026010100000{i}" for i in range(1, 6)]
    for n, build_id in enumerate(ids):
        deploy(p, build_id, f"v{n}", "tinylib==1.0" if n == 0 else "tinylib==2.0")
    # keep_builds is 3 in the sample config: each deploy pruned at its commit.
    assert p.builds("box") == ids[2:]
    assert len(os.listdir(p.roots["box"] / "venvs")) == 1, "the tinylib 1.0 venv is used by no build any more"
    assert p.cli("--headless", "rollback", ids[2]).returncode == 0
    dry = p.cli("--headless", "prune", "--keep", "2", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    # ids[2] is current, ids[3] among the 2 newest good; ids[4], rolled back away from, goes first.
    assert f"would remove: {ids[4]}\n" in dry.stdout, dry.stdout
    refused = p.cli("--headless", "prune", "--keep", "1")
    assert refused.returncode == 2 and "at least 2" in refused.stderr
    assert p.builds("box") == ids[2:]


def test_events_report_each_step_with_duration(local_project):
    seen: list[Event] = []
    config = load_config(local_project.config)
    result = Operations(config, report=seen.append).deploy(config.hosts, build_id="20260101000001")
    assert result.ok
    finished = [(e.step, e.status) for e in seen if e.host == "box" and e.status not in ("started", "info")]
    assert finished == [("lock", "ok"), ("ship", "ok"), ("venv", "ok"), ("build", "ok"), ("switch", "ok"),
                        ("restart", "ok")]
    assert all(e.duration is not None for e in seen if e.status == "ok")


def test_hostile_root_path_is_quoted_end_to_end(tmp_path, wheelhouse):
    odd = tmp_path / "it's a $(touch pwned) `dir`"
    p = make_project(tmp_path, wheelhouse, {"box": {"transport": "local"}})
    text = p.config.read_text().replace(f"root: {p.roots['box']}", f"root: \"{odd}\"")
    p.config.write_text(text)
    p.roots["box"] = odd
    proc = p.cli("--headless", "deploy")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (odd / "current" / "app.py").exists()
    assert not list(Path.cwd().glob("pwned")) and not list(tmp_path.rglob("pwned"))


def test_failed_restart_switches_back_and_exits_1(local_project):
    p = local_project
    deploy(p, "20260101000001", "v1")
    p.set("restart", "test ! -e current/BROKEN")
    (p.source / "BROKEN").write_text("")
    proc = p.cli("--headless", "deploy", "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert p.current("box") == "20260101000001"
    new = summary(proc)["build_id"]
    meta = json.loads((p.roots["box"] / "builds" / new / ".releasetui-build.json").read_text())
    assert meta["failed"] is True and meta["complete"] is True
    assert "switched back to 20260101000001" in summary(proc)["hosts"][0]["message"]
    assert not (p.roots["box"] / "deploy.lock").exists()


def test_first_deploy_failing_its_restart_stays_current_marked_failed(local_project):
    p = local_project
    p.set("restart", "'exit 3'")
    proc = p.cli("--headless", "deploy", "--json")
    assert proc.returncode == 1
    new = summary(proc)["build_id"]
    assert p.current("box") == new
    assert "no earlier build to switch back to" in summary(proc)["hosts"][0]["message"]


def test_deploy_without_requirements_file_is_a_usage_error(local_project):
    (local_project.source / "requirements.txt").unlink()
    proc = local_project.cli("--headless", "deploy")
    assert proc.returncode == 2
    assert "requirements.txt" in proc.stderr and "Traceback" not in proc.stderr


def test_same_size_edit_in_the_same_second_is_shipped(local_project):
    """A size+mtime quick check would link the old file; the build must carry the new one."""
    p = local_project
    app = p.source / "app.py"
    config = load_config(p.config)
    app.write_text("VERSION = 'v1'\n")
    os.utime(app, (1_700_000_000, 1_700_000_000))
    assert Operations(config).deploy(config.hosts, build_id="20260101000001").ok
    app.write_text("VERSION = 'v2'\n")  # same size
    os.utime(app, (1_700_000_000, 1_700_000_000))  # same mtime
    assert Operations(config).deploy(config.hosts, build_id="20260101000002").ok
    assert (p.roots["box"] / "current" / "app.py").read_text() == "VERSION = 'v2'\n"
    assert (p.roots["box"] / "builds" / "20260101000001" / "app.py").read_text() == "VERSION = 'v1'\n"


def test_default_rollback_orders_suffixed_ids_after_their_base(local_project):
    """Two builds in one second (ID, ID-01): the one before current is ID-01, never ID."""
    p = local_project
    for build_id, version in (("20260101000001", "v1"), ("20260101000001-01", "v2"), ("20260101000002", "v3")):
        deploy(p, build_id, version)
    dry = p.cli("--headless", "rollback", "--dry-run")
    assert "would switch 20260101000002 -> 20260101000001-01" in dry.stdout, dry.stdout
    assert p.cli("--headless", "rollback").returncode == 0
    assert p.current("box") == "20260101000001-01"
    assert p.cli("--headless", "rollback").returncode == 0
    assert p.current("box") == "20260101000001"
    refused = p.cli("--headless", "rollback", "20200101000000")
    # Each rollback marked the build it left: still choosable by name, and said.
    assert ("choose: 20260101000001, 20260101000001-01 (rolled-away), 20260101000002 (rolled-away)"
            in refused.stdout), refused.stdout


def test_refused_operations_still_say_what_is_live(local_project):
    p = local_project
    deploy(p, "20260101000001", "v1")
    lock = p.roots["box"] / "deploy.lock"
    lock.mkdir()
    (lock / "token").write_text("0123456789abcdef")
    (lock / "info.json").write_text(json.dumps({"who": "carol", "where": "ci", "since": "2026-01-01T00:00:00Z",
                                                "operation": "deploy"}))
    for args in (("deploy",), ("rollback",)):
        proc = p.cli("--headless", *args)
        assert proc.returncode == 4, proc.stdout + proc.stderr
        assert proc.stdout.splitlines()[-1] == "live now: 20260101000001 on box", proc.stdout
        assert "carol" in proc.stdout


def test_cleanup_signals_the_recorded_worker_only_while_it_is_still_that_operation(tmp_path):
    """worker.pid names a process group; a recycled group id (some other program) must never be signalled."""
    root = tmp_path / "root"
    (root / "deploy.lock").mkdir(parents=True)
    token = "0123456789abcdef"
    (root / "deploy.lock" / "token").write_text(token)
    marker = commands.op_marker(token)
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    worker = subprocess.Popen(["sh", "-c", f": {marker}; sleep 60"], start_new_session=True)
    try:
        (root / "deploy.lock" / "worker.pid").write_text(f"{stranger.pid} {marker}\n")
        subprocess.run(["sh", "-c", commands.release_script(str(root), token)], check=True, capture_output=True)
        assert stranger.poll() is None, "a process without the operation's marker was signalled"
        (root / "deploy.lock").mkdir()
        (root / "deploy.lock" / "token").write_text(token)
        (root / "deploy.lock" / "worker.pid").write_text(f"{worker.pid} {marker}\n")
        subprocess.run(["sh", "-c", commands.release_script(str(root), token)], check=True, capture_output=True)
        assert worker.wait(timeout=10) != 0, "the operation's group was not stopped"
        assert not (root / "deploy.lock").exists()
    finally:
        for proc in (stranger, worker):
            proc.kill()
            proc.wait()


def test_round_trips_are_counted_per_operation_on_a_shared_pool(local_project):
    """The TUI keeps one pool for its lifetime; each operation still reports its own round trips."""
    p = local_project
    config = load_config(p.config)
    pool = ExecutorPool()
    first = Operations(config, pool=pool).deploy(config.hosts, build_id="20260101000001")
    p.write_app("v2")
    second = Operations(config, pool=pool).deploy(config.hosts, build_id="20260101000002")
    back = Operations(config, pool=pool).rollback(config.hosts)
    builds = Operations(config, pool=pool)
    builds.states(config.hosts)
    # deploy: read+lock, prepare, activate; rollback: read+lock, activate; builds: one read.
    assert [r.outcomes["box"].round_trips for r in (first, second, back)] == [3, 3, 2]
    assert builds.round_trips(config.hosts[0]) == 1


def test_only_a_one_host_activation_may_commit_without_a_verdict():
    """A script that commits by itself must never be one of several: the fleet would not decide together."""
    import pytest
    from types import SimpleNamespace

    from releasetui.operations.activation import Activation, HostActivation

    def item(name: str, decided: bool) -> HostActivation:
        return HostActivation(SimpleNamespace(name=name), "20260101000002", "20260101000001", "", lambda: "", 60.0,
                              decided=decided)

    Activation(SimpleNamespace(), [item("a", True)], [["a"]])  # alone: allowed
    with pytest.raises(ValueError):
        Activation(SimpleNamespace(), [item("a", True), item("b", False)], [["a", "b"]])
