"""The hosts table: one row per host (mark, roles, current build, lock, state, where), and the fleet in one
line on its bottom border."""

from __future__ import annotations

from datetime import datetime
from typing import Mapping, Optional, Sequence

from rich.text import Text

from ...config import HostConfig
from ..fleet import fleet_line, fleet_model
from ..fmt import currents_disagree, fit_cell, lock_cell
from .tables import RowTable


class HostsTable(RowTable):
    """The hosts the TUI shows, drawn from the states last read (``reading…`` before the first one)."""

    MIN_STATE = 24  # "unreachable: " and the start of the reason, even when that pushes State past the edge
    MIN_WHERE = 8  # narrower than this, Where is left to the edge (and the scrollbar) rather than cut with "…"

    def fill(self, hosts: Sequence[HostConfig], states: Mapping[str, object], marked: set[str], now: datetime,
             compact: bool, cursor: Optional[str], targets: str) -> None:
        """Redraw from ``states``, keeping the cursor on host ``cursor``; ``targets`` (in a few words) goes in the
        title, with a note when the hosts disagree on the current build."""
        disagree = currents_disagree(states)
        # Roles only when the config gives hosts roles: without, the column would only take State's room.
        with_roles = any(h.roles for h in hosts)
        # Where last: it never changes (it is the config), so on a narrow terminal it is the column to lose.
        columns = [("mark", " "), ("host", "Host"), *([("roles", "Roles")] if with_roles else []),
                   ("current", "Current"), ("count", "#"), ("lock", "Lock"), ("state", "State"), ("where", "Where")]
        state_at = len(columns) - 2
        rows = [self.row(host, states.get(host.name), host.name in marked, now, compact, disagree, with_roles)
                for host in hosts]
        self.fit(columns, rows, state_at)
        self.refill(columns, [(host.name, row) for host, row in zip(hosts, rows)])
        # The targets first: what d r p u P l act on is what a person must not misread.
        self.border_title = f"Hosts · targets: {targets}" + (" · ≠ hosts disagree on the current build"
                                                               if disagree else "")
        if cursor in {h.name for h in hosts}:
            self.move_cursor(row=self.get_row_index(cursor), animate=False)

    @staticmethod
    def row(host: HostConfig, state: object, marked: bool, now: datetime, compact: bool, disagree: bool,
            with_roles: bool) -> list:
        """One host's cells, State still uncut."""
        mark = Text("✓", style="bold cyan") if marked else ""
        if state is None:
            cells = ["", "", "", Text("reading…", style="dim")]
        elif isinstance(state, Exception):
            cells = ["?", "?", "?", Text(f"unreachable: {state}", style="bold red")]
        else:
            word = Text("ok", style="green") if state.initialized else Text("not deployed yet", style="yellow")
            current = Text(state.current or "none")
            if disagree:
                current.append(" ≠", style="bold yellow")
            lock = (Text(lock_cell(state.lock, now, compact=compact), style="bold yellow")
                    if state.lock else Text("-", style="dim"))
            cells = [current, str(len(state.builds)), lock, word]
        roles = [Text(", ".join(host.roles) or "-", style="magenta" if host.roles else "dim")] if with_roles else []
        return [mark, host.name, *roles, *cells, host.label]

    def fit(self, columns: list[tuple[str, str]], rows: list[list], state_at: int) -> None:
        """Cut State and Where to the screen: State gets all the room left of the table's right edge (a reason
        longer than that keeps its start; the output pane has all of it); Where gets what is left, cut with
        "…" rather than past the edge (which costs a scrollbar row), unless too little is left to say anything
        (then it is cut at the edge, and scrolls)."""
        room = self.state_room(columns, rows, state_at)
        for row in rows:
            row[state_at] = Text(fit_cell(row[state_at].plain, max(room, self.MIN_STATE)), style=row[state_at].style)
        state_width = max([len("State"), *(row[state_at].cell_len for row in rows)])
        where_room = room - state_width - 2 * self.cell_padding
        if where_room >= self.MIN_WHERE:
            for row in rows:
                row[state_at + 1] = fit_cell(row[state_at + 1], where_room)

    def state_room(self, columns: list[tuple[str, str]], rows: list[list], state_at: int) -> int:
        """The columns left for the hosts' State cells (and Where after them): the table's width minus the
        columns before State (at index ``state_at``) and State's own padding."""
        width = self.room()
        if self.show_vertical_scrollbar:
            width -= self.scrollbar_size_vertical
        padding = 2 * self.cell_padding
        before = 0
        for index, (_, label) in enumerate(columns[:state_at]):
            cells = [Text(cell) if isinstance(cell, str) else cell for cell in (row[index] for row in rows)]
            before += max([len(label), *(cell.cell_len for cell in cells)]) + padding
        return width - before - padding

    def show_summary(self, hosts: Sequence[HostConfig], states: Mapping[str, object], refreshing: bool) -> None:
        """The bottom line: what the fleet serves, grouped (the hosts off the majority and the unreachable ones
        named), so that a table showing a few rows of fifty still tells the whole fleet."""
        summary = fleet_line(fleet_model([h.name for h in hosts], states)) if states else Text("")
        if refreshing:
            summary = Text("refreshing… ", style="dim") + summary
        self.border_subtitle = summary
