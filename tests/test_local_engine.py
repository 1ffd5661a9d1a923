"""The engine through the ``local`` transport: same scripts, no SSH; fast checks of the rules."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


from releasetui.config import load_config
from releasetui.models import Event, HostState, BuildInfo
from releasetui.operations import Operations, plan_prune, unique_build_id

from .conftest import make_project


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
    assert proc.returncode == 0, proc.stderr
    assert p.current("box") == ids[1]


def test_same_second_gets_a_suffix_and_the_same_id_everywhere(tmp_path, wheelhouse):
    p = make_project(tmp_path, wheelhouse, {"a": {"transport": "local"}, "b": {"transport": "local"}})
    config = load_config(p.config)
    first = Operations(config).deploy(config.hosts, build_id="20260101000000")
    p.write_app("v2")
    second = Operations(config).deploy(config.hosts, build_id="20260101000000")
    assert first.build_id == "20260101000000" and second.build_id == "20260101000000-01"
    assert p.current("a") == p.current("b") == "20260101000000-01"
    assert unique_build_id("20260101000000", ["20260101000000", "20260101000000-01"]) == "20260101000000-02"


def test_dry_run_changes_nothing_and_prints_commands(local_project):
    p = local_project
    deploy(p, "20260101000001", "v1")
    before = sorted(os.listdir(p.roots["box"] / "builds"))
    history = (p.roots["box"] / "history.jsonl").read_text()
    p.write_app("v2", "tinylib==2.0")
    proc = p.cli("--headless", "deploy", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "would run rsync" in proc.stdout and "rsync -rlp --checksum" in proc.stdout
    assert "would run script" in proc.stdout and "mv -Tf current.releasetui-new current" in proc.stdout
    assert sorted(os.listdir(p.roots["box"] / "builds")) == before
    assert (p.roots["box"] / "history.jsonl").read_text() == history
    assert p.current("box") == "20260101000001"
    assert not (p.roots["box"] / "deploy.lock").exists()

    deploy(p, "20260101000002", "v2")
    roll = p.cli("--headless", "rollback", "--dry-run", "--json")
    assert roll.returncode == 0, roll.stderr
    summary = json.loads(roll.stdout.splitlines()[-1])
    assert summary["dry_run"] and "would switch 20260101000002 -> 20260101000001" in summary["hosts"][0]["message"]
    assert p.current("box") == "20260101000002"


def test_prune_keeps_n_current_and_previous_and_drops_unused_venvs(local_project):
    p = local_project
    ids = [f"2026010100000{i}" for i in range(1, 6)]
    for n, build_id in enumerate(ids):
        deploy(p, build_id, f"v{n}", "tinylib==1.0" if n == 0 else "tinylib==2.0")
    # keep_builds is 3 in the sample config: the deploy itself pruned down to 3.
    assert sorted(os.listdir(p.roots["box"] / "builds")) == ids[2:]
    assert len(os.listdir(p.roots["box"] / "venvs")) == 1, "the tinylib 1.0 venv is used by no build any more"
    assert p.cli("--headless", "rollback", ids[2]).returncode == 0
    dry = p.cli("--headless", "prune", "--keep", "1", "--dry-run")
    assert dry.returncode == 0
    assert f"would remove: {ids[3]}" in dry.stdout
    assert sorted(os.listdir(p.roots["box"] / "builds")) == ids[2:]
    proc = p.cli("--headless", "prune", "--keep", "1")
    assert proc.returncode == 0, proc.stderr
    # current (ids[2]) stays even though it is not among the newest; ids[4] is the newest; ids[3] goes.
    assert sorted(os.listdir(p.roots["box"] / "builds")) == [ids[2], ids[4]]
    assert json.loads((p.roots["box"] / "history.jsonl").read_text().splitlines()[-1])["event"] == "prune"


def test_plan_prune_rules():
    state = HostState(name="h", current="20260101000003", venvs=["aaaaaaaaaaaaaaaa-py3.11", "bbbbbbbbbbbbbbbb-py3.11"])
    state.builds = [
        BuildInfo("20260101000001", complete=True, venv="aaaaaaaaaaaaaaaa-py3.11"),
        BuildInfo("20260101000002", complete=True, venv="bbbbbbbbbbbbbbbb-py3.11"),
        BuildInfo("20260101000003", complete=True, venv="bbbbbbbbbbbbbbbb-py3.11", current=True),
        BuildInfo("20260101000004", complete=False),
    ]
    builds, venvs = plan_prune(state, keep=1)
    assert builds == ["20260101000001", "20260101000004"]
    assert venvs == ["aaaaaaaaaaaaaaaa-py3.11"]
    # A failed build is never the default rollback target, so the one before it is protected instead.
    state.builds[1].failed = True
    assert state.previous_build() == "20260101000001"
    assert plan_prune(state, keep=1)[0] == ["20260101000002", "20260101000004"]


def test_events_report_each_step_with_duration(local_project):
    seen: list[Event] = []
    config = load_config(local_project.config)
    result = Operations(config, report=seen.append).deploy(config.hosts, build_id="20260101000001")
    assert result.ok
    finished = [(e.step, e.status) for e in seen if e.host == "box" and e.status not in ("started", "info")]
    assert finished == [("lock", "ok"), ("rsync", "ok"), ("venv", "ok"), ("install", "ok"), ("switch", "ok"),
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


def test_failed_restart_reports_failure_exit_1(local_project):
    p = local_project
    text = "\n".join("restart: echo broken >&2; exit 3" if line.startswith("restart:") else line
                     for line in p.config.read_text().splitlines())
    p.config.write_text(text + "\n")
    proc = p.cli("--headless", "deploy")
    assert proc.returncode == 1
    assert "restart" in proc.stdout and "failed" in proc.stdout
    assert not (p.roots["box"] / "deploy.lock").exists()


def test_deploy_without_requirements_file_is_a_usage_error(local_project):
    (local_project.source / "requirements.txt").unlink()
    proc = local_project.cli("--headless", "deploy")
    assert proc.returncode == 2
    assert "requirements.txt" in proc.stderr and "Traceback" not in proc.stderr


def test_same_size_edit_in_the_same_second_is_shipped(local_project):
    """rsync's size+mtime quick check would hard-link the old file; the build must carry the new one."""
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
    """Two builds in one second (ID, ID-01): the one before current is ID-01, never ID, in every code path."""
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
    assert "choose: 20260101000001, 20260101000001-01, 20260101000002" in refused.stderr


def test_refused_operations_still_say_what_is_live(local_project):
    p = local_project
    deploy(p, "20260101000001", "v1")
    (p.roots["box"] / "deploy.lock").mkdir()
    for args in (("deploy",), ("rollback",)):
        proc = p.cli("--headless", *args)
        assert proc.returncode == 4
        assert proc.stdout.splitlines()[-1] == "live now: box=20260101000001", proc.stdout


def test_restart_failure_switches_back_without_a_health_check(local_project):
    p = local_project
    deploy(p, "20260101000001", "v1")
    text = "\n".join("restart: test ! -e builds/20260101000002" if line.startswith("restart:") else line
                     for line in p.config.read_text().splitlines())
    p.config.write_text(text + "\n")
    p.write_app("v2")
    config = load_config(p.config)
    result = Operations(config).deploy(config.hosts, build_id="20260101000002")
    assert result.exit_code == 1
    assert p.current("box") == "20260101000001"
    meta = json.loads((p.roots["box"] / "builds" / "20260101000002" / ".releasetui-build.json").read_text())
    assert meta["failed"] is True
    assert "switched back to 20260101000001" in result.outcomes["box"].message


def test_cleanup_signals_the_recorded_worker_only_while_it_is_still_that_install(tmp_path):
    """worker.pid names a process group; a recycled group id (some other program) must never be signalled."""
    import subprocess

    from releasetui import commands

    root = tmp_path / "root"
    (root / "deploy.lock").mkdir(parents=True)
    token = commands.worker_token("20260101000001")
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    worker = subprocess.Popen(["sh", "-c", f": {token}; sleep 60"], start_new_session=True)
    try:
        (root / "deploy.lock" / "worker.pid").write_text(f"{stranger.pid} {token}\n")
        subprocess.run(["sh", "-c", commands.unlock_script(str(root), "{}")], check=True, capture_output=True)
        assert stranger.poll() is None, "a process without the install's token was signalled"
        (root / "deploy.lock").mkdir()
        (root / "deploy.lock" / "worker.pid").write_text(f"{worker.pid} {token}\n")
        subprocess.run(["sh", "-c", commands.release_lock_script(str(root))], check=True, capture_output=True)
        assert worker.wait(timeout=10) != 0, "the install's group was not stopped"
        assert not (root / "deploy.lock").exists()
    finally:
        for proc in (stranger, worker):
            proc.kill()
            proc.wait()


def test_round_trips_are_counted_per_operation_on_a_shared_pool(local_project):
    """The TUI keeps one pool for its lifetime; each operation still reports its own round trips."""
    from releasetui.executors import ExecutorPool

    p = local_project
    config = load_config(p.config)
    pool = ExecutorPool()
    first = Operations(config, pool=pool).deploy(config.hosts, build_id="20260101000001")
    p.write_app("v2")
    second = Operations(config, pool=pool).deploy(config.hosts, build_id="20260101000002")
    back = Operations(config, pool=pool).rollback(config.hosts)
    assert [r.outcomes["box"].round_trips for r in (first, second, back)] == [3, 3, 1]
