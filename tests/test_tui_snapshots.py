"""SVG snapshots of the main screen, the rollback confirmation and the help screen.

Deterministic by construction: fixed host states from a fake core (tests/tuikit.py: no
disk, no hosts), a fixed clock and time zone (so "3h ago" never drifts), a fixed
terminal size.  Update with ``pytest tests/test_tui_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from tests.tuikit import make_app

SIZE = (120, 36)


async def _loaded(pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def test_main_screen(snap_compare):
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=_loaded)


def test_rollback_confirmation(snap_compare):
    async def open_rollback(pilot):
        await _loaded(pilot)
        # web1 is the only target; its cursor starts on current: two rows down is an older build.
        await pilot.press("down", "down", "r")
        await _loaded(pilot)  # r re-reads the hosts before it builds the confirmation

    app = make_app()
    app_main_targets = {"web1"}

    async def run_before(pilot):
        pilot.app.main.marked.update(app_main_targets)
        await open_rollback(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_main_screen_80x24(snap_compare):
    """The smallest common terminal: smaller hosts and output panes, shorter build cells, Status still shown."""
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=_loaded)


def test_help_screen(snap_compare):
    async def open_help(pilot):
        await _loaded(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=open_help)
