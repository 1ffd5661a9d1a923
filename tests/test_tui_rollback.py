"""What the TUI shows of where a rollback goes (issue 14, section 2), on the fake core (tests/support/tuikit.py): the
rolled-away mark in the builds table's Status column, and why the build in the rollback dialog."""

from __future__ import annotations

import dataclasses

from textual.widgets import DataTable

from releasetui.models import HostState, Move
from releasetui.tui import confirm
from releasetui.tui.dialogs import ConfirmScreen
from tests.support.tuikit import CONFIG, NOW, FakeOperations, loaded, make_app, until

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


def test_r_on_the_build_live_everywhere_means_where_a_rollback_with_no_id_goes():
    states = marked_states()
    web1 = [CONFIG.hosts[0]]
    assert confirm.rollback_target(web1, states, CURRENT) == OLD       # the build live before the current one
    assert confirm.rollback_target(web1, states, MIDDLE) == MIDDLE     # any other build: the one chosen
    # Not live on every target (web2 is on another build, web3 could not be read): the build chosen, as chosen.
    assert confirm.rollback_target(CONFIG.hosts, states, CURRENT) == CURRENT


class AllOnCurrent(FakeOperations):
    """Every host read as web1 of :func:`marked_states`: CURRENT live everywhere, OLD the default target."""

    def states(self, hosts):
        web1 = marked_states()["web1"]
        return {h.name: dataclasses.replace(web1, name=h.name) for h in hosts}


async def test_r_pressed_on_the_live_build_opens_the_dialog_for_the_default_target():
    app = make_app(operations=AllOnCurrent)
    async with app.run_test(size=(120, 36)) as pilot:
        await loaded(pilot)
        assert app.main.selected_build() == CURRENT
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 5, "the rollback dialog")
        assert app.screen.title_text == f"Roll back to {OLD}?"
        await pilot.press("n")
