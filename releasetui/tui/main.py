"""The main screen: the hosts, the builds of the host under the cursor, and the output pane.

Its parts live apart: the widgets (:mod:`.widgets`) draw, :mod:`.reading` reads the hosts in workers,
:mod:`.running` runs an operation in a worker and follows it, :mod:`.actions` is what each key does.  The
operations report :class:`~releasetui.models.Event` objects from their own threads, which arrive here as
messages, so the UI never waits on a host.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Header, Input

from .. import present
from ..config import HostConfig
from ..models import HostState
from .actions import KeyActions
from .reading import HostReads
from .running import OperationRunner
from .widgets import BuildsTable, FittedFooter, HostsTable, OutputPane

if TYPE_CHECKING:
    from .face import ReleaseFace

# Actions that change hosts: one at a time, dimmed in the footer while one runs.
MUTATING_ACTIONS = {"deploy", "rollback", "prune", "unlock", "pin", "pick_stage"}


class MainScreen(KeyActions, OperationRunner, HostReads, Screen):
    """Hosts, builds and output; owns the operation keys so modal screens never trigger them."""

    # Below 30 rows the hosts and output panes shrink so the builds keep room; below 100 columns the
    # builds' cells get shorter (see BuildsTable.fill).
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

    # The keys a narrow footer leaves out first: at 80 columns d r l p m v h q ? stay (the operations a person
    # runs, marking, the fleet and the history views); u Unlock stays too while a host shows a lock (then it
    # is the key needed), in place of m.  Pin, Diff, Role, Filter and Refresh (the hosts are read again every
    # 30 s and before every dialog) are in the help, and D's diff is in the rollback dialog.
    FOOTER_OPTIONAL = ("filter", "mark_role", "refresh", "pin", "unlock", "diff", "mark", "history")

    def __init__(self) -> None:
        super().__init__()
        self.init_running()
        self.init_reads()
        self.compact = False
        self._filled_width = 0  # the screen width the hosts table was last fitted to
        self.host_cursor: Optional[str] = None
        self.marked: set[str] = set()
        self.filter_text = ""

    @property
    def releasetui(self) -> "ReleaseFace":
        """The app, typed."""
        return self.app  # type: ignore[return-value]

    # --- layout ---------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield HostsTable(id="hosts", cursor_type="row", zebra_stripes=False)
        yield Input(id="filter", placeholder="filter builds: id, commit, who, status or hash (esc clears)")
        yield BuildsTable(id="builds", cursor_type="row", zebra_stripes=True)
        yield OutputPane(id="output", max_lines=2000)
        # Narrower than every key needs (about 160 columns): compact, "Mark" for "Mark host", "Role" for "Mark
        # role", then without the keys of FOOTER_OPTIONAL in that order; the help (?) has every key.
        yield FittedFooter(optional=self.footer_optional(locked=False), short={"mark": "Mark", "mark_role": "Role"})

    def footer_optional(self, locked: bool) -> tuple[str, ...]:
        """The footer's optional keys, in the order they go: u Unlock is not one while a lock is shown."""
        return tuple(a for a in self.FOOTER_OPTIONAL if not (locked and a == "unlock"))

    def on_mount(self) -> None:
        app = self.releasetui
        self.hosts_table().border_title = "Hosts"
        self.builds_table().border_title = "Builds"
        self.query_one("#filter", Input).display = False
        self.output_pane().border_title = "Output"
        self.host_cursor = app.hosts[0].name if app.hosts else None
        self.compact = app.size.width < self.COMPACT_WIDTH
        self.fill_hosts()
        self.fill_builds()
        self.output_pane().write(Text(f"{app.config.project}: {len(app.hosts)} host(s) from {app.config.path}. "
                                      "Press ? for every key.", style="dim"))
        self.builds_table().focus()
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

    # --- the panes ------------------------------------------------------------

    def hosts_table(self) -> HostsTable:
        """The hosts pane."""
        return self.query_one("#hosts", HostsTable)

    def builds_table(self) -> BuildsTable:
        """The builds pane."""
        return self.query_one("#builds", BuildsTable)

    def output_pane(self) -> OutputPane:
        """The output pane."""
        return self.query_one("#output", OutputPane)

    def fill_hosts(self) -> None:
        """Redraw the hosts table from the last states read, keeping the cursor on the same host."""
        app = self.releasetui
        table = self.hosts_table()
        table.fill(app.hosts, app.states, self.marked, app.now(), self.compact, self.host_cursor,
                   self.targets_phrase())
        self.fill_hosts_summary()
        locked = any(isinstance(state, HostState) and state.lock for state in app.states.values())
        self.query_one(FittedFooter).set_optional(self.footer_optional(locked))

    def fill_hosts_summary(self) -> None:
        """The hosts table's bottom line: the whole fleet in one line, and whether a read is under way."""
        self.hosts_table().show_summary(self.releasetui.hosts, self.releasetui.states, self.refreshing)

    def fill_builds(self) -> None:
        """Redraw the builds of the host under the cursor, newest first, honouring the filter."""
        app = self.releasetui
        self.builds_table().fill(self.host_cursor, self.selected_state(), self.filter_text, self.compact, app.now(),
                                 app.tz)

    def selected_state(self) -> object:
        """The state of the host under the hosts cursor (HostState, an exception, or None before the first read)."""
        return self.releasetui.states.get(self.host_cursor) if self.host_cursor else None

    def selected_build(self) -> Optional[str]:
        """The build id under the builds cursor, or None."""
        return self.builds_table().selected()

    def say(self, text: str | Text, style: str = "") -> None:
        """One line in the output pane."""
        self.output_pane().say(text, style)

    @property
    def transcript(self) -> list[str]:
        """The plain text of the output pane, for tests and bug reports."""
        return self.output_pane().transcript

    @on(DataTable.RowHighlighted, "#hosts")
    def _host_highlighted(self, event: DataTable.RowHighlighted) -> None:
        name = event.row_key.value
        if name != self.host_cursor:
            self.host_cursor = name
            self.fill_builds()

    @on(DataTable.RowSelected, "#hosts")
    def _host_selected(self, event: DataTable.RowSelected) -> None:
        self.builds_table().focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        self.fill_builds()

    @on(Input.Submitted, "#filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        self.builds_table().focus()

    # --- targets ----------------------------------------------------------------

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

    def on_key(self, event: events.Key) -> None:
        """A dimmed key still answers at once: it says what it waits for (a key that did nothing would look
        broken)."""
        action = next((b.action for b in self.BINDINGS if event.key in b.key.split(",")), None)
        if action in MUTATING_ACTIONS and self.check_action(action, ()) is None:
            what = (f"{self.busy} is running" if self.busy else f"{self.preparing} is reading the hosts"
                    if self.preparing else "the app is quitting")
            self.notify(f"{what}: {action.replace('_', ' ')} is possible once it has ended.", title="Wait",
                        severity="warning", timeout=3)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> Optional[bool]:
        """Dim the mutating keys while an operation runs or a confirmation is being prepared (None = shown but
        disabled)."""
        if action == "pick_stage" and not (self.releasetui.config and self.releasetui.config.stages):
            return False  # no stages: no key to show
        if action in MUTATING_ACTIONS and (self.busy or self.preparing or self.quitting):
            return None
        return True
