"""What the TUI shows of where a rollback goes (issue 14, section 2), on the fake core (tests/support/tuikit.py): the
rolled-away mark in the builds table's Status column, and why the build in the rollback dialog."""

from __future__ import annotations

from textual.widgets import DataTable

from releasetui.models import HostState, Move
from releasetui.tui import confirm
from tests.support.tuikit import CONFIG, NOW, FakeOperations, make_app

OLD, MIDDLE, PREVIOUS, CURRENT = "20261125093000", "20261127160512", "20261128081500", "20261128094210"


def marked_states() -> dict:
    """The fake fleet after: deploy OLD, MIDDLE, PREVIOUS; rollback to OLD (PREVIOUS rolled-away); deploy CURRENT."""
    states = FakeOperations(CONFIG, None, None).states(CONFIG.hosts)
    for state in states.values():
        if isinstance(state, HostState):
            state.lock = None
            state.build(PREVIOUS).rolled_away = True
            state.moves = [Move("deploy", "2026-11-25T09:30:00Z", None, OLD),
                           Move("deploy", "2026-11-27T16:05:12Z", OLD, MIDDLE),
                           Move("deploy", "2026-11-28T08:15:00Z", MIDDLE, PREVIOUS),
                           Move("rollback", "2026-11-28T09:00:00Z", PREVIOUS, OLD),
                           Move("deploy", "2026-11-28T09:42:10Z", OLD, CURRENT)]
    return states


class MarkedOperations(FakeOperations):
    """The fake core, its hosts read as :func:`marked_states`."""

    def states(self, hosts):
        states = marked_states()
        return {h.name: states[h.name] for h in hosts}


async def test_the_builds_table_shows_a_rolled_away_build_in_its_status_column():
    app = make_app(operations=MarkedOperations)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        table = app.main.query_one("#builds", DataTable)
        status = table.get_row(PREVIOUS)[2]
        assert status.plain == "rolled-away" and "yellow" in str(status.style)


def test_the_rollback_dialog_says_why_the_build_live_before_is_the_default():
    states = marked_states()
    hosts = [CONFIG.hosts[0]]
    chosen = confirm.rollback(CONFIG, hosts, states, OLD, NOW, None)
    assert isinstance(chosen, confirm.Confirmation), chosen
    said = " ".join(chosen.body.plain.split())  # the reason wraps under its label
    assert f"Why: the build live before the current one (deploy at 2026-11-28T09:42:10Z: {OLD} → {CURRENT})" in said
    # Choosing the rolled-away build: allowed, said, and the dialog names where a rollback with no id goes.
    marked = confirm.rollback(CONFIG, hosts, states, PREVIOUS, NOW, None)
    assert isinstance(marked, confirm.Confirmation), marked
    text = " ".join(marked.body.plain.split())
    assert f"Default: {OLD}, the build live before the current one" in text
    assert "the target is marked rolled-away there (cleared when this rollback commits)" in text
