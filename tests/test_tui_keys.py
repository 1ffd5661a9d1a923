"""Every key of the main screen against a real ``local`` host (and rollback/prune over real SSH): what it runs and
what the screen says after.

Waiting is done by polling app state with ``pilot.pause()`` (never a sleep standing in for an assertion); each
wait has a generous deadline.  The builds come from the ``deployed`` fixture (tests/conftest.py).
"""

from __future__ import annotations

import json

import pytest
from textual.widgets import DataTable

from releasetui.tui.dialogs import ConfirmScreen, HelpScreen
from releasetui.tui.main import MainScreen
from releasetui.tui.screens import LogScreen
from tests.support.helpers import TEST_CLOCK, deploy_versions
from tests.support.tuikit import app_for, builds_table, confirmation, cursor_to, idle, make_incomplete, until

SIZE = (130, 40)


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
        await confirmation(pilot, 10, "the confirmation")
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
        await confirmation(pilot, 10, "the confirmation")
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
        await confirmation(pilot, 10, "the confirmation")
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


async def test_deploy_takes_its_build_id_when_it_starts_not_when_the_dialog_opened(deployed):
    """A dialog left open while somebody else deploys: the TUI's build still gets the newest id."""
    project, ids = deployed
    app = app_for(project)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await pilot.press("d")
        await confirmation(pilot, 10, "the confirmation")
        TEST_CLOCK.tick()  # later: the id a dialog-time clock would have given is now taken by an older build
        [other] = deploy_versions(project, [("v-elsewhere", "tinylib==2.0")])
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
        await confirmation(pilot, 10, "the confirmation")
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
        await confirmation(pilot, 10, "the confirmation")
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
        await confirmation(pilot, 10, "the confirmation")
        assert "ghost@gone" in str(app.screen.body)
        await pilot.press("y")
        await idle(pilot)
        assert not lock.exists()
        assert str(app.main.query_one("#hosts", DataTable).get_cell("box", "lock")) == "-"
    history = (project.roots["box"] / "history.jsonl").read_text()
    assert "unlock" in history


async def test_pin_key_pins_on_the_host_and_history_shows_it(deployed):
    from releasetui.tui.historyview import HistoryScreen
    project, ids = deployed
    app = app_for(project)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await cursor_to(pilot, ids[0])
        await pilot.press("P")
        await confirmation(pilot, 30, "the confirmation")
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
        await confirmation(pilot, 30, "the confirmation")
        assert app.screen.title_text == f"Unpin build {ids[0]}?"
        await pilot.press("y")
        await idle(pilot)
        assert str(builds_table(app).get_cell(ids[0], "status")) == "complete"
    assert [r["event"] for r in project.history("box")][-2:] == ["pin", "unpin"]


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
    ids = deploy_versions(project, [("v1", "tinylib==1.0"), ("v2", "tinylib==1.0")])
    app = app_for(project)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        app.main.query_one("#hosts", DataTable).focus()
        await pilot.press("down")  # host b
        await pilot.press("m")
        assert [h.name for h in app.main.targets()] == ["b"]
        await cursor_to(pilot, ids[0])
        await pilot.press("r")
        await confirmation(pilot, 10, "the confirmation")
        assert " a " not in str(app.screen.body)
        await pilot.press("y")
        await idle(pilot)
        hosts = app.main.query_one("#hosts", DataTable)
        assert "≠" in str(hosts.get_cell("a", "current"))  # hosts now disagree, and it shows
    assert project.current("a") == ids[1] and project.current("b") == ids[0]


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


@pytest.mark.ssh
async def test_rollback_and_prune_over_ssh(ssh_project):
    project = ssh_project
    ids = deploy_versions(project, [("v1", "tinylib==1.0"), ("v2", "tinylib==2.0")])
    for root in project.roots.values():
        make_incomplete(root, "20200101000000")
    app = app_for(project)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        assert {str(app.main.query_one("#hosts", DataTable).get_cell(h, "state")) for h in ("web1", "web2")} == {"ok"}
        await cursor_to(pilot, ids[0])
        await pilot.press("r")
        await confirmation(pilot, 10, "the confirmation")
        body = str(app.screen.body)
        assert f"web1, web2: {ids[1]} → {ids[0]}, switches virtualenv" in body
        await pilot.press("y")
        await idle(pilot)
        assert project.current("web1") == ids[0] and project.current("web2") == ids[0]

        await pilot.press("p")
        await confirmation(pilot, 10, "the confirmation")
        assert "web1, web2: remove 20200101000000 (incomplete)" in str(app.screen.body)
        await pilot.press("y")
        main = await idle(pilot)
        assert any("prune ok" in line for line in main.transcript)
    for root in project.roots.values():
        assert not (root / "builds" / "20200101000000").exists()
        assert (root / "builds" / ids[0]).is_dir() and (root / "builds" / ids[1]).is_dir()
