"""The d and r dialogs answer at once (issue 16, section 5): they open from the states already on screen, then
redraw from a fresh read made beside them; a key that has to wait says so at once.  On fake cores whose reads the
test holds (tests/support/tuikit.py): a dialog that waited for a read would never open here."""

from __future__ import annotations

import dataclasses

from textual.widgets import Static

from releasetui.tui.dialogs import ConfirmScreen
from tests.support.tuikit import CONFIG, FLEET6, FakeOperations, Reads, loaded, make_app, steady_fleet, until


def with_source(config, tmp_path):
    """``config`` with a real source directory (the deploy dialog hashes its requirements)."""
    (tmp_path / "requirements.txt").write_text("flask==3.0.3\n")
    return dataclasses.replace(config, source=tmp_path)


def dialog_text(app) -> str:
    return str(app.screen.query_one("#dialog-text", Static).content)


async def test_deploy_dialog_opens_from_the_screen_while_the_reads_hang_then_shows_the_diff(tmp_path):
    reads = Reads()
    app = make_app(with_source(FLEET6, tmp_path), steady_fleet(reads))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        done = reads.done
        reads.gate.clear()  # every read from now on hangs until the gate opens
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 5, "the deploy dialog")
        assert reads.done == done, "the dialog waited for a remote read"
        text = dialog_text(app)
        assert "Changes       reading the hosts…" in text and "20261128094210 → new build" in text, text
        reads.gate.set()
        await until(pilot, lambda: "reading the hosts" not in dialog_text(app), 5, "the diff")
        assert "Changes       3 files changed (1 added), requirements:" in dialog_text(app)
        assert reads.done == done + 2  # the fresh read of the states, and the diff beside it
        await pilot.press("n")


async def test_rollback_dialog_opens_from_the_screen_while_the_reads_hang():
    reads = Reads()
    app = make_app(FLEET6, steady_fleet(reads))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        reads.gate.clear()
        done = reads.done
        await pilot.press("down", "down", "r")  # two builds older than current
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 5, "the rollback dialog")
        assert reads.done == done
        assert app.screen.title_text == "Roll back to 20261127160512?"
        assert "Changes: reading the hosts…" in dialog_text(app)
        reads.gate.set()
        await until(pilot, lambda: "reading the hosts" not in dialog_text(app), 5, "the diff")
        await pilot.press("y")
        await until(pilot, lambda: app.main.busy is None and any("rollback ok" in line
                                                                  for line in app.main.transcript), 5, "the rollback")


async def test_a_refusal_waits_for_a_fresh_read_and_says_so_meanwhile(tmp_path):
    """Targets on screen that refuse (web2 locked, web3 unreachable): no dialog from what may be stale; the output
    pane's title says what is read, at once, and the refusal comes from the fresh read."""
    reads = Reads()

    class Held(FakeOperations):
        def states(self, hosts):
            return reads.read(lambda: super(Held, self).states(hosts))

    app = make_app(with_source(CONFIG, tmp_path), Held)
    async with app.run_test(size=(120, 40)) as pilot:
        main = await loaded(pilot)
        reads.gate.clear()
        await pilot.press("d")
        await pilot.pause()
        assert main.output_pane().border_title == "Output · deploy: reading 3 hosts…"
        assert not isinstance(app.screen, ConfirmScreen)
        reads.gate.set()
        await until(pilot, lambda: any("deploy refused" in line for line in main.transcript), 5, "the refusal")
        assert main.output_pane().border_title == "Output"


async def test_a_dimmed_key_says_what_it_waits_for():
    app = make_app(FLEET6, steady_fleet(Reads()))
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        main = await loaded(pilot)
        main.busy = "rollback"  # as while a rollback runs
        await pilot.press("d")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        assert [n.message for n in app._notifications] == ["rollback is running: deploy is possible once it has ended."]
        main.busy = None
