"""The fleet view, the history view, pin and roles, on fake cores (tests/support/tuikit.py): what the TUI shows and asks.

No disk and no hosts: the fakes answer fixed states and record the operations they are asked to run, so these
check what is drawn and what would be run, quickly.  The same keys against real hosts are in test_tui_keys.py.
"""

from __future__ import annotations

import threading

import pytest
from rich.text import Text
from textual.widgets import DataTable, OptionList, Static

from releasetui.diffing import DiffReport, DiffSide, build_diff
from releasetui.models import BuildInfo, HostState
from releasetui.tui.main import MainScreen
from releasetui.tui.diffview import DiffScreen, summary_line, unavailable
from releasetui.tui.fleet import FleetScreen, cell, column_labels, fleet_line, fleet_model
from releasetui.tui.historyview import HistoryScreen
from releasetui.runner import Interrupts
from releasetui.tui.confirm import quit_promise
from releasetui.tui.dialogs import ConfirmScreen, HelpScreen, QuitWhileBusyScreen, RolePickerScreen
from tests.support.tuikit import (CONFIG, DRIFTED, FAILED_BUILD, FLEET50, FLEET6, FakeOperations, FleetOperations,
                                  Gates, NOW, confirmation, gated, loaded, make_app, recording, sample_history, until,
                                  visible_footer_keys)


def plain(widget: Static) -> str:
    content = widget.content
    return content.plain if isinstance(content, Text) else str(content)


# --- the fleet model (pure) -----------------------------------------------------------------------

def states_of(currents: dict) -> dict:
    return {h: HostState(h, current=c, builds=[BuildInfo(c, complete=True, current=True)]) for h, c in currents.items()}


def test_fleet_model_names_the_hosts_off_the_majority():
    model = fleet_model(["a", "b", "c", "d"], {**states_of({"a": "2", "b": "2", "c": "1"}), "d": OSError("down")})
    assert model.majority == "2" and model.drift == {"c"}
    assert model.unknown == {"d": "unreachable: down"}
    assert model.builds == ["2", "1"]  # newest first


def test_fleet_model_without_a_majority_every_host_drifts():
    model = fleet_model(["a", "b"], states_of({"a": "2", "b": "1"}))
    assert model.majority is None and model.drift == {"a", "b"}
    agree = fleet_model(["a", "b"], states_of({"a": "2", "b": "2"}))
    assert agree.majority == "2" and not agree.drift


def test_fleet_line_counts_the_majority_and_names_the_hosts_off_it():
    def line(hosts, states):
        return fleet_line(fleet_model(hosts, states)).plain
    assert line(["a", "b"], states_of({"a": "2", "b": "2"})) == "all 2 hosts on 2"
    assert line(["a"], states_of({"a": "2"})) == "a on 2"
    assert line(["a", "b", "c", "d"], {**states_of({"a": "2", "b": "2", "c": "1"}), "d": OSError("down")}) == \
        "2/4 on 2 · drift: c · unknown: d"
    assert line(["a", "b"], states_of({"a": "2", "b": "1"})) == "2 on a · 1 on b"  # no majority: no drift either


def test_fleet_cells_mark_each_state():
    assert cell(None).plain == "· "
    assert cell(BuildInfo("1", complete=True)).plain == "● "
    assert cell(BuildInfo("1", complete=True, pinned=True)).plain == "●p"
    assert cell(BuildInfo("1", complete=True, failed=True)).plain == "✗ "
    assert cell(BuildInfo("1", complete=False)).plain == "◌ "
    assert cell(BuildInfo("1", complete=False, damaged="bad metadata")).plain == "! "
    live = cell(BuildInfo("1", complete=True, current=True))
    assert live.plain == "▶ " and "green" in str(live.style)
    assert "yellow" in str(cell(BuildInfo("1", complete=True, current=True), drifted=True).style)
    assert "red" in str(cell(BuildInfo("1", complete=True, current=True, failed=True)).style)


def test_column_labels_shorten_only_when_the_names_do_not_fit():
    names = [f"web{i:02d}" for i in range(1, 51)]
    assert column_labels(names, 400) == ({n: n for n in names}, None)
    labels, note = column_labels(names, 60)
    assert labels["web07"] == "07" and labels["web50"] == "50" and note == "host columns: web…"
    mixed, note = column_labels(["frontend-a", "db", "cache-server-1"], 10)
    assert mixed == {"frontend-a": "front…", "db": "db", "cache-server-1": "cache…"} and note is None


# --- the fleet view ----------------------------------------------------------------------------------

async def open_fleet(pilot) -> FleetScreen:
    await loaded(pilot)
    await pilot.press("v")
    await until(pilot, lambda: isinstance(pilot.app.screen, FleetScreen), what="the fleet view")
    await pilot.pause()
    return pilot.app.screen


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_fleet_view_shows_fifty_hosts_with_drift_failed_and_pinned_builds(size):
    app = make_app(FLEET50, FleetOperations)
    async with app.run_test(size=size) as pilot:
        screen = await open_fleet(pilot)
        table = screen.query_one("#fleet", DataTable)
        summary = plain(screen.query_one("#fleet-summary", Static))
        # The majority counted, the hosts off it named, the unreachable one said apart.
        assert "20261128094210 on 46 of 50 hosts" in summary, summary
        assert "20261128081500 on web04, web07 (drift)" in summary and "20261127160512 on web33 (drift)" in summary
        assert "unknown on web50" in summary
        # Every build is a row, newest first; every host a column, its header readable (the common prefix noted).
        assert [row.value for row in table.rows] == ["20261128114001", FAILED_BUILD, "20261128094210",
                                                     "20261128081500", "20261127160512", "20261125093000"]
        headers = {str(c.key.value): c.label.plain.strip() for c in table.ordered_columns[3:]}
        assert headers["web07"] == "07" and len(headers) == 50 and "host columns: web…" in summary
        assert str(table.get_cell(FAILED_BUILD, "web12")).strip() == "✗"
        assert str(table.get_cell(FAILED_BUILD, "web13")).strip() == "·"
        assert str(table.get_cell("20261125093000", "web01")) == "●p"
        assert str(table.get_cell("20261128094210", "web01")).strip() == "▶"
        assert str(table.get_cell("20261128081500", "web07")).strip() == "▶"
        assert str(table.get_cell("20261128114001", "web05")).strip() == "◌"
        assert str(table.get_cell("20261128094210", "web50")).strip() == "?"
        # Drift is highlighted: the header and the live cell of web07, not web08's.
        label = {str(c.key.value): c.label for c in table.ordered_columns}
        assert "yellow" in str(label["web07"].style) and "yellow" not in str(label["web08"].style)
        assert "yellow" in str(table.get_cell("20261128081500", "web07").style)
        assert str(table.get_cell("20261128094210", "live")) == "46"
        # The cursor starts on the build the fleet serves; the detail says where it is and is not.
        assert screen.selected_build() == "20261128094210"
        detail = plain(screen.query_one("#fleet-detail", Static))
        assert "live on 46 hosts" in detail and "missing" not in detail
        await pilot.press("up")
        detail = plain(screen.query_one("#fleet-detail", Static))
        assert "failed on web02, web12" in detail and "missing on 47 hosts" in detail, detail


async def test_fleet_view_scrolls_the_hosts_by_whole_columns_at_80_columns():
    app = make_app(FLEET50, FleetOperations)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_fleet(pilot)
        table = screen.query_one("#fleet", DataTable)
        assert table.max_scroll_x > 0  # fifty hosts do not fit in 80 columns...
        fixed = sum(c.get_render_width(table) for c in table.ordered_columns[:3])
        visible = table.scrollable_content_region.width - fixed
        assert visible // 3 >= 15  # ...but at least fifteen do, three columns each
        stops = table.column_stops()
        for _ in range(5):
            await pilot.press("right")
        assert table.scroll_x == stops[5]  # five hosts on, never half a column beside the fixed ones
        await pilot.press("left")
        assert table.scroll_x == stops[4]
        await pilot.press("f5")  # a re-read redraws the matrix: the columns stay where they were scrolled to
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.pause()
        assert table.scroll_x == stops[4]
        for _ in range(60):
            await pilot.press("right")
        assert table.scroll_x == table.max_scroll_x  # the last host is reachable


async def test_fleet_view_r_confirms_the_rollback_for_the_targets_then_shows_its_progress():
    calls: list = []
    app = make_app(FLEET50, recording(FleetOperations, calls))
    async with app.run_test(size=(120, 40)) as pilot:
        main = await loaded(pilot)
        # The workers are the targets (web50, one of them, is unreachable: mark three by hand).
        main.marked = {"web47", "web48", "web49"}
        screen = await open_fleet(pilot)
        assert "targets: 3 hosts (web47..web49)" in plain(screen.query_one("#fleet-summary", Static))
        await pilot.press("down")  # from 20261128094210 to 20261128081500
        assert screen.selected_build() == "20261128081500"
        await pilot.press("r")
        await confirmation(pilot, what="the confirmation")
        body = str(app.screen.body)
        assert body.startswith("Targets       3 hosts (web47..web49)\n"), body
        assert "all 3 hosts: 20261128094210 → 20261128081500, same virtualenv" in body, body
        await pilot.press("y")
        await until(pilot, lambda: calls and main.busy is None, what="the rollback")
        assert calls == [("rollback", ["web47", "web48", "web49"], "20261128081500")]
        assert isinstance(app.screen, MainScreen)  # back where the progress and the outcome are
        assert any("rollback ok" in line for line in main.transcript)


async def test_fleet_view_r_refused_like_the_builds_table():
    """A build missing on a target: the same refusal as from the builds table, and no dialog."""
    calls: list = []
    app = make_app(FLEET6, recording(FleetOperations, calls))
    async with app.run_test(size=(120, 40)) as pilot:
        main = await loaded(pilot)
        main.marked = {"web01", "web02", "web03"}
        screen = await open_fleet(pilot)
        while screen.selected_build() != "20261127160512":
            await pilot.press("down")
        await pilot.press("r")
        await until(pilot, lambda: any("rollback refused" in line for line in main.transcript), what="the refusal")
        assert not isinstance(app.screen, ConfirmScreen) and isinstance(app.screen, FleetScreen)
        assert any("web03" in line and "does not exist" in line for line in main.transcript)
        assert calls == []


async def test_fleet_view_keys_are_dimmed_while_an_operation_runs():
    app = make_app(FLEET6, FleetOperations)
    async with app.run_test(size=(120, 40)) as pilot:
        main = await loaded(pilot)
        screen = await open_fleet(pilot)
        main.busy = "deploy"
        assert screen.check_action("rollback", ()) is None and screen.check_action("pin", ()) is None
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen) and main.preparing is None
        main.busy = None
        assert screen.check_action("rollback", ()) is True


async def test_fleet_view_redraws_when_the_hosts_are_read_again():
    app = make_app(FLEET6, FleetOperations)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_fleet(pilot)
        table = screen.query_one("#fleet", DataTable)
        assert str(table.get_cell("20261128094210", "web04")).strip() == "●"
        DRIFTED.pop("web04")
        try:
            await pilot.press("f5")
            await until(pilot, lambda: str(table.get_cell("20261128094210", "web04")).strip() == "▶",
                        what="the redraw")
            assert "20261128094210 on all" not in plain(screen.query_one("#fleet-summary", Static))  # web06: unknown
            assert "drift" not in plain(screen.query_one("#fleet-summary", Static))
        finally:
            DRIFTED["web04"] = "20261128081500"
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


# --- pin ---------------------------------------------------------------------------------------------

async def test_pin_key_unpins_a_build_pinned_everywhere_and_pins_one_that_is_not():
    calls: list = []
    app = make_app(FLEET6, recording(FleetOperations, calls))
    async with app.run_test(size=(120, 40)) as pilot:
        main = await loaded(pilot)
        main.marked = {"web01", "web02"}
        builds = main.query_one("#builds", DataTable)
        assert str(builds.get_cell("20261125093000", "status")) == "complete, pinned"  # pinned, said in the table
        builds.focus()
        await pilot.press("end")  # the oldest build: pinned on every host
        await pilot.press("P")
        await confirmation(pilot, what="the confirmation")
        assert app.screen.title_text == "Unpin build 20261125093000?"
        assert "web01, web02: complete → unpinned" in str(app.screen.body)
        await pilot.press("y")
        await until(pilot, lambda: calls and main.busy is None, what="the unpin")
        await pilot.press("up")  # 20261127160512: not pinned
        assert main.selected_build() == "20261127160512"
        await pilot.press("P")
        await confirmation(pilot, what="the confirmation")
        assert app.screen.title_text == "Pin build 20261127160512?"
        assert "web01, web02: complete → pinned" in str(app.screen.body)
        await pilot.press("n")
    assert calls == [("unpin", ["web01", "web02"], "20261125093000")]


async def test_pin_is_refused_up_front_where_the_build_is_missing():
    calls: list = []
    app = make_app(FLEET6, recording(FleetOperations, calls))
    async with app.run_test(size=(120, 40)) as pilot:
        main = await loaded(pilot)
        main.marked = {"web01", "web02"}
        screen = await open_fleet(pilot)
        await pilot.press("home", "down")  # the failed build: it exists on web02 only
        assert screen.selected_build() == FAILED_BUILD
        await pilot.press("P")
        await until(pilot, lambda: any("pin refused" in line for line in main.transcript), what="the refusal")
        assert any(f"web01: build {FAILED_BUILD} does not exist there" in line for line in main.transcript)
        assert not isinstance(app.screen, ConfirmScreen)
    assert calls == []


async def test_pin_from_the_fleet_view_shows_a_failed_build_as_failed():
    calls: list = []
    app = make_app(FLEET6, recording(FleetOperations, calls))
    async with app.run_test(size=(120, 40)) as pilot:
        main = await loaded(pilot)
        main.marked = {"web02"}
        screen = await open_fleet(pilot)
        await pilot.press("home", "down")
        assert screen.selected_build() == FAILED_BUILD
        await pilot.press("P")
        await confirmation(pilot, what="the confirmation")
        body = app.screen.body
        assert "web02: failed → pinned" in body.plain
        assert any("red" in str(span.style) for span in body.spans)
        await pilot.press("y")
        await until(pilot, lambda: calls and main.busy is None, what="the pin")
        assert isinstance(app.screen, MainScreen)
    assert calls == [("pin", ["web02"], FAILED_BUILD)]


# --- roles -----------------------------------------------------------------------------------------------

async def test_hosts_table_shows_roles_and_m_marks_a_role():
    app = make_app(FLEET6, FleetOperations)
    async with app.run_test(size=(120, 40)) as pilot:
        main = await loaded(pilot)
        hosts = main.query_one("#hosts", DataTable)
        assert str(hosts.get_cell("web01", "roles")) == "web" and str(hosts.get_cell("web06", "roles")) == "worker"
        assert "targets: all 6 hosts" in hosts.border_title
        hosts.focus()
        await pilot.press("end")  # web06, a worker
        await pilot.press("M")
        await until(pilot, lambda: isinstance(app.screen, RolePickerScreen), what="the role picker")
        options = app.screen.query_one("#roles", OptionList)
        assert options.get_option_at_index(options.highlighted).id == "worker"  # the cursor's host's role first
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        assert [h.name for h in main.targets()] == ["web03", "web04", "web05", "web06"]
        assert "targets: role worker: 4 hosts (web03..web06)" in hosts.border_title
        assert str(hosts.get_cell("web03", "mark")) == "✓"
        await pilot.press("M", "up", "enter")  # the role "web"
        await pilot.pause()
        assert [h.name for h in main.targets()] == ["web01", "web02"]
        await pilot.press("M", "end", "enter")  # all hosts: nothing marked
        await pilot.pause()
        assert main.marked == set() and "targets: all 6 hosts" in hosts.border_title
        await pilot.press("M", "escape")  # esc leaves the targets alone
        await pilot.pause()
        assert main.marked == set() and isinstance(app.screen, MainScreen)


async def test_a_marked_role_is_named_in_the_confirmation_and_the_output():
    calls: list = []
    app = make_app(FLEET50, recording(FleetOperations, calls))
    async with app.run_test(size=(80, 24)) as pilot:
        main = await loaded(pilot)
        await pilot.press("M")  # the cursor's host, web01, is a web host: the list starts on "web"
        await until(pilot, lambda: isinstance(app.screen, RolePickerScreen), what="the role picker")
        await pilot.press("enter")
        await pilot.pause()
        main.query_one("#builds", DataTable).focus()
        await pilot.press("down", "r")  # 20261128081500, on every web host
        await confirmation(pilot, what="the confirmation")
        body = str(app.screen.body)
        assert body.startswith("Targets       role web: 46 hosts (web01..web46)\n"), body
        # The hosts that differ are said apart: web04 and web07 already serve it.
        assert "web04, web07: 20261128081500 is already current (nothing to do)" in body, body
        await pilot.press("y")
        await until(pilot, lambda: calls and main.busy is None, what="the rollback")
        assert calls[0][1] == [f"web{i:02d}" for i in range(1, 47)]
        assert "── rollback on role web: 46 hosts (web01..web46)" in main.transcript


async def test_the_output_title_groups_the_hosts_in_the_same_step():
    from releasetui.models import Event
    from releasetui.tui.running import OperationEvent
    app = make_app(FLEET50, FleetOperations)
    async with app.run_test(size=(80, 24)) as pilot:
        main = await loaded(pilot)
        main.busy = "deploy"
        for number in range(1, 51):
            main.on_operation_event(OperationEvent(Event(f"web{number:02d}", "install", "started")))
        main.on_operation_event(OperationEvent(Event("web03", "install", "ok", 1.0)))
        main.on_operation_event(OperationEvent(Event("web03", "venv", "started")))
        title = main.query_one("#output").border_title
        assert title == "Output · deploy running… install on 49 hosts, venv on web03", title
        main.busy = None


async def test_without_roles_there_is_no_roles_column_and_m_says_why():
    app = make_app()
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        main = await loaded(pilot)
        hosts = main.query_one("#hosts", DataTable)
        assert "roles" not in [c.key.value for c in hosts.ordered_columns]
        await pilot.press("M")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        assert any("No roles" in n.message for n in app._notifications)


# --- history ---------------------------------------------------------------------------------------------

async def test_history_view_lists_every_operation_newest_first_with_its_hosts():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("h")
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.entries, what="the history")
        await pilot.pause()
        screen = app.screen
        table = screen.query_one("#history", DataTable)
        entries = sample_history()
        assert table.row_count == len(entries)
        first = [str(table.get_cell_at((0, i))) for i in range(len(table.ordered_columns))]
        assert first[1] == "prune" and first[3] == "ok" and first[4] == "web1, web2"
        events = [str(table.get_cell_at((row, 1))) for row in range(table.row_count)]
        assert events == [e.event for e in reversed(entries)]
        failed = events.index("deploy")
        row = [str(table.get_cell_at((failed + 1, i))) for i in range(len(table.ordered_columns))]
        assert row[2] == "20261128081500 → 20261128094210" and row[3] == "failed on web1; switched-back on web2"
        status = plain(screen.query_one("#history-status", Static))
        assert "8 operation(s), newest first" in status and "web3: unreachable" in status
        # The CI job's deploy: its detail spells out the URL and every host's outcome.
        ci = next(i for i, e in enumerate(reversed(entries)) if e.ci_url)
        table.move_cursor(row=ci)
        await pilot.pause()
        detail = plain(screen.query_one("#history-detail", Static))
        assert "CI job: https://app.circleci.com/" in detail and "ok on all 3 hosts" in detail
        assert "by ci on runner-3" in detail and "20261125093000 → 20261127160512" in detail
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


def test_history_change_groups_the_hosts_by_where_they_came_from():
    from datetime import datetime, timezone
    from releasetui.history import HistoryEntry
    from releasetui.tui.historyview import change_text, entry_detail
    hosts = [f"web{i:02d}" for i in range(1, 51)]
    moves = {h: ("20261128054025" if h in ("web07", "web33") else "20261128054031", "20261128054258") for h in hosts}
    entry = HistoryEntry("deploy", datetime(2026, 11, 28, tzinfo=timezone.utc), hosts={h: "ok" for h in hosts},
                         moves=moves)
    assert change_text(entry) == "2 builds → 20261128054258"
    detail = entry_detail(entry, 50, timezone.utc).plain
    assert ("48 hosts (web01..web06, web08..web32, web34..web50): 20261128054031 → 20261128054258; "
            "web07, web33: 20261128054025 → 20261128054258") in detail, detail
    apart = HistoryEntry("rollback", None, hosts={"a": "ok", "b": "ok"}, moves={"a": ("2", "1"), "b": ("3", "2")})
    assert change_text(apart) == "a: 2 → 1; b: 3 → 2"


async def test_history_is_read_in_a_worker_and_the_keys_answer_meanwhile():
    gate, asked = threading.Event(), threading.Event()

    class SlowHistory(FakeOperations):
        def history(self, hosts):
            asked.set()
            gate.wait(10)
            return sample_history(), {}

    app = make_app(CONFIG, SlowHistory)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("h")
        await until(pilot, lambda: asked.is_set(), what="the read to start")
        screen = app.screen
        assert "reading…" in plain(screen.query_one("#history-status", Static))
        await pilot.press("question_mark")  # the UI answers while the read hangs
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        gate.set()
        await until(pilot, lambda: screen.entries, what="the history")
        assert "8 operation(s)" in plain(screen.query_one("#history-status", Static))


async def test_history_read_failure_is_said_not_raised():
    class Broken(FakeOperations):
        def history(self, hosts):
            raise RuntimeError("the pool is closed")

    app = make_app(CONFIG, Broken)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("h")
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen) and not app.screen.loading, what="the end")
        assert "could not read the history: the pool is closed" in plain(app.screen.query_one("#history-status"))


# --- help, exit report -----------------------------------------------------------------------------------

async def test_help_lists_the_fleet_and_history_keys():
    from releasetui.tui.dialogs import key_label
    app = make_app()
    async with app.run_test(size=(160, 60)) as pilot:
        await loaded(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        sections = dict(app.screen.sections)
        for title, bindings in (("In the fleet view (v)", FleetScreen.BINDINGS),
                                ("In the history view (h)", HistoryScreen.BINDINGS),
                                ("In the diff view (D)", DiffScreen.BINDINGS)):
            rows = sections[title]
            for binding in bindings:
                for key in binding.key.split(","):
                    row = next((r for r in rows if key_label(key) in r[0].split(" / ")), None)
                    assert row is not None and row[1] == binding.tooltip, (title, key)
        main_rows = dict(sections["Main screen"])
        assert "fleet view" in main_rows["v"] and "history" in main_rows["h"]
        assert "Pin or unpin" in main_rows["P"] and "role" in main_rows["M"]
        assert main_rows["D"].startswith("Diff: what rolling the target hosts")
        assert "Scroll the diff" in dict(sections["In the diff view (D)"])["↑ ↓ pgup pgdn"]


async def test_after_a_rollback_the_exit_report_has_one_line_per_host():
    calls: list = []
    app = make_app(FLEET6, recording(FleetOperations, calls))
    async with app.run_test(size=(120, 40)) as pilot:
        main = await loaded(pilot)
        assert app.exit_report == []  # nothing ran: nothing to say on exit
        main.marked = {"web01", "web02"}
        await open_fleet(pilot)
        await pilot.press("down", "r")
        await confirmation(pilot, what="the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: calls and main.busy is None, what="the rollback")
        await app.workers.wait_for_complete()  # the re-read after it
        await pilot.pause()
    # After the re-read, from what the hosts said (the fake core did not really switch anything).
    assert app.exit_report[:6] == ["web01  serves 20261128094210", "web02  serves 20261128094210",
                                   "web03  serves 20261128094210", "web04  serves 20261128081500",
                                   "web05  serves 20261128094210", "web06  unknown (timed out (10.0.1.6:22))"]
    assert app.exit_report[6].startswith("live now: 20261128094210 on 4 hosts")


# --- failed builds are marked wherever builds are offered ------------------------------------------------

async def test_a_failed_current_build_shows_as_current_failed_in_red_and_as_failed_where_offered():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        main = await loaded(pilot)
        builds = main.query_one("#builds", DataTable)
        status = builds.get_cell("20261128094210", "status")
        assert str(status) == "current, failed" and "red" in str(status.style)
        # Offered in the fleet view: a red ▶ where it is live and failed.
        screen = await open_fleet(pilot)
        live = screen.query_one("#fleet", DataTable).get_cell("20261128094210", "web1")
        assert live.plain.strip() == "▶" and "red" in str(live.style)
        await pilot.press("escape")
        # Offered as a rollback target (web2 rolls forward to it): the dialog says it was marked failed, in red.
        main.marked = {"web2"}
        main.host_cursor = "web2"
        main.fill_builds()
        builds.focus()
        await pilot.press("home", "down")
        assert main.selected_build() == "20261128094210"
        await pilot.press("r")
        await until(pilot, lambda: any("refused" in line for line in main.transcript)
                    or isinstance(app.screen, ConfirmScreen), what="the answer")
        # web2 is locked by another operation: refused up front, and the refusal names the holder.
        assert any("locked by another operation" in line and "bob@ci" in line for line in main.transcript)


def test_the_rollback_dialog_marks_a_failed_target_in_red():
    from releasetui.tui import confirm
    states = FakeOperations(CONFIG, None, None).states(CONFIG.hosts)
    states["web2"].lock = None
    states["web2"].build("20261128094210").failed = True  # it failed its health check there once
    outcome = confirm.rollback(CONFIG, [CONFIG.hosts[1]], states, "20261128094210", NOW, None)
    assert isinstance(outcome, confirm.Confirmation), outcome
    line = next(line for line in outcome.body.plain.splitlines() if "FAILED" in line)
    assert "web2:\n      20261128081500 → 20261128094210" in outcome.body.plain and "marked FAILED" in line
    assert any("red" in str(span.style) for span in outcome.body.spans)


def test_the_deploy_dialog_says_which_host_builds_a_wheelhouse_this_machine_cannot(monkeypatch):
    import dataclasses
    from releasetui import rules
    from releasetui.tui import confirm
    hosts = [dataclasses.replace(h, wheels="ship") for h in CONFIG.hosts[:2]]   # web3 is unreachable
    states = FakeOperations(CONFIG, None, None).states(hosts)
    for state in states.values():
        state.lock, state.platform, state.python_version = None, "Linux aarch64", "3.12.3"
    # This machine, as the dialog asks it, builds for another platform: web1, the first host, builds for all.
    monkeypatch.setattr(confirm, "builder_for", lambda hosts, states: rules.LocalBuilder("Linux x86_64", {}))
    outcome = confirm.deploy(CONFIG, hosts, states, "f" * 64, NOW)
    assert isinstance(outcome, confirm.Confirmation), outcome
    assert "from the wheelhouse built on web1" in outcome.body.plain.replace("\n      ", " "), outcome.body.plain


# --- the diff: the confirmations' line (pure) and the diff view (D) ------------------------------------------

def _side(label, files, requirements="flask==3.0\n", commit=None):
    return DiffSide(label, label, None if files is None else {p: ["f", 0o644, h, 1] for p, h in files.items()},
                    requirements, commit)


def test_summary_line_groups_hosts_and_says_why_a_diff_is_unavailable():
    old = _side("20261128100000", {"app.py": "1", "a.css": "1"})
    new = _side("20261128090000", {"app.py": "2", "a.css": "1"}, "flask==3.0\nredis==5.0.1\n")
    one = build_diff(old, new)
    assert summary_line(DiffReport.grouped("current", "x", {"web1": one}, {})) == \
        "1 file changed, requirements: +redis==5.0.1"
    other = build_diff(_side("20261128080000", {"app.py": "2", "a.css": "1"}), new)
    mixed = DiffReport.grouped("current", "x", {"web1": one, "web2": one, "web3": other},
                               {"web4": "unreachable: timed out (10.0.0.4:22)"}, ["web4"])
    assert summary_line(mixed) == ("web1, web2: 1 file changed, requirements: +redis==5.0.1; "
                                   "web3: no file changes, requirements: +redis==5.0.1; "
                                   "web4: diff unavailable: unreachable: timed out (10.0.0.4:22)")
    # Every host failed: said once, with the hosts when there are several.
    alone = DiffReport.grouped("current", "x", {}, {"web1": "unreachable: connection refused"}, ["web1"])
    assert summary_line(alone) == "diff unavailable: unreachable: connection refused"
    both = DiffReport.grouped("current", "x", {}, {"a": "build 1 does not exist there", "b": "unreachable: x"})
    assert summary_line(both) == "diff unavailable: a: build 1 does not exist there; b: unreachable: x"
    # A build made before manifests were kept: what is known still follows.
    unknown = build_diff(_side("20261128100000", {"app.py": "1"}), _side("20261101000000", None, "flask==2.0\n"))
    assert summary_line(DiffReport.grouped("current", "x", {"web1": unknown}, {})) == (
        "diff unavailable: 20261101000000 has no file list (made before releasetui kept one); "
        "requirements: +flask==2.0, -flask==3.0")
    # Many groups: three named, the rest counted (the diff view has them all).
    many = {f"web{i}": build_diff(_side(f"2026112810000{i}", {"app.py": str(i)}), new) for i in range(5)}
    line = summary_line(DiffReport.grouped("current", "x", many, {}))
    assert line.count("file") == 3 and line.endswith("; … 2 more groups of hosts"), line
    assert unavailable(RuntimeError("")) == "diff unavailable: RuntimeError"


class DiffsRecorded(FleetOperations):
    """The fleet, its diffs recorded in ``calls`` too (the fakes record only what changes hosts)."""

    def diff(self, hosts, from_id=None, to_id=None, source=None, ref=None):
        self.calls.append(("diff", [h.name for h in hosts], to_id))
        return super().diff(hosts, from_id, to_id)


async def test_D_from_the_fleet_view_shows_the_hosts_grouped_and_goes_back_there():
    calls: list = []
    app = make_app(FLEET6, recording(DiffsRecorded, calls))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("v")
        fleet = app.screen
        await pilot.press("down", "down")  # 20261127160512: pruned on web03
        assert fleet.selected_build() == "20261127160512"
        await pilot.press("D")
        await until(pilot, lambda: isinstance(app.screen, DiffScreen) and not app.screen.loading, what="the diff")
        screen = app.screen
        assert ("diff", [h.name for h in FLEET6.hosts], "20261127160512") in calls
        lines = screen.text.splitlines()
        assert lines[0] == ("3 hosts (web01, web02, web05): 20261128094210 (current, git c0ffee1234, dirty) → "
                            "20261127160512 (git 9d81e0c4aa)")
        assert "web04: 20261128081500 (current, git c0ffee1234) → 20261127160512 (git 9d81e0c4aa)" in lines
        assert "    - migrations/0002_email.sql" in lines and "    - c0ffee1234 Email on new notes" in lines
        assert "web03: diff unavailable: build 20261127160512 does not exist there" in lines
        assert "web06: diff unavailable: unreachable: timed out (10.0.1.6:22)" in lines
        status = plain(screen.query_one("#diff-status", Static))
        assert status.startswith("all 6 hosts: current → 20261127160512 · the hosts differ: 2 groups · "
                                 "diff unavailable on web03, web06"), status
        body = screen.query_one("#diff")
        assert body.has_focus and body.max_scroll_y > 0  # longer than the screen: it scrolls
        await pilot.press("pagedown")
        await pilot.pause()
        assert body.scroll_y > 0
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is fleet


async def test_D_reads_in_a_worker_and_the_keys_answer_meanwhile():
    gate, asked = threading.Event(), threading.Event()

    class SlowDiff(FakeOperations):
        def diff(self, hosts, from_id=None, to_id=None, source=None, ref=None):
            asked.set()
            gate.wait(10)
            return super().diff(hosts, from_id, to_id)

    app = make_app(CONFIG, SlowDiff)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        app.main.marked = {"web1"}
        await pilot.press("down", "down", "D")
        await until(pilot, lambda: asked.is_set(), what="the read to start")
        screen = app.screen
        assert isinstance(screen, DiffScreen) and "reading…" in plain(screen.query_one("#diff-status", Static))
        await pilot.press("question_mark")  # the UI answers while the read hangs
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        gate.set()
        await until(pilot, lambda: not screen.loading, what="the diff")
        assert screen.text.startswith("web1: 20261128094210 (current, git c0ffee1234, dirty) → 20261127160512")
        assert "web2" not in screen.text  # the targets only


async def test_D_that_cannot_read_says_why_and_f5_reads_again():
    class Broken(FakeOperations):
        fail = True

        def diff(self, hosts, from_id=None, to_id=None, source=None, ref=None):
            if Broken.fail:
                raise RuntimeError("the pool is closed")
            return super().diff(hosts, from_id, to_id)

    app = make_app(CONFIG, Broken)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("down", "D")
        await until(pilot, lambda: isinstance(app.screen, DiffScreen) and not app.screen.loading, what="the end")
        assert app.screen.text == "diff unavailable: the pool is closed"
        Broken.fail = False
        await pilot.press("f5")
        await until(pilot, lambda: not app.screen.loading and "web1:" in app.screen.text, what="the diff")


async def test_the_rollback_dialog_shows_the_diff_line_read_with_the_states():
    class Recorded(FakeOperations):
        def diff(self, hosts, from_id=None, to_id=None, source=None, ref=None):
            self.calls.append(("diff", [h.name for h in hosts], to_id))
            return super().diff(hosts, from_id, to_id)

    calls: list = []
    app = make_app(CONFIG, recording(Recorded, calls))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        app.main.marked = {"web1"}
        await pilot.press("down", "down", "r")
        await confirmation(pilot, what="the confirmation")
        assert ("diff", ["web1"], "20261127160512") in calls
        assert ("Changes: 5 files changed (1 removed), requirements: -redis==5.0.1, 2\n"
                "         commits undone: Email on new notes; Cache the notes list in\n"
                "         redis\n") in app.screen.body.plain, app.screen.body.plain
        await pilot.press("n")
        calls.clear()
        await pilot.press("p")  # prune re-reads the hosts, and asks for no diff
        await until(pilot, lambda: app.main.preparing is None, what="the prune's read")
        assert not [c for c in calls if c[0] == "diff"]


# --- the quit dialog follows the operation --------------------------------------------------------------

def gated_app(tmp_path, gates):
    """The app over three reachable hosts whose deploy waits at ``gates``; the source is a real directory."""
    import dataclasses
    (tmp_path / "requirements.txt").write_text("flask==3.0.3\n")
    return make_app(dataclasses.replace(CONFIG, source=tmp_path), gated(gates))


async def start_gated_deploy(pilot, gates) -> MainScreen:
    main = await loaded(pilot)
    await pilot.press("d")
    await confirmation(pilot, what="the deploy confirmation")
    await pilot.press("y")
    await until(pilot, lambda: main.busy == "deploy" and gates.interrupts is not None, what="the deploy to start")
    return main


def dialog_text(app) -> str:
    return plain(app.screen.query_one("#dialog-text", Static))


async def test_the_quit_dialog_follows_the_deploy_and_after_it_finished_y_just_quits(tmp_path):
    """q while preparing says quitting aborts; the dialog then says the switch finishes, then that the deploy has
    finished; y after that quits without stopping anything (it never said it would abort)."""
    gates = Gates()
    app = gated_app(tmp_path, gates)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            main = await start_gated_deploy(pilot, gates)
            await pilot.press("q")
            assert isinstance(app.screen, QuitWhileBusyScreen)
            assert "has not switched any host. Quitting aborts it" in dialog_text(app)
            gates.switch.set()  # the deploy goes into its switch while the dialog stays open
            await until(pilot, lambda: "is switching the hosts. Quitting lets the switch finish" in dialog_text(app),
                        what="the dialog to say the switch finishes")
            assert "aborts" not in dialog_text(app)
            gates.finish.set()  # ...and ends
            await until(pilot, lambda: "deploy has finished" in dialog_text(app), what="the dialog to say it finished")
            text = dialog_text(app)
            assert "deploy has finished: deploy ok in 0.4s; live now: 20261128120000 on all 3 hosts." in text, text
            assert "Nothing runs now: quitting just quits" in text and "abort" not in text, text
            assert plain(app.screen.query_one("#dialog-title", Static)) == "Quit?"
            await pilot.press("y")
            await until(pilot, lambda: app.return_code is not None, what="the app to quit")
            assert gates.interrupts.presses == 0  # nothing was stopped: it had finished
            assert not any("stopping deploy" in line for line in main.transcript)
    finally:
        gates.switch.set()
        gates.finish.set()
    assert app.return_code == 0


async def test_y_pressed_after_the_operation_moved_on_asks_again_with_the_new_words(tmp_path, monkeypatch):
    """The words on screen said "aborts", the deploy has begun switching meanwhile: y does not act on the old
    words; the dialog says what quitting does now and the next y does that (the switch finishes)."""
    monkeypatch.setattr(QuitWhileBusyScreen, "POLL", 3600)  # the dialog does not redraw by itself here
    gates = Gates()
    app = gated_app(tmp_path, gates)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            main = await start_gated_deploy(pilot, gates)
            await pilot.press("q")
            assert "Quitting aborts it" in dialog_text(app)
            gates.switch.set()
            await until(pilot, lambda: gates.interrupts.phase == "activate", what="the switch")
            await pilot.press("y")
            assert isinstance(app.screen, QuitWhileBusyScreen) and gates.interrupts.presses == 0
            assert "Quitting lets the switch finish" in dialog_text(app)
            await pilot.press("y")
            await until(pilot, lambda: gates.interrupts.presses == 1, what="the stop")
            assert main.quitting and app.return_code is None  # the switch goes on to its end...
            gates.finish.set()
            await until(pilot, lambda: app.return_code is not None, what="the app to quit")  # ...then it quits
    finally:
        gates.switch.set()
        gates.finish.set()


def test_interrupts_say_what_a_first_stop_does_in_each_wave():
    interrupts = Interrupts()
    assert interrupts.outlook() == "abort"
    assert interrupts.enter_activation()
    assert interrupts.outlook() == "switch"  # activation began, its waves not said yet
    interrupts.begin_wave(1, 3)
    assert interrupts.outlook() == "back"
    interrupts.begin_wave(3, 3)
    assert interrupts.outlook() == "finish"


@pytest.mark.parametrize("operation, outlook, wave, waves, words", [
    ("deploy", "abort", 0, 0, "has not switched any host. Quitting aborts it: nothing is switched, the partial "
                              "build is removed"),
    ("rollback", "abort", 0, 0, "has not switched any host. Quitting aborts it: nothing is switched and the locks"),
    ("deploy", "back", 1, 3, "switching wave 1 of 3. Quitting lets this wave finish, then switches every host it "
                             "switched back"),
    ("rollback", "finish", 3, 3, "switching the hosts (the last wave, 3 of 3). Quitting lets the switch finish"),
    ("prune", "abort", 0, 0, "stops it if it is still reading the hosts"),
    ("unlock", "abort", 0, 0, "Quitting lets it finish"),
])
def test_the_quit_promise_is_what_a_stop_does_then(operation, outlook, wave, waves, words):
    promise = quit_promise(operation, outlook, wave, waves)
    assert words in promise.body.plain, promise.body.plain
    assert promise.danger and promise.title == "Quit while an operation runs?"


# --- the main screen at 80x24 with fifty hosts ------------------------------------------------------------

def drawn(table: DataTable) -> list[str]:
    """The table's lines as painted now (from its render caches, as the screen gets them)."""
    return [table.render_line(y).text for y in range(table.size.height)]


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_a_table_painted_before_it_settles_draws_whole_ids(size):
    """After p ("Nothing to prune") or a rollback from the fleet view, the tables are refilled and painted at
    once (a screen coming back, a dialog closing); the hosts' Current column showed `2026112` until f5."""
    app = make_app(FLEET6, FleetOperations)
    async with app.run_test(size=size) as pilot:
        main = await loaded(pilot)
        hosts, builds = main.query_one("#hosts", DataTable), main.query_one("#builds", DataTable)
        main.fill_hosts()  # what every read of the hosts does...
        main.fill_builds()
        drawn(hosts), drawn(builds)  # ...and a paint before the tables' next idle
        await pilot.pause()
        await pilot.pause()
        assert any("web01" in line and "20261128094210 ≠" in line for line in drawn(hosts)), drawn(hosts)
        assert any("20261128081500" in line and "complete" in line for line in drawn(builds)), drawn(builds)


class SubjectOperations(FleetOperations):
    """The fleet, its builds with a commit subject each."""

    def states(self, hosts):
        states = super().states(hosts)
        for state in states.values():
            for build in getattr(state, "builds", []):
                build.git_subject = f"Release notes for {build.id[4:8]}"
        return states


async def test_80x24_with_fifty_hosts_shows_the_fleet_the_builds_whole_and_the_keys_to_run():
    """The 80x24 choice: five host rows and the fleet in one line under them (what is live where, the hosts that
    drift or cannot be read); five builds with every column on screen (By as the user, the subject cut to
    what is left; the commit's dirty `+` never cut); the footer keeps d r l p m v h q ?."""
    app = make_app(FLEET50, SubjectOperations)
    async with app.run_test(size=(80, 24)) as pilot:
        main = await loaded(pilot)
        await pilot.pause()
        hosts = main.query_one("#hosts", DataTable)
        rows = [line for line in drawn(hosts) if line.strip().startswith(("web", "✓"))]
        assert len(rows) >= 5, drawn(hosts)
        summary = Text.from_markup(str(hosts.border_subtitle)).plain
        assert summary == "46/50 on 20261128094210 · drift: web04, web07, web33 · unknown: web50", summary
        assert hosts.region.bottom <= 10  # the summary line is on screen, under the rows
        builds = main.query_one("#builds", DataTable)
        assert builds.scrollable_content_region.height - 1 >= 5  # the header, then five builds
        labels = [column.label.plain for column in builds.ordered_columns]
        assert labels[:7] == [" ", "Build", "Status", "Age", "Reqs", "Git", "By"] and labels[7].startswith("Su")
        width = sum(column.get_render_width(builds) for column in builds.ordered_columns)
        assert width <= builds.scrollable_content_region.width  # nothing cut at the right edge
        lines = drawn(builds)
        live = next(line for line in lines if "20261128094210" in line)
        assert "c0ffee12+" in live and "alice " in live and "Release" in live, lines
        keys = set(visible_footer_keys(app.screen))
        assert {"deploy", "rollback", "logs", "prune", "mark", "fleet", "history", "quit_app", "help"} <= keys, keys


async def test_a_manual_lock_shows_why_deploys_are_held_in_the_hosts_table():
    from releasetui.models import LockInfo

    class Held(FakeOperations):
        def states(self, hosts):
            states = super().states(hosts)
            states["web2"].lock = LockInfo(who="carol@ops", where="laptop", since="2026-11-28T11:58:00Z",
                                           operation="lock", message="incident 4711: hold deploys")
            return states

    app = make_app(operations=Held)
    async with app.run_test(size=(160, 40)) as pilot:
        main = await loaded(pilot)
        hosts = main.query_one("#hosts", DataTable)
        row = [str(cell) for cell in hosts.get_row("web2")]
        assert "HELD: incident 4711: hold deploys (carol@ops since 11:58Z)" in row, row


async def test_the_header_names_the_stage():
    import dataclasses

    app = make_app(config=dataclasses.replace(CONFIG, stage="production", stages=("staging", "production")))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        assert app.sub_title.startswith("demo · stage production · ")


async def test_s_opens_another_stage_and_is_not_there_without_stages():
    import dataclasses

    from releasetui.tui.dialogs import StagePickerScreen

    app = make_app(config=dataclasses.replace(CONFIG, stage="staging", stages=("staging", "production")))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("S")
        await pilot.pause()
        assert isinstance(app.screen, StagePickerScreen)
        await pilot.press("down", "enter")
        await pilot.pause()
    assert app.next_stage == "production"
    plain = make_app()
    async with plain.run_test(size=(120, 40)) as pilot:
        main = await loaded(pilot)
        await pilot.press("S")
        await pilot.pause()
        assert plain.screen is main and plain.next_stage is None


def test_run_app_opens_the_picked_stage(tmp_path, monkeypatch):
    import argparse

    from releasetui.tui import app as app_module

    (tmp_path / "hosts.yml").write_text("project: shop\nroot: /srv/shop\nstages: [staging, production]\n")
    for stage in ("staging", "production"):
        (tmp_path / f"hosts.{stage}.yml").write_text(f"hosts: {{{stage}1: {{transport: local, root: /srv/{stage}}}}}\n")
    opened = []

    def run(self):
        opened.append((self.config.stage, [h.name for h in self.hosts]))
        self.next_stage = "production" if len(opened) == 1 else None

    monkeypatch.setattr(app_module.ReleaseApp, "run", run)
    args = argparse.Namespace(config=str(tmp_path / "hosts.yml"), stage="staging", top_hosts=[], top_roles=[])
    assert app_module.run_app(args) == 0
    assert opened == [("staging", ["staging1"]), ("production", ["production1"])]
