"""Pure text helpers for the TUI: times, ages, hashes, event lines.

Everything that depends on "now" or the local time zone takes them as
arguments, so screens and snapshots can pin them.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Mapping, Optional

from rich.text import Text

from ..clock import parse_stamp
from .. import present
from ..models import BuildInfo, Event, HostState, LockInfo
from ..text import clean_line

STATUS_STYLES = {
    "ok": "green", "failed": "bold red", "started": "dim", "info": "cyan", "skipped": "yellow",
    "dry-run": "magenta", "log": "", "current": "bold green", "complete": "", "incomplete": "yellow",
    "rolled-away": "yellow",
}


def parse_created(created_at: Optional[str]) -> Optional[datetime]:
    """``YYYY-MM-DDTHH:MM:SSZ`` as an aware UTC datetime, or None."""
    return parse_stamp(created_at)


def age(when: datetime, now: datetime) -> str:
    """How long ago, in the largest whole unit: ``just now``, ``5m ago``, ``3h ago``, ``2d ago``."""
    seconds = int((now - when).total_seconds())
    if seconds < 0:
        return "in the future"
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60}m ago"
    if seconds < 86400:
        return f"{seconds // 3600}h ago"
    return f"{seconds // 86400}d ago"


def created_cell(created_at: Optional[str], now: datetime, tz: Optional[tzinfo] = None, compact: bool = False) -> str:
    """Local time and age of a build: ``2026-11-28 09:14  3h ago`` (compact, for narrow terminals: ``11-28 09:14 3h``)."""
    when = parse_created(created_at)
    if when is None:
        return created_at or "-"
    local = when.astimezone(tz) if tz is not None else when.astimezone()
    if compact:
        return f"{local:%m-%d %H:%M} {age(when, now).removesuffix(' ago')}"
    return f"{local:%Y-%m-%d %H:%M}  {age(when, now)}"


def age_cell(created_at: Optional[str], now: datetime) -> str:
    """A build's age alone, for narrow terminals (its id is its UTC creation time): ``3h``, ``2d``, ``now``."""
    when = parse_created(created_at)
    if when is None:
        return created_at or "-"
    return {"just now": "now"}.get(age(when, now), age(when, now).removesuffix(" ago"))


def short_hash(sha: Optional[str], length: int = 10) -> str:
    """The first ``length`` hex digits of a hash, or ``-``."""
    return sha[:length] if sha else "-"


def git_cell(build: BuildInfo) -> str:
    """Short commit, ``+`` when the tree was dirty."""
    if not build.git_commit:
        return "-"
    return build.git_commit[:8] + ("+" if build.git_dirty else "")


def status_text(status: str) -> Text:
    """A build's status words (``current, failed``...) in the colour of the most important one."""
    for word, style in (("damaged", "bold red"), ("failed", "bold red"), ("rolled-away", "yellow"),
                        ("incomplete", "yellow"), ("current", "bold green"), ("pinned", "cyan")):
        if word in status.split(", "):
            return Text(status, style=style)
    return Text(status, style=STATUS_STYLES.get(status, ""))


def currents_disagree(states: dict[str, object]) -> bool:
    """Whether reachable hosts point ``current`` at different builds."""
    currents = {s.current for s in states.values() if isinstance(s, HostState)}
    return len(currents) > 1


def event_line(event: Event, tz: Optional[tzinfo] = None) -> Text:
    """One line of the output pane: time, host, step, status, duration, message."""
    stamp = datetime.fromtimestamp(event.time, tz).strftime("%H:%M:%S") if tz else \
        datetime.fromtimestamp(event.time).strftime("%H:%M:%S")
    line = Text(f"{stamp} ", style="dim")
    line.append(f"{(event.host or '*'):<10} ", style="bold")
    line.append(f"{event.step:<10} ")
    line.append(f"{event.status:<8}", style=STATUS_STYLES.get(event.status, ""))
    line.append(f"{event.duration:6.2f}s" if event.duration is not None else " " * 7, style="dim")
    if event.message:
        line.append("  " + event.message, style="red" if event.status == "failed" else "")
    return line


def lock_cell(lock: LockInfo, now: datetime, compact: bool = False) -> str:
    """A lock in a table cell: ``bob@ci deploy since 11:58Z`` (compact, for narrow terminals: ``bob@ci 11:58Z``;
    the unlock confirmation has the rest)."""
    since = lock.since
    when = parse_created(since)
    if when is not None:
        since = f"{when:%H:%M}Z" if (now - when).total_seconds() < 86400 else f"{when:%Y-%m-%d}"
    if lock.operation == "lock":  # held by hand (`releasetui lock -m WHY`): why is what a person needs
        held = f"HELD: {lock.message or 'manual lock'}"
        return held if compact else f"{held} ({lock.who} since {since})"
    if compact:
        return f"{lock.who} {since}"
    return f"{lock.who} {lock.operation} since {since}"


def fit_cell(text: str, room: int) -> str:
    """``text`` cut to ``room`` columns, with ``…`` when something was cut."""
    return text if len(text) <= room else text[:max(room - 1, 0)] + "…"


def served_lines(served: Mapping[str, object], notes: Optional[Mapping[str, str]] = None) -> list[str]:
    """What the TUI prints on exit after a deploy or rollback: one line per host with what it serves, then the
    hosts grouped (``live now: ...``).

    ``served`` maps a host to a HostState, a build id, None (it serves nothing) or the exception that made it
    unknown; ``notes`` adds why a host's operation did not end ``ok``.
    """
    notes = notes or {}
    width = max([len(h) for h in served] or [0])
    lines, live, unknown = [], {}, []
    for host, value in served.items():
        if isinstance(value, HostState):
            value = value.current
        if isinstance(value, BaseException):
            unknown.append(host)
            live[host] = None
            text = f"unknown ({clean_line(str(value), 120)})"
        else:
            live[host] = value
            text = f"serves {value or 'nothing'}"
        note = f"  ({clean_line(notes[host], 160)})" if host in notes else ""
        lines.append(f"{host:<{width}}  {text}{note}")
    return lines + [present.live_line(live, unknown)]
