"""What fits on the screen, at 80x24 and wider: the output pane's wrapping, the log view, the footer, the help,
notifications, the hosts' State cells, a long confirmation.

These run on the snapshot tests' fake core (tests/support/tuikit.py: fixed states, no disk, no hosts) and look
at what is drawn: widget regions and rendered lines, never sleeps.
"""

from __future__ import annotations

import dataclasses
from datetime import timezone
from pathlib import Path

import pytest
from textual.geometry import Region
from textual.widgets import DataTable, RichLog, Static

from releasetui.tui.app import ReleaseApp
from releasetui.tui.dialogs import ConfirmScreen, HelpScreen
from releasetui.tui.main import MainScreen
from releasetui.tui.screens import LogScreen
from releasetui.tui.widgets import RowTable
from tests.support.tuikit import CONFIG, NOW, FakeOperations, loaded, make_app, until, visible_footer_keys

WIDTHS = [(80, 24), (100, 30), (110, 30), (120, 40), (160, 50)]
WORDS = [f"w{i:03d}x" for i in range(60)]  # unique, so a lost word is a missing one, not a repeated one


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
