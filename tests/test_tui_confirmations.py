"""What the confirmations say against a real ``local`` host: the diff line of the d and r dialogs (and D's full
diff), what a fresh read changes, and the locks (held elsewhere, stale, still running here).
"""

from __future__ import annotations

import pytest

from releasetui.operations import Operations
from releasetui.tui.dialogs import ConfirmScreen
from tests.support.tuikit import app_for, confirmation, cursor_to, hold_lock, idle, make_incomplete, until

SIZE = (130, 40)


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
        await confirmation(pilot, 30, "the confirmation")
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
        await confirmation(pilot, 30, "the confirmation")
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
        await confirmation(pilot, 30, "the confirmation")
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
        await confirmation(pilot, 30, "the deploy confirmation")
        assert "Changes       diff unavailable: timed out (10.0.0.9:22)\n" in app.screen.body.plain
        assert f"{ids[2]} → new build" in app.screen.body.plain
        await pilot.press("n")
        await cursor_to(pilot, ids[0])
        await pilot.press("r")
        await confirmation(pilot, 30, "the rollback confirmation")
        assert "Changes: diff unavailable: timed out (10.0.0.9:22)\n" in app.screen.body.plain
        await pilot.press("y")
        await idle(pilot)
    assert project.current("box") == ids[0]


async def test_confirmations_are_built_from_a_fresh_read(deployed):
    """Changes made on the host after the last read show in the prune and rollback confirmations."""
    project, ids = deployed
    app = app_for(project)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        make_incomplete(project.roots["box"], "20200101000000")
        await pilot.press("p")
        await confirmation(pilot, 30, "the confirmation")
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


@pytest.mark.parametrize("key", ["d", "r", "p", "P"])
async def test_a_lock_held_elsewhere_refuses_up_front_without_a_dialog(deployed, key):
    """Locked after the TUI's last read: p and P read the hosts again and refuse before any dialog opens; d and r
    open theirs from the screen at once, and close it with the refusal when the fresh read finds the lock."""
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
        await confirmation(pilot, 30, "the confirmation")
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
        await confirmation(pilot, 30, "the confirmation")
        body = str(app.screen.body)
        assert f"pid {os.getpid()} is still running on this machine" in body and "STALE" not in body, body
        await pilot.press("n")
