"""What the headless CLI writes: plain lines for people and CI logs, or JSON lines; never Textual.

stdout is data (one line per finished step per host, the outcomes, what is
live); diagnostics go to stderr.  Colour only on a terminal with ``NO_COLOR``
unset, not ``TERM=dumb``, not in a CI job (``CI=true``).  Every text that came
from a host is cleaned of escape sequences.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from datetime import datetime
from typing import Optional, TextIO

from . import present
from .clock import parse_stamp
from .history import OUTCOMES
from .models import Event, HostState, OperationResult
from .text import clean, clean_line


class SafeStream:
    """Wraps stdout so a reader that goes away (``| head``) silences the output instead of failing the operation.

    The operation still runs to its end and the exit code still says how it went.
    """

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.broken = False

    def isatty(self) -> bool:
        """Whether the wrapped stream is a terminal."""
        try:
            return self.stream.isatty()
        except (ValueError, OSError):
            return False

    def write(self, text: str) -> int:
        """Write, or drop the text once the reader is gone."""
        if not self.broken:
            try:
                return self.stream.write(text)
            except (BrokenPipeError, ValueError):
                self._break()
        return len(text)

    def flush(self) -> None:
        """Flush, or do nothing once the reader is gone."""
        if not self.broken:
            try:
                self.stream.flush()
            except (BrokenPipeError, ValueError):
                self._break()

    def _break(self) -> None:
        self.broken = True
        try:  # the interpreter flushes stdout at exit: point it at devnull so that raises nothing either
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
        except (OSError, ValueError, AttributeError):
            pass


def colour_wanted(stream: TextIO, environ=None) -> bool:
    """Colour only on a terminal, and never with ``NO_COLOR`` set, ``TERM=dumb`` or in a CI job."""
    environ = os.environ if environ is None else environ
    return "NO_COLOR" not in environ and not plain_environment(environ) and is_terminal(stream)


def plain_environment(environ) -> bool:
    """A dumb terminal or a CI job (which may fake a tty): plain text only, no colour, no cursor codes."""
    return environ.get("TERM") == "dumb" or environ.get("CI", "").lower() in ("1", "true", "yes")


class HumanPrinter:
    """Plain lines: one per finished step per host, then the outcomes (hosts grouped), then what is live."""

    COLOURS = {"ok": "32", "failed": "31", "skipped": "33", "dry-run": "36", "info": "2", "output": "2"}

    def __init__(self, out: TextIO = sys.stdout, steps: Optional[TextIO] = None):
        self.out = out
        self.steps = steps or out  # `logs` sends its step lines to stderr: stdout carries only the log lines
        self.colour = colour_wanted(out)
        self.lock = threading.Lock()
        # --dry-run's scripts, held until the operation ends so the same script on many hosts prints once.
        self.recorded: list[tuple[Optional[str], str, str]] = []

    def paint(self, text: str, status: str) -> str:
        """Colour ``text`` by status when writing to a terminal."""
        code = self.COLOURS.get(status)
        return f"\033[{code}m{text}\033[0m" if self.colour and code else text

    def event(self, event: Event) -> None:
        """Print one event (``started`` ones are skipped: the finished line carries the duration)."""
        if event.status == "started":
            return
        with self.lock:
            if event.status == "log":
                self.out.write(f"{event.host} | {clean_line(event.message)}\n")
                self.out.flush()
                return
            if event.status == "dry-run":
                self.recorded.append((event.host, event.step, clean(event.message).rstrip("\n")))
            else:
                stamp = datetime.now().strftime("%H:%M:%S")
                host = event.host or "-"
                duration = f"{event.duration:6.2f}s" if event.duration is not None else " " * 7
                message = f"  {clean_line(event.message)}" if event.message else ""
                self.steps.write(f"{stamp} {host:<12} {event.step:<12} {self.paint(f'{event.status:<7}', event.status)} "
                                 f"{duration}{message}\n")
            self.out.flush()
            self.steps.flush()

    def summary(self, result: OperationResult) -> None:
        """The closing lines: the outcomes (hosts grouped), the overall status, then what is live.

        What is live is the LAST line, so a CI log's tail answers "what runs now?".
        """
        with self.lock:
            for status, line in closing_lines(result):
                self.out.write((self.paint(line, "ok" if status == "ok" else "failed") if status else line) + "\n")
            self.out.flush()

    def notice(self, text: str) -> None:
        """A diagnostic (Ctrl-C's words): stderr, at once."""
        write_line(sys.stderr, text)

    def close(self) -> None:
        """Print the dry run's scripts, each distinct one once with the hosts that would run it."""
        with self.lock:
            for header, text in present.dry_run_blocks(self.recorded):
                self.out.write(self.paint(header, "dry-run") + "\n" + text + "\n")
            self.recorded = []
            self.out.flush()


class JsonPrinter:
    """JSON lines: one object per event, then a summary object."""

    def __init__(self, out: TextIO = sys.stdout, stage: Optional[str] = None):
        self.out = out
        self.lock = threading.Lock()
        self.stage = stage  # named in every event, as the fleet is (the summary carries it too)

    def event(self, event: Event) -> None:
        """Print one event as a JSON object on its own line."""
        doc = event.to_dict()
        if self.stage:
            doc["stage"] = self.stage
        with self.lock:
            self.out.write(json.dumps(doc) + "\n")
            self.out.flush()

    def summary(self, result: OperationResult) -> None:
        """Print the final summary object."""
        with self.lock:
            self.out.write(json.dumps(result.to_dict()) + "\n")
            self.out.flush()

    def notice(self, text: str) -> None:
        """A diagnostic (Ctrl-C's words): stderr, at once."""
        write_line(sys.stderr, text)

    def close(self) -> None:
        """Nothing to take down."""


def closing_lines(result: OperationResult) -> list[tuple[str, str]]:
    """``(status, text)``: each group of hosts' outcome, the operation's message, the summary line, what is live.

    The status is the outcome's (``ok``, ``failed``...) for outcome lines and
    ``""`` for the others; the plain and the live printers both end with these.
    """
    lines = [(status, clean_line(line)) for status, line in present.outcome_lines(result)]
    if result.message:
        lines.append(("", clean_line(result.message)))
    lines.append(("", present.summary_line(result)))
    if result.operation in ("deploy", "rollback", "pin", "unpin", "unmark", "prune", "unlock") and result.outcomes:
        unreachable = [o.host for o in result.outcomes.values() if o.status == "unreachable"]
        live = {name: o.current or o.serving for name, o in result.outcomes.items()}
        lines.append(("", present.live_line(live, unreachable)))
    return lines


def live_table_wanted(stream, environ=None) -> bool:
    """Whether ``stream`` gets the live table: a terminal, not a dumb one, not a CI job (which may fake a tty)."""
    environ = os.environ if environ is None else environ
    return not plain_environment(environ) and is_terminal(stream)


def is_terminal(stream) -> bool:
    """Whether ``stream`` is a terminal (a closed or odd stream is not)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def write_line(stream: TextIO, text: str) -> None:
    try:
        stream.write(text if text.endswith("\n") else text + "\n")
        stream.flush()
    except (OSError, ValueError):
        pass


def local_time(created_at: Optional[str]) -> str:
    """``2026-11-28 10:15:00`` in local time, from the metadata's UTC stamp."""
    if not created_at:
        return "-"
    when = parse_stamp(created_at)
    if when is None:
        return clean_line(created_at, 19)
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def print_builds(states: dict, out: TextIO = sys.stdout) -> None:
    """The human table of ``builds``: a fleet summary, then one block per group of hosts with the same builds.

    Hosts whose builds, current build, lock and problems are the same share
    one block (``web01..web48 (48 hosts): current ...``); the hosts that
    differ follow, each with its own.  Within a block, newest first; failed,
    rolled-away, damaged and pinned marked.  (A build's creation time differs by a second
    or two between hosts; a shared block shows the earliest.)
    """
    for line in fleet_summary_lines(states):
        out.write(line + "\n")
    if len(states) > 1:
        out.write("\n")
    blocks: dict[tuple, list[str]] = {}
    created: dict[tuple, dict[str, str]] = {}
    for name, state in states.items():
        key = _block_key(state)
        blocks.setdefault(key, []).append(name)
        if isinstance(state, HostState):
            times = created.setdefault(key, {})
            for build in state.builds:
                if build.created_at and (build.id not in times or build.created_at < times[build.id]):
                    times[build.id] = build.created_at
    for key, names in sorted(blocks.items(), key=lambda item: -len(item[1])):
        who = names[0] if len(names) == 1 else f"{present.host_list(names)} ({len(names)} hosts)"
        for line in _block_lines(states[names[0]], created.get(key, {})):
            out.write((f"{who}: {line}" if line and not line.startswith(" ") else line) + "\n")
            who = None
        out.write("\n")


def fleet_summary_lines(states: dict) -> list[str]:
    """What the fleet serves, who could not be read or is locked, and which builds are where (newest first)."""
    if len(states) <= 1:
        return []
    reachable = {n: s for n, s in states.items() if isinstance(s, HostState)}
    unreachable = [n for n in states if n not in reachable]
    total = len(states)
    live = {n: s.current or "nothing" for n, s in reachable.items()}
    groups = present.group_hosts(live)
    if not reachable:
        lines = [f"fleet: unknown: none of the {total} hosts could be read"]
    elif len(groups) == 1 and not unreachable:
        lines = [f"fleet: {groups[0][0]} on all {total} hosts"]
    else:
        parts = [f"{build} on {present.hosts_phrase(names, total)}" for build, names in groups]
        lines = ["fleet: " + ("HOSTS DISAGREE: " if len(groups) > 1 else "") + "; ".join(parts)]
    if unreachable:
        lines.append(f"unreachable: {present.hosts_phrase(unreachable, total)}")
    locked = {n: clean_line(s.lock.describe(), 160) for n, s in reachable.items() if s.lock}
    for text, names in present.group_hosts(locked):
        lines.append(f"locked: {present.hosts_phrase(names, total)}: {text}")
    where: dict[str, dict[str, list[str]]] = {}
    for name, state in reachable.items():
        for build in state.builds:
            marks = where.setdefault(build.id, {})
            marks.setdefault("", []).append(name)
            for word in build.status.split(", "):
                if word not in ("complete", "current"):
                    marks.setdefault(word, []).append(name)
    if where:
        lines.append("builds (newest first):")
        ids = sorted(where, reverse=True)
        for build_id in ids[:12]:
            marks = where[build_id]
            have = marks.pop("")
            missing = [n for n in reachable if n not in have]
            if len(have) == 1:
                text = f"  {build_id}  on {have[0]}"
            elif missing and len(missing) < len(have):
                text = f"  {build_id}  on {len(have)} hosts (not on {present.host_list(missing, limit=4)})"
            else:
                text = f"  {build_id}  on {present.hosts_phrase(have, len(reachable))}"
            current = [n for n, s in reachable.items() if s.current == build_id]
            if current:
                text += ", current" + ("" if len(current) == len(have) else f" on {present.host_list(current, limit=4)}")
            for word, names in marks.items():
                text += f", {word}" + ("" if len(names) == len(have) else f" on {present.host_list(names, limit=4)}")
            lines.append(text)
        if len(ids) > 12:
            lines.append(f"  … {len(ids) - 12} older")
    return lines


def _block_key(state) -> tuple:
    """What makes two hosts' blocks the same (the creation times aside)."""
    if not isinstance(state, HostState):
        return ("unreachable", clean_line(state, 300))
    if not state.initialized:
        return ("empty",)
    builds = tuple((b.id, b.status, b.requirements_sha256, b.git_commit, b.git_dirty, b.deployed_by, b.git_subject,
                    b.damaged, b.failure, b.rolled_away_note) for b in state.builds)
    lock = state.lock.describe() if state.lock else None
    return ("state", state.current, lock, tuple(state.problems), builds)


def _block_lines(state, created: dict) -> list[str]:
    """One host's block (its first line without the host's name)."""
    from .rules import requirements_changed
    if not isinstance(state, HostState):
        return [f"unreachable: {clean_line(state, 300)}"]
    if not state.initialized:
        return ["nothing deployed yet (no project root)"]
    lock = f", locked: {state.lock.describe()}" if state.lock else ""
    current = state.build(state.current)
    flag = f" ({current.status})" if current and current.status != "current" else ""
    lines = [f"current {state.current or 'none'}{flag}{lock}"]
    lines += [f"  problem: {clean_line(problem, 200)}" for problem in state.problems]
    if not state.builds:
        return lines + ["  no builds yet"]
    lines.append(f"  {'ID':<17} {'STATUS':<18} {'CREATED (local)':<19} {'REQS':<12} {'GIT':<11} {'DEPLOYED BY':<24} SUBJECT")
    changed = requirements_changed(state.builds)
    for build in sorted(state.builds, key=lambda b: b.id, reverse=True):
        reqs = (build.requirements_sha256 or "-")[:10] + ("*" if changed.get(build.id) else " ")
        git = (build.git_commit or "-")[:8] + ("+" if build.git_dirty else "")
        lines.append(f"  {build.id:<17} {build.status:<18} {local_time(created.get(build.id, build.created_at)):<19} "
                     f"{clean_line(reqs, 12):<12} {clean_line(git, 11):<11} {clean_line(build.deployed_by or '-', 24):<24} "
                     f"{clean_line(build.git_subject or '', 50)}")
        if build.damaged:
            lines.append(f"  {'':<17} damaged: {clean_line(build.damaged, 120)}")
        elif build.failed and build.failure:
            lines.append(f"  {'':<17} failed: {clean_line(build.failure, 120)}")
        elif build.rolled_away and build.rolled_away_note:
            lines.append(f"  {'':<17} rolled-away: {clean_line(build.rolled_away_note, 120)}")
    return lines


def history_line(entry, total_hosts: Optional[int] = None) -> str:
    """One operation for a person: when it started (local time), what, how it ended, from → to, where, who, how long.

    ``2026-11-28 10:15:00  deploy    ok      20261127… → 20261128…  on all 50 hosts  by alice@laptop  in 12.3s``;
    hosts that ended differently are named after it (``failed on web07; switched-back on 49 hosts``), then why
    (``— unhealthy after 15s: exit 1 on web07; ...``, ``— interrupted by Ctrl-C``), the CI job and the message.
    The outcome word and the time are the ones ``history --json`` gives (``outcome``, ``when``).
    """
    when = entry.began
    stamp = when.astimezone().strftime("%Y-%m-%d %H:%M:%S") if when else "????-??-?? ??:??:??"
    names = sorted(entry.hosts)
    total = total_hosts or len(names)
    outcomes = present.group_hosts({h: entry.hosts[h] for h in names})
    parts = [stamp, f"{clean_line(entry.event, 12):<9} {clean_line(entry.outcome, 14):<6}"]
    if entry.moves:
        moves = present.group_hosts({h: f"{a or 'none'} → {b or 'none'}" for h, (a, b) in sorted(entry.moves.items())})
        if len(moves) == 1:
            parts.append(moves[0][0])
        else:
            parts.append("; ".join(f"{move} on {present.hosts_phrase(hosts, total)}" for move, hosts in moves))
    elif entry.details:
        details = present.group_hosts({h: entry.details[h] for h in sorted(entry.details)})
        if len(details) == 1:
            parts.append(clean_line(details[0][0], 200))
        else:
            parts.append("; ".join(f"{clean_line(text, 120)} on {present.hosts_phrase(hosts, total)}"
                                   for text, hosts in details[:4])
                         + (f"; … ({len(details) - 4} more)" if len(details) > 4 else ""))
    parts.append(f"on {present.hosts_phrase(names, total) if len(names) != 1 else names[0]}"
                 + (f" (stage {clean_line(entry.stage, 40)})" if entry.stage else ""))
    parts.append(f"by {entry.who or '?'}")
    if entry.duration is not None:
        parts.append(f"in {took(entry.duration)}")
    line = "  ".join(parts)
    if len(outcomes) > 1:
        line += "  (" + "; ".join(f"{outcome} on {present.hosts_phrase(hosts, len(names))}"
                                  for outcome, hosts in outcomes) + ")"
    line += reasons_text(entry, len(names))
    if entry.ci_url:
        line += f"  {entry.ci_url}"
    if entry.message:
        line += f"  “{entry.message}”"
    return clean_line(line, 1000)


def reasons_text(entry, total: int) -> str:
    """``  — web07: unhealthy after 15s: exit 1; 49 hosts (...): switched back: ...``, worst first; or the one
    reason every host shares (``  — interrupted by Ctrl-C``); "" when no host recorded why."""
    groups = present.group_hosts({h: entry.reasons[h] for h in sorted(entry.reasons)})
    if not groups:
        return ""
    if len(groups) == 1 and len(groups[0][1]) == total:
        return f"  — {clean_line(groups[0][0], 300)}"
    rank = {o: i for i, o in enumerate(OUTCOMES)}
    groups.sort(key=lambda group: rank.get(entry.hosts.get(group[1][0]), 0))
    text = "; ".join(f"{present.hosts_phrase(hosts, total)}: {clean_line(why, 200)}" for why, hosts in groups[:4])
    return f"  — {text}" + (f"; … ({len(groups) - 4} more)" if len(groups) > 4 else "")


def took(seconds: float) -> str:
    """A duration for a person: ``6.4s`` under a minute, else ``2m05s``."""
    if seconds < 59.95:
        return f"{seconds:.1f}s"
    whole = int(round(seconds))
    return f"{whole // 60}m{whole % 60:02d}s"


def print_history(entries: list, problems: dict, out: TextIO = sys.stdout, err: Optional[TextIO] = None) -> None:
    """One line per operation (see :func:`history_line`), oldest first; each host's reading problem on stderr."""
    everyone = {h for entry in entries for h in entry.hosts}
    for entry in entries:
        out.write(history_line(entry, len(everyone)) + "\n")
    if not entries:
        out.write("no operations recorded yet\n")
    err = err or sys.stderr
    for host, problem in problems.items():
        err.write(f"releasetui: {host}: {clean_line(problem, 300)}\n")
