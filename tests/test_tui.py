"""Pilot tests of the TUI: every key against a real ``local`` host, and rollback/prune over real SSH.

Waiting is done by polling app state with ``pilot.pause()`` (never a sleep
standing in for an assertion); each wait has a generous deadline.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from releasetui.config import load_config
from releasetui.operations import Operations
from releasetui.tui.app import ReleaseApp
from releasetui.tui.dialogs import ConfirmScreen, HelpScreen, QuitNowScreen, QuitWhileBusyScreen
from releasetui.tui.main import MainScreen
from releasetui.tui.screens import LogScreen, NoConfigScreen
from textual.widgets import DataTable

from tests.support.helpers import TEST_CLOCK

SIZE = (130, 40)


# --- helpers ------------------------------------------------------------------------

def deploy(project, versions) -> list[str]:
    """Deploy each (version, requirement) through the core; return the build ids, oldest first."""
    config = load_config(project.config)
    ids = []
    for version, requirement in versions:
        project.write_app(version, requirement)
        TEST_CLOCK.tick()
        ops = Operations(config)
        result = ops.deploy(config.hosts)
        ops.close()
        assert result.ok, result.to_dict()
        ids.append(result.build_id)
    return ids


async def until(pilot, condition, timeout: float = 90, what: str = "condition") -> None:
    """Let the app run until ``condition()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


async def idle(pilot, timeout: float = 120) -> MainScreen:
    """Wait until no operation runs and the hosts have been (re)read; return the main screen."""
    main = pilot.app.main
    await until(pilot, lambda: main.busy is None and not any(
        w.is_running for w in pilot.app.workers if w.group in ("operation", "refresh")) and pilot.app.states,
        timeout, "the app to be idle")
    await pilot.pause()
    return main


def builds_table(app) -> DataTable:
    return app.main.query_one("#builds", DataTable)


async def cursor_to(pilot, build_id: str) -> None:
    """Move the builds cursor onto ``build_id`` with the arrow keys, as a user would."""
    table = builds_table(pilot.app)
    table.focus()
    await pilot.press("home")
    target = table.get_row_index(build_id)
    for _ in range(target):
        await pilot.press("down")
    assert pilot.app.main.selected_build() == build_id


def make_incomplete(root: Path, build_id: str) -> None:
    """A build directory a killed deploy left behind (metadata says incomplete)."""
    build = root / "builds" / build_id
    build.mkdir(parents=True)
    (build / ".releasetui-build.json").write_text(json.dumps({"id": build_id, "complete": False}))


DEPLOYED_VERSIONS = [("v1", "tinylib==1.0"), ("v2", "tinylib==1.0"), ("v3", "tinylib==2.0")]


@pytest.fixture(scope="session")
def deployed_template(tmp_path_factory, wheelhouse):
    """Three real deploys to a local host, made ONCE per session (two venvs, ~4 s) for the tests to copy."""
    from tests.support.helpers import make_project
    project = make_project(tmp_path_factory.mktemp("deployed-template"), wheelhouse, {"box": {"transport": "local"}})
    return project, deploy(project, DEPLOYED_VERSIONS)


@pytest.fixture
def deployed(local_project, deployed_template):
    """The local project with three builds; the third changes the requirements.

    A copy of the session's template root (builds, venvs, current, history) and its last source: what three
    deploys would have made here, without paying for two venvs in every test. A copied venv works where it
    lands (the interpreter finds its pyvenv.cfg beside it); the next deploy re-checks the copied files' hashes
    before it links them (their inodes are not the ones recorded).
    """
    template, ids = deployed_template
    shutil.copytree(template.roots["box"], local_project.roots["box"], symlinks=True)
    local_project.write_app(*DEPLOYED_VERSIONS[-1])
    return local_project, ids


def app_for(project, **kwargs) -> ReleaseApp:
    """The app on the project; no periodic re-read unless a test asks for one (it would race the assertions)."""
    config = load_config(project.config)
    kwargs.setdefault("refresh_interval", None)
    return ReleaseApp(config, **kwargs)


def stuck_python(project) -> tuple[Path, Path]:
    """Point ``python:`` at a wrapper that hangs in ``-m venv`` until a gate file exists; return (marker, gate).

    The next deploy (with new requirements, so a venv must be made) stops in its install step, on every host.
    """
    from tests.support.helpers import HOST_PYTHON
    marker, gate = project.dir / "installing", project.dir / "gate"
    wrapper = project.dir / "slow-python"
    wrapper.write_text(f"#!/bin/sh\ncase \"$*\" in *venv*) touch {marker}; until [ -e {gate} ]; do sleep 0.05; done;; esac\n"
                       f"exec {HOST_PYTHON} \"$@\"\n")
    wrapper.chmod(0o755)
    project.config.write_text(project.config.read_text().replace(f"python: {HOST_PYTHON}", f"python: {wrapper}"))
    project.write_app("v-stuck", "tinylib==2.0\n# new requirements: a new venv")
    return marker, gate


# --- the main screen ----------------------------------------------------------------

async def test_main_screen_lists_hosts_and_builds(deployed):
    project, ids = deployed
    app = app_for(project)
    async with app.run_test(size=SIZE) as pilot:
        main = await idle(pilot)
        table = builds_table(app)
        assert [row.value for row in table.rows] == list(reversed(ids))  # newest first
        assert main.selected_build() == ids[-1]  # the cursor starts on current
        # the requirements change of the third build is marked, the second's is not
        assert str(table.get_cell(ids[2], "reqs")).endswith("*")
        assert not str(table.get_cell(ids[1], "reqs")).strip().endswith("*")
        assert str(table.get_cell(ids[2], "status")) == "current"
        hosts = app.main.query_one("#hosts", DataTable)
        assert str(hosts.get_cell("box", "current")) == ids[-1]
        assert str(hosts.get_cell("box", "state")) == "ok"


async def test_rollback_key_switches_to_the_selected_older_build(deployed):
    project, ids = deployed
    app = app_for(project)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await cursor_to(pilot, ids[0])
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 10, "the confirmation")
        body = str(app.screen.body)
        assert f"{ids[2]} → {ids[0]}" in body
        assert "switches virtualenv" in body
        await pilot.press("y")
        main = await idle(pilot)
        assert project.current("box") == ids[0]
        assert any("rollback ok" in line for line in main.transcript)
        assert any("switch" in line and "ok" in line for line in main.transcript)  # steps shown as they ran
        assert str(builds_table(app).get_cell(ids[0], "status")) == "current"


async def test_rollback_cancel_changes_nothing(deployed):
    project, ids = deployed
    app = app_for(project)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await cursor_to(pilot, ids[1])
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 10, "the confirmation")
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        assert app.main.busy is None
    assert project.current("box") == ids[2]


async def test_rollback_refuses_an_incomplete_build(deployed):
    project, ids = deployed
    make_incomplete(project.roots["box"], "20200101000000")
    app = app_for(project)
    async with app.run_test(size=SIZE) as pilot:
        main = await idle(pilot)
        assert str(builds_table(app).get_cell("20200101000000", "status")) == "incomplete"
        await cursor_to(pilot, "20200101000000")
        await pilot.press("r")
        await until(pilot, lambda: any("rollback refused" in line for line in main.transcript), 30, "the refusal")
        assert not isinstance(app.screen, ConfirmScreen)
        assert any("rollback refused" in line and "incomplete" in line for line in main.transcript)
        assert any("incomplete" in n.message for n in app._notifications)
    assert project.current("box") == ids[2]


async def test_deploy_key_confirms_then_makes_a_new_current_build(deployed):
    project, ids = deployed
    project.write_app("v4-from-tui", "tinylib==2.0")  # a new size: rsync's quick check cannot mistake it
    app = app_for(project)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 10, "the confirmation")
        body = str(app.screen.body)
        assert str(project.source) in body and "box" in body
        assert "the UTC time when it starts" in body and f"{ids[2]} → new build" in body
        await pilot.press("y")
        main = await idle(pilot)
        new_id = project.current("box")
        assert new_id not in ids and new_id > ids[2]
        assert (project.roots["box"] / "current" / "app.py").read_text() == "VERSION = 'v4-from-tui'\n"
        assert any("deploy ok" in line for line in main.transcript)
        assert any(" ship " in line and "ok" in line for line in main.transcript)
        # Only finished steps are printed (the running ones show in the pane's title), as --headless does.
        assert not any(" started" in line for line in main.transcript)


# --- what a change would change: the diff in the d and r dialogs, and D -------------------------------------

def round_trips(app, name: str) -> int:
    """Scripts the app has run on host ``name`` so far (its kept-open executor counts them)."""
    return next(e for h, e in app.pool.executors.items() if h == name).round_trips


async def test_deploy_dialog_says_what_changes_for_one_more_round_trip(deployed):
    project, ids = deployed
    project.write_app("v3", "tinylib==2.0\nredis==5.0.1")  # app.py as live: only requirements.txt changes
    app = app_for(project)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        before = round_trips(app, "box")
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 30, "the confirmation")
        body = app.screen.body.plain
        assert "Changes       1 file changed, requirements: +redis==5.0.1\n" in body, body
        assert round_trips(app, "box") == before + 2  # the read, and the diff beside it
        await pilot.press("n")
        await pilot.pause()
        # Only d and r pay for a diff: the other confirmations re-read the hosts, nothing more.
        before = round_trips(app, "box")
        await pilot.press("u")  # no lock: it says so instead of asking
        await until(pilot, lambda: app.main.preparing is None and round_trips(app, "box") > before, 30, "the read")
        await idle(pilot)
        assert round_trips(app, "box") == before + 1
    assert project.current("box") == ids[2]


async def test_rollback_dialog_says_what_the_rollback_undoes(deployed):
    project, ids = deployed
    app = app_for(project)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await cursor_to(pilot, ids[0])
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 30, "the confirmation")
        body = app.screen.body.plain
        # v3 -> v1: app.py and requirements.txt differ; the requirement goes back.
        assert "Changes: 2 files changed, requirements: +tinylib==1.0, -tinylib==2.0\n" in body, body
        await pilot.press("n")


async def test_D_on_an_older_build_lists_the_changed_files_and_requirements_then_goes_back(deployed):
    from releasetui.tui.diffview import DiffScreen
    project, ids = deployed
    app = app_for(project)
    async with app.run_test(size=SIZE) as pilot:
        main = await idle(pilot)
        before = round_trips(app, "box")
        await cursor_to(pilot, ids[1])  # v2 (tinylib 1.0) under the cursor; v3 (tinylib 2.0) is live
        await pilot.press("D")
        await until(pilot, lambda: isinstance(app.screen, DiffScreen) and not app.screen.loading, 30, "the diff")
        lines = app.screen.text.splitlines()
        assert lines[:2] == [f"box: {ids[2]} (current) → {ids[1]}",
                             "  2 files changed, requirements: +tinylib==1.0, -tinylib==2.0"], lines
        assert {"    ~ app.py", "    ~ requirements.txt", "    -tinylib==2.0", "    +tinylib==1.0"} <= set(lines)
        assert round_trips(app, "box") == before + 1  # one read-only round trip, no state re-read
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is main
    assert project.current("box") == ids[2]


async def test_a_build_without_a_file_list_says_diff_unavailable_and_the_rollback_still_works(deployed):
    project, ids = deployed
    # A build made before releasetui kept manifests: its file list is unknown.
    (project.roots["box"] / "builds" / ids[0] / ".releasetui-manifest.json").unlink()
    app = app_for(project)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await cursor_to(pilot, ids[0])
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 30, "the confirmation")
        body = app.screen.body.plain
        # (Longer than the dialog is wide: it wraps, under itself.)
        assert (f"Changes: diff unavailable: {ids[0]} has no file list (made before releasetui kept one); "
                "requirements: +tinylib==1.0, -tinylib==2.0 ") in " ".join(body.split()), body
        assert "\n         before releasetui kept one); requirements" in body, body
        await pilot.press("y")
        await idle(pilot)
    assert project.current("box") == ids[0]


async def test_a_diff_that_fails_says_why_and_the_dialogs_still_open(deployed):
    from releasetui.executors import HostUnreachable

    class NoDiff(Operations):
        """The real core, but its diff's read fails (the host went away between the two reads)."""

        def diff(self, hosts, from_id=None, to_id=None, source=None, ref=None):
            raise HostUnreachable("timed out (10.0.0.9:22)")

    project, ids = deployed
    app = app_for(project, operations_factory=lambda config, report, pool: NoDiff(config, report=report, pool=pool))
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 30, "the deploy confirmation")
        assert "Changes       diff unavailable: timed out (10.0.0.9:22)\n" in app.screen.body.plain
        assert f"{ids[2]} → new build" in app.screen.body.plain
        await pilot.press("n")
        await cursor_to(pilot, ids[0])
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 30, "the rollback confirmation")
        assert "Changes: diff unavailable: timed out (10.0.0.9:22)\n" in app.screen.body.plain
        await pilot.press("y")
        await idle(pilot)
    assert project.current("box") == ids[0]


async def test_deploy_takes_its_build_id_when_it_starts_not_when_the_dialog_opened(deployed):
    """A dialog left open while somebody else deploys: the TUI's build still gets the newest id."""
    project, ids = deployed
    app = app_for(project)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 10, "the confirmation")
        TEST_CLOCK.tick()  # later: the id a dialog-time clock would have given is now taken by an older build
        [other] = deploy(project, [("v-elsewhere", "tinylib==2.0")])
        project.write_app("v-tui", "tinylib==2.0")
        await pilot.press("y")
        await idle(pilot)
    assert project.current("box") > other
    assert (project.roots["box"] / "current" / "app.py").read_text() == "VERSION = 'v-tui'\n"


async def test_deploy_failure_shows_in_pane_and_notification(deployed):
    project, ids = deployed
    project.write_app("v5", "no-such-package==9.9")  # pip cannot find it offline: the deploy fails
    app = app_for(project)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 10, "the confirmation")
        await pilot.press("y")
        main = await idle(pilot)
        assert any("deploy failed" in line or "box: failed" in line for line in main.transcript)
        assert any(n.severity == "error" for n in app._notifications)
        assert isinstance(app.screen, MainScreen)  # still running, keys still work
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
    assert project.current("box") == ids[2]


async def test_prune_key_lists_and_removes_exactly_the_planned_builds(deployed):
    project, ids = deployed
    root = project.roots["box"]
    make_incomplete(root, "20200101000000")
    app = app_for(project)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 10, "the confirmation")
        body = str(app.screen.body)
        assert "remove 20200101000000 (incomplete)" in body
        assert ids[2] not in body  # never current
        await pilot.press("y")
        main = await idle(pilot)
        assert any("prune ok" in line for line in main.transcript)
    assert not (root / "builds" / "20200101000000").exists()
    assert (root / "builds" / ids[2]).is_dir()


async def test_prune_with_nothing_to_remove_only_says_so(deployed):
    project, ids = deployed
    app = app_for(project)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await pilot.press("p")
        await until(pilot, lambda: any("Nothing to prune" in n.message for n in app._notifications), 30, "the notice")
        assert isinstance(app.screen, MainScreen)


async def test_unlock_key_removes_a_stale_lock(deployed):
    project, ids = deployed
    lock = project.roots["box"] / "deploy.lock"
    app = app_for(project)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        assert str(app.main.query_one("#hosts", DataTable).get_cell("box", "lock")) == "-"
        # Locked after the TUI read the host: u reads it again before it asks, no f5 needed.
        lock.mkdir()
        (lock / "info.json").write_text(json.dumps({"who": "ghost@gone", "where": "laptop",
                                                    "since": "2026-01-01T00:00:00Z", "operation": "deploy"}))
        await pilot.press("u")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 10, "the confirmation")
        assert "ghost@gone" in str(app.screen.body)
        await pilot.press("y")
        await idle(pilot)
        assert not lock.exists()
        assert str(app.main.query_one("#hosts", DataTable).get_cell("box", "lock")) == "-"
    history = (project.roots["box"] / "history.jsonl").read_text()
    assert "unlock" in history


async def test_logs_key_tails_live_and_stops_when_leaving(deployed):
    project, ids = deployed
    log_file = project.dir / "app.log"
    app = app_for(project)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, LogScreen), 10, "the log screen")
        screen = app.screen
        await until(pilot, lambda: any("line 20" in t for t in screen.transcript), 30, "the last lines")
        with log_file.open("a") as handle:  # live: a line written now shows up
            handle.write("fresh line from the app\n")
        await until(pilot, lambda: any("fresh line from the app" in t for t in screen.transcript), 30, "a new line")
        assert all(t.startswith("box") for t in screen.transcript if "line" in t)  # labelled with the host
        await pilot.press("f")
        assert screen.follow is False and "follow off" in str(screen.query_one("#log-status").render())
        await pilot.press("f")
        assert screen.follow is True
        workers = [w for w in app.workers if w.group == "logs"]
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), 10, "the main screen")
        assert screen.stop.is_set()
        await until(pilot, lambda: all(w.is_finished for w in workers), 30, "the tail to stop")


async def test_filter_key_narrows_the_builds(deployed):
    project, ids = deployed
    app = app_for(project)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await pilot.press("slash")
        await pilot.press(*list("current"))
        await pilot.pause()
        assert [row.value for row in builds_table(app).rows] == [ids[2]]
        await pilot.press("escape")
        await pilot.pause()
        assert len(builds_table(app).rows) == 3


async def test_refresh_key_picks_up_changes_made_elsewhere(deployed):
    project, ids = deployed
    app = app_for(project)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        assert len(builds_table(app).rows) == 3
        make_incomplete(project.roots["box"], "20200101000000")
        await pilot.press("f5")
        await until(pilot, lambda: len(builds_table(app).rows) == 4, 30, "the refreshed table")
        make_incomplete(project.roots["box"], "20200101000001")
        await pilot.press("ctrl+r")
        await until(pilot, lambda: len(builds_table(app).rows) == 5, 30, "the refreshed table")


async def test_confirmations_are_built_from_a_fresh_read(deployed):
    """Changes made on the host after the last read show in the prune and rollback confirmations."""
    project, ids = deployed
    app = app_for(project)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        make_incomplete(project.roots["box"], "20200101000000")
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 30, "the confirmation")
        assert "remove 20200101000000 (incomplete)" in str(app.screen.body)
        await pilot.press("n")
        await cursor_to(pilot, ids[0])
        import shutil
        shutil.rmtree(project.roots["box"] / "builds" / ids[0])  # pruned elsewhere meanwhile
        await pilot.press("r")
        main = app.main
        await until(pilot, lambda: any("rollback refused" in line for line in main.transcript), 30, "the refusal")
        assert not isinstance(app.screen, ConfirmScreen)
        assert any(f"build {ids[0]} does not exist" in line for line in main.transcript)
    assert project.current("box") == ids[2]


async def test_hosts_are_reread_periodically_while_idle(deployed):
    project, ids = deployed
    app = app_for(project, refresh_interval=0.3)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        assert len(builds_table(app).rows) == 3
        make_incomplete(project.roots["box"], "20200101000000")
        await until(pilot, lambda: len(builds_table(app).rows) == 4, 30, "the periodic re-read")


async def test_home_and_end_move_the_builds_cursor(deployed):
    project, ids = deployed
    app = app_for(project)
    async with app.run_test(size=SIZE) as pilot:
        main = await idle(pilot)
        builds_table(app).focus()
        await pilot.press("end")
        assert main.selected_build() == ids[0]  # oldest, at the bottom
        await pilot.press("home")
        assert main.selected_build() == ids[2]


async def test_80x24_keeps_the_builds_and_their_status_visible(deployed):
    project, ids = deployed
    app = app_for(project)
    async with app.run_test(size=(80, 24)) as pilot:
        await idle(pilot)
        table = builds_table(app)
        assert table.region.height >= 7  # border, header and at least four rows
        status = next(i for i, column in enumerate(table.ordered_columns) if column.key.value == "status")
        right = sum(column.get_render_width(table) for column in table.ordered_columns[:status + 1])
        assert right <= table.content_region.width  # the Status column is on screen, not cut off


async def test_mark_key_chooses_target_hosts(tmp_path, wheelhouse):
    from tests.support.helpers import make_project
    project = make_project(tmp_path, wheelhouse, {"a": {"transport": "local"}, "b": {"transport": "local"}})
    ids = deploy(project, [("v1", "tinylib==1.0"), ("v2", "tinylib==1.0")])
    app = app_for(project)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        app.main.query_one("#hosts", DataTable).focus()
        await pilot.press("down")  # host b
        await pilot.press("m")
        assert [h.name for h in app.main.targets()] == ["b"]
        await cursor_to(pilot, ids[0])
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 10, "the confirmation")
        assert " a " not in str(app.screen.body)
        await pilot.press("y")
        await idle(pilot)
        hosts = app.main.query_one("#hosts", DataTable)
        assert "≠" in str(hosts.get_cell("a", "current"))  # hosts now disagree, and it shows
    assert project.current("a") == ids[1] and project.current("b") == ids[0]


async def test_help_and_quit_keys(deployed):
    project, ids = deployed
    app = app_for(project)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


async def test_keys_answer_during_a_slow_operation(deployed):
    """A rollback whose restart waits for a gate the test opens last: help opens, keys are dimmed, quit asks first."""
    project, ids = deployed
    gate = project.dir / "gate"
    restart = f"restart: 'until [ -e {gate} ]; do sleep 0.05; done'"
    text = project.config.read_text()
    project.config.write_text("\n".join(restart if line.startswith("restart:") else line
                                        for line in text.splitlines()) + "\n")
    app = app_for(project)
    async with app.run_test(size=SIZE) as pilot:
        main = await idle(pilot)
        await cursor_to(pilot, ids[1])
        await pilot.press("r", "y")
        await until(pilot, lambda: main.busy == "rollback", 10, "the rollback to start")
        assert main.check_action("deploy", ()) is None  # dimmed in the footer
        await pilot.press("d")  # ignored while busy: no second confirmation
        assert isinstance(app.screen, MainScreen)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        for key in ("q", "ctrl+q", "ctrl+c"):  # quitting asks first while busy, whichever quit key
            await pilot.press(key)
            assert isinstance(app.screen, QuitWhileBusyScreen), key
            await pilot.press(key)  # a second press does not stack a second question
            assert isinstance(app.screen, QuitWhileBusyScreen) and len(app.screen_stack) == 3
            await pilot.press("n")
            assert isinstance(app.screen, MainScreen)
        # Every key above was answered while the restart still hung on the gate.
        assert main.busy == "rollback" and not gate.exists()
        gate.touch()
        await idle(pilot)
        assert main.check_action("deploy", ()) is True
    assert project.current("box") == ids[1]


async def test_quit_during_a_deploy_waits_for_its_cleanup(deployed):
    """q, y while the install hangs: the deploy is stopped, its lock and partial build removed, then the app exits."""
    project, ids = deployed
    marker, gate = stuck_python(project)
    root = project.roots["box"]
    app = app_for(project)
    try:
        async with app.run_test(size=SIZE) as pilot:
            main = await idle(pilot)
            await pilot.press("d")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 30, "the confirmation")
            await pilot.press("y")
            await until(pilot, marker.exists, 60, "the install to hang")
            assert (root / "deploy.lock").is_dir() and len(list((root / "builds").iterdir())) == 4
            await pilot.press("q")
            assert isinstance(app.screen, QuitWhileBusyScreen)
            # Before the switch the dialog says quitting aborts (and it does, below).
            assert "has not switched any host. Quitting aborts it" in str(app.screen.body)
            await pilot.press("y")
            assert any("stopping deploy" in line for line in main.transcript)
            # The app waits for the operation's own end (the stop kills the hung install; the gate stays shut).
            await until(pilot, lambda: app.return_code is not None, 60, "the app to exit after the cleanup")
            assert main.busy is None
            assert any("deploy box: interrupted" in line for line in main.transcript)
    finally:
        gate.touch()
    assert not (root / "deploy.lock").exists()
    assert sorted(p.name for p in (root / "builds").iterdir()) == sorted(ids)  # no partial build
    assert project.current("box") == ids[2]
    # An operation aborted by the quit: a non-zero exit, said on the terminal, and recorded as such.
    assert app.return_code == 130
    assert app.exit_report[-1] == "releasetui: deploy interrupted: aborted by quitting the TUI (exit 130)"
    record = project.history("box")[-1]
    assert (record["outcome"], record["interrupted_by"], record["from"]) == ("interrupted", "TUI quit", ids[2])


async def test_quit_key_again_while_cleaning_up_offers_quit_now(deployed):
    """If the cleanup itself hangs, a second quit asks whether to leave without waiting."""
    project, ids = deployed
    app = app_for(project)
    async with app.run_test(size=SIZE) as pilot:
        main = await idle(pilot)
        main.busy, main.quitting = "deploy", True  # as if a stopped deploy were still cleaning up
        await pilot.press("ctrl+q")
        assert isinstance(app.screen, QuitNowScreen)
        await pilot.press("n")
        assert app.return_code is None
        main.busy, main.quitting = None, False


async def test_quit_now_while_cleaning_up_exits_130_and_says_what_may_be_left(deployed):
    project, ids = deployed
    app = app_for(project)
    async with app.run_test(size=SIZE) as pilot:
        main = await idle(pilot)
        main.busy, main.quitting = "deploy", True  # as if a stopped deploy were still cleaning up
        await pilot.press("ctrl+q")
        assert isinstance(app.screen, QuitNowScreen)
        await pilot.press("y")
        await until(pilot, lambda: app.return_code is not None, 10, "the app to exit")
        main.busy = None
    assert app.return_code == 130
    assert app.exit_report[-1].startswith("releasetui: deploy interrupted: quit without waiting for its cleanup")


async def test_unreachable_host_says_why(tmp_path, wheelhouse):
    from tests.support.helpers import make_project
    from tests.support.sshd import free_port
    project = make_project(tmp_path, wheelhouse, {"box": {"transport": "local"},
                                                  "gone": {"address": "127.0.0.1", "port": free_port()}})
    app = app_for(project)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        hosts = app.main.query_one("#hosts", DataTable)
        assert str(hosts.get_cell("gone", "state")).startswith("unreachable: ")
        assert any(line.startswith("gone: unreachable") for line in app.main.transcript)


# --- the truth about operations ----------------------------------------------------------------

def hold_lock(root: Path, **info) -> None:
    """A deploy lock as another operation leaves it in the host's root."""
    lock = root / "deploy.lock"
    lock.mkdir()
    (lock / "info.json").write_text(json.dumps({"who": "carol@ci", "where": "runner-9", "since": "2026-01-01T00:00:00Z",
                                                "operation": "deploy", **info}))


@pytest.mark.parametrize("key", ["d", "r", "p", "P"])
async def test_a_lock_held_elsewhere_refuses_up_front_without_a_dialog(deployed, key):
    """Locked after the TUI's last read: the key reads the hosts again and refuses before any dialog opens."""
    project, ids = deployed
    make_incomplete(project.roots["box"], "20200101000000")  # so that p has something it would prune
    app = app_for(project)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        main = await idle(pilot)
        await cursor_to(pilot, ids[0])
        hold_lock(project.roots["box"])
        await pilot.press(key)
        await until(pilot, lambda: any("refused" in line for line in main.transcript), 30, "the refusal")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        line = next(line for line in main.transcript if "refused" in line)
        assert "locked by another operation" in line and "carol@ci" in line, line
        assert any("carol@ci" in n.message for n in app._notifications)
        assert main.busy is None
    assert project.current("box") == ids[2] and (project.roots["box"] / "deploy.lock").is_dir()
    assert (project.roots["box"] / "builds" / "20200101000000").is_dir()


async def test_unlock_dialog_says_a_lock_of_a_dead_process_on_this_machine_is_stale(deployed):
    import socket
    import subprocess
    import sys
    project, ids = deployed
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # its pid no longer runs
    hold_lock(project.roots["box"], where=socket.gethostname(), pid=dead.pid)
    app = app_for(project)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await pilot.press("u")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 30, "the confirmation")
        body = str(app.screen.body)
        assert f"(pid {dead.pid})" in body and f"STALE: pid {dead.pid} no longer runs" in body, body
        assert body.count("STALE") == 1, body  # said once for the host, not again inside the lock's description
        await pilot.press("n")


async def test_unlock_dialog_says_when_the_lock_holder_still_runs_here(deployed):
    import os
    import socket
    project, ids = deployed
    hold_lock(project.roots["box"], where=socket.gethostname(), pid=os.getpid())
    app = app_for(project)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await pilot.press("u")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 30, "the confirmation")
        body = str(app.screen.body)
        assert f"pid {os.getpid()} is still running on this machine" in body and "STALE" not in body, body
        await pilot.press("n")


def gated_restart(project) -> tuple[Path, Path]:
    """A restart that marks that it runs, then waits for a gate: a deploy stops inside its switch."""
    marker, gate = project.dir / "restarting", project.dir / "restart-gate"
    project.set("restart", f"'touch {marker}; until [ -e {gate} ]; do sleep 0.05; done'")
    return marker, gate


async def test_quit_once_the_switch_has_begun_lets_it_finish_and_says_so(deployed):
    """q during the switch: the dialog says the switch finishes; it does, then the app quits and reports."""
    project, ids = deployed
    project.write_app("v4-switching", "tinylib==2.0")
    marker, gate = gated_restart(project)
    app = app_for(project)
    try:
        async with app.run_test(size=SIZE) as pilot:
            main = await idle(pilot)
            await pilot.press("d")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 30, "the confirmation")
            await pilot.press("y")
            await until(pilot, marker.exists, 60, "the restart to hang")
            await pilot.press("q")
            assert isinstance(app.screen, QuitWhileBusyScreen)
            body = str(app.screen.body)
            assert "is switching the hosts. Quitting lets the switch finish" in body, body
            await pilot.press("y")
            gate.touch()
            await until(pilot, lambda: app.return_code is not None, 60, "the app to exit after the deploy")
            assert any("deploy ok" in line for line in main.transcript)
    finally:
        gate.touch()
    new = project.current("box")
    assert new not in ids
    assert app.exit_report == [f"box  serves {new}", f"live now: {new} on box"]


async def test_the_quit_dialog_left_open_while_the_deploy_finishes_says_so_and_y_just_quits(deployed):
    """The reported case, on a real host: q during the switch, the deploy finishes while the dialog is open; the
    dialog then says it finished (not that quitting aborts or waits), and y quits with the new build live."""
    from textual.widgets import Static
    project, ids = deployed
    project.write_app("v4-left-open", "tinylib==2.0")
    marker, gate = gated_restart(project)
    app = app_for(project)

    def words() -> str:
        return str(app.screen.query_one("#dialog-text", Static).content)
    try:
        async with app.run_test(size=SIZE) as pilot:
            main = await idle(pilot)
            await pilot.press("d")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 30, "the confirmation")
            await pilot.press("y")
            await until(pilot, marker.exists, 60, "the restart to hang")
            await pilot.press("q")
            assert "is switching the hosts. Quitting lets the switch finish" in words(), words()
            gate.touch()
            await until(pilot, lambda: "deploy has finished: deploy ok" in words(), 60, "the dialog to follow")
            assert "quitting just quits" in words() and "abort" not in words(), words()
            await pilot.press("y")
            await until(pilot, lambda: app.return_code is not None, 30, "the app to quit")
            assert not main.interrupted and not any("stopping deploy" in line for line in main.transcript)
    finally:
        gate.touch()
    new = project.current("box")
    assert new not in ids and app.return_code == 0


def test_on_exit_the_tui_prints_what_each_host_serves(tmp_path, wheelhouse, monkeypatch, capsys):
    """run_app prints one line per host once the app has exited, after a rollback made in it."""
    import asyncio
    from tests.support.helpers import make_project
    from releasetui.cli import main as cli_main
    from releasetui.tui import app as app_module
    project = make_project(tmp_path, wheelhouse, {"a": {"transport": "local"}, "b": {"transport": "local"}})
    ids = deploy(project, [("v1", "tinylib==1.0"), ("v2", "tinylib==1.0")])

    def run(self):
        async def script():
            async with self.run_test(size=SIZE) as pilot:
                await idle(pilot)
                await cursor_to(pilot, ids[0])
                await pilot.press("r")
                await until(pilot, lambda: isinstance(self.screen, ConfirmScreen), 30, "the confirmation")
                await pilot.press("y")
                await idle(pilot)
                await pilot.press("q")
        asyncio.run(script())

    monkeypatch.setattr(app_module.ReleaseApp, "run", run)
    monkeypatch.setenv("RELEASETUI_CONFIG", str(project.config))
    assert cli_main([]) == 0
    assert capsys.readouterr().out.splitlines() == [f"a  serves {ids[0]}", f"b  serves {ids[0]}",
                                                    f"live now: {ids[0]} on a, b"]


async def test_pin_key_pins_on_the_host_and_history_shows_it(deployed):
    from releasetui.tui.historyview import HistoryScreen
    project, ids = deployed
    app = app_for(project)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await cursor_to(pilot, ids[0])
        await pilot.press("P")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 30, "the confirmation")
        assert app.screen.title_text == f"Pin build {ids[0]}?" and "box: complete → pinned" in str(app.screen.body)
        await pilot.press("y")
        main = await idle(pilot)
        assert any("pin ok" in line for line in main.transcript)
        assert str(builds_table(app).get_cell(ids[0], "status")) == "complete, pinned"
        await pilot.press("h")
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.entries, 30, "the history")
        newest = app.screen.entries[0]
        assert newest.event == "pin" and newest.hosts == {"box": "ok"}
        assert [e.event for e in app.screen.entries[1:]] == ["deploy"] * 3
        await pilot.press("escape")
        await cursor_to(pilot, ids[0])
        await pilot.press("P")  # pinned everywhere: P unpins
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 30, "the confirmation")
        assert app.screen.title_text == f"Unpin build {ids[0]}?"
        await pilot.press("y")
        await idle(pilot)
        assert str(builds_table(app).get_cell(ids[0], "status")) == "complete"
    assert [r["event"] for r in project.history("box")][-2:] == ["pin", "unpin"]


# --- no config, bad config ---------------------------------------------------------------

async def test_no_config_screen_says_where_it_looked_and_how_to_start(tmp_path):
    app = ReleaseApp(None, looked=["$RELEASETUI_CONFIG (not set)", str(tmp_path / "hosts.yml")])
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, NoConfigScreen)
        text = str(app.screen.query_one("#noconfig").render())
        assert str(tmp_path / "hosts.yml") in text
        assert "releasetui demo" in text and "releasetui init" in text
        assert "hosts.example.yml" not in text, "an installed package has no hosts.example.yml to copy"
        await pilot.press("q")
    assert app.return_code == 0


def test_run_app_without_config_opens_the_no_config_screen(tmp_path, monkeypatch):
    from releasetui.tui import app as app_module
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RELEASETUI_CONFIG", raising=False)
    seen = {}

    def fake_run(self, *args, **kwargs):
        seen["config"], seen["looked"] = self.config, self.looked
    monkeypatch.setattr(app_module.ReleaseApp, "run", fake_run)
    from releasetui.cli import main
    assert main([]) == 0
    assert seen["config"] is None and str(tmp_path / "hosts.yml") in seen["looked"]


def test_run_app_with_role_and_host_shows_those_hosts(tmp_path, monkeypatch):
    from releasetui.tui import app as app_module
    config = tmp_path / "hosts.yml"
    config.write_text("project: x\nroot: /srv/x\nroles: {web: {}, worker: {}}\nhosts:\n"
                      + "".join(f"  {h}: {{address: {h}.example.com, roles: [{r}]}}\n"
                                for h, r in (("web1", "web"), ("web2", "web"), ("w1", "worker"), ("w2", "worker"))))
    seen = {}
    monkeypatch.setattr(app_module.ReleaseApp, "run", lambda self, *a, **k: seen.setdefault("hosts", self.hosts))
    from releasetui.cli import main
    assert main(["--config", str(config), "--role", "worker", "--host", "web2"]) == 0
    assert [h.name for h in seen["hosts"]] == ["web2", "w1", "w2"]


def test_bad_config_is_one_line_not_a_traceback(tmp_path, capsys):
    from releasetui.cli import main
    bad = tmp_path / "hosts.yml"
    bad.write_text("project: x\nroot: /srv/x\nhosts:\n  web1: {adress: typo}\n")
    assert main(["--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "hosts.yml:4" in err[0] and "adress" in err[0]


# --- over real SSH ---------------------------------------------------------------------------

@pytest.mark.ssh
async def test_rollback_and_prune_over_ssh(ssh_project):
    project = ssh_project
    ids = deploy(project, [("v1", "tinylib==1.0"), ("v2", "tinylib==2.0")])
    for root in project.roots.values():
        make_incomplete(root, "20200101000000")
    app = app_for(project)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        assert {str(app.main.query_one("#hosts", DataTable).get_cell(h, "state")) for h in ("web1", "web2")} == {"ok"}
        await cursor_to(pilot, ids[0])
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 10, "the confirmation")
        body = str(app.screen.body)
        assert f"web1, web2: {ids[1]} → {ids[0]}, switches virtualenv" in body
        await pilot.press("y")
        await idle(pilot)
        assert project.current("web1") == ids[0] and project.current("web2") == ids[0]

        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 10, "the confirmation")
        assert "web1, web2: remove 20200101000000 (incomplete)" in str(app.screen.body)
        await pilot.press("y")
        main = await idle(pilot)
        assert any("prune ok" in line for line in main.transcript)
    for root in project.roots.values():
        assert not (root / "builds" / "20200101000000").exists()
        assert (root / "builds" / ids[0]).is_dir() and (root / "builds" / ids[1]).is_dir()


# =====================================================================================================
# --- layout: what fits on the screen, at 80x24 and wider -----------------------------------------------
#
# These run on the snapshot tests' fake core (fixed states, no disk, no hosts) and look at what is drawn:
# widget regions and rendered lines, never sleeps.
# =====================================================================================================

import dataclasses  # noqa: E402
from datetime import timezone  # noqa: E402

from textual.geometry import Region  # noqa: E402
from textual.widgets import RichLog, Static  # noqa: E402

from releasetui.tui.widgets import RowTable  # noqa: E402
from tests.support.tuikit import CONFIG, NOW, FakeOperations, make_app, visible_footer_keys  # noqa: E402

WIDTHS = [(80, 24), (100, 30), (110, 30), (120, 40), (160, 50)]
WORDS = [f"w{i:03d}x" for i in range(60)]  # unique, so a lost word is a missing one, not a repeated one


async def loaded(pilot) -> MainScreen:
    """The fake core's states are shown."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    return pilot.app.main


def rendered_lines(log: RichLog) -> list[str]:
    """Every line of a log as drawn: each stored line cropped to the width the pane shows."""
    width = log.scrollable_content_region.width
    return [strip.crop(0, width).text for strip in log.lines]


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_output_pane_wraps_at_its_width_without_losing_words(size):
    # The first line is written in on_mount, before the pane's width is known: a long config path makes it wrap.
    config = dataclasses.replace(CONFIG, path=Path("/srv/" + "/".join(f"p{i:02d}dir" for i in range(16)) + "/hosts.yml"))
    app = ReleaseApp(config, operations_factory=FakeOperations, now=lambda: NOW, tz=timezone.utc, refresh_interval=None)
    async with app.run_test(size=size) as pilot:
        main = await loaded(pilot)
        output = main.query_one("#output", RichLog)
        main.say(" ".join(WORDS[:30]))  # written while the pane has no scrollbar yet
        for i in range(12):  # enough lines for the vertical scrollbar to appear
            main.say(f"short line {i}")
        main.say(" ".join(WORDS[30:]))
        await pilot.pause()
        drawn = " ".join(rendered_lines(output)).split()
        missing = [w for w in WORDS if w not in drawn]
        assert not missing, f"lost words: {missing}"
        # The first line, written before the pane's width was known, is there in full.
        joined = "".join(line.rstrip() for line in rendered_lines(output))
        assert str(config.path) in joined, joined
        # Every line the app said is there in full.
        for line in main.transcript:
            assert " ".join(line.split()) in " ".join(" ".join(rendered_lines(output)).split()), line
        # ...and wraps at the pane's width, not narrower (a line of 30 short words needs few rows).
        width = output.scrollable_content_region.width
        assert max(len(line.rstrip()) for line in rendered_lines(output)) > width - 8

        for new in [(60, 24), (140, 40), size]:
            await pilot.resize_terminal(*new)
            await pilot.pause()
            drawn = " ".join(rendered_lines(output)).split()
            missing = [w for w in WORDS if w not in drawn]
            assert not missing, f"{new}: lost words after a resize: {missing}"
            width = output.scrollable_content_region.width
            assert max(len(line.rstrip()) for line in rendered_lines(output)) > width - 8, new


def test_log_view_host_labels_keep_their_style():
    """Each log line's host label is drawn in its style (bold cyan), not as plain text."""
    from io import StringIO

    from rich.console import Console

    from releasetui.tui.widgets import Labelled
    console = Console(width=40, file=StringIO(), color_system="truecolor")
    segments = list(console.render(Labelled("web1", "word " * 12, 10)))
    label = next(s for s in segments if s.text.startswith("web1"))
    assert label.style is not None and label.style.bold and label.style.color.name == "cyan", label


async def test_log_view_wraps_long_lines_under_the_host_label():
    from releasetui.models import Event
    long_line = "GET /health " + " ".join(WORDS)
    app = make_app()

    def start(report, stop):
        report(Event("web1", "logs", "log", message=long_line))
        report(Event("web2", "logs", "log", message="short"))
        stop.wait(30)

    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await app.push_screen(LogScreen([CONFIG.hosts[0], CONFIG.hosts[1]], start))
        screen = app.screen
        await until(pilot, lambda: len(screen.transcript) == 2, 10, "the log lines")
        await pilot.pause()
        log = screen.query_one("#log", RichLog)
        lines = [line.rstrip() for line in rendered_lines(log)]
        drawn = " ".join(lines).split()
        assert not [w for w in WORDS if w not in drawn]
        first = next(i for i, line in enumerate(lines) if line.startswith("web1"))
        label = len("web1       ")
        wrapped = lines[first + 1:lines.index(next(line for line in lines if line.startswith("web2")))]
        assert len(wrapped) >= 3  # it wrapped rather than being cut
        for line in wrapped:  # continuation rows start under the text, the label column stays clear
            assert line[:label].strip() == "" and line[label:label + 1] != " ", line
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        assert not [w for w in WORDS if w not in " ".join(rendered_lines(log)).split()]
        screen.stop.set()


@pytest.mark.parametrize("size", WIDTHS + [(170, 50)])
async def test_footer_shows_quit_and_help_at_every_width(size):
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await loaded(pilot)
        # The footer lays itself out again once the read shows a lock (u Unlock is then kept): on its own queue.
        await until(pilot, lambda: "unlock" in visible_footer_keys(app.screen), 10, "the footer after the read")
        keys = visible_footer_keys(app.screen)
        assert {"quit_app", "help"} <= set(keys), (size, sorted(keys))
        # What a person runs and reads fits even at 80 columns: d r p l, the fleet and history views, and u
        # Unlock, since a host here shows a lock (without one, m Mark takes its place: see the 80x24 test).
        assert {"deploy", "rollback", "prune", "logs", "fleet", "history", "unlock"} <= set(keys), (size, sorted(keys))
        regions = sorted((k.region for k in keys.values()), key=lambda r: r.x)
        for left, right in zip(regions, regions[1:]):
            assert left.right <= right.x, f"{size}: footer keys overlap: {left} {right}"
        if size[0] >= 100:
            assert {"pin", "diff", "mark"} <= set(keys), (size, sorted(keys))
        if size[0] >= 120:
            assert {"mark_role", "refresh"} <= set(keys), (size, sorted(keys))
        if size[0] >= 160:  # every key (/ Filter is the first to go)
            assert "filter" in keys, (size, sorted(keys))
        if size[0] >= 170:  # room for every key, as written, and the palette's
            assert {"command_palette"} <= set(keys)
            assert keys["mark"].description == "Mark host"


async def test_footer_fits_again_after_a_resize():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        for size in [(80, 24), (130, 40), (80, 24)]:
            await pilot.resize_terminal(*size)
            await pilot.pause()
            await pilot.pause()
            assert {"quit_app", "help"} <= set(visible_footer_keys(app.screen)), size


async def test_footer_keys_left_out_at_80_columns_are_in_the_help():
    from releasetui.tui.dialogs import key_label
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        shown = set(visible_footer_keys(app.screen))
        await pilot.press("question_mark")
        await pilot.pause()
        text = help_text(app.screen)
        left_out = [b for b in MainScreen.BINDINGS + ReleaseApp.BINDINGS if b.action not in shown]
        assert {b.action for b in left_out} >= {"filter"}  # 80 columns: "/ Filter" is one of them
        for binding in left_out:
            assert key_label(binding.key.split(",")[0]) in text, binding


def help_text(screen: HelpScreen) -> str:
    """The help's rows as text, rendered at the width the help has."""
    from io import StringIO
    from rich.console import Console
    keys = screen.query_one("#help-keys", Static)
    console = Console(width=keys.content_region.width, file=StringIO(), record=True)
    console.print(keys.content)
    return console.export_text()


async def test_help_fits_80x24_and_scrolls_with_the_keyboard():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, HelpScreen)
        box = screen.query_one("#help")
        assert Region(0, 0, 80, 24).contains_region(box.region), box.region
        assert box.max_scroll_y > 0  # more than fits: it scrolls rather than being cut
        await pilot.press("down")
        await pilot.pause()
        assert box.scroll_y == 1
        await pilot.press("pagedown")
        await pilot.pause()
        assert box.scroll_y > 1
        for _ in range(10):
            await pilot.press("pagedown")
        await pilot.pause()
        assert box.scroll_y == box.max_scroll_y  # the end is reachable...
        legend = screen.query_one("#help-legend")
        assert box.scrollable_content_region.contains_region(legend.region)  # ...and shows the legend
        await pilot.press("pageup")
        await pilot.pause()
        assert box.scroll_y < box.max_scroll_y
        await pilot.press("home")
        await pilot.pause()
        assert box.scroll_y == 0
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


async def test_help_lists_every_binding_of_the_main_screen_and_the_app():
    """The help is built from the bindings: a key added, renamed or removed shows there without editing a list."""
    from releasetui.tui.dialogs import key_label
    app = make_app()
    async with app.run_test(size=(160, 50)) as pilot:
        await loaded(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        rows = app.screen.rows
        bindings = MainScreen.BINDINGS + RowTable.BINDINGS + ReleaseApp.BINDINGS
        for binding in bindings:
            # The row says what the action's first binding with a tooltip (else a description) says.
            expected = next(b.tooltip or b.description for b in bindings
                            if b.action == binding.action and (b.tooltip or b.description))
            for key in binding.key.split(","):
                row = next((r for r in rows if key_label(key) in r[0].split(" / ")), None)
                assert row is not None, f"{key} ({binding.action}) is not in the help"
                assert row[1] == expected, (key, row)
        text = help_text(app.screen)
        for label in ("ctrl+q", "ctrl+c", "ctrl+r", "space", "f5", "home / end", "esc", "?", "/"):
            assert label in text, label


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_notifications_do_not_cover_the_output(size):
    app = make_app()
    async with app.run_test(size=size, notifications=True) as pilot:
        main = await loaded(pilot)
        for i in range(20):
            main.say(f"output line {i}")
        main.notify("deploy ok in 2.1s", title="deploy", timeout=30)
        main.notify("web1: cannot connect\nweb2: not switched: web1 failed; current unchanged",
                    title="deploy failed", severity="error", timeout=30)
        await pilot.pause()
        await pilot.pause()
        toasts = list(app.screen.query("Toast"))
        assert len(toasts) == 2
        output = main.query_one("#output", RichLog)
        for toast in toasts:
            assert toast.region.height and not toast.region.overlaps(output.region), (toast.region, output.region)
            assert not toast.region.overlaps(main.query_one("Footer").region)


async def test_notifications_in_the_log_view_leave_the_newest_lines_visible():
    from releasetui.models import Event

    def start(report, stop):
        for i in range(40):
            report(Event("web1", "logs", "log", message=f"log line {i}"))
        stop.wait(30)

    app = make_app()
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await loaded(pilot)
        await app.push_screen(LogScreen([CONFIG.hosts[0]], start))
        screen = app.screen
        await until(pilot, lambda: len(screen.transcript) == 40, 10, "the log lines")
        app.notify("deploy ok in 2.1s", title="deploy", timeout=30)
        await pilot.pause()
        await pilot.pause()
        log = screen.query_one("#log", RichLog)
        content = log.scrollable_content_region
        newest = Region(content.x, content.bottom - 5, content.width, 5)  # the last five rows
        toasts = list(screen.query("Toast"))
        assert toasts and all(t.region.height and not t.region.overlaps(newest) for t in toasts)
        screen.stop.set()



async def test_hosts_state_cell_has_room_for_the_reason_on_a_wide_screen():
    reason = str(make_app().make_operations(None).states(CONFIG.hosts)["web3"])
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        main = await loaded(pilot)
        hosts = main.query_one("#hosts", DataTable)
        assert str(hosts.get_cell("web3", "state")) == f"unreachable: {reason}"
        assert_state_column_on_screen(hosts)


async def test_hosts_state_cell_at_80_columns_keeps_its_start_and_the_pane_has_the_rest():
    reason = str(make_app().make_operations(None).states(CONFIG.hosts)["web3"])
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        main = await loaded(pilot)
        hosts = main.query_one("#hosts", DataTable)
        cell = str(hosts.get_cell("web3", "state"))
        assert cell.startswith("unreachable: ") and len(cell) >= len("unreachable: ") + 10
        assert cell == f"unreachable: {reason}" or cell.endswith("…")
        assert_state_column_on_screen(hosts)
        assert any(reason in line for line in main.transcript)  # the full reason, in the output pane
        await pilot.resize_terminal(120, 40)  # room again: the whole reason
        await pilot.pause()
        await pilot.pause()
        assert str(hosts.get_cell("web3", "state")) == f"unreachable: {reason}"


def assert_state_column_on_screen(table: DataTable) -> None:
    state = next(i for i, column in enumerate(table.ordered_columns) if column.key.value == "state")
    right = sum(column.get_render_width(table) for column in table.ordered_columns[:state + 1])
    assert right <= table.scrollable_content_region.width, (right, table.scrollable_content_region.width)


async def test_a_long_confirmation_keeps_its_buttons_on_screen_at_80x24():
    """Many hosts: the dialog's body scrolls inside the screen and the buttons stay visible."""
    from rich.text import Text
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        body = Text("\n".join(f"  web{i:<3} 20261128094210 → new build   venv for these requirements exists: reused"
                              for i in range(12)))
        await app.push_screen(ConfirmScreen("Deploy demo as a new build?", body, "Deploy"))
        await pilot.pause()
        screen = app.screen
        whole = Region(0, 0, 80, 24)
        dialog = screen.query_one("#dialog").region
        assert whole.contains_region(dialog)
        for button in ("#confirm", "#cancel"):
            assert dialog.contains_region(screen.query_one(button).region), button
        scroll = screen.query_one("#dialog-body")
        assert dialog.contains_region(scroll.region) and scroll.max_scroll_y > 0  # the rest is a scroll away


async def test_80x24_hosts_pane_shows_four_hosts_without_a_scrollbar_row():
    """Under 30 rows the hosts pane has room for four hosts: a horizontal scrollbar must not take one's row."""
    from releasetui.config import HostConfig
    config = dataclasses.replace(CONFIG, hosts=CONFIG.hosts + (
        HostConfig("web4", "/var/www/demo", address="web4.example.com", user="deploy"),))
    app = ReleaseApp(config, operations_factory=FakeOperations, now=lambda: NOW, tz=timezone.utc, refresh_interval=None)
    async with app.run_test(size=(80, 24)) as pilot:
        main = await loaded(pilot)
        hosts = main.query_one("#hosts", DataTable)
        assert hosts.row_count == 4
        assert hosts.max_scroll_y == 0, "a host is hidden below the pane's edge"
        assert_state_column_on_screen(hosts)


async def test_no_config_screen_fits_80_columns_without_wrapping():
    app = ReleaseApp(None, looked=["$RELEASETUI_CONFIG (not set)", "/home/someone/projects/site/hosts.yml"])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        text = app.screen.query_one("#noconfig", Static)
        lines = str(text.content).splitlines()
        assert max(len(line) for line in lines) <= text.content_region.width, lines
