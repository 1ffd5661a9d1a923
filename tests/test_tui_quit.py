"""Keys while an operation runs, and quitting: quit asks first, stops the operation, waits for its cleanup (or
not, when asked twice), lets a switch under way finish, and prints what each host serves on exit.  Real
``local`` hosts whose install or restart waits at a gate file the test opens.
"""

from __future__ import annotations

from pathlib import Path

from releasetui.tui.dialogs import HelpScreen, QuitNowScreen, QuitWhileBusyScreen
from releasetui.tui.main import MainScreen
from tests.support.helpers import deploy_versions, gated_python
from tests.support.tuikit import app_for, confirmation, cursor_to, idle, until

SIZE = (130, 40)


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


def stuck_python(project) -> tuple[Path, Path]:
    """The next deploy (with new requirements, so a venv must be made) stops in its install step, on every host,
    until the gate file exists; return (marker, gate)."""
    marker, gate = project.dir / "installing", project.dir / "gate"
    gated_python(project, "venv", marker, gate)
    project.write_app("v-stuck", "tinylib==2.0\n# new requirements: a new venv")
    return marker, gate


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
            await confirmation(pilot, 30, "the confirmation")
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
            await confirmation(pilot, 30, "the confirmation")
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
            await confirmation(pilot, 30, "the confirmation")
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
    ids = deploy_versions(project, [("v1", "tinylib==1.0"), ("v2", "tinylib==1.0")])

    def run(self):
        async def script():
            async with self.run_test(size=SIZE) as pilot:
                await idle(pilot)
                await cursor_to(pilot, ids[0])
                await pilot.press("r")
                await confirmation(pilot, 30, "the confirmation")
                await pilot.press("y")
                await idle(pilot)
                await pilot.press("q")
        asyncio.run(script())

    monkeypatch.setattr(app_module.ReleaseApp, "run", run)
    monkeypatch.setenv("RELEASETUI_CONFIG", str(project.config))
    assert cli_main([]) == 0
    assert capsys.readouterr().out.splitlines() == [f"a  serves {ids[0]}", f"b  serves {ids[0]}",
                                                    f"live now: {ids[0]} on a, b"]
