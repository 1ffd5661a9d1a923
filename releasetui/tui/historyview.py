"""The history view (``h``): every operation on the fleet, newest first, one line each.

The core merges every host's ``history.jsonl`` into one
:class:`~releasetui.history.HistoryEntry` per operation; this screen reads
it in a thread worker and shows one row per entry (when, what, hosts,
outcome, from → to, who, how long, the CI job), with everything about the
entry under the cursor spelled out below the table.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Callable, Optional, Sequence

from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from .. import present
from ..history import HistoryEntry
from .fmt import age, fit_cell
from .widgets.footer import FittedFooter
from .widgets.tables import MatrixTable, selected_key

COMPACT_WIDTH = 100  # below it, shorter times and cells


def when_cell(when: Optional[datetime], now: datetime, tz: Optional[tzinfo], compact: bool = False) -> str:
    """Local time and age: ``2026-11-28 09:42  2h ago`` (compact: ``11-28 09:42``)."""
    if when is None:
        return "?"
    local = when.astimezone(tz) if tz is not None else when.astimezone()
    if compact:
        return f"{local:%m-%d %H:%M}"
    return f"{local:%Y-%m-%d %H:%M}  {age(when, now)}"


def took(seconds: Optional[float]) -> str:
    """``4s``, ``2m05s``, ``1h02m``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def change_text(entry: HistoryEntry) -> str:
    """``A → B``; ``2 builds → B`` when the hosts came from different builds; the hosts grouped by move when they
    went to different builds; else what the operation did (removed..., the build pinned)."""
    if entry.moves:
        moves = {h: (a or "none", b or "none") for h, (a, b) in sorted(entry.moves.items())}
        sources, targets = {a for a, _ in moves.values()}, {b for _, b in moves.values()}
        if len(sources) == 1 and len(targets) == 1:
            return f"{sources.pop()} → {targets.pop()}"
        if len(targets) == 1:  # hosts that disagreed, brought onto one build: the detail has who came from where
            return f"{len(sources)} builds → {targets.pop()}"
        groups = present.group_hosts({h: f"{a} → {b}" for h, (a, b) in moves.items()})
        return "; ".join(f"{present.host_list(names)}: {move}" for move, names in groups)
    values = {h: v for h, v in entry.details.items() if v}
    if not values:
        return ""
    groups = present.group_hosts(values)
    if len(groups) == 1:
        return str(groups[0][0])
    return "; ".join(f"{present.host_list(names)}: {value}" for value, names in groups)


def outcome_text(entry: HistoryEntry, total: int) -> str:
    """``ok``, ``failed`` (every host of the operation the same), else the hosts grouped by outcome, biggest
    group first: ``switched-back on 48 hosts (web01..web48); failed on web07``."""
    groups = present.group_hosts(dict(sorted(entry.hosts.items())))
    if len(groups) <= 1:
        return str(groups[0][0]) if groups else "?"
    return "; ".join(f"{outcome} on {present.hosts_phrase(names, total)}" for outcome, names in groups)


def outcome_style(outcome: str) -> str:
    """Green for ok, red when a host failed, yellow for the rest (aborted, switched back, interrupted)."""
    if outcome == "ok":
        return "green"
    return "bold red" if "failed" in outcome else "yellow"


def history_row(entry: HistoryEntry, total: int, now: datetime, tz: Optional[tzinfo], compact: bool) -> list:
    """One operation as a row: when, what, from → to, outcome, hosts, by, took, CI job and message."""
    hosts = present.hosts_phrase(sorted(entry.hosts), total) if entry.hosts else "-"
    extra = " ".join(x for x in (entry.ci_url, f"“{entry.message}”" if entry.message else None) if x)
    outcome = outcome_text(entry, total)
    # At 80 columns when, what, from → to and the outcome fit; the rest is a scroll (or the detail) away.  A
    # change is cut at the width of two build ids (a long one, like an unlock's, is in full in the detail).
    return [
        when_cell(entry.when, now, tz, compact),
        Text(entry.event, style="bold"),
        fit_cell(change_text(entry), 36 if compact else 48),
        Text(fit_cell(outcome, 24 if compact else 40), style=outcome_style(outcome)),
        fit_cell(hosts, 24 if compact else 40),
        entry.who or "?",
        took(entry.duration),
        extra or "-",
    ]


def entry_detail(entry: HistoryEntry, total: int, tz: Optional[tzinfo]) -> Text:
    """Everything about one operation: when, who and where, each host's outcome and move, details, CI, message."""
    text = Text()
    text.append(entry.event, style="bold")
    if entry.when is not None:
        local = entry.when.astimezone(tz) if tz is not None else entry.when.astimezone()
        text.append(f"  {local:%Y-%m-%d %H:%M:%S %Z}".rstrip())
    text.append(f"  by {entry.who or '?'}" + (f" on {entry.where}" if entry.where else ""))
    if entry.duration is not None:
        text.append(f"  took {took(entry.duration)}")
    outcomes = present.group_hosts(dict(sorted(entry.hosts.items())))
    lines = [Text("; ").join(Text(f"{outcome} on {present.hosts_phrase(names, total)}", style=outcome_style(outcome))
                             for outcome, names in outcomes)] if outcomes else []
    if entry.moves:
        moves = present.group_hosts({h: f"{a or 'none'} → {b or 'none'}"
                                     for h, (a, b) in sorted(entry.moves.items())})
        lines.append(Text("; ".join(move if len(moves) == 1 else f"{present.hosts_phrase(names, total)}: {move}"
                                    for move, names in moves)))
    if entry.details:
        details = present.group_hosts(dict(sorted(entry.details.items())))
        lines.append(Text("; ".join(str(value) if len(details) == 1
                                    else f"{present.hosts_phrase(names, total)}: {value}"
                                    for value, names in details), style="dim"))
    if entry.message:
        lines.append(Text(f"message: {entry.message}", style="italic"))
    if entry.ci_url:
        lines.append(Text(f"CI job: {entry.ci_url}", style="cyan"))
    for line in lines:
        text.append("\n")
        text.append(line)
    return text


class HistoryLoaded(Message):
    """The merged history (oldest first) and each host's reading problem, or why it could not be read."""

    def __init__(self, entries: list, problems: dict, error: Optional[str] = None):
        super().__init__()
        self.entries = entries
        self.problems = problems
        self.error = error


class HistoryScreen(Screen[None]):
    """Every deploy, rollback, prune, pin, unlock and failed health check of the fleet, newest first."""

    BINDINGS = [
        Binding("f5", "reload", "Reload", tooltip="Read every host's history again"),
        Binding("escape,q,h", "close", "Back", tooltip="Back to the hosts and builds"),
    ]

    def __init__(self, hosts: Sequence, read: Callable[[], tuple[list, dict]], now: Callable[[], datetime],
                 tz: Optional[tzinfo] = None):
        """``read`` returns ``(entries, problems)`` (the core's ``Operations.history``); it runs in a thread."""
        super().__init__()
        self.hosts = list(hosts)
        self.read = read
        self.now = now
        self.tz = tz
        self.entries: list[HistoryEntry] = []  # newest first
        self.problems: dict[str, str] = {}
        self.loading = False
        self.compact = False

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static(id="history-status")
        # Left/right scroll the columns (a row cursor); When stays put.
        yield MatrixTable(id="history", cursor_type="row", zebra_stripes=True, fixed_columns=1)
        yield Static(id="history-detail")
        yield FittedFooter()

    def on_mount(self) -> None:
        self.compact = self.app.size.width < COMPACT_WIDTH
        table = self.query_one("#history", DataTable)
        table.border_title = "History"
        table.focus()
        self.action_reload()

    def on_resize(self, event: events.Resize) -> None:
        compact = event.size.width < COMPACT_WIDTH
        if compact != self.compact:
            self.compact = compact
            self.fill()

    # --- reading ------------------------------------------------------------------------

    def action_reload(self) -> None:
        """f5: read every host's history again (in a worker)."""
        self.loading = True
        self.update_status()
        self.load()

    @work(thread=True, exclusive=True, group="history", exit_on_error=False)
    def load(self) -> None:
        """Worker: the core reads and merges the histories; the result comes back as :class:`HistoryLoaded`."""
        try:
            entries, problems = self.read()
        except Exception as exc:  # the pool itself failed: say so, keep the screen
            self.post_message(HistoryLoaded([], {}, str(exc) or type(exc).__name__))
            return
        self.post_message(HistoryLoaded(list(entries), dict(problems)))

    def on_history_loaded(self, message: HistoryLoaded) -> None:
        """Show what was read, newest first."""
        self.loading = False
        self.entries = list(reversed(message.entries))
        self.problems = dict(message.problems)
        if message.error:
            self.problems = {"*": f"could not read the history: {message.error}"}
        self.fill()

    # --- drawing --------------------------------------------------------------------------

    def update_status(self) -> None:
        """The line above the table: whose history, how many operations, what could not be read."""
        who = present.hosts_phrase([h.name for h in self.hosts], len(self.hosts))
        text = Text(f"History of {who}", style="bold")
        if self.loading:
            text.append(" · reading…", style="dim")
        else:
            text.append(f" · {len(self.entries)} operation(s), newest first", style="dim")
        if self.problems:
            groups = present.group_hosts(self.problems)
            for problem, names in groups:
                where = "" if names == ["*"] else f"{present.host_list(names)}: "
                text.append(f"\n{where}{problem}", style="red")
        self.query_one("#history-status", Static).update(text)

    def fill(self) -> None:
        """Redraw the table, keeping the cursor on the same operation."""
        table = self.query_one("#history", DataTable)
        keep = self.selected_index()
        table.clear(columns=True)
        for label, key in (("When", "when"), ("What", "event"), ("Change", "change"), ("Outcome", "outcome"),
                           ("Hosts", "hosts"), ("By", "who"), ("Took", "took"), ("CI job", "extra")):
            table.add_column(label, key=key)
        now = self.now()
        for index, entry in enumerate(self.entries):
            table.add_row(*history_row(entry, len(self.hosts), now, self.tz, self.compact), key=str(index))
        if keep is not None and keep < table.row_count:
            table.move_cursor(row=keep, animate=False)
        self.update_status()
        self.fill_detail()

    def selected_index(self) -> Optional[int]:
        """The index (in :attr:`entries`) of the operation under the cursor."""
        key = selected_key(self.query_one("#history", DataTable))
        return int(key) if key is not None else None

    def fill_detail(self) -> None:
        """Below the table: the operation under the cursor in full."""
        detail = self.query_one("#history-detail", Static)
        index = self.selected_index()
        if index is None:
            detail.update(Text("reading…" if self.loading else "no operations recorded yet", style="dim"))
            return
        detail.update(entry_detail(self.entries[index], len(self.hosts), self.tz))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """The detail follows the cursor."""
        self.fill_detail()

    def action_close(self) -> None:
        """Back to the main screen."""
        self.dismiss(None)
