"""Why a host cannot take part: unreachable, locked by another operation, a layout releasetui does not keep,
a build that cannot be pinned or unmarked, shared paths that are missing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Optional, Union

from ..models import HostState, HostUnreachable, LockInfo
from ..text import host_list


States = Mapping[str, Union[HostState, BaseException]]


# --- refusals ---------------------------------------------------------------------

@dataclass(frozen=True)
class Refusal:
    """Why an operation must not go ahead, on one host (or on the fleet when ``host`` is None).

    ``kind`` decides the exit code: ``locked`` (4), ``unreachable`` (3), ``refused`` (1).
    """

    host: Optional[str]
    reason: str
    kind: str = "refused"

    def __str__(self) -> str:
        return f"{self.host}: {self.reason}" if self.host else self.reason


def reachable(states: States) -> dict[str, HostState]:
    """The hosts whose state could be read."""
    return {name: s for name, s in states.items() if isinstance(s, HostState)}


def read_refusals(states: States, ignore_locks: bool = False) -> list[Refusal]:
    """Hosts that cannot take part: unreachable, or locked by another operation (unless ``ignore_locks``)."""
    refusals = []
    for name, state in states.items():
        if isinstance(state, HostUnreachable):
            refusals.append(Refusal(name, f"unreachable: {state}", "unreachable"))
        elif not isinstance(state, HostState):
            refusals.append(Refusal(name, f"could not be read: {state}"))
        elif state.lock is not None and not state.locked_by_us and not ignore_locks:
            refusals.append(Refusal(name, f"locked by another operation: {state.lock.describe()}", "locked"))
    return refusals


def lock_refusals(states: States) -> list[Refusal]:
    """Only the hosts another operation holds locked: what refuses an operation that may skip unreachable hosts
    (prune, lock) and what the TUI's dialogs warn of."""
    return [r for r in read_refusals(states) if r.kind == "locked"]


def layout_refusals(states: States, switching: bool = True, action: str = "deploy") -> list[Refusal]:
    """Hosts whose project root is not as releasetui keeps it, so the operation would fail half-way or reach out of
    the root: a layout directory that is a symlink (every operation that writes or removes), and (when the
    operation ``switching``) something at ``current`` that is not a link, which no switch can replace."""
    refusals = []
    for name, state in reachable(states).items():
        for directory, target in state.linked_dirs.items():
            refusals.append(Refusal(name, f"{directory} is a symlink (to {target or '?'}), not a directory: "
                                          "releasetui never follows a link out of the project root; replace it "
                                          f"with the directory it points to and {action}"))
        if switching and state.current_not_link:
            refusals.append(Refusal(name, f"current is a {state.current_not_link}, not a link to a build: move it "
                                          f"away (e.g. mv current current.old) and {action}"))
    return refusals


def lock_is_stale(lock: LockInfo, this_machine: str, pid_alive: Callable[[int], bool]) -> bool:
    """A lock taken on THIS machine by a process that no longer exists: nobody will ever release it."""
    return lock.where == this_machine and lock.pid is not None and not pid_alive(lock.pid)


def choices(state: HostState) -> str:
    """The builds a person may choose on a host, marked ones said: ``a, b (failed), c (rolled-away), d``."""
    words = [b.id + (f" ({b.state})" if b.marked else "") for b in state.builds if b.complete]
    return ", ".join(words) or "none"


def pin_refusals(states: States, build_id: str, pinned: bool = True) -> list[Refusal]:
    """Why a build cannot be pinned (or unpinned) on every host: unreadable, locked, missing there, or (to pin)
    not complete.  The core's ``pin`` and the TUI's confirmation both ask this."""
    refusals = read_refusals(states) + layout_refusals(states, switching=False, action="pin" if pinned else "unpin")
    for name, state in reachable(states).items():
        build = state.build(build_id)
        if build is None:
            refusals.append(Refusal(name, f"build {build_id} does not exist there (builds: {choices(state)})"))
        elif pinned and not build.complete:
            refusals.append(Refusal(name, f"build {build_id} is {build.state}: only complete builds are pinned"))
    builds = [s.build(build_id) for s in reachable(states).values()]
    if not pinned and not refusals and not any(b.pinned for b in builds if b):
        # Unpinning what no host pinned cannot be what was meant (a wrong id?): say so rather than "ok".
        pinned_ids = sorted({b.id for s in reachable(states).values() for b in s.builds if b.pinned})
        hint = f"pinned: {', '.join(pinned_ids)}" if pinned_ids else "no build is pinned there"
        refusals.extend(Refusal(name, f"build {build_id} is not pinned ({hint})") for name in reachable(states))
    return refusals


def unmark_refusals(states: States, build_id: str) -> list[Refusal]:
    """Why the marks of a build cannot be cleared: a host unreadable or locked, the build missing or not complete
    there, or marked on no host at all (nothing to clear)."""
    refusals = read_refusals(states)
    hosts = reachable(states)
    for name, state in hosts.items():
        build = state.build(build_id)
        if build is None:
            refusals.append(Refusal(name, f"build {build_id} does not exist there (builds: {choices(state)})"))
        elif not build.complete:
            refusals.append(Refusal(name, f"build {build_id} is {build.state}: only complete builds carry marks"))
    if not refusals and hosts and not any(s.build(build_id).marked for s in hosts.values()):  # type: ignore[union-attr]
        refusals.append(Refusal(None, f"build {build_id} is not marked failed or rolled-away on any host: "
                                      "nothing to unmark"))
    return refusals


def shared_refusals(hosts: Mapping[str, HostState], roots: Mapping[str, str]) -> list[Refusal]:
    """A missing shared file refuses each host that lacks it, with one reason for all of them (said once, grouped)."""
    missing: dict[str, list[str]] = {}
    for name, state in hosts.items():
        for path in state.shared_missing:
            missing.setdefault(path, []).append(name)
    refusals = []
    for path, names in missing.items():
        where = {(roots.get(n, "ROOT").rstrip("/") or "") for n in names}
        root = where.pop() if len(where) == 1 else "ROOT"  # different roots: each host's own
        reason = f"shared file {path} is missing: create {root}/shared/{path} on {host_list(names)} (it is never shipped)"
        refusals.extend(Refusal(name, reason) for name in names)
    return refusals
