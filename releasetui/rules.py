"""The rules, each written once: pure functions over host states.

Which build the fleet runs, which build a rollback goes to, why a target is
refused, whether a venv is reused, what prune removes, who may take a lock,
how a rollout is cut into waves.  The core decides with these functions, the
CLI's ``--dry-run`` prints what they decided, and the TUI's confirmations are
built from the same plans, so what a person is shown is what then happens.

Nothing here touches a host, the disk or the clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Optional, Sequence, Union

from .config import MIN_KEEP_BUILDS
from .models import BuildInfo, HostState, HostUnreachable, LockInfo, check_build_id

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


# --- the fleet's builds ---------------------------------------------------------------

@dataclass(frozen=True)
class FleetCurrent:
    """What the fleet serves: one build when every reachable host agrees, else each host's."""

    build: Optional[str]
    agree: bool
    by_host: dict

    def describe(self) -> str:
        """``20261128101500 on all 3 hosts`` or the hosts grouped by build."""
        if self.agree:
            count = len(self.by_host)
            return f"{self.build or 'nothing'} on {'all ' + str(count) + ' hosts' if count > 1 else 'the host'}"
        from .present import host_list  # present builds on these rules; the names only need its list
        groups: dict[Optional[str], list[str]] = {}
        for host, build in self.by_host.items():
            groups.setdefault(build, []).append(host)
        return "; ".join(f"{build or 'nothing'} on {host_list(hosts)}" for build, hosts in groups.items())


def fleet_current(states: States) -> FleetCurrent:
    """The build every reachable host serves, or that they disagree."""
    by_host = {name: s.current for name, s in reachable(states).items()}
    builds = set(by_host.values())
    return FleetCurrent(next(iter(builds)) if len(builds) == 1 else None, len(builds) <= 1, by_host)


def previous_good_build(states: States, below: Optional[str]) -> Optional[str]:
    """The newest build older than ``below`` that is complete and not failed on EVERY reachable host (by id)."""
    hosts = list(reachable(states).values())
    if not hosts or below is None:
        return None
    good = [{b.id for b in state.builds if b.good and b.id < below} for state in hosts]
    common = set.intersection(*good) if good else set()
    return max(common) if common else None


def default_rollback_target(states: States) -> tuple[Optional[str], Optional[str]]:
    """(target, None), or (None, why there is no default): the fleet's previous good build."""
    current = fleet_current(states)
    if not reachable(states):
        return None, "no host could be read"
    if not current.agree:
        return None, (f"the hosts disagree on the current build ({current.describe()}): "
                      "name the build to roll back to")
    if current.build is None:
        return None, "nothing is current yet"
    target = previous_good_build(states, current.build)
    if target is None:
        return None, f"no build older than {current.build} is complete and not failed on every host"
    return target, None


# --- rollback -------------------------------------------------------------------------

@dataclass
class HostSwitch:
    """One host's part of a switch: from its current build to the target."""

    host: str
    current: Optional[str]
    target: str
    venv_changes: bool = False
    target_failed: bool = False

    @property
    def needed(self) -> bool:
        """Whether the host must switch at all (it may already serve the target)."""
        return self.current != self.target


@dataclass
class RollbackPlan:
    """A rollback decided from every targeted host's state: all switch, or none."""

    target: Optional[str]
    requested: Optional[str]
    hosts: list[HostSwitch] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the rollback may go ahead on every host."""
        return not self.refusals

    @property
    def switching(self) -> list[HostSwitch]:
        """The hosts that actually change build."""
        return [h for h in self.hosts if h.needed]


def choices(state: HostState) -> str:
    """The builds a person may choose on a host, failed ones marked: ``a, b (failed), c``."""
    words = [b.id + (" (failed)" if b.failed else "") for b in state.builds if b.complete]
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
    return refusals


def plan_rollback(states: States, requested: Optional[str] = None, ignore_locks: bool = False) -> RollbackPlan:
    """Check the target on every host; refuse (naming each host and why) unless ALL can switch.

    With no ``requested`` id the target is the fleet's previous good build
    (:func:`default_rollback_target`).  A failed build may be named
    explicitly; it is allowed, and the plan says it was marked failed.
    """
    if requested is not None:
        check_build_id(requested)
    plan = RollbackPlan(target=requested, requested=requested)
    plan.refusals.extend(read_refusals(states, ignore_locks))
    plan.refusals.extend(layout_refusals(states, action="roll back"))
    hosts = reachable(states)
    if requested is None:
        target, why = default_rollback_target(states)
        if target is None:
            plan.refusals.append(Refusal(None, why or "no default target"))
            return plan
        plan.target = target
    target = plan.target
    for name, state in hosts.items():
        build = state.build(target)
        if build is None:
            plan.refusals.append(Refusal(name, f"build {target} does not exist there (builds you can choose: "
                                               f"{choices(state)})"))
            continue
        if build.damaged:
            plan.refusals.append(Refusal(name, f"build {target} is damaged ({build.damaged}): it cannot be "
                                               f"made current (builds you can choose: {choices(state)})"))
            continue
        if not build.complete:
            plan.refusals.append(Refusal(name, f"build {target} is incomplete: its deploy never finished "
                                               f"(builds you can choose: {choices(state)})"))
            continue
        current = state.build(state.current)
        venv_changes = current is None or current.venv != build.venv
        plan.hosts.append(HostSwitch(name, state.current, target, venv_changes, build.failed))
    return plan


# --- deploy ---------------------------------------------------------------------------

def venv_key(requirements_sha256: str, python_version: str) -> str:
    """The venv directory name for a requirements hash and a host interpreter (``3.11.7`` -> ``py3.11``)."""
    from .models import VENV_KEY_PATTERN
    major_minor = ".".join(python_version.split(".")[:2])
    key = f"{requirements_sha256[:16]}-py{major_minor}"
    if not VENV_KEY_PATTERN.fullmatch(key):
        raise ValueError(f"invalid venv key {key!r}")
    return key


def venv_reused(state: HostState, requirements_sha256: str) -> bool:
    """Whether a deploy with these requirements finds its venv already built on the host (no pip at all)."""
    if not state.python_version:
        return False
    return venv_key(requirements_sha256, state.python_version) in state.venvs


def requirements_changed(builds: Sequence[BuildInfo]) -> dict[str, bool]:
    """For each build id: whether its requirements hash differs from the build before it (by id)."""
    changed: dict[str, bool] = {}
    previous: Optional[str] = None
    for build in sorted(builds, key=lambda b: b.id):
        sha = build.requirements_sha256
        changed[build.id] = bool(previous and sha and sha != previous)
        previous = sha or previous
    return changed


def unique_build_id(base: str, taken: Iterable[str]) -> str:
    """``base`` if no host has it yet, else ``base-01``, ``base-02``... (the same id on every host)."""
    check_build_id(base)
    taken = set(taken)
    if base not in taken:
        return base
    for n in range(1, 100):
        candidate = f"{base}-{n:02d}"
        if candidate not in taken:
            return candidate
    raise ValueError(f"more than 99 builds started in the second {base}")


@dataclass
class HostDeploy:
    """One host's part of a deploy."""

    host: str
    current: Optional[str]
    venv: Optional[str]
    venv_reused: bool
    python_version: Optional[str]


@dataclass
class DeployPlan:
    """A deploy decided from every targeted host's state."""

    build_id: Optional[str]
    requirements_sha256: str
    hosts: list[HostDeploy] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the deploy may go ahead on every host."""
        return not self.refusals


def plan_deploy(states: States, requirements_sha256: str, base_id: str, python: Mapping[str, str],
                shared_files: Sequence[str] = (), ignore_locks: bool = False,
                roots: Optional[Mapping[str, str]] = None) -> DeployPlan:
    """The new build's id (the same on every host), and per host: from which build, whether its venv is reused.

    Refused on every host when one cannot take part (unreachable, locked, its
    interpreter missing, a shared file missing).  ``python`` names each host's
    interpreter and ``roots`` its project root, for the messages.
    """
    plan = DeployPlan(None, requirements_sha256)
    plan.refusals.extend(read_refusals(states, ignore_locks))
    plan.refusals.extend(layout_refusals(states))
    hosts = reachable(states)
    for name, state in hosts.items():
        if not state.python_version:
            plan.refusals.append(Refusal(name, f"interpreter {python.get(name, 'python3')!r} does not run there "
                                               "(set `python:` for this host)"))
        root = (roots or {}).get(name, "ROOT").rstrip("/") or ""
        for path in state.shared_missing:
            plan.refusals.append(Refusal(name, f"shared file {path} is missing: create {root}/shared/{path} on "
                                               f"{name} (it is never shipped)"))
    plan.build_id = unique_build_id(base_id, (b.id for s in hosts.values() for b in s.builds))
    for name, state in hosts.items():
        key = venv_key(requirements_sha256, state.python_version) if state.python_version else None
        plan.hosts.append(HostDeploy(name, state.current, key, bool(key and key in state.venvs), state.python_version))
    return plan


# --- prune ------------------------------------------------------------------------------

@dataclass
class HostPrune:
    """What prune removes on one host, and why each kept build stays."""

    host: str
    remove: list[str] = field(default_factory=list)
    remove_venvs: list[str] = field(default_factory=list)
    reasons: dict = field(default_factory=dict)  # build id -> why it goes or stays

    @property
    def empty(self) -> bool:
        """Nothing to remove."""
        return not self.remove and not self.remove_venvs


def plan_prune(state: HostState, keep: int, protect: Iterable[Optional[str]] = (),
               current: Optional[str] = None) -> HostPrune:
    """What prune removes on one host.

    Never: the current build, the builds in ``protect`` (the fleet's rollback
    target), pinned builds.  First: every incomplete, damaged and failed build.
    Then the good (complete, not failed) builds beyond the ``keep`` newest.
    So no good build goes while a failed or incomplete one is still there to
    remove.  Venvs no remaining build uses go too.  ``current`` overrides the
    state's (a deploy prunes as if its new build were already current).
    """
    if keep < MIN_KEEP_BUILDS:
        raise ValueError(f"keep must be at least {MIN_KEEP_BUILDS}")
    current = current if current is not None else state.current
    protected = {b for b in protect if b} | ({current} if current else set())
    plan = HostPrune(state.name)
    good = sorted((b.id for b in state.builds if b.good), reverse=True)
    newest = set(good[:keep])
    kept: set[str] = set()
    for build in state.builds:
        if build.id == current:
            plan.reasons[build.id] = "current"
        elif build.id in protected:
            plan.reasons[build.id] = "the fleet's rollback target"
        elif build.pinned:
            plan.reasons[build.id] = "pinned"
        elif build.id in newest:
            plan.reasons[build.id] = f"among the {keep} newest good builds"
        else:
            plan.remove.append(build.id)
            plan.reasons[build.id] = build.state if not build.good else f"older than the {keep} newest good builds"
            continue
        kept.add(build.id)
    used = {b.venv for b in state.builds if b.id in kept and b.venv}
    plan.remove_venvs = [v for v in state.venvs if v not in used]
    return plan


# --- rollouts ---------------------------------------------------------------------------

def plan_waves(hosts: Sequence[str], canary: Union[int, Sequence[str], None] = None,
               batch: Union[int, str, None] = None) -> list[list[str]]:
    """Cut the hosts into activation waves: the canary first, then batches (one wave of all when neither is set).

    ``canary`` is a count (the first N hosts) or host names; ``batch`` is a
    count or a percentage of all the hosts (``"25%"``, rounded up).
    """
    hosts = list(hosts)
    if not hosts:
        return []
    if isinstance(canary, int):
        first = hosts[:max(0, canary)]
    else:
        first = [h for h in hosts if h in set(canary or ())]
    rest = [h for h in hosts if h not in first]
    if batch is None:
        size = len(rest) or 1
    elif isinstance(batch, str):
        size = max(1, math.ceil(len(hosts) * float(batch.rstrip("%")) / 100))
    else:
        size = max(1, batch)
    waves = [first] if first else []
    waves += [rest[i:i + size] for i in range(0, len(rest), size)]
    return waves
