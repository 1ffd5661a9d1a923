"""The fleet's history: every host's ``history.jsonl`` merged into one line per operation.

Each record a host writes names its operation (``op``: the operation's lock
token), so the records of one deploy on fifty hosts become one entry with
fifty hosts.  Records from before ``op`` existed are grouped by event, time
and who.  Pure: the reading is done by the operations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Iterable, Optional

from .clock import iso, parse_stamp
from .text import clean_line


_time = parse_stamp


# Worst first: the one word an operation's outcome is, whatever its hosts' (the text and JSON both say it).
OUTCOMES = ["failed", "unreachable", "interrupted", "aborted", "switched-back", "ok"]


def _seconds(value: object) -> Optional[float]:
    """A record's ``duration`` when it is a sane number of seconds, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        return None
    return float(value)


def _text(record: dict, key: str, limit: int = 120) -> Optional[str]:
    value = record.get(key)
    return clean_line(value, limit) if isinstance(value, str) and value else None


@dataclass
class HistoryEntry:
    """One operation as the fleet saw it."""

    event: str
    when: Optional[datetime]
    who: Optional[str] = None
    where: Optional[str] = None
    op: Optional[str] = None
    started: Optional[datetime] = None
    ci_url: Optional[str] = None
    message: Optional[str] = None
    hosts: dict = field(default_factory=dict)     # host -> outcome ("ok", "failed", "switched-back"...)
    moves: dict = field(default_factory=dict)     # host -> (from, to)
    details: dict = field(default_factory=dict)   # host -> extra text (removed builds, the lock removed...)
    reasons: dict = field(default_factory=dict)   # host -> why it ended so, in its own words
    durations: dict = field(default_factory=dict)  # host -> seconds from the start to that host's record
    interrupted_by: Optional[str] = None          # "Ctrl-C", "SIGTERM", "TUI quit"
    stage: Optional[str] = None                   # the stage the operation ran on (``--stage``), if any

    @property
    def outcome(self) -> str:
        """The worst of the hosts' outcomes (:data:`OUTCOMES`): ``ok`` only when every host's was."""
        return min(self.hosts.values(), key=lambda o: OUTCOMES.index(o) if o in OUTCOMES else 0, default="ok")

    @property
    def duration(self) -> Optional[float]:
        """Seconds from the operation's start to its real end (the latest host's), as the hosts recorded it;
        for records older than ``duration``, from the start to the last record."""
        if self.durations:
            return max(self.durations.values())
        if self.started and self.when:
            return max(0.0, (self.when - self.started).total_seconds())
        return None

    @property
    def began(self) -> Optional[datetime]:
        """When the operation started (the time its text line shows), else when it was recorded."""
        return self.started or self.when

    @property
    def ended(self) -> Optional[datetime]:
        """When it ended: its start plus its duration, else its last record."""
        if self.started and self.durations:
            return self.started + timedelta(seconds=self.duration)
        return self.when

    def change(self) -> str:
        """``A → B`` when every host moved the same way, else each host's move."""
        moves = {(a or "none", b or "none") for a, b in self.moves.values()}
        if len(moves) == 1:
            a, b = moves.pop()
            return f"{a} → {b}"
        return "; ".join(f"{h}: {a or 'none'} → {b or 'none'}" for h, (a, b) in sorted(self.moves.items()))

    def to_dict(self) -> dict:
        """JSON-ready form (``history --json``)."""
        duration = self.duration
        return {"event": self.event, "when": iso(self.began) if self.began else None,
                "ended": iso(self.ended) if self.ended else None,
                "who": self.who, "where": self.where, "op": self.op, "outcome": self.outcome,
                "interrupted_by": self.interrupted_by,
                "duration": round(duration, 3) if duration is not None else None, "ci_url": self.ci_url,
                "message": self.message, "stage": self.stage, "hosts": dict(sorted(self.hosts.items())),
                "reasons": dict(sorted(self.reasons.items())),
                "moves": {h: {"from": a, "to": b} for h, (a, b) in sorted(self.moves.items())},
                "details": dict(sorted(self.details.items()))}


def _outcome(record: dict) -> str:
    event = record.get("event")
    if event == "health-failed":  # written by releasetui before history named outcomes
        return "failed"
    outcome = record.get("outcome")
    return clean_line(outcome, 30) if isinstance(outcome, str) and outcome else "ok"


def merge(records_by_host: dict[str, Iterable[dict]]) -> list[HistoryEntry]:
    """One :class:`HistoryEntry` per operation, oldest first."""
    entries: dict[tuple, HistoryEntry] = {}
    for host, records in records_by_host.items():
        for record in records:
            event = _text(record, "event", 30) or "?"
            if event == "health-failed":
                event = "deploy"
            when = _time(record.get("when"))
            op = _text(record, "op", 32)
            key = ("op", op, event) if op else ("legacy", event, record.get("when"), record.get("who"))
            entry = entries.get(key)
            if entry is None:
                entry = entries[key] = HistoryEntry(event, when, _text(record, "who"), _text(record, "where"), op,
                                                    _time(record.get("started")), _text(record, "ci_url", 300),
                                                    _text(record, "message", 300))
                entry.stage = _text(record, "stage", 40)
            elif when and (entry.when is None or when > entry.when):
                entry.when = when
            previous = entry.hosts.get(host)
            outcome = _outcome(record)
            # A host's later record of the same operation (a failed health check after the switch) wins.
            if previous in (None, "ok"):
                entry.hosts[host] = outcome
                reason = _text(record, "reason", 400)
                if reason:
                    entry.reasons[host] = reason
            seconds = _seconds(record.get("duration"))
            if seconds is not None:
                entry.durations[host] = max(seconds, entry.durations.get(host, 0.0))
            entry.interrupted_by = entry.interrupted_by or _text(record, "interrupted_by", 30)
            if "to" in record or "from" in record:
                entry.moves[host] = (_text(record, "from", 20), _text(record, "to", 20) or _text(record, "back_to", 20))
            if isinstance(record.get("removed"), list):
                entry.details[host] = "removed " + (" ".join(clean_line(x, 40) for x in record["removed"]) or "nothing")
            elif isinstance(record.get("lock"), dict):
                lock = record["lock"]
                entry.details[host] = clean_line(f"removed the lock of {lock.get('operation')} by {lock.get('who')} "
                                                 f"since {lock.get('since')}", 200)
            elif isinstance(record.get("build"), str):
                entry.details[host] = clean_line(record["build"], 20)
            elif isinstance(record.get("command"), str):  # exec: what ran (its exit status is the outcome)
                entry.details[host] = clean_line(record["command"], 120)
    epoch = datetime.min.replace(tzinfo=timezone.utc)
    return sorted(entries.values(), key=lambda e: e.when or epoch)
