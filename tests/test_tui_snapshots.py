"""SVG snapshots: the main screen, the rollback confirmation, the help, the fleet view and the history view.

Deterministic by construction: fixed host states from a fake core (tests/support/tuikit.py: no
disk, no hosts), a fixed clock and time zone (so "3h ago" never drifts), a fixed
terminal size.  Update with ``pytest tests/test_tui_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from tests.support.tuikit import FLEET6, FLEET50, FleetOperations, make_app

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


async def _fleet(pilot) -> None:
    await _loaded(pilot)
    await pilot.press("v")
    await pilot.pause()


def test_fleet_view(snap_compare):
    """Six hosts: web04 drifts, web06 is unreachable, a failed build on web02, an incomplete one on web05,
    the oldest pinned everywhere."""
    assert snap_compare(make_app(FLEET6, FleetOperations), terminal_size=SIZE, run_before=_fleet)


def test_fleet_view_50_hosts_80x24(snap_compare):
    """Fifty hosts at 80x24: the hosts' numbers as headers, about twenty on screen, the rest a scroll away."""
    assert snap_compare(make_app(FLEET50, FleetOperations), terminal_size=(80, 24), run_before=_fleet)


async def _history(pilot) -> None:
    await _loaded(pilot)
    await pilot.press("h")
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.press("down", "down", "down")  # the deploy that failed on web1 and was switched back on web2
    await pilot.pause()


def test_history_view(snap_compare):
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=_history)


def test_history_view_80x24(snap_compare):
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=_history)


async def _diff(pilot) -> None:
    await _loaded(pilot)
    # The builds of web01 (its cursor on current): two rows down is 20261127160512, missing on web03.
    await pilot.press("down", "down", "D")
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def test_diff_view(snap_compare):
    """D on an older build, six hosts: web01, web02 and web05 grouped, web04 (drifted) apart, web03 without the
    build and web06 unreachable said below."""
    assert snap_compare(make_app(FLEET6, FleetOperations), terminal_size=SIZE, run_before=_diff)


def test_diff_view_80x24(snap_compare):
    assert snap_compare(make_app(FLEET6, FleetOperations), terminal_size=(80, 24), run_before=_diff)
