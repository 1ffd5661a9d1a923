"""The fleet view (``v``): a builds-by-hosts matrix, what each host serves, and where the fleet drifts.

Rows are builds (newest first), columns are hosts; each cell says whether
that build is on that host and in what state.  The model is built by pure
functions from the host states the main screen last read (so a snapshot can
pin it); the screen only draws it and hands ``r``/``P`` back to the main
screen, which confirms and runs them exactly as from the builds table.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Mapping, Optional, Sequence

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from .. import present
from ..models import BuildInfo, HostState
from .fmt import created_cell, git_cell
from .widgets.footer import FittedFooter
from .widgets.tables import MatrixTable, selected_key

if TYPE_CHECKING:
    from .face import MainFace

LEGEND = "▶ live  ● complete  ✗ failed  ◌ incomplete  ! damaged  p pinned  · absent"


@dataclass
class FleetModel:
    """What the matrix shows: hosts (config order), builds (newest first), and who drifts.

    ``majority`` is the build most reachable hosts serve (None when the biggest groups tie); ``drift`` holds
    the hosts that serve something else (every reachable host when there is no majority and they disagree).
    """

    hosts: list[str]
    builds: list[str]
    states: dict[str, HostState]
    unknown: dict[str, str] = field(default_factory=dict)   # host -> why its state is unknown
    majority: Optional[str] = None
    drift: set[str] = field(default_factory=set)

    def build(self, host: str, build_id: str) -> Optional[BuildInfo]:
        """That build on that host, or None (absent, or the host was not read)."""
        state = self.states.get(host)
        return state.build(build_id) if state is not None else None

    def live_on(self, build_id: str) -> list[str]:
        """The hosts that serve ``build_id``."""
        return [h for h in self.hosts if h in self.states and self.states[h].current == build_id]

    def present_on(self, build_id: str) -> list[str]:
        """The hosts that have ``build_id`` (in any state)."""
        return [h for h in self.hosts if self.build(h, build_id) is not None]



def fleet_model(hosts: Sequence[str], states: Mapping[str, object]) -> FleetModel:
    """The matrix's model from the hosts' states (HostState, an exception, or missing: not read yet)."""
    reachable: dict[str, HostState] = {}
    unknown: dict[str, str] = {}
    for name in hosts:
        state = states.get(name)
        if isinstance(state, HostState):
            reachable[name] = state
        else:
            unknown[name] = "not read yet" if state is None else f"unreachable: {state}"
    builds = sorted({b.id for s in reachable.values() for b in s.builds}, reverse=True)
    groups = present.group_hosts({h: s.current for h, s in reachable.items()})
    majority, drift = None, set()
    if groups:
        if len(groups) == 1 or len(groups[0][1]) > len(groups[1][1]):
            majority = groups[0][0]  # type: ignore[assignment]
            drift = {h for h, s in reachable.items() if s.current != majority}
        else:  # a tie: no build is "the fleet's"; every host is off some other host
            drift = set(reachable)
    return FleetModel(list(hosts), builds, reachable, unknown, majority, drift)


def cell(build: Optional[BuildInfo], drifted: bool = False) -> Text:
    """One host's cell for one build: the state's mark, then ``p`` when pinned (two columns)."""
    if build is None:
        return Text("· ", style="dim")
    if build.damaged:
        mark = Text("!", style="bold red")
    elif not build.complete:
        mark = Text("◌", style="yellow")
    elif build.current:
        # A host serving a failed build is the first thing to see; then drift (its header is marked too).
        style = "bold white on red" if build.failed else ("bold black on yellow" if drifted else "bold green")
        mark = Text("▶", style=style)
    elif build.failed:
        mark = Text("✗", style="bold red")
    else:
        mark = Text("●", style="dim")
    mark.append("p" if build.pinned else " ", style="bold cyan")
    return mark


def column_labels(hosts: Sequence[str], room: int) -> tuple[dict[str, str], Optional[str]]:
    """Each host's column header and a note when they are shortened.

    Full names when they fit in ``room`` columns (a name + a space each); else the names without their common
    prefix (``web01..web50`` → ``01..50``: the note says so); else names cut to 6 columns.  Never under 2
    columns, the cells' width.
    """
    if sum(len(h) + 1 for h in hosts) <= room:
        return {h: h.ljust(2) for h in hosts}, None
    prefix = os.path.commonprefix(list(hosts))
    while prefix and prefix[-1].isdigit():  # keep numbers whole: web08, web10 → 08, 10, not 8, 10
        prefix = prefix[:-1]
    if prefix and all(len(h) > len(prefix) for h in hosts):
        return {h: h[len(prefix):].ljust(2) for h in hosts}, f"host columns: {prefix}…"
    return {h: (h if len(h) <= 6 else h[:5] + "…").ljust(2) for h in hosts}, None


def fleet_summary(model: FleetModel) -> Text:
    """``Live: B on 48 of 50 hosts · A on web07, web33 (drift) · unknown on web50``: the majority counted, the
    hosts off it named (they are what needs a look), or ``Live: B on all 50 hosts``."""
    live = {h: s.current for h, s in model.states.items()}
    total = len(model.hosts)
    text = Text("Live: ", style="bold")
    if not live:
        text.append("unknown", style="bold red")
    parts: list[Text] = []
    for build, names in present.group_hosts(live):
        if model.majority is not None and build == model.majority:
            phrase = f"all {total} hosts" if len(names) == total and total > 1 else (
                present.host_list(names) if len(names) <= 2 else f"{len(names)} of {total} hosts")
            parts.append(Text(f"{build or 'nothing'} on {phrase}", style="bold green"))
        else:
            parts.append(Text(f"{build or 'nothing'} on {present.host_list(names)}", style="bold yellow"))
            if model.majority is not None:
                parts[-1].append(" (drift)", style="yellow")
    if model.unknown:
        parts.append(Text(f"unknown on {present.host_list(list(model.unknown))}", style="bold red"))
    text.append(Text(" · ").join(parts))
    return text


def fleet_line(model: FleetModel) -> Text:
    """The fleet in a few words, for the hosts table's bottom border (80 columns): ``46/50 on B · drift: web04,
    web07, web33 · unknown: web50``, or ``all 3 hosts on B``; without a majority, each build and its hosts."""
    total = len(model.hosts)
    parts: list[Text] = []
    if model.majority is not None:
        live = model.live_on(model.majority)
        share = (f"{len(live)}/{total}" if len(live) < total
                 else f"all {total} hosts" if total > 1 else present.host_list(live))
        parts.append(Text(f"{share} on {model.majority or 'nothing'}", style="bold green"))
        if model.drift:
            parts.append(Text(f"drift: {present.host_list([h for h in model.hosts if h in model.drift])}",
                              style="bold yellow"))
    else:
        serving = {h: s.current for h, s in model.states.items()}
        parts.extend(Text(f"{build or 'nothing'} on {present.host_list(names)}", style="bold yellow")
                     for build, names in present.group_hosts(serving))
    if model.unknown:
        parts.append(Text(f"unknown: {present.host_list(list(model.unknown))}", style="bold red"))
    return Text(" · ").join(parts)


def build_detail(model: FleetModel, build_id: str, now: datetime, tz: Optional[tzinfo], compact: bool = False) -> Text:
    """What the build under the cursor is across the fleet: where it is live, in which state, pinned, missing."""
    first = next((model.build(h, build_id) for h in model.present_on(build_id)), None)
    text = Text(build_id, style="bold")
    if first is not None:
        text.append(f"  created {created_cell(first.created_at, now, tz, compact)}  git {git_cell(first)}")
        if first.deployed_by:
            text.append(f"  by {first.deployed_by}")
        if first.git_subject:
            text.append(f"  {first.git_subject}", style="italic")
    total = len(model.hosts)
    parts: list[Text] = []
    live = model.live_on(build_id)
    if live:
        parts.append(Text(f"live on {present.hosts_phrase(live, total)}", style="bold green"))
    states = {h: (model.build(h, build_id).state if model.build(h, build_id) else "missing")  # type: ignore[union-attr]
              for h in model.hosts if h in model.states}
    for state, names in present.group_hosts(states):
        style = {"failed": "bold red", "damaged": "bold red", "incomplete": "yellow", "rolled-away": "yellow",
                 "missing": "dim"}.get(state, "")
        parts.append(Text(f"{state} on {present.hosts_phrase(names, total)}", style=style))
    pinned = [h for h in model.present_on(build_id) if model.build(h, build_id).pinned]  # type: ignore[union-attr]
    if pinned:
        parts.append(Text(f"pinned on {present.hosts_phrase(pinned, total)}", style="cyan"))
    if model.unknown:
        parts.append(Text(f"unknown on {present.host_list(list(model.unknown))}", style="red"))
    text.append("\n")
    text.append(Text(" · ").join(parts))
    return text


class FleetScreen(Screen[None]):
    """The builds-by-hosts matrix; ``r`` and ``P`` act on the build under the cursor, for the target hosts."""

    BINDINGS = [
        Binding("r", "rollback", "Rollback",
                tooltip="Roll the target hosts back (or forward) to the build under the cursor (asks first; "
                        "the progress shows on the main screen)"),
        Binding("P", "pin", "Pin", tooltip="Pin or unpin the build under the cursor on the target hosts "
                                           "(asks first; prune never removes a pinned build)"),
        Binding("D", "diff", "Diff", tooltip="Diff: what rolling the target hosts to the build under the cursor "
                                             "would change (files, requirements, commits)"),
        Binding("f5", "refresh", "Refresh", tooltip="Read every host's state again"),
        Binding("escape,v", "close", "Back", tooltip="Back to the hosts and builds"),
    ]

    def __init__(self, main: "MainFace"):
        super().__init__()
        self.main = main
        self.model: Optional[FleetModel] = None
        self.label_note: Optional[str] = None
        self.scrolls = False  # the host columns are wider than the screen
        self._filled_width = 0

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static(id="fleet-summary")
        # Left/right scroll the host columns (a row cursor); Build, Live and Has stay put.  No cell padding: each
        # host column is its header and one space (web01..web50: 3 columns a host, about 20 hosts at 80 columns).
        yield MatrixTable(id="fleet", cursor_type="row", zebra_stripes=False, fixed_columns=3, cell_padding=0)
        yield Static(id="fleet-detail")
        yield FittedFooter()

    def on_mount(self) -> None:
        table = self.query_one("#fleet", DataTable)
        table.border_subtitle = LEGEND
        table.focus()
        self.fill()

    def on_resize(self, event: events.Resize) -> None:
        # The host columns' headers depend on the width (full names, or shortened to fit more hosts).
        if event.size.width != self._filled_width:
            self.call_after_refresh(self.fill)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> Optional[bool]:
        """Dim r and P while an operation runs or a confirmation is being prepared (as on the main screen)."""
        if action in ("rollback", "pin"):
            return self.main.check_action(action, parameters)
        return True

    # --- drawing --------------------------------------------------------------------

    def fill(self) -> None:
        """Redraw the matrix from the main screen's last read, keeping the cursor on the same build."""
        app = self.main.releasetui
        table = self.query_one("#fleet", DataTable)
        keep, keep_x = self.selected_build(), table.scroll_x
        model = self.model = fleet_model([h.name for h in app.hosts], app.states)
        self._filled_width = width = self.size.width or app.size.width
        table.clear(columns=True)
        # Without cell padding the spaces are written: one before the id, one after every column.
        id_width = max([len("Build"), *(len(b) for b in model.builds)]) + 2
        table.add_column(" Build", key="id", width=id_width)
        table.add_column("Live", key="live", width=5)
        table.add_column("Has", key="has", width=4)
        # The host columns get what is left: the border and the vertical scrollbar aside.
        room = width - 2 - 2 - (id_width + 5 + 4)
        labels, self.label_note = column_labels(model.hosts, max(room, 0))
        self.scrolls = sum(len(label) + 1 for label in labels.values()) > room
        targets = {h.name for h in self.main.targets()} if self.main.marked else set()
        for host in model.hosts:
            style = ("bold red" if host in model.unknown else "bold black on yellow" if host in model.drift
                     else "bold cyan" if host in targets else "")
            table.add_column(Text(labels[host], style=style), key=host, width=len(labels[host]) + 1)
        for build_id in model.builds:
            live, present_on = len(model.live_on(build_id)), len(model.present_on(build_id))
            row: list[object] = [
                Text(f" {build_id}", style="bold" if build_id == model.majority else ""),
                Text(str(live) if live else "-", style="bold green" if live else "dim"),
                Text(str(present_on)),
            ]
            for host in model.hosts:
                if host in model.unknown:
                    row.append(Text("? ", style="red"))
                else:
                    row.append(cell(model.build(host, build_id), host in model.drift))
            table.add_row(*row, key=build_id)
        table.border_title = f"Fleet · {len(model.builds)} builds on {len(model.hosts)} hosts"
        target = keep if keep in table.rows else model.majority
        if target is not None and target in table.rows:
            table.move_cursor(row=table.get_row_index(target), animate=False)
        if keep_x:
            # The re-read every 30 s redraws the matrix: whoever scrolled to web40 stays there.
            self.call_after_refresh(lambda: table.scroll_to(x=keep_x, animate=False))
        self.fill_summary()
        self.fill_detail()

    def fill_summary(self) -> None:
        """The line above the matrix: what the fleet serves (grouped), the targets, how to read the headers."""
        model = self.model
        if model is None:
            return
        text = fleet_summary(model)
        notes = [f"targets: {self.main.targets_phrase()}"]
        if self.label_note:
            notes.append(self.label_note)
        if self.scrolls:
            notes.append("←/→ scroll the hosts")
        text.append("\n" + " · ".join(notes), style="dim")
        self.query_one("#fleet-summary", Static).update(text)

    def fill_detail(self) -> None:
        """The lines under the matrix: the build under the cursor across the fleet."""
        build_id = self.selected_build()
        detail = self.query_one("#fleet-detail", Static)
        if self.model is None or build_id is None:
            detail.update(Text("no builds yet" if self.model and self.model.states else "reading…", style="dim"))
            return
        app = self.main.releasetui
        detail.update(build_detail(self.model, build_id, app.now(), app.tz, compact=self.size.width < 100))

    def selected_build(self) -> Optional[str]:
        """The build id under the cursor, or None."""
        return selected_key(self.query_one("#fleet", DataTable))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """The detail follows the cursor."""
        self.fill_detail()

    # --- keys -------------------------------------------------------------------------

    def action_rollback(self) -> None:
        """r: the main screen's rollback, to the build under the cursor."""
        build_id = self.selected_build()
        if build_id is None:
            self.notify("No build under the cursor.", title="Rollback", severity="warning", timeout=4)
            return
        self.main.rollback_to(build_id)

    def action_pin(self) -> None:
        """P: the main screen's pin/unpin, for the build under the cursor."""
        build_id = self.selected_build()
        if build_id is None:
            self.notify("No build under the cursor.", title="Pin", severity="warning", timeout=4)
            return
        self.main.pin_build(build_id)

    def action_diff(self) -> None:
        """D: the main screen's diff view, for the build under the cursor (esc comes back here)."""
        build_id = self.selected_build()
        if build_id is None:
            self.notify("No build under the cursor.", title="Diff", severity="warning", timeout=4)
            return
        self.main.show_diff(build_id)

    def action_refresh(self) -> None:
        """f5: read the hosts again; the matrix redraws when the states arrive."""
        self.main.action_refresh()

    def action_close(self) -> None:
        """Back to the main screen."""
        self.dismiss(None)
