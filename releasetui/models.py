"""Plain data shared by the core, the headless CLI and the TUI."""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from enum import IntEnum
from typing import Any, Optional

# A build id is the UTC second the deploy started, with a two-digit suffix
# when that second is already taken on some host.  Anything else is refused
# before it can reach a shell or a path.
BUILD_ID_PATTERN = re.compile(r"^[0-9]{14}(?:-[0-9]{2})?$")
VENV_KEY_PATTERN = re.compile(r"^[0-9a-f]{16}-py[0-9]+\.[0-9]+$")


class ExitCode(IntEnum):
    """Exit codes of ``releasetui --headless``; documented in the README."""

    OK = 0
    FAILED = 1
    USAGE = 2
    UNREACHABLE = 3
    LOCKED = 4
    INTERRUPTED = 130


class InvalidBuildId(ValueError):
    """A build id that does not match :data:`BUILD_ID_PATTERN`."""


def check_build_id(build_id: str) -> str:
    """Return ``build_id`` unchanged if it is well formed, else raise :class:`InvalidBuildId`."""
    if not isinstance(build_id, str) or not BUILD_ID_PATTERN.fullmatch(build_id):
        raise InvalidBuildId(f"invalid build id {build_id!r}: expected YYYYMMDDHHMMSS or YYYYMMDDHHMMSS-NN")
    return build_id


@dataclass
class BuildInfo:
    """One build directory on one host, with the metadata written at deploy time."""

    id: str
    complete: bool = False
    failed: bool = False
    current: bool = False
    created_at: Optional[str] = None
    requirements_sha256: Optional[str] = None
    git_commit: Optional[str] = None
    git_dirty: Optional[bool] = None
    deployed_by: Optional[str] = None
    python_version: Optional[str] = None
    venv: Optional[str] = None
    source: Optional[str] = None
    failure: Optional[str] = None

    @property
    def status(self) -> str:
        """One word for humans: current, complete, failed or incomplete."""
        if self.current:
            return "current"
        if not self.complete:
            return "incomplete"
        if self.failed:
            return "failed"
        return "complete"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as printed by ``builds --json``."""
        return asdict(self)


@dataclass
class LockInfo:
    """Who holds a host's deploy lock, since when, and for what."""

    who: str = "unknown"
    where: str = "unknown"
    since: str = "unknown"
    operation: str = "unknown"
    build_id: Optional[str] = None
    pid: Optional[int] = None

    @classmethod
    def from_json(cls, text: str) -> "LockInfo":
        """Parse a lock's info file; a damaged one still yields a LockInfo of unknowns."""
        try:
            data = json.loads(text) if text.strip() else {}
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        known = {k: data[k] for k in ("who", "where", "since", "operation", "build_id", "pid") if k in data}
        return cls(**known)

    def describe(self) -> str:
        """``deploy by alice@laptop since 2026-...``."""
        what = self.operation + (f" {self.build_id}" if self.build_id else "")
        return f"{what} by {self.who} on {self.where} since {self.since}"


@dataclass
class HostState:
    """What one host looks like now: its builds, which is current, and who holds its lock."""

    name: str
    current: Optional[str] = None
    builds: list[BuildInfo] = field(default_factory=list)
    venvs: list[str] = field(default_factory=list)
    lock: Optional[LockInfo] = None
    python_version: Optional[str] = None
    initialized: bool = True

    def build(self, build_id: str) -> Optional[BuildInfo]:
        """The build with that id, or None."""
        for build in self.builds:
            if build.id == build_id:
                return build
        return None

    def complete_ids(self) -> list[str]:
        """Ids of complete builds, oldest first."""
        return [b.id for b in self.builds if b.complete]

    def previous_build(self) -> Optional[str]:
        """The default rollback target: the newest complete, not failed build older than ``current``.

        Ordered by id (the deploy time), never by directory mtime.
        """
        if self.current is None:
            return None
        older = [b.id for b in self.builds if b.complete and not b.failed and b.id < self.current]
        return max(older) if older else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, one entry of ``builds --json``'s ``hosts``."""
        return {
            "name": self.name,
            "current": self.current,
            "locked_by": asdict(self.lock) if self.lock else None,
            "python_version": self.python_version,
            "builds": [b.to_dict() for b in self.builds],
            "venvs": list(self.venvs),
        }


@dataclass
class Event:
    """Something an operation reports while it runs: a step on a host, a log line, a dry-run command.

    ``status`` is one of ``started``, ``ok``, ``failed``, ``skipped``, ``info``,
    ``log`` or ``dry-run``; ``duration`` is in seconds when the step finished.
    """

    host: Optional[str]
    step: str
    status: str
    duration: Optional[float] = None
    message: str = ""
    time: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, one line of ``--json`` output."""
        data = {"event": "step", "host": self.host, "step": self.step, "status": self.status,
                "duration": round(self.duration, 3) if self.duration is not None else None,
                "message": self.message}
        if self.status == "log":
            data["event"] = "log"
        return data


# What happened on one host, from worst to best: the CLI's exit code is the
# worst outcome over all hosts.
OUTCOME_EXIT = {
    "unreachable": ExitCode.UNREACHABLE,
    "locked": ExitCode.LOCKED,
    "failed": ExitCode.FAILED,
    "aborted": ExitCode.FAILED,
    "interrupted": ExitCode.INTERRUPTED,
    "ok": ExitCode.OK,
}
OUTCOME_ORDER = ["interrupted", "unreachable", "locked", "failed", "aborted", "ok"]


@dataclass
class HostOutcome:
    """How an operation ended on one host."""

    host: str
    status: str = "ok"
    message: str = ""
    current: Optional[str] = None
    previous: Optional[str] = None
    build_id: Optional[str] = None
    removed: list[str] = field(default_factory=list)
    round_trips: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, used in the summary object."""
        return asdict(self)


@dataclass
class OperationResult:
    """How a whole operation ended, host by host, and the exit code that follows."""

    operation: str
    outcomes: dict[str, HostOutcome] = field(default_factory=dict)
    build_id: Optional[str] = None
    duration: float = 0.0
    dry_run: bool = False

    @property
    def status(self) -> str:
        """The worst host outcome."""
        statuses = [o.status for o in self.outcomes.values()] or ["ok"]
        return min(statuses, key=OUTCOME_ORDER.index)

    @property
    def exit_code(self) -> ExitCode:
        """The CLI exit code for this result."""
        return OUTCOME_EXIT[self.status]

    @property
    def ok(self) -> bool:
        """Whether every host succeeded."""
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        """The final summary object of ``--json`` output."""
        return {
            "event": "summary",
            "operation": self.operation,
            "status": self.status,
            "exit_code": int(self.exit_code),
            "build_id": self.build_id,
            "duration": round(self.duration, 3),
            "dry_run": self.dry_run,
            "hosts": [o.to_dict() for o in self.outcomes.values()],
        }
