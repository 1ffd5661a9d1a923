"""The builds table: the builds of the host under the hosts cursor, newest first, filtered."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Optional

from rich.text import Text

from ...models import BuildInfo, HostState
from ...rules import requirements_changed
from ..fmt import age_cell, created_cell, fit_cell, git_cell, short_hash, status_text
from .tables import RowTable


def matches(build: BuildInfo, needle: str) -> bool:
    """Whether the filter ``needle`` (lower case) is in the build's id, commit, who, status, hash, date or subject."""
    haystack = " ".join([build.id, build.git_commit or "", build.deployed_by or "", build.status,
                         build.requirements_sha256 or "", build.created_at or "", build.git_subject or ""]).lower()
    return needle in haystack


class BuildsTable(RowTable):
    """One host's builds: live mark, id, status, created, requirements, git, who, subject."""

    # The columns: (key, label, label when compact).  Status right after the id and Subject last: what a narrow
    # terminal cuts is at the right edge.
    COLUMNS = [("live", " ", " "), ("id", "Build", "Build"), ("status", "Status", "Status"),
               ("created", "Created (local)", "Age"), ("reqs", "Requirements", "Reqs"), ("git", "Git", "Git"),
               ("who", "Deployed by", "By"), ("subject", "Subject", "Subject")]
    COMPACT_WHO = 10  # compact, "Deployed by" is its user (cut to this); Subject gets what is left

    def fill(self, host: Optional[str], state: object, filter_text: str, compact: bool, now: datetime,
             tz: Optional[tzinfo]) -> None:
        """Redraw the builds of ``host`` (its ``state``: HostState, an exception, or None before the first read),
        newest first, honouring the filter; the cursor stays on the same build, else goes to the current one."""
        keep = self.selected()
        self.border_title = f"Builds on {host}" if host else "Builds"
        self.border_subtitle = "* requirements changed · + dirty tree"
        if filter_text:
            self.border_title += f" · filter: {filter_text}"
        columns = [(key, short if compact else label) for key, label, short in self.COLUMNS]
        if not isinstance(state, HostState):
            self.refill(columns, [])
            self.border_subtitle = ("reading…" if state is None else f"unreachable: {state}")
            return
        changed = requirements_changed(state.builds)
        needle = filter_text.lower()
        rows = [(build.id, self.row(build, changed.get(build.id, False), compact, now, tz))
                for build in sorted(state.builds, key=lambda b: b.id, reverse=True)
                if not needle or matches(build, needle)]
        self.fit(columns, rows, compact)
        self.refill(columns, rows)
        if not state.builds:
            self.border_subtitle = "no builds yet: press d to deploy"
        target = keep if keep is not None and keep in self.rows else state.current
        if target is not None and target in self.rows:
            self.move_cursor(row=self.get_row_index(target), animate=False)

    @staticmethod
    def row(build: BuildInfo, changed: bool, compact: bool, now: datetime, tz: Optional[tzinfo]) -> list:
        """One build's cells, "Deployed by" and Subject still uncut."""
        reqs = Text(short_hash(build.requirements_sha256, 4 if compact else 10))
        reqs.append(" *" if changed else "  ", style="bold yellow")
        created = age_cell(build.created_at, now) if compact else created_cell(build.created_at, now, tz)
        # Compact: "pinned" for "complete, pinned" (complete is what a build is unless it says otherwise).
        status = build.status.removeprefix("complete, ") if compact else build.status
        return [Text("▶", style="bold green") if build.current else "", build.id, status_text(status), created,
                reqs, git_cell(build), build.deployed_by or "-", build.git_subject or ""]

    def fit(self, columns: list[tuple[str, str]], rows: list[tuple[str, list]], compact: bool) -> None:
        """Cut "Deployed by" and Subject (the last two cells of each row) so that every column fits the screen:
        compact, who is its user (``alice`` of ``alice@laptop``, at most COMPACT_WHO); the subject gets the room
        left after every other column (at most 60), so nothing (the commit's dirty ``+`` least of all) is pushed
        past the edge."""
        if compact:
            for _, cells in rows:
                cells[-2] = fit_cell(cells[-2].partition("@")[0] or cells[-2], self.COMPACT_WHO)
        padding = 2 * self.cell_padding
        # The vertical scrollbar is counted always: whether it shows depends on the height.
        room = self.room() - self.scrollbar_size_vertical
        for index, (_, label) in enumerate(columns[:-1]):
            cells = [Text(c[index]) if isinstance(c[index], str) else c[index] for _, c in rows]
            room -= max([len(label), *(cell.cell_len for cell in cells)]) + padding
        # The subject, and its label too when even that does not fit (never past the edge: a scrollbar).
        room = min(max(room - padding, 0), 60)
        columns[-1] = (columns[-1][0], fit_cell(columns[-1][1], room) if room > 1 else "")
        for _, cells in rows:
            cells[-1] = fit_cell(cells[-1], room) if room > 1 else ""
