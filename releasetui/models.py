"""Plain data shared by the core, the headless CLI and the TUI."""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from enum import IntEnum
from typing import Any, Optional

from .text import clean_line

# A build id is the UTC second the deploy started, with a two-digit suffix
# when that second is already taken on some host.  Anything else is refused
# before it can reach a shell or a path.
BUILD_ID_PATTERN = re.compile(r"^[0-9]{14}(?:-[0-9]{2})?$")
VENV_KEY_PATTERN = re.compile(r"^[0-9a-f]{16}-py[0-9]+\.[0-9]+$")
# An operation's lock token: it names the operation in the lock, in history, and in the scripts that act under it.
TOKEN_PATTERN = re.compile(r"^[0-9a-f]{16}$")
MIN_KEEP_BUILDS = 2  # the live build and one to roll back to: keep_builds and `prune --keep` share it
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")


class ExitCode(IntEnum):
    """Exit codes of ``releasetui --headless``; documented in the README."""

    OK = 0
    FAILED = 1
    USAGE = 2
    UNREACHABLE = 3
    LOCKED = 4
    INTERRUPTED = 130


class HostUnreachable(Exception):
    """The host could not be reached or authenticated, its host key was refused, or the connection was lost."""


class HostKeyRefused(HostUnreachable):
    """The host's key is unknown or differs from the one in known_hosts."""


class ScriptTimeout(Exception):
    """A remote script ran longer than its timeout; it was stopped."""


class InvalidBuildId(ValueError):
    """A build id that does not match :data:`BUILD_ID_PATTERN`."""


def check_build_id(build_id: str) -> str:
    """Return ``build_id`` unchanged if it is well formed, else raise :class:`InvalidBuildId`."""
    if not isinstance(build_id, str) or not BUILD_ID_PATTERN.fullmatch(build_id):
        shown = clean_line(repr(build_id), 40)
        raise InvalidBuildId(f"invalid build id {shown}: expected YYYYMMDDHHMMSS or YYYYMMDDHHMMSS-NN")
    return build_id


def check_token(token: str) -> str:
    """Return ``token`` if it is 16 lowercase hex digits, else raise ValueError."""
    if not isinstance(token, str) or not TOKEN_PATTERN.fullmatch(token):
        raise ValueError(f"invalid lock token {clean_line(repr(token), 40)}")
    return token


@dataclass
class BuildInfo:
    """One build directory on one host: what its metadata says, and what the listing found beside it.

    ``complete`` is True only when the metadata is exactly what releasetui
    writes for a finished build (see :mod:`releasetui.metadata`) and its venv
    exists; ``damaged`` says why a build is not, when something is wrong
    rather than merely unfinished.
    """

    id: str
    complete: bool = False
    failed: bool = False
    current: bool = False
    pinned: bool = False
    damaged: Optional[str] = None
    created_at: Optional[str] = None
    requirements_sha256: Optional[str] = None
    git_commit: Optional[str] = None
    git_dirty: Optional[bool] = None
    git_ref: Optional[str] = None
    git_subject: Optional[str] = None
    deployed_by: Optional[str] = None
    python_version: Optional[str] = None
    venv: Optional[str] = None
    failure: Optional[str] = None
    env_digest: Optional[str] = None        # the env file it was deployed with (digest only, never a value)
    installer: Optional[str] = None         # uv or pip: what made its venv (None: a build from before it was kept)
    # The fleet was rolled back away from this build here (it is never a default target; ``unmark`` clears it).
    rolled_away: bool = False
    rolled_away_note: Optional[str] = None

    @property
    def state(self) -> str:
        """The build's state: ``complete``, ``failed``, ``rolled-away``, ``incomplete`` or ``damaged``."""
        if self.damaged:
            return "damaged"
        if not self.complete:
            return "incomplete"
        if self.failed:
            return "failed"
        return "rolled-away" if self.rolled_away else "complete"

    @property
    def good(self) -> bool:
        """Complete, not failed, not rolled away from: a build that may be offered as a default target."""
        return self.complete and not self.failed and not self.rolled_away and not self.damaged

    @property
    def marked(self) -> bool:
        """Complete but marked ``failed`` or ``rolled-away`` (what ``unmark`` clears)."""
        return self.complete and not self.damaged and (self.failed or self.rolled_away)

    @property
    def status(self) -> str:
        """Everything a person must know in a few words: ``current, failed``, ``complete, pinned``..."""
        words = (["current"] if self.current else []) + [self.state] + (["pinned"] if self.pinned else [])
        if self.current and self.state == "complete":
            words.remove("complete")
        return ", ".join(words)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as printed by ``builds --json``."""
        data = asdict(self)
        data["state"] = self.state
        data["status"] = self.status
        return data


@dataclass
class LockInfo:
    """Who holds a host's deploy lock, since when, and for what.

    Built only from a host's lock file, which is not to be trusted: every
    field is checked and cut short, and a lock that is not what releasetui
    writes says so in ``damaged`` (``unlock`` still clears it).
    """

    who: str = "unknown"
    where: str = "unknown"
    since: str = "unknown"
    operation: str = "unknown"
    build_id: Optional[str] = None
    pid: Optional[int] = None
    token: Optional[str] = None
    ci_url: Optional[str] = None
    message: Optional[str] = None
    damaged: Optional[str] = None
    # Set by whoever read it when the holder ran on this machine and its process is gone.
    stale: bool = False

    @classmethod
    def from_text(cls, text: str, damaged: Optional[str] = None) -> "LockInfo":
        """Parse a lock's ``info.json``; anything unexpected yields unknowns and a ``damaged`` reason."""
        try:
            data = json.loads(text) if text.strip() else None
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return cls(damaged=damaged or ("no lock information" if not text.strip() else "unreadable lock information"))
        lock = cls(damaged=damaged)
        for key in ("who", "where", "since", "operation"):
            value = data.get(key)
            if isinstance(value, str) and value:
                setattr(lock, key, clean_line(value, 80))
            elif key in data:
                lock.damaged = lock.damaged or f"unexpected {key!r} in lock information"
        for key, limit in (("build_id", 20), ("ci_url", 200), ("message", 200)):
            value = data.get(key)
            if isinstance(value, str) and value:
                setattr(lock, key, clean_line(value, limit))
        pid = data.get("pid")
        if isinstance(pid, int) and not isinstance(pid, bool) and 0 < pid < 2 ** 31:
            lock.pid = pid
        token = data.get("token")
        if isinstance(token, str) and TOKEN_PATTERN.fullmatch(token):
            lock.token = token
        return lock

    # Kept for callers of the earlier name.
    from_json = from_text

    def describe(self, hint: bool = True, stale_note: bool = True) -> str:
        """``deploy 20261128... by alice@laptop on laptop (pid 4242) since 2026-...``, one bounded line.

        ``hint``: a stale lock's text ends with how to remove it (not once it is removed); ``stale_note=False``
        leaves staleness out (the TUI's unlock dialog says it on a line of its own).
        """
        what = self.operation + (f" {self.build_id}" if self.build_id else "")
        if self.operation == "lock":  # taken by hand with `releasetui lock`, held until `unlock`
            what = "manual lock (releasetui lock)"
        text = f"{what} by {self.who} on {self.where}" + (f" (pid {self.pid})" if self.pid else "") + f" since {self.since}"
        if self.message:
            text += f": {self.message}"
        if self.ci_url:
            text += f" [{self.ci_url}]"
        if self.damaged:
            text += f" (damaged lock: {self.damaged})"
        if self.stale and stale_note:
            text += f"; STALE: pid {self.pid} no longer runs on {self.where}"
            text += " (`releasetui --headless unlock` removes it)" if hint else ""
        return clean_line(text, 400)


@dataclass(frozen=True)
class Move:
    """One committed switch a host's history records: a ``deploy`` or ``rollback`` took ``current`` from
    ``source`` to ``target`` at ``when`` (UTC, ISO) in operation ``op``."""

    event: str
    when: str
    source: Optional[str]
    target: Optional[str]
    op: Optional[str] = None

    def describe(self) -> str:
        """``deploy at 2031-01-01T05:00:00Z: A → C``."""
        return f"{self.event} at {self.when}: {self.source or 'none'} → {self.target or 'none'}"


@dataclass
class HostState:
    """What one host looks like now: its builds, which is current, its venvs, pins and lock."""

    name: str
    current: Optional[str] = None
    builds: list[BuildInfo] = field(default_factory=list)
    venvs: list[str] = field(default_factory=list)
    # Wheelhouses shipped by `wheels: ship` (wheelhouses/<venv key>), and the host's `uname -sm` when it was asked.
    wheelhouses: list[str] = field(default_factory=list)
    platform: Optional[str] = None
    lock: Optional[LockInfo] = None
    python_version: Optional[str] = None
    initialized: bool = True
    # Set when this read took the lock for an operation (its token is then in the lock).
    locked_by_us: bool = False
    # Relative paths of shared files missing under ROOT/shared (deploy reads them).
    shared_missing: list[str] = field(default_factory=list)
    env_here: bool = False                  # the env file this deploy would write is on the host already
    # The current build's manifest (path -> entry), when the read asked for it (deploy).
    current_manifest: Optional[dict] = None
    # Problems the listing found that are not a build's (a damaged current link, say).
    problems: list[str] = field(default_factory=list)
    # The last committed switches its history records, oldest first (which build was live before which).
    moves: list[Move] = field(default_factory=list)
    # Each complete build's metadata as read under the lock: what a mark is written onto (never printed).
    metas: dict = field(default_factory=dict, repr=False)
    # What sits at `current` when it is not a symlink ("directory", "file"...): no switch can replace it.
    current_not_link: Optional[str] = None
    # Directories of the layout (builds, venvs, wheels, pins) that are symlinks, with where they point.
    linked_dirs: dict = field(default_factory=dict)

    def build(self, build_id: Optional[str]) -> Optional[BuildInfo]:
        """The build with that id, or None."""
        for build in self.builds:
            if build.id == build_id:
                return build
        return None

    def serving(self) -> Optional[str]:
        """What ``current`` holds when it is not a build: ``a directory (not a build)``; None for a build or nothing."""
        return f"a {self.current_not_link} (not a build)" if self.current_not_link and not self.current else None

    def ids(self) -> list[str]:
        """Every build id, oldest first."""
        return [b.id for b in self.builds]

    def complete_ids(self) -> list[str]:
        """Ids of complete builds (failed ones included), oldest first."""
        return [b.id for b in self.builds if b.complete and not b.damaged]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, one entry of ``builds --json``'s ``hosts``."""
        return {
            "name": self.name,
            "current": self.current,
            "locked_by": asdict(self.lock) if self.lock else None,
            "python_version": self.python_version,
            "builds": [b.to_dict() for b in self.builds],
            "venvs": list(self.venvs),
            "problems": list(self.problems),
        }


@dataclass
class Event:
    """Something an operation reports while it runs: a step on a host, a log line, a dry-run command.

    ``status`` is one of ``started``, ``ok``, ``failed``, ``skipped``, ``info``,
    ``log``, ``output`` (a hook's or a restart's own output) or ``dry-run``;
    ``duration`` is in seconds when the step finished.  ``phase`` names the
    operation's phase (``lock``, ``prepare``, ``activate``...) for live views.
    """

    host: Optional[str]
    step: str
    status: str
    duration: Optional[float] = None
    message: str = ""
    time: float = field(default_factory=time.time)
    phase: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, one line of ``--json`` output."""
        data = {"event": "step", "host": self.host, "step": self.step, "status": self.status,
                "duration": round(self.duration, 3) if self.duration is not None else None,
                "message": self.message}
        if self.phase:
            data["phase"] = self.phase
        if self.status == "log":
            data["event"] = "log"
        return data


# What happened on one host.  The CLI's exit code is the first that applies of 130, 3, 4, 1 over all hosts.
OUTCOME_EXIT = {
    "interrupted": ExitCode.INTERRUPTED,
    "unreachable": ExitCode.UNREACHABLE,
    "locked": ExitCode.LOCKED,
    "failed": ExitCode.FAILED,
    "refused": ExitCode.FAILED,
    "aborted": ExitCode.FAILED,
    "ok": ExitCode.OK,
}
OUTCOME_ORDER = ["interrupted", "unreachable", "locked", "failed", "refused", "aborted", "ok"]


@dataclass
class HostOutcome:
    """How an operation ended on one host.

    ``current`` is what the host serves now (as far as the operation knows);
    ``left`` lists what it had to leave behind there (a lock, a partial build)
    with the command that clears it.
    """

    host: str
    status: str = "ok"
    message: str = ""
    current: Optional[str] = None
    previous: Optional[str] = None
    build_id: Optional[str] = None
    removed: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    round_trips: int = 0
    # What the host serves when it is not a build ("a directory at current"), for the live line.
    serving: Optional[str] = None

    def __post_init__(self) -> None:
        # Messages carry host text (a script's error lines, an exception from the connection): a JSON reader
        # printing them (jq -r) must not get escape sequences either.
        self.message = clean_line(self.message)

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
    # One line for the whole operation when it ended before any host was touched (a refusal, say).
    message: str = ""
    stage: Optional[str] = None             # the stage the fleet was loaded for (hosts.STAGE.yml), if any

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

    def live(self) -> dict[str, Optional[str]]:
        """What each host serves now, by host (None: nothing, or unknown when unreachable)."""
        return {name: o.current for name, o in self.outcomes.items()}

    @property
    def mixed(self) -> bool:
        """Whether the hosts that answered now serve different builds."""
        known = {o.current for o in self.outcomes.values() if o.status != "unreachable"}
        return len(known) > 1

    def to_dict(self) -> dict[str, Any]:
        """The final summary object of ``--json`` output."""
        return {
            "event": "summary",
            "operation": self.operation,
            "stage": self.stage,
            "status": self.status,
            "exit_code": int(self.exit_code),
            "build_id": self.build_id,
            "duration": round(self.duration, 3),
            "dry_run": self.dry_run,
            "message": self.message,
            "mixed": self.mixed,
            "hosts": [o.to_dict() for o in self.outcomes.values()],
        }
