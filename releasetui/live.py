"""The live per-host table of ``releasetui --headless ACTION`` when stdout is a terminal.

A person watching fifty hosts wants to see what is still working, what
failed, and how long things take, not 300 scrolling lines.  So while an
operation runs, a Rich ``Live`` display shows one row per host that is
working (its phase, its step, how long that step has taken so far; with
more than a dozen at work, one row per step naming the slowest host) and
one row per group of hosts that stand in the same place (``48 hosts
web01..web48  activate  restart  ok``); hosts that failed are grouped by
what they said.  It is sized to the terminal: with more working hosts than
rows, the steps that do not fit are counted on one line.

When the operation ends the live display is replaced by a short table of
every step (how many hosts, how long, which ones failed) and the same
closing lines as the plain output (:func:`releasetui.output.closing_lines`).

This module imports Rich; the CLI imports it only when stdout is a
terminal, so a CI run never loads it.  The printer interface is
:class:`~releasetui.output.HumanPrinter`'s: ``event(e)``, ``summary(result)``,
``notice(text)``, ``close()``.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence, TextIO

from rich.console import Console, Group
from rich.constrain import Constrain
from rich.live import Live
from rich.table import Table
from rich.text import Text

from . import present
from .models import Event, OperationResult
from .output import closing_lines, is_terminal, write_line
from .text import clean_line

LOCAL = "here"   # the row of events that belong to no host (local hooks)
INDIVIDUAL = 12  # up to this many working hosts get a row each; more are grouped by the step they are at
STYLES = {"ok": "green", "failed": "bold red", "skipped": "yellow", "running": "cyan", "waiting": "dim",
          "info": "", "refused": "bold red", "locked": "bold red", "unreachable": "bold red", "aborted": "yellow",
          "interrupted": "bold yellow"}


@dataclass
class HostRow:
    """Where one host stands: its phase, its latest step, and whether anything failed there."""

    name: str
    phase: str = ""
    step: str = ""
    status: str = "waiting"          # waiting, running, ok, failed, skipped, info
    started: Optional[float] = None  # when the running step started (wall clock, as Event.time)
    duration: Optional[float] = None
    message: str = ""
    failure: Optional[str] = None    # the first failed step and what it said: the host is shown as failed
    seen: bool = False


@dataclass
class StepTally:
    """One step over the fleet: which hosts ended it how, and how long it took them."""

    phase: str
    step: str
    hosts: dict = field(default_factory=dict)       # status -> [host]
    durations: list = field(default_factory=list)


class Board:
    """What the live table shows, updated by events (thread-safe); pure apart from the clock."""

    def __init__(self, hosts: Sequence[str], clock: Callable[[], float] = time.time):
        self.clock = clock
        self.rows: dict[str, HostRow] = {name: HostRow(name) for name in hosts}
        self.order = list(hosts)
        self.steps: dict[tuple, StepTally] = {}
        self.times: dict[tuple, int] = {}   # (host, phase, step) -> how often it finished (a restart after a switch-back)
        self.note = ""                    # the latest word about the whole fleet ("wave 2/4: ...")
        self.started = clock()
        self.lock = threading.Lock()

    def apply(self, event: Event) -> None:
        """Take one event into account."""
        if event.status in ("log", "dry-run"):
            return
        with self.lock:
            if event.host is None and event.status == "info":
                self.note = clean_line(event.message, 300)
                return
            name = event.host or LOCAL
            row = self.rows.get(name)
            if row is None:
                row = self.rows[name] = HostRow(name)
                self.order.append(name)
            row.seen = True
            if event.phase:
                row.phase = event.phase
            if event.status == "output":          # a hook's or restart's own words: the step goes on
                if event.message:
                    row.message = clean_line(event.message, 300)
                return
            row.step = clean_line(event.step, 30)
            row.message = clean_line(event.message, 300)
            if event.status == "started":
                row.status, row.started, row.duration = "running", event.time, None
                return
            row.status, row.started, row.duration = event.status, None, event.duration
            if event.status == "failed" and row.failure is None:
                row.failure = f"{row.step}: {row.message}" if row.message else row.step
            again = self.times.get((name, row.phase, row.step), 0)
            self.times[(name, row.phase, row.step)] = again + 1
            label = row.step if not again else f"{row.step} (again)" if again == 1 else f"{row.step} ({again + 1}x)"
            tally = self.steps.setdefault((row.phase, label), StepTally(row.phase, label))
            tally.hosts.setdefault(event.status, []).append(name)
            if event.duration is not None:
                tally.durations.append(event.duration)

    # --- what is shown -----------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """How many hosts are working, idle (between steps), failed, or not started."""
        counts = {"working": 0, "idle": 0, "failed": 0, "waiting": 0}
        for row in self.rows.values():
            if row.name == LOCAL:
                continue
            if row.failure:
                counts["failed"] += 1
            elif row.status == "running":
                counts["working"] += 1
            elif row.status == "waiting":
                counts["waiting"] += 1
            else:
                counts["idle"] += 1
        return counts

    def lines(self, budget: int) -> list[tuple]:
        """The table's rows, at most ``budget`` of them: ``(hosts, phase, step, time, status, message)``.

        Working hosts first (one row each, the longest-running first), then
        the failed hosts grouped by what failed, then the others grouped by
        where they stand, then the hosts not started yet.
        """
        now = self.clock()
        with self.lock:
            rows = [self.rows[name] for name in self.order]
        running = sorted((r for r in rows if r.status == "running"), key=lambda r: r.started or now)
        groups: dict[tuple, list[HostRow]] = {}
        for row in rows:
            if row.status == "running" or (row.status == "waiting" and not row.failure):
                continue  # a failed host still at work (switching back) is a working row until it is done
            key = ("failed", row.failure) if row.failure else (row.status, row.phase, row.step)
            groups.setdefault(key, []).append(row)
        failed = [g for k, g in groups.items() if k[0] == "failed"]
        settled = sorted((g for k, g in groups.items() if k[0] != "failed"), key=lambda g: -len(g))
        waiting = [r for r in rows if r.status == "waiting" and not r.failure]

        out: list[tuple] = []
        fixed = [self._group(g, now) for g in failed] + [self._group(g, now) for g in settled]
        if waiting:
            out_waiting = (self._names(waiting), "", "", "", "waiting", "not started yet")
            fixed.append(out_waiting)
        room = budget - len(fixed)
        if len(running) <= min(room, INDIVIDUAL):
            out = [self._running(r, now) for r in running]
        else:
            # Many hosts at work: one row per step they are at, naming the slowest (the one to watch).
            by_step: dict[tuple, list[HostRow]] = {}
            for row in running:
                by_step.setdefault((row.phase, row.step), []).append(row)
            out = [self._running_group(rows, now) for rows in by_step.values()]
            if len(out) > room:
                shown = max(0, room - 1)
                rest = [r for rows in list(by_step.values())[shown:] for r in rows]
                out = out[:shown] + [(f"+{len(rest)} more", "", "", "", "running",
                                      ", ".join(f"{p}/{st} {len(rows)}" for (p, st), rows
                                                in list(by_step.items())[shown:]))]
        out += fixed
        if len(out) > budget:
            cut = out[: max(0, budget - 1)]
            hidden = len(out) - len(cut)
            cut.append((f"… {hidden} more rows", "", "", "", "info", "(a taller terminal shows them)"))
            out = cut
        return out

    def _running_group(self, rows: list[HostRow], now: float) -> tuple:
        if len(rows) == 1:
            return self._running(rows[0], now)
        elapsed = [(max(0.0, now - (r.started or now)), r.name) for r in rows]
        slowest, name = max(elapsed)
        took = f"{min(elapsed)[0]:.1f}–{slowest:.1f}s"
        return (self._names(rows), rows[0].phase, rows[0].step, took, "running", f"slowest: {name} {slowest:.1f}s")

    def _running(self, row: HostRow, now: float) -> tuple:
        elapsed = max(0.0, now - (row.started or now))
        return (row.name, row.phase, row.step, f"{elapsed:5.1f}s", "running", row.message)

    def _names(self, rows: list[HostRow]) -> str:
        """``web07`` or ``25: web01..web25`` (in the config's order, so numbered runs collapse)."""
        place = {name: i for i, name in enumerate(self.order)}
        names = sorted((r.name for r in rows), key=lambda n: place.get(n, len(place)))
        return names[0] if len(names) == 1 else f"{len(names)}: {present.host_list(names, limit=3)}"

    def _group(self, rows: list[HostRow], now: float) -> tuple:
        first = rows[0]
        durations = [r.duration for r in rows if r.duration is not None]
        if not durations:
            took = ""
        elif len(durations) == 1 or max(durations) - min(durations) < 0.005:
            took = f"{durations[0]:5.2f}s"
        else:
            took = f"{min(durations):.2f}–{max(durations):.2f}s"
        if first.failure:
            messages = {r.failure for r in rows}
            return (self._names(rows), first.phase, first.step, took, "failed",
                    first.failure if len(messages) == 1 else "")
        messages = {r.message for r in rows}
        return (self._names(rows), first.phase, first.step, took, first.status,
                first.message if len(messages) == 1 else "")

    def step_lines(self) -> list[tuple[str, str, str, str, str]]:
        """The closing table: per step, ``(phase, step, counts, durations, worst status)``, in the order steps ran."""
        with self.lock:
            tallies = list(self.steps.values())
        lines = []
        for tally in tallies:
            parts, worst = [], "ok"
            for status in ("ok", "skipped", "info", "failed"):
                names = tally.hosts.get(status)
                if not names:
                    continue
                if status == "failed":
                    worst = "failed"
                    parts.append(f"{len(names)} failed ({present.host_list(sorted(names), limit=3)})")
                else:
                    parts.append(f"{len(names)} {status}")
            for status, names in tally.hosts.items():
                if status not in ("ok", "skipped", "info", "failed"):
                    parts.append(f"{len(names)} {status}")
            durations = sorted(tally.durations)
            if not durations:
                took = ""
            elif len(durations) == 1:
                took = f"{durations[0]:.2f}s"
            else:
                took = f"{durations[0]:.2f}–{durations[-1]:.2f}s (median {durations[len(durations) // 2]:.2f}s)"
            lines.append((tally.phase, tally.step, ", ".join(parts), took, worst))
        return lines


class LivePrinter:
    """The live table on a terminal (see the module docstring); same interface as HumanPrinter."""

    def __init__(self, operation: str, hosts: Sequence[str], out: TextIO = sys.stdout, err: TextIO = sys.stderr,
                 console: Optional[Console] = None, refresh_per_second: float = 8.0,
                 clock: Callable[[], float] = time.time):
        self.operation = operation
        self.err = err
        self.console = console or Console(file=out, force_terminal=True, no_color="NO_COLOR" in os.environ,
                                          highlight=False, emoji=False, markup=False)
        self.board = Board(hosts, clock)
        self.notices: list[str] = []
        self.err_is_terminal = is_terminal(err)
        # Anything else written to a terminal's stderr while the table is up is printed above it, not through it.
        self.live = Live(console=self.console, get_renderable=self.render, refresh_per_second=refresh_per_second,
                         transient=True, redirect_stdout=True, redirect_stderr=self.err_is_terminal)
        self.closed = False

    # --- the printer interface -------------------------------------------------------------------

    def start(self) -> "LivePrinter":
        """Show the table (it refreshes itself from now on)."""
        if not self.live.is_started and not self.closed:
            self.live.start(refresh=True)
        return self

    def event(self, event: Event) -> None:
        """Take one event into the table (a fleet-wide warning, e.g. files held back, stays until the end)."""
        if event.host is None and event.status == "skipped":
            self.notice(clean_line(event.message))
            return
        self.board.apply(event)
        if not self.live.is_started and not self.closed:
            self.start()

    def notice(self, text: str) -> None:
        """A diagnostic for stderr (Ctrl-C's words): shown in the table, written to stderr once it is gone.

        Safe in a signal handler: it only appends to a list (stderr that is
        not a terminal is written at once: it cannot tear the table).
        """
        if self.err_is_terminal and self.live.is_started:
            self.notices.append(text)
        else:
            write_line(self.err, text)

    def summary(self, result: OperationResult) -> None:
        """Replace the table with the per-step table and the closing lines."""
        self.close()
        table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 1))
        for _ in range(4):
            table.add_column(no_wrap=True, overflow="ellipsis")
        table.columns[2].overflow = "fold"
        table.columns[2].no_wrap = False
        for phase, step, counts, took, worst in self.board.step_lines():
            table.add_row(Text(phase, style="dim"), Text(step), Text(counts, style=STYLES.get(worst, "")), Text(took))
        if table.row_count:
            self.console.print(table)
        for status, line in closing_lines(result):
            self.console.print(Text(line, style=STYLES.get(status, "")), soft_wrap=True)

    def close(self) -> None:
        """Take the table down (idempotent); the notices it showed go to stderr now."""
        if self.closed:
            return
        self.closed = True
        if self.live.is_started:
            self.live.stop()
        for text in self.notices:
            write_line(self.err, text)
        self.notices = []

    # --- drawing ---------------------------------------------------------------------------------

    def render(self) -> Constrain:
        """The current frame, sized to the terminal.

        Two columns are kept free: the terminal echoes ``^C`` after the last
        line, and a full-width line would then wrap and leave a line behind
        when the table is taken down.
        """
        width, height = self.console.size
        width = max(20, width - 2)
        counts = self.board.counts()
        elapsed = self.board.clock() - self.board.started
        total = sum(counts.values())
        head = Text(no_wrap=True, overflow="ellipsis")
        head.append(f"{self.operation} ", style="bold")
        head.append(f"{total} host{'s' if total != 1 else ''} · {elapsed:.1f}s · ")
        head.append(f"{counts['working']} working", style=STYLES["running"] if counts["working"] else "")
        head.append(f", {counts['idle']} idle")
        if counts["failed"]:
            head.append(f", {counts['failed']} failed", style=STYLES["failed"])
        if counts["waiting"]:
            head.append(f", {counts['waiting']} waiting")
        parts: list = [head]
        if self.board.note:
            parts.append(Text(self.board.note, style="dim", no_wrap=True, overflow="ellipsis"))
        for text in list(self.notices):
            parts.append(Text(text.rstrip("\n"), style="bold yellow", no_wrap=True, overflow="ellipsis"))
        budget = max(1, height - len(parts) - 2)     # the table's header, and a line for the cursor
        table = Table(box=None, pad_edge=False, padding=(0, 1), expand=True, header_style="bold")
        host_width = max(6, min(40, width // 4))
        table.add_column("HOST", no_wrap=True, overflow="ellipsis", max_width=host_width)
        table.add_column("PHASE", no_wrap=True, overflow="ellipsis", max_width=8)
        table.add_column("STEP", no_wrap=True, overflow="ellipsis", max_width=12)
        table.add_column("TIME", no_wrap=True, justify="right", max_width=13)
        table.add_column("STATUS", no_wrap=True, overflow="ellipsis", ratio=1)
        for hosts, phase, step, took, status, message in self.board.lines(budget):
            words = Text(status, style=STYLES.get(status, ""))
            if message:
                words.append(f"  {message}", style="" if status != "failed" else STYLES["failed"])
            table.add_row(Text(hosts), Text(phase, style="dim"), Text(step), Text(took), words)
        parts.append(table)
        return Constrain(Group(*parts), width)


