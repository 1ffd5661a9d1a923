"""The fleet's history: every host's ``history.jsonl`` merged into one line per operation.

Each record a host writes names its operation (``op``: the operation's lock
token), so the records of one deploy on fifty hosts become one entry with
fifty hosts.  Records from before ``op`` existed are grouped by event, time
and who.  Pure: the reading is done by the operations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterable, Optional

from .text import clean_line


def _time(value: object) -> Optional[datetime]:
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


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

    @property
    def outcome(self) -> str:
        """``ok`` when every host's was, else the hosts grouped by outcome."""
        outcomes = set(self.hosts.values())
        if outcomes <= {"ok"}:
            return "ok"
        groups: dict[str, list[str]] = {}
        for host, outcome in sorted(self.hosts.items()):
            groups.setdefault(outcome, []).append(host)
        return "; ".join(f"{outcome} on {', '.join(names)}" for outcome, names in groups.items())

    @property
    def duration(self) -> Optional[float]:
        """Seconds from the operation's start to its last record, when both are known."""
        if self.started and self.when:
            return max(0.0, (self.when - self.started).total_seconds())
        return None

    def change(self) -> str:
        """``A → B`` when every host moved the same way, else each host's move."""
        moves = {(a or "none", b or "none") for a, b in self.moves.values()}
        if len(moves) == 1:
            a, b = moves.pop()
            return f"{a} → {b}"
        return "; ".join(f"{h}: {a or 'none'} → {b or 'none'}" for h, (a, b) in sorted(self.moves.items()))

    def to_dict(self) -> dict:
        """JSON-ready form (``history --json``)."""
        return {"event": self.event, "when": self.when.strftime("%Y-%m-%dT%H:%M:%SZ") if self.when else None,
                "who": self.who, "where": self.where, "op": self.op, "outcome": self.outcome,
                "duration": self.duration, "ci_url": self.ci_url, "message": self.message,
                "hosts": dict(sorted(self.hosts.items())),
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
            elif when and (entry.when is None or when > entry.when):
                entry.when = when
            previous = entry.hosts.get(host)
            outcome = _outcome(record)
            # A host's later record of the same operation (a failed health check after the switch) wins.
            entry.hosts[host] = outcome if previous in (None, "ok") else previous
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
    epoch = datetime.min.replace(tzinfo=timezone.utc)
    return sorted(entries.values(), key=lambda e: e.when or epoch)
