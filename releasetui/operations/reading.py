"""Read-only operations: builds (states), logs, history. One round trip per host each."""

from __future__ import annotations

import threading
import time
from typing import Optional, Sequence

from .. import commands
from ..config import HostConfig
from ..history import HistoryEntry, merge
from ..models import HostOutcome, OperationResult
from ..text import clean
from .context import OperationContext
from .locking import ReadRequest, read_states


def states(ctx: OperationContext, hosts: Sequence[HostConfig]) -> dict[str, object]:
    """Each host's :class:`~releasetui.models.HostState` (or the exception reading it raised).

    The host's Python version and its missing shared files come along (venv reuse and a deploy's refusals
    depend on them).
    """
    # Missing shared files come along too (same round trip), so a TUI's deploy confirmation refuses up front.
    return read_states(ctx, hosts, ReadRequest(python=True, shared_files=ctx.config.shared.files)).states


def logs(ctx: OperationContext, hosts: Sequence[HostConfig], lines: int = 50, follow: bool = False,
         stop: Optional[threading.Event] = None) -> OperationResult:
    """Tail each host's log files; each line is a ``log`` event labelled with its host (cleaned of escapes)."""
    started = time.monotonic()
    stop = stop or ctx.stop
    result = OperationResult("logs")

    def tail(host: HostConfig) -> HostOutcome:
        ctx.connect(host)
        handler = lambda line: ctx.report(host.name, "log", "log", message=clean(line, 4000))
        run = ctx.executor(host).run(commands.logs_script(host.root, host.logs, lines, follow), on_line=handler,
                                     mutating=False, stop=stop, keep_stdin=follow)
        if run.stopped or run.ok:
            return HostOutcome(host.name, "ok", "stopped" if run.stopped else "")
        return HostOutcome(host.name, "failed", run.error_text())

    ctx.each_host(result, hosts, tail, limit=len(hosts) or 1)  # every host followed at once
    return ctx.finish(result, started, hosts)


def history(ctx: OperationContext, hosts: Sequence[HostConfig], lines: int = 1000) -> tuple[list[HistoryEntry], dict]:
    """Every host's history merged into one entry per operation (oldest first), and per host what went wrong.

    The second value maps a host to a problem: unreachable, or how many
    lines of its history could not be read.
    """
    problems: dict[str, str] = {}
    records: dict[str, list] = {}

    def read(host: HostConfig) -> tuple[list, int]:
        ctx.connect(host)
        run = ctx.executor(host).run(commands.history_script(host.root, lines), mutating=False,
                                     timeout=ctx.config.script_timeout)
        if not run.ok:
            raise RuntimeError(run.error_text())
        return commands.parse_history(run.stdout)

    for name, outcome in ctx.runner.map(hosts, read).items():
        if not outcome.ok:
            problems[name] = f"unreachable: {outcome.error}"
            continue
        found, skipped = outcome.value
        records[name] = found
        if skipped:
            problems[name] = f"{skipped} line(s) of its history.jsonl could not be read and were skipped"
    return merge(records), problems
