"""The releasetui TUI: hosts, their builds, and every operation two keystrokes away.

Layout (top to bottom): the hosts table, the builds of the host under the
cursor, and the output pane where each step of an operation appears as it
happens.  Remote work runs in thread workers (the core blocks); the
operations report :class:`~releasetui.models.Event` objects from their own
threads, which arrive here as messages, so the UI never waits on a host.
"""

from __future__ import annotations

import argparse
import itertools
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, tzinfo
from typing import Callable, Optional

from rich.text import Text
from textual import events, on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.coordinate import Coordinate
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Header, Input, RichLog

from ..config import Config, HostConfig, find_config, load_config
from ..stages import stage_from
from ..executors import ExecutorPool
from .. import clock, present
from ..models import Event, ExitCode, HostState, OperationResult
from ..operations import OperationError, Operations, pid_alive, source_requirements, this_machine
from ..rules import requirements_changed
from ..diffing import DiffReport
from . import confirm
from .diffview import DiffScreen, summary_line, unavailable
from .fleet import FleetScreen, fleet_line, fleet_model
from .fmt import (age_cell, created_cell, currents_disagree, event_line, fit_cell, git_cell, lock_cell, served_lines,
                  short_hash, status_text)
from .historyview import HistoryScreen
from .screens import (BUILTIN_MAIN_KEYS, ConfirmScreen, FittedFooter, HelpScreen, LogScreen, NoConfigScreen,
                      QuitNowScreen, QuitWhileBusyScreen, RolePickerScreen, RowTable, StagePickerScreen, WrapLog,
                      binding_rows)

# Actions that change hosts: one at a time, dimmed in the footer while one runs.
MUTATING_ACTIONS = {"deploy", "rollback", "prune", "unlock", "pin", "pick_stage"}

OperationsFactory = Callable[[Config, Callable[[Event], None], ExecutorPool], Operations]


class OperationEvent(Message):
    """An event reported by an operation's worker thread."""

    def __init__(self, event: Event):
        super().__init__()
        self.event = event


# What a confirmation is built from once the states are shown: the diff's one line, when one was asked for.
Then = Callable[[Optional[str]], None]
# A diff to make beside the read (deploy: current -> the source; rollback: current -> the build).
DiffRead = Callable[[Operations], DiffReport]


class StatesLoaded(Message):
    """Fresh host states (``HostState`` or the exception reading it raised), by host name.

    ``seq`` orders the reads (an older read landing late must not overwrite a newer one); ``then``
    runs once the states are shown (a confirmation built from them), given ``changes``: the one line of the
    diff read beside them (None when none was asked for).
    """

    def __init__(self, states: dict[str, object], seq: int, then: Optional[Then] = None,
                 changes: Optional[str] = None):
        super().__init__()
        self.states = states
        self.seq = seq
        self.then = then
        self.changes = changes


class OperationFinished(Message):
    """An operation ended: its result, or the one-line reason it could not start."""

    def __init__(self, name: str, result: Optional[OperationResult], error: Optional[str]):
        super().__init__()
        self.name = name
        self.result = result
        self.error = error


class MainScreen(Screen):
    """Hosts, builds and output; owns the operation keys so modal screens never trigger them."""

    # Below 30 rows the hosts and output panes shrink so the builds keep room; below 100 columns the
    # builds' cells get shorter (see fill_builds).
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]
    COMPACT_WIDTH = 100

    # The footer shows the descriptions; the help (?) lists every binding with its tooltip.
    BINDINGS = [
        Binding("d", "deploy", "Deploy", tooltip="Deploy the source as a new build on the target hosts (asks first)"),
        Binding("r", "rollback", "Rollback",
                tooltip="Roll back the target hosts to the build under the cursor (asks first)"),
        Binding("l", "logs", "Logs", tooltip="Tail the logs of the target hosts, live (f: follow on/off, esc: back)"),
        Binding("p", "prune", "Prune",
                tooltip="Prune: remove old and incomplete builds and unused venvs (lists them first)"),
        Binding("u", "unlock", "Unlock", tooltip="Unlock: remove a deploy lock left by a killed operation (asks first)"),
        Binding("P", "pin", "Pin", tooltip="Pin or unpin the build under the cursor on the target hosts "
                                           "(asks first; prune never removes a pinned build)"),
        Binding("D", "diff", "Diff", tooltip="Diff: what rolling the target hosts to the build under the cursor "
                                             "would change (files, requirements, commits)"),
        Binding("m,space", "mark", "Mark host",
                tooltip="Mark or unmark the host under the cursor; marked hosts are the targets (none marked: all)"),
        Binding("M", "mark_role", "Mark role",
                tooltip="Mark the hosts of a role as the targets (a list of the roles; the role of the host under "
                        "the cursor first)"),
        Binding("S", "pick_stage", "Stage", tooltip="Open another stage (stages: in the config): its hosts, "
                                                    "read afresh"),
        Binding("v", "fleet", "Fleet", tooltip="The fleet view: every build on every host, what each serves, and "
                                               "which hosts drift (r and P work there too)"),
        Binding("h", "history", "History", tooltip="The fleet's history: every deploy, rollback, prune, pin and "
                                                   "unlock, newest first, one line each"),
        Binding("f5", "refresh", "Refresh", tooltip="Read every host's state again (also every 30 s while idle)"),
        Binding("ctrl+r", "refresh", "Refresh", show=False),
        Binding("slash", "filter", "Filter", tooltip="Filter the builds (id, commit, who, status, hash)"),
        Binding("escape", "clear_filter", "Clear filter", show=False, tooltip="Clear the builds filter"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.busy: Optional[str] = None
        self.preparing: Optional[str] = None  # a key whose confirmation waits for fresh states
        self.quitting = False  # quit confirmed while busy: exit once the operation has cleaned up
        self.interrupted = False
        self.running_steps: dict[tuple[Optional[str], str], str] = {}
        self.compact = False
        self._filled_width = 0  # the screen width the hosts table was last fitted to
        self._read_seq = itertools.count(1)
        self._last_seq = 0  # the newest read started
        self._applied_seq = 0  # the newest read shown
        self.host_cursor: Optional[str] = None
        self.marked: set[str] = set()
        self.filter_text = ""
        self.running_ops: Optional[Operations] = None
        self._errors_shown: dict[str, str] = {}
        self.transcript: list[str] = []  # plain text of the output pane, for tests and bug reports
        self.served_changed = False  # a deploy or rollback ran: the app prints what each host serves on exit
        self.refreshing = False  # a read of the hosts is under way (the newest one started)
        self.last_name: Optional[str] = None  # the last operation run here
        self.last_outcome: Optional[str] = None  # the last operation's closing line (the quit dialog says it)

    # --- layout ---------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield RowTable(id="hosts", cursor_type="row", zebra_stripes=False)
        yield Input(id="filter", placeholder="filter builds: id, commit, who, status or hash (esc clears)")
        yield RowTable(id="builds", cursor_type="row", zebra_stripes=True)
        yield WrapLog(id="output", max_lines=2000)
        # Narrower than every key needs (about 160 columns): compact, "Mark" for "Mark host", "Role" for "Mark
        # role", then without the keys of FOOTER_OPTIONAL in that order; the help (?) has every key.
        yield FittedFooter(optional=self.footer_optional(locked=False), short={"mark": "Mark", "mark_role": "Role"})

    # The keys a narrow footer leaves out first: at 80 columns d r l p m v h q ? stay (the operations a person
    # runs, marking, the fleet and the history views); u Unlock stays too while a host shows a lock (then it
    # is the key needed), in place of m.  Pin, Diff, Role, Filter and Refresh (the hosts are read again every
    # 30 s and before every dialog) are in the help, and D's diff is in the rollback dialog.
    FOOTER_OPTIONAL = ("filter", "mark_role", "refresh", "pin", "unlock", "diff", "mark", "history")

    def footer_optional(self, locked: bool) -> tuple[str, ...]:
        """The footer's optional keys, in the order they go: u Unlock is not one while a lock is shown."""
        return tuple(a for a in self.FOOTER_OPTIONAL if not (locked and a == "unlock"))

    def on_mount(self) -> None:
        app = self.releasetui
        hosts = self.query_one("#hosts", DataTable)
        hosts.border_title = "Hosts"
        builds = self.query_one("#builds", DataTable)
        builds.border_title = "Builds"
        self.query_one("#filter", Input).display = False
        output = self.query_one("#output", RichLog)
        output.border_title = "Output"
        self.host_cursor = app.hosts[0].name if app.hosts else None
        self.compact = app.size.width < self.COMPACT_WIDTH
        self.fill_hosts()
        self.fill_builds()
        output.write(Text(f"{app.config.project}: {len(app.hosts)} host(s) from {app.config.path}. "
                          "Press ? for every key.", style="dim"))
        builds.focus()
        if app.read_on_start:
            self.action_refresh()
            # Ages ("3h ago") drift while the screen stays open; redraw them now and then.
            self.set_interval(60, self.fill_builds)
        if app.refresh_interval:
            # Somebody else may deploy or lock meanwhile: re-read now and then while nothing runs here.
            self.set_interval(app.refresh_interval, self.refresh_when_idle)

    def on_resize(self, event: events.Resize) -> None:
        """Shorter build cells below COMPACT_WIDTH columns, so every column and the commit's ``+`` stay on
        screen; the hosts' State cells and the builds' subjects take the room the new width gives them."""
        compact = event.size.width < self.COMPACT_WIDTH
        if compact != self.compact:
            self.compact = compact
            self.fill_builds()
        if event.size.width != self._filled_width:
            self._filled_width = event.size.width
            # After the layout: whether the hosts table shows a vertical scrollbar may change with the height.
            self.call_after_refresh(self.fill_hosts)
            self.call_after_refresh(self.fill_builds)

    @property
    def releasetui(self) -> "ReleaseApp":
        """The app, typed."""
        return self.app  # type: ignore[return-value]

    # --- tables ---------------------------------------------------------------

    def fill_hosts(self) -> None:
        """Redraw the hosts table from the last states read, keeping the cursor on the same host."""
        app = self.releasetui
        table = self.query_one("#hosts", RowTable)
        disagree = currents_disagree(app.states)
        # Roles only when the config gives hosts roles: without, the column would only take State's room.
        with_roles = any(h.roles for h in app.hosts)
        # Where last: it never changes (it is the config), so on a narrow terminal it is the column to lose.
        columns = [("mark", " "), ("host", "Host"), *([("roles", "Roles")] if with_roles else []),
                   ("current", "Current"), ("count", "#"), ("lock", "Lock"), ("state", "State"), ("where", "Where")]
        state_at = len(columns) - 2
        rows = []
        for host in app.hosts:
            state = app.states.get(host.name)
            mark = Text("✓", style="bold cyan") if host.name in self.marked else ""
            if state is None:
                cells = ["", "", "", Text("reading…", style="dim")]
            elif isinstance(state, Exception):
                cells = ["?", "?", "?", Text(f"unreachable: {state}", style="bold red")]
            else:
                word = Text("ok", style="green") if state.initialized else Text("not deployed yet", style="yellow")
                current = Text(state.current or "none")
                if disagree:
                    current.append(" ≠", style="bold yellow")
                lock = (Text(lock_cell(state.lock, app.now(), compact=self.compact), style="bold yellow")
                        if state.lock else Text("-", style="dim"))
                cells = [current, str(len(state.builds)), lock, word]
            roles = [Text(", ".join(host.roles) or "-", style="magenta" if host.roles else "dim")] if with_roles else []
            rows.append([mark, host.name, *roles, *cells, host.label])
        # State gets all the room left of the table's right edge (Where, the config, is the column to lose); a
        # reason longer than that keeps its start, and the output pane has all of it.
        room = self.state_room(table, columns, rows, state_at)
        for row in rows:
            row[state_at] = Text(fit_cell(row[state_at].plain, max(room, self.MIN_STATE)), style=row[state_at].style)
        # Where gets what is left; cut with "…" rather than past the edge (which costs a scrollbar row), unless
        # too little is left to say anything (then it is cut at the edge, and scrolls).
        state_width = max([len("State"), *(row[state_at].cell_len for row in rows)])
        where_room = room - state_width - 2 * table.cell_padding
        if where_room >= self.MIN_WHERE:
            for row in rows:
                row[state_at + 1] = fit_cell(row[state_at + 1], where_room)
        table.refill(columns, [(host.name, row) for host, row in zip(app.hosts, rows)])
        # The targets first: what d r p u P l act on is what a person must not misread.
        title = f"Hosts · targets: {self.targets_phrase()}"
        if disagree:
            title += " · ≠ hosts disagree on the current build"
        table.border_title = title
        self.fill_hosts_summary()
        locked = any(isinstance(state, HostState) and state.lock for state in app.states.values())
        self.query_one(FittedFooter).set_optional(self.footer_optional(locked))
        if self.host_cursor in {h.name for h in app.hosts}:
            table.move_cursor(row=table.get_row_index(self.host_cursor), animate=False)

    def fill_hosts_summary(self) -> None:
        """The hosts table's bottom line: what the fleet serves, grouped (the hosts off the majority and the
        unreachable ones named), so that a table showing a few rows of fifty still tells the whole fleet."""
        table = self.query_one("#hosts", RowTable)
        app = self.releasetui
        summary = fleet_line(fleet_model([h.name for h in app.hosts], app.states)) if app.states else Text("")
        if self.refreshing:
            summary = Text("refreshing… ", style="dim") + summary
        table.border_subtitle = summary

    MIN_STATE = 24  # "unreachable: " and the start of the reason, even when that pushes State past the edge
    MIN_WHERE = 8  # narrower than this, Where is left to the edge (and the scrollbar) rather than cut with "…"

    def state_room(self, table: DataTable, columns: list[tuple[str, str]], rows: list[list], state_at: int) -> int:
        """The columns left for the hosts' State cells (and Where after them): the table's width minus the
        columns before State (at index ``state_at``) and State's own padding."""
        width = (self.size.width or self.app.size.width) - 2  # the table's round border
        if table.show_vertical_scrollbar:
            width -= table.scrollbar_size_vertical
        padding = 2 * table.cell_padding
        before = 0
        for index, (_, label) in enumerate(columns[:state_at]):
            cells = [Text(cell) if isinstance(cell, str) else cell for cell in (row[index] for row in rows)]
            before += max([len(label), *(cell.cell_len for cell in cells)]) + padding
        return width - before - padding

    def selected_state(self) -> object:
        """The state of the host under the hosts cursor (HostState, an exception, or None before the first read)."""
        return self.releasetui.states.get(self.host_cursor) if self.host_cursor else None

    # The builds' columns: (key, label, label below COMPACT_WIDTH).  Status right after the id and Subject last:
    # what a narrow terminal cuts is at the right edge.
    BUILD_COLUMNS = [("live", " ", " "), ("id", "Build", "Build"), ("status", "Status", "Status"),
                     ("created", "Created (local)", "Age"), ("reqs", "Requirements", "Reqs"), ("git", "Git", "Git"),
                     ("who", "Deployed by", "By"), ("subject", "Subject", "Subject")]
    COMPACT_WHO = 10  # below COMPACT_WIDTH, "Deployed by" is its user (cut to this); Subject gets what is left

    def fill_builds(self) -> None:
        """Redraw the builds of the host under the cursor, newest first, honouring the filter."""
        app = self.releasetui
        table = self.query_one("#builds", RowTable)
        keep = self.selected_build()
        state = self.selected_state()
        table.border_title = f"Builds on {self.host_cursor}" if self.host_cursor else "Builds"
        table.border_subtitle = "* requirements changed · + dirty tree"
        if self.filter_text:
            table.border_title += f" · filter: {self.filter_text}"
        columns = [(key, short if self.compact else label) for key, label, short in self.BUILD_COLUMNS]
        if not isinstance(state, HostState):
            table.refill(columns, [])
            table.border_subtitle = ("reading…" if state is None else f"unreachable: {state}")
            return
        now = app.now()
        changed = requirements_changed(state.builds)
        needle = self.filter_text.lower()
        rows = []
        for build in sorted(state.builds, key=lambda b: b.id, reverse=True):
            if needle:
                haystack = " ".join([build.id, build.git_commit or "", build.deployed_by or "", build.status,
                                     build.requirements_sha256 or "", build.created_at or "",
                                     build.git_subject or ""]).lower()
                if needle not in haystack:
                    continue
            reqs = Text(short_hash(build.requirements_sha256, 4 if self.compact else 10))
            reqs.append(" *" if changed.get(build.id) else "  ", style="bold yellow")
            created = (age_cell(build.created_at, now) if self.compact
                       else created_cell(build.created_at, now, app.tz))
            # Narrow: "pinned" for "complete, pinned" (complete is what a build is unless it says otherwise).
            status = build.status.removeprefix("complete, ") if self.compact else build.status
            rows.append((build.id, [Text("▶", style="bold green") if build.current else "", build.id,
                                    status_text(status), created, reqs, git_cell(build),
                                    build.deployed_by or "-", build.git_subject or ""]))
        self.fit_builds(table, columns, rows)
        table.refill(columns, rows)
        if not state.builds:
            table.border_subtitle = "no builds yet: press d to deploy"
        target = keep if keep is not None and keep in table.rows else state.current
        if target is not None and target in table.rows:
            table.move_cursor(row=table.get_row_index(target), animate=False)

    def fit_builds(self, table: DataTable, columns: list[tuple[str, str]], rows: list[tuple[str, list]]) -> None:
        """Cut "Deployed by" and Subject (the last two cells of each row) so that every column fits the screen:
        below COMPACT_WIDTH who is its user (``alice`` of ``alice@laptop``, at most COMPACT_WHO); the subject gets
        the room left after every other column (at most 60), so nothing (the commit's dirty ``+`` least of all)
        is pushed past the edge."""
        if self.compact:
            for _, cells in rows:
                cells[-2] = fit_cell(cells[-2].partition("@")[0] or cells[-2], self.COMPACT_WHO)
        padding = 2 * table.cell_padding
        # The border, and the vertical scrollbar (counted always: whether it shows depends on the height).
        room = (self.size.width or self.app.size.width) - 2 - table.scrollbar_size_vertical
        for index, (_, label) in enumerate(columns[:-1]):
            cells = [Text(c[index]) if isinstance(c[index], str) else c[index] for _, c in rows]
            room -= max([len(label), *(cell.cell_len for cell in cells)]) + padding
        # The subject, and its label too when even that does not fit (never past the edge: a scrollbar).
        room = min(max(room - padding, 0), 60)
        columns[-1] = (columns[-1][0], fit_cell(columns[-1][1], room) if room > 1 else "")
        for _, cells in rows:
            cells[-1] = fit_cell(cells[-1], room) if room > 1 else ""

    def selected_build(self) -> Optional[str]:
        """The build id under the builds cursor, or None."""
        table = self.query_one("#builds", DataTable)
        if table.row_count == 0:
            return None
        try:
            return table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value
        except Exception:
            return None

    def targets(self) -> list[HostConfig]:
        """The hosts an operation acts on: the marked ones, or all when none is marked."""
        hosts = list(self.releasetui.hosts)
        return [h for h in hosts if h.name in self.marked] or hosts

    def roles(self) -> list[tuple[str, list[str]]]:
        """Each role and its hosts (of those this TUI shows), in the config's order."""
        app = self.releasetui
        order = list(app.config.roles) + sorted({r for h in app.hosts for r in h.roles} - set(app.config.roles))
        found = [(role, [h.name for h in app.hosts if role in h.roles]) for role in order]
        return [(role, names) for role, names in found if names]

    def targets_phrase(self, hosts: Optional[list[HostConfig]] = None) -> str:
        """The targets (or ``hosts``) in a few words: ``all 50 hosts``, ``role web: 46 hosts (web01..web46)``,
        ``web1, web3``."""
        names = [h.name for h in (hosts if hosts is not None else self.targets())]
        total = len(self.releasetui.hosts)
        if len(names) == total:
            return f"all {total} hosts" if total > 1 else present.host_list(names)
        phrase = present.hosts_phrase(names, total)
        role = next((role for role, members in self.roles() if members == names), None)
        return f"role {role}: {phrase}" if role else phrase

    @on(DataTable.RowHighlighted, "#hosts")
    def _host_highlighted(self, event: DataTable.RowHighlighted) -> None:
        name = event.row_key.value
        if name != self.host_cursor:
            self.host_cursor = name
            self.fill_builds()

    @on(DataTable.RowSelected, "#hosts")
    def _host_selected(self, event: DataTable.RowSelected) -> None:
        self.query_one("#builds", DataTable).focus()

    # --- output ---------------------------------------------------------------

    def say(self, text: str | Text, style: str = "") -> None:
        """One line in the output pane."""
        line = Text(text, style=style) if isinstance(text, str) else text
        self.transcript.append(line.plain)
        # WrapLog wraps at the pane's width, and again after a resize.
        self.query_one("#output", WrapLog).write(line)

    def report(self, event: Event) -> None:
        """The operations' reporter, called from worker threads; post_message is thread-safe."""
        self.post_message(OperationEvent(event))

    def on_operation_event(self, message: OperationEvent) -> None:
        """Show a step when it finishes; a started one only shows in the pane's title (the running indicator)."""
        event = message.event
        key = (event.host, event.step)
        if event.status == "started":
            self.running_steps[key] = f"{event.host or '*'} {event.step}"
            self.update_output_title()
            return
        if self.running_steps.pop(key, None) is not None:
            self.update_output_title()
        self.say(event_line(event, self.releasetui.tz))

    def update_output_title(self) -> None:
        """The output pane's title: what runs (the steps under way), or that it is stopping."""
        output = self.query_one("#output", RichLog)
        if self.busy is None:
            output.border_title = "Output"
        elif self.interrupted:
            output.border_title = f"Output · stopping {self.busy}… (cleaning up)"
        else:
            # Hosts in the same step grouped: fifty "webNN install" would run far past the pane's edge.
            by_step: dict[str, list[str]] = {}
            for host, step in self.running_steps:
                by_step.setdefault(step, []).append(host or "*")
            steps = ", ".join(f"{step} on " + (present.host_list(names) if len(names) <= 3 else f"{len(names)} hosts")
                              for step, names in by_step.items())
            output.border_title = f"Output · {self.busy} running…" + (f" {steps}" if steps else "")

    # --- refresh ----------------------------------------------------------------

    def action_refresh(self) -> None:
        """Read every host's state again (one round trip per host, in a worker)."""
        self.start_read()

    def start_read(self, then: Optional[Then] = None, diff: Optional[DiffRead] = None) -> None:
        """Read the states in a worker; ``then`` runs on the UI thread once they are shown, given the one line of
        ``diff`` (made in the same worker, beside the read), or None."""
        self._last_seq = next(self._read_seq)
        self.refreshing = True
        self.fill_hosts_summary()
        self.read_states(self._last_seq, then, diff)

    def refresh_when_idle(self) -> None:
        """The periodic re-read: skipped while an operation, a confirmation or another read is under way."""
        app = self.releasetui
        # The fleet view shows these states too: it is kept fresh like this screen.
        if self.busy or self.preparing or self.quitting or (app.screen is not self
                                                              and not isinstance(app.screen, FleetScreen)):
            return
        if any(w.is_running for w in app.workers if w.group == "refresh"):
            return
        self.start_read()

    @work(thread=True, group="refresh", exit_on_error=False)
    def read_states(self, seq: int, then: Optional[Then] = None, diff: Optional[DiffRead] = None) -> None:
        """Worker: read the states, and make ``diff`` meanwhile (its own round trip per host, in parallel with
        the read: the dialog waits for the slower of the two, not both); the result comes back as
        :class:`StatesLoaded`."""
        app = self.releasetui
        ops = app.make_operations(lambda event: None)
        changes = None
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="releasetui-diff") as beside:
            pending = beside.submit(self.diff_line, diff) if diff is not None else None
            try:
                states = ops.states(app.hosts)
            except Exception as exc:  # the pool itself failed: every host is unknown
                states = {h.name: exc for h in app.hosts}
            if pending is not None:
                changes = pending.result()
        self.post_message(StatesLoaded(states, seq, then, changes))

    def diff_line(self, diff: DiffRead) -> str:
        """(In a worker thread.) The diff's one line for a confirmation; never raises: a diff that could not be
        made says ``diff unavailable: <why>``, and the dialog opens all the same."""
        try:
            return summary_line(diff(self.releasetui.make_operations(lambda event: None)))
        except Exception as exc:
            return unavailable(exc)

    def on_states_loaded(self, message: StatesLoaded) -> None:
        """Redraw with fresh states; report a host that became unreachable once, not on every refresh."""
        if message.seq > self._applied_seq:  # an older read landing after a newer one is dropped
            self._applied_seq = message.seq
            self.releasetui.states = dict(message.states)
            for name, state in message.states.items():
                text = str(state) if isinstance(state, Exception) else ""
                if text and self._errors_shown.get(name) != text:
                    self.say(f"{name}: unreachable: {text}", "red")
                self._errors_shown[name] = text
            self.fill_hosts()
            self.fill_builds()
            for screen in self.app.screen_stack:
                if isinstance(screen, FleetScreen):
                    screen.fill()
            if self.served_changed:
                # After a deploy or rollback, what the hosts serve as read now is what the exit report says.
                self.releasetui.exit_report = served_lines(self.releasetui.states)
        if message.seq == self._last_seq:
            self.refreshing = False
            self.fill_hosts_summary()
        if message.then is not None:
            message.then(message.changes)

    # --- operations ---------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> Optional[bool]:
        """Dim the mutating keys while an operation runs or a confirmation is being prepared (None = shown but disabled)."""
        if action == "pick_stage" and not (self.releasetui.config and self.releasetui.config.stages):
            return False  # no stages: no key to show
        if action in MUTATING_ACTIONS and (self.busy or self.preparing or self.quitting):
            return None
        return True

    def confirm_after_refresh(self, name: str, build: Then, diff: Optional[DiffRead] = None) -> None:
        """Re-read the hosts, then build the confirmation from what they say now, not from a read minutes old.

        ``diff`` (deploy and rollback only) is made in the same worker, and ``build`` gets its one line (else
        None): at most one more round trip per host, never on the UI thread.
        """
        self.preparing = name
        self.refresh_bindings()

        def then(changes: Optional[str]) -> None:
            self.preparing = None
            self.refresh_bindings()
            if not self.quitting and self.busy is None:
                build(changes)
        self.start_read(then, diff)

    def run_operation(self, name: str, work_fn: Callable[[Operations], OperationResult]) -> None:
        """Start a mutating operation in a worker; keys are dimmed until it finishes.

        Confirmed from the fleet view, it first goes back to this screen: the progress is in the output pane.
        """
        if self.app.screen is not self and self in self.app.screen_stack:
            self.pop_until_active()
        self.busy = name
        self.interrupted = False
        self.running_steps.clear()
        # Made here, not in the worker: a quit right after the start must find the stop event to set.
        self.running_ops = self.releasetui.make_operations(self.report)
        self.refresh_bindings()
        self.update_output_title()
        self.say(f"── {name} on {self.targets_phrase()}", "bold")
        self.operation_worker(name, self.running_ops, work_fn)

    @work(thread=True, exclusive=True, group="operation", exit_on_error=False)
    def operation_worker(self, name: str, ops: Operations, work_fn: Callable[[Operations], OperationResult]) -> None:
        """Worker: run the blocking operation; its end comes back as :class:`OperationFinished`."""
        result, error = None, None
        try:
            result = work_fn(ops)
        except Exception as exc:  # OperationError and friends: one line, the app keeps running
            error = str(exc) or type(exc).__name__
        self.post_message(OperationFinished(name, result, error))

    def on_operation_finished(self, message: OperationFinished) -> None:
        """Summarise per host in the pane, notify, and re-read the hosts (or quit, when a quit waited for this)."""
        self.last_name = self.busy or message.name
        self.busy = None
        self.running_ops = None
        self.running_steps.clear()
        self.refresh_bindings()
        self.update_output_title()
        name, result = message.name, message.result
        # Toasts sit over the bottom of the output pane: short-lived, the pane keeps the full text.
        if message.error or result is None:
            self.last_outcome = f"{name} could not start: {message.error}"
            self.say(self.last_outcome, "bold red")
            self.notify(message.error or "unknown error", title=f"{name} failed", severity="error", timeout=6)
        else:
            for status, line in present.outcome_lines(result):
                self.say(line, "green" if status == "ok" else "bold red")
            summary = f"{name} {result.status} in {result.duration:.1f}s"
            self.say(summary, "bold green" if result.ok else "bold red")
            self.last_outcome = summary + "."
            if name in ("deploy", "rollback"):
                live = present.live_line(result.live(), [o.host for o in result.outcomes.values()
                                                         if o.status == "unreachable"])
                self.say(live, "bold" if not result.mixed else "bold yellow")
                self.last_outcome = f"{summary}; {live}."
                # What each host serves is said again on the terminal once the app exits (after a quit
                # mid-operation, this result is the last word; else the re-read below replaces it).
                self.served_changed = True
                self.releasetui.exit_report = served_lines(
                    {o.host: (RuntimeError(o.message) if o.status == "unreachable" else o.current)
                     for o in result.outcomes.values()},
                    {o.host: f"{name} {o.status}" + (f": {o.message}" if o.message else "")
                     for o in result.outcomes.values() if o.status not in ("ok", "unreachable")})
            if result.ok:
                self.notify(summary, title=name, timeout=3)
            else:
                bad = [f"{o.host}: {o.message}" for o in result.outcomes.values() if o.status != "ok"]
                self.notify("\n".join(bad), title=f"{name} failed", severity="error", timeout=6)
        if self.quitting:
            self.app.exit(return_code=self.quit_verdict(name, result))
            return
        # A quit dialog open meanwhile now says the operation has ended: y just quits.
        for screen in self.app.screen_stack:
            if isinstance(screen, QuitWhileBusyScreen):
                screen.follow()
        self.action_refresh()

    def quit_promise(self) -> confirm.Confirmation:
        """What quitting does now, from the running operation's own state (the quit dialog asks a few times a
        second): abort it, let its switch finish, let its wave finish and switch back, or just quit."""
        if self.busy is None:
            return confirm.quit_promise(self.last_name or "the operation", None,
                                        finished=self.last_outcome or "it has ended.")
        interrupts = getattr(self.running_ops, "interrupts", None)
        if interrupts is None:  # a core that cannot say its phase: the promise that holds before the switch
            return confirm.quit_promise(self.busy, None)
        return confirm.quit_promise(self.busy, interrupts.outlook(), interrupts.wave, interrupts.waves)

    def quit_verdict(self, name: str, result: Optional[OperationResult]) -> int:
        """The exit code of a quit that waited for ``name`` to stop: 0 when it ended ok anyway (the switch had
        begun and finished), else 130 and one line on the terminal saying the quit aborted it."""
        if result is not None and result.ok:
            return 0
        status = result.status if result is not None else "stopped"
        self.releasetui.exit_report.append(f"releasetui: {name} {status}: aborted by quitting the TUI (exit 130)")
        return int(ExitCode.INTERRUPTED)

    def interrupt(self) -> None:
        """Ask the running operation to stop, once (setting it again could cut short the cleanup it started)."""
        if self.interrupted or self.running_ops is None:
            return
        self.interrupted = True
        self.running_ops.interrupt("TUI quit")
        try:
            self.update_output_title()
        except NoMatches:  # called while the app unmounts: the pane is already gone
            pass

    def stop_then_quit(self) -> None:
        """Quit confirmed while busy: stop the operation, let it clean up on every host, exit when it has."""
        if self.busy is None:  # it finished while the question was open
            self.app.exit(0)
            return
        self.quitting = True
        self.refresh_bindings()
        self.interrupt()
        self.say(f"stopping {self.busy}… (cleaning up on the hosts; the app quits when that is done)", "bold yellow")
        self.notify(f"Stopping {self.busy}: cleaning up on the hosts, then quitting.", title="Quitting", timeout=4)

    # --- the keys -------------------------------------------------------------------

    def action_deploy(self) -> None:
        """d: re-read the hosts, confirm source and hosts, then deploy."""
        hosts = self.targets()
        self.confirm_after_refresh("deploy", lambda changes: self.confirm_deploy(hosts, changes),
                                   lambda ops: ops.diff(hosts))

    def show(self, outcome, on_yes: Callable[[], None], what: str, hosts: list[HostConfig]) -> None:
        """Open the confirmation, or say why the action is refused (pane and notification), from a pure builder.

        The dialog starts with the target ``hosts``: its grouped lines say "all 4 hosts" of the targets, and
        with fifty hosts and a role marked, which four must be said.
        """
        if outcome is None:
            return
        if isinstance(outcome, confirm.Refusal):
            self.say(f"{what} refused: " + "; ".join(outcome.lines), "bold red")
            self.notify("\n".join(outcome.lines), title=outcome.title, severity="error", timeout=6)
            return
        body = Text()
        body.append("Targets       ", style="bold")
        body.append(self.targets_phrase(hosts) + "\n\n", style="bold cyan")
        body.append_text(outcome.body)
        self.app.push_screen(ConfirmScreen(outcome.title, body, outcome.label, danger=outcome.danger),
                             lambda ok: ok and on_yes())

    def confirm_deploy(self, hosts: list[HostConfig], changes: Optional[str] = None) -> None:
        """The deploy confirmation, from the states just read (refused up front when a lock is held), with
        ``changes``: the one line of the diff from the hosts' current build to the source."""
        app = self.releasetui
        config = app.config
        try:  # the digest the deploy itself will key the venvs by (one function, resolving locks as it does)
            req = source_requirements(config.source, config.requirements, config.requirements_extras)
        except OperationError as exc:
            self.notify(str(exc), title="Deploy", severity="error")
            return
        self.show(confirm.deploy(config, hosts, app.states, req.sha256, app.now(), diff_summary=changes,
                                 requirements_label=req.label),
                  lambda: self.run_operation("deploy", lambda ops: ops.deploy(hosts)), "deploy", hosts)

    def action_rollback(self) -> None:
        """r: roll the target hosts back (or forward) to the build under the cursor, after a confirmation."""
        build_id = self.selected_build()
        if build_id is None:
            self.notify("No build under the cursor.", title="Rollback", severity="warning", timeout=4)
            return
        self.rollback_to(build_id)

    def rollback_to(self, build_id: str) -> None:
        """Re-read the hosts, then confirm (or refuse) rolling the targets to ``build_id`` (also the fleet view's r)."""
        hosts = self.targets()
        self.confirm_after_refresh("rollback", lambda changes: self.confirm_rollback(build_id, hosts, changes),
                                   lambda ops: ops.diff(hosts, to_id=build_id))

    def confirm_rollback(self, build_id: str, hosts: list[HostConfig], changes: Optional[str] = None) -> None:
        """The rollback confirmation (or the refusal), from the states just read: all hosts switch, or none;
        ``changes``: the one line of the diff from the hosts' current build to ``build_id``."""
        app = self.releasetui
        self.show(confirm.rollback(app.config, hosts, app.states, build_id, app.now(), app.tz, diff_summary=changes),
                  lambda: self.run_operation("rollback", lambda ops: ops.rollback(hosts, build_id)), "rollback", hosts)

    def action_prune(self) -> None:
        """p: re-read the hosts, list exactly which builds and venvs go on each, then prune."""
        hosts = self.targets()
        self.confirm_after_refresh("prune", lambda _: self.confirm_prune(hosts))

    def confirm_prune(self, hosts: list[HostConfig]) -> None:
        """The prune confirmation, from the states just read."""
        app = self.releasetui
        outcome = confirm.prune(app.config, hosts, app.states)
        if outcome is None:
            self.notify(f"Nothing to prune on {self.targets_phrase()}.", title="Prune", timeout=4)
            return
        self.show(outcome, lambda: self.run_operation("prune", lambda ops: ops.prune(hosts)), "prune", hosts)

    def action_unlock(self) -> None:
        """u: re-read the hosts, show who holds each lock (and whether it is stale), then remove it."""
        targets = self.targets()
        self.confirm_after_refresh("unlock", lambda _: self.confirm_unlock(targets))

    def confirm_unlock(self, targets: list[HostConfig]) -> None:
        """The unlock confirmation, from the states just read."""
        app = self.releasetui
        outcome = confirm.unlock(targets, app.states, this_machine(), pid_alive)
        if outcome is None:
            self.notify(f"No deploy lock on {self.targets_phrase()}.", title="Unlock", timeout=4)
            return
        hosts = [h for h in targets if isinstance(app.states.get(h.name), HostState) and app.states[h.name].lock]  # type: ignore[union-attr]
        self.show(outcome, lambda: self.run_operation("unlock", lambda ops: ops.unlock(hosts)), "unlock", targets)

    def action_pin(self) -> None:
        """P: pin (or unpin) the build under the cursor on the target hosts, after a confirmation."""
        build_id = self.selected_build()
        if build_id is None:
            self.notify("No build under the cursor.", title="Pin", severity="warning", timeout=4)
            return
        self.pin_build(build_id)

    def pin_build(self, build_id: str) -> None:
        """Re-read the hosts, then confirm pinning ``build_id`` (unpinning it when pinned on every target)."""
        hosts = self.targets()
        self.confirm_after_refresh("pin", lambda _: self.confirm_pin(build_id, hosts))

    def confirm_pin(self, build_id: str, hosts: list[HostConfig]) -> None:
        """The pin confirmation (or the refusal), from the states just read."""
        app = self.releasetui
        pinned = confirm.pin_wanted(hosts, app.states, build_id)
        name = "pin" if pinned else "unpin"
        self.show(confirm.pin(hosts, app.states, build_id, pinned),
                  lambda: self.run_operation(name, lambda ops: ops.pin(hosts, build_id, pinned)), name, hosts)

    def action_diff(self) -> None:
        """D: the full diff of the build under the cursor against the target hosts' current build."""
        build_id = self.selected_build()
        if build_id is None:
            self.notify("No build under the cursor.", title="Diff", severity="warning", timeout=4)
            return
        self.show_diff(build_id)

    def show_diff(self, build_id: str) -> None:
        """The diff view for ``build_id`` on the target hosts (also the fleet view's D); it reads in a worker."""
        app = self.releasetui
        hosts = self.targets()
        self.app.push_screen(DiffScreen(build_id, self.targets_phrase(hosts), hosts,
                                        lambda: app.make_operations(lambda event: None).diff(hosts, to_id=build_id)))

    def action_fleet(self) -> None:
        """v: the fleet view (builds by hosts) over the states last read."""
        self.app.push_screen(FleetScreen(self))

    def action_history(self) -> None:
        """h: the fleet's history, read in a worker by the history screen."""
        app = self.releasetui
        hosts = list(app.hosts)
        self.app.push_screen(HistoryScreen(hosts, lambda: app.make_operations(lambda event: None).history(hosts),
                                           app.now, app.tz))

    def action_mark_role(self) -> None:
        """M: pick a role; its hosts become the targets (or none marked: all hosts)."""
        roles = self.roles()
        if not roles:
            self.notify("No roles: give the hosts `roles:` in the config.", title="Mark role", severity="warning",
                        timeout=4)
            return
        host = next((h for h in self.releasetui.hosts if h.name == self.host_cursor), None)
        first = host.roles[0] if host is not None and host.roles else None
        current = next((role for role, names in roles if set(names) == self.marked), None)
        self.app.push_screen(RolePickerScreen(roles, len(self.releasetui.hosts), highlight=first, marked=current),
                             self.mark_role)

    def action_pick_stage(self) -> None:
        """S: pick another stage; the app opens again on it (its own hosts, connections and reads)."""
        config = self.releasetui.config
        self.app.push_screen(StagePickerScreen(config.stages, config.stage), self.open_stage)

    def open_stage(self, stage: Optional[str]) -> None:
        """The picker's answer: leave this stage's screen and open that one (nothing runs: keys were dimmed)."""
        if stage is None or stage == self.releasetui.config.stage or self.busy:
            return
        self.releasetui.next_stage = stage
        self.app.exit(0)

    def mark_role(self, role: Optional[str]) -> None:
        """The picker's answer: mark exactly that role's hosts ("*": none, so every host is a target)."""
        if role is None:
            return
        self.marked = set() if role == "*" else set(dict(self.roles()).get(role, []))
        self.fill_hosts()

    def action_logs(self) -> None:
        """l: a live tail of the target hosts' log files on its own screen."""
        app = self.releasetui
        if not app.config.logs:
            self.notify("No log files configured: add `logs:` to the config.", title="Logs", severity="warning",
                        timeout=4)
            return
        hosts = self.targets()

        def start(report: Callable[[Event], None], stop) -> OperationResult:
            return app.make_operations(report).logs(hosts, lines=50, follow=True, stop=stop)

        self.app.push_screen(LogScreen(hosts, start))

    def action_mark(self) -> None:
        """m/space: toggle the host under the hosts cursor as a target."""
        name = self.host_cursor
        if name is None:
            return
        self.marked.symmetric_difference_update({name})
        self.fill_hosts()

    def action_filter(self) -> None:
        """/: show the filter box."""
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    def action_clear_filter(self) -> None:
        """esc: clear and hide the filter."""
        box = self.query_one("#filter", Input)
        if box.display:
            box.value = ""
            box.display = False
            self.filter_text = ""
            self.fill_builds()
            self.query_one("#builds", DataTable).focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        self.fill_builds()

    @on(Input.Submitted, "#filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        self.query_one("#builds", DataTable).focus()


class ReleaseApp(App[int]):
    """The TUI over one config.  With no config it shows where it looked and how to start."""

    CSS_PATH = "app.tcss"
    TITLE = "releasetui"
    BINDINGS = [
        Binding("q", "quit_app", "Quit", tooltip="Quit; while an operation runs it asks first, then stops it and "
                                                  "quits once the hosts are cleaned up (lock released, partial "
                                                  "build removed)"),
        # Textual's own ctrl+q quits at once and its ctrl+c only says how to quit: both go through q's path,
        # so a quit during a deploy always asks and then waits for the cleanup.
        Binding("ctrl+q", "quit_app", "Quit", show=False, priority=True),
        Binding("ctrl+c", "quit_app", "Quit", show=False),
        Binding("question_mark", "help", "Help", tooltip="This help"),
    ]

    def __init__(self, config: Optional[Config] = None, hosts: Optional[tuple[HostConfig, ...]] = None,
                 looked: tuple[str, ...] | list[str] = (), operations_factory: Optional[OperationsFactory] = None,
                 now: Optional[Callable[[], datetime]] = None, tz: Optional[tzinfo] = None, read_on_start: bool = True,
                 refresh_interval: Optional[float] = 30):
        """``now``/``tz`` pin the clock and zone (snapshots); ``operations_factory`` swaps the core (tests).

        ``refresh_interval``: seconds between re-reads of the hosts while idle; None or 0 turns them off.
        """
        super().__init__()
        self.config = config
        self.hosts = tuple(hosts if hosts is not None else (config.hosts if config else ()))
        self.looked = list(looked)
        self.operations_factory = operations_factory
        self._now = now
        self.tz = tz
        self.read_on_start = read_on_start
        self.refresh_interval = refresh_interval
        self.pool = ExecutorPool(connect_timeout=config.connect_timeout if config else 15.0)  # kept open for the app's lifetime
        self.exit_report: list[str] = []  # printed on the terminal after the app exits
        self.next_stage: Optional[str] = None  # S picked another stage: run_app opens the app again on it
        self.states: dict[str, object] = {}
        self.main: Optional[MainScreen] = None
        if config is not None:
            stage = f" · stage {config.stage}" if config.stage else ""
            self.sub_title = f"{config.project}{stage} · {config.path}"

    def now(self) -> datetime:
        """The time ages are measured from."""
        return self._now() if self._now else clock.now()

    def make_operations(self, report: Callable[[Event], None]) -> Operations:
        """A fresh Operations (its own stop event) on the shared pool."""
        if self.operations_factory is not None:
            return self.operations_factory(self.config, report, self.pool)
        return Operations(self.config, report=report, pool=self.pool)

    def on_mount(self) -> None:
        if self.config is None:
            self.push_screen(NoConfigScreen(self.looked))
        else:
            self.main = MainScreen()
            self.push_screen(self.main)

    def action_help(self) -> None:
        """?: the help screen (once)."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(help_sections()))

    def action_quit_app(self) -> None:
        """q / ctrl+q / ctrl+c: quit; while an operation runs, ask first, then stop it and quit once it cleaned up."""
        main = self.main
        if main is None or not main.busy:
            self.exit(0)
            return
        if isinstance(self.screen, ConfirmScreen) and self.screen.quit_question:
            return  # already asking
        if main.quitting:
            self.push_screen(QuitNowScreen(main.busy), lambda ok: ok and self.quit_now(main.busy))
            return
        # The dialog follows the operation: its words are what confirming does at the moment y is pressed.
        self.push_screen(QuitWhileBusyScreen(main.quit_promise), lambda ok: ok and main.stop_then_quit())

    def quit_now(self, operation: Optional[str]) -> None:
        """Quit without waiting for a stopped operation's cleanup: exit 130, and say what may be left."""
        self.exit_report.append(f"releasetui: {operation or 'the operation'} interrupted: quit without waiting for "
                                "its cleanup; a lock or a partial build may be left (exit 130)")
        self.exit(return_code=int(ExitCode.INTERRUPTED))

    async def action_quit(self) -> None:
        """Textual's quit (command palette, ctrl+q): the same path as q."""
        self.action_quit_app()

    def on_unmount(self) -> None:
        # Normally nothing runs by now (a quit waits for the operation); if something still does (the
        # "quit without waiting" answer, a crash), stop it, once.
        if self.main is not None and self.main.busy:
            self.main.interrupt()
        self.pool.close()


# The tables' own keys in the fleet and history views (Textual's DataTable bindings), for the help.
FLEET_BUILTIN_KEYS: list[tuple[str, str]] = [
    ("↑ ↓ ← →", "Move the cursor up and down; scroll the columns sideways"),
]


# The diff view scrolls with its scroll container's own keys.
DIFF_BUILTIN_KEYS: list[tuple[str, str]] = [
    ("↑ ↓ pgup pgdn", "Scroll the diff (home / end: to the top / bottom)"),
]


def help_sections() -> list[tuple[str, list[tuple[str, str]]]]:
    """The help's sections, from the bindings themselves: a key added or changed shows there by itself."""
    main = binding_rows(MainScreen.BINDINGS) + BUILTIN_MAIN_KEYS + binding_rows(RowTable.BINDINGS)
    return [("Main screen", main + binding_rows(ReleaseApp.BINDINGS)),
            ("In a confirmation", binding_rows(ConfirmScreen.BINDINGS)),
            ("In the fleet view (v)", binding_rows(FleetScreen.BINDINGS) + FLEET_BUILTIN_KEYS),
            ("In the history view (h)", binding_rows(HistoryScreen.BINDINGS) + FLEET_BUILTIN_KEYS),
            ("In the diff view (D)", binding_rows(DiffScreen.BINDINGS) + DIFF_BUILTIN_KEYS),
            ("In the log view (l)", binding_rows(LogScreen.BINDINGS))]


def run_app(args: argparse.Namespace) -> int:
    """``releasetui [--config PATH] [--host NAME]... [--role NAME]...``: find and load the config, then run the TUI.

    A missing config opens the "no config" screen; a broken one raises
    ConfigError, which the CLI prints as one line (exit 2).
    """
    path, looked = find_config(getattr(args, "config", None))
    stage = stage_from(getattr(args, "stage", None))
    while True:
        if path is None:
            app = ReleaseApp(None, looked=looked)
        else:
            config = load_config(path, stage)
            # --host and --role choose the hosts the TUI shows, as they do for --headless.
            app = ReleaseApp(config, hosts=config.select(getattr(args, "top_hosts", None) or [],
                                                         getattr(args, "top_roles", None) or []))
        app.run()
        if app.next_stage is None:
            break
        stage = app.next_stage  # S: the same app, opened on another stage
    for line in app.exit_report:
        print(line)
    return int(app.return_code or 0)
