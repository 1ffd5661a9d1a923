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

from .models import MIN_KEEP_BUILDS, BuildInfo, HostState, HostUnreachable, LockInfo, Move, check_build_id
from .text import group_hosts, host_list, show

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
    """The newest build older than ``below`` that is good (complete, not failed, not rolled away from) on EVERY
    reachable host (by id): the default target when the history cannot tell."""
    hosts = list(reachable(states).values())
    if not hosts or below is None:
        return None
    good = [{b.id for b in state.builds if b.good and b.id < below} for state in hosts]
    common = set.intersection(*good) if good else set()
    return max(common) if common else None


# --- the build live before the current one ----------------------------------------------

@dataclass(frozen=True)
class RollbackChoice:
    """The default rollback target and, for a person, why that build (or why there is none)."""

    target: Optional[str]
    reason: str


def fleet_moves(states: States) -> list[Move]:
    """Every reachable host's recorded switches, one per operation and move, oldest first."""
    seen: set = set()
    moves = []
    for state in reachable(states).values():
        for move in state.moves:
            key = (move.op or move.when, move.source, move.target)
            if key not in seen:
                seen.add(key)
                moves.append(move)
    return sorted(moves, key=lambda m: m.when[:19])  # stable: a host's own order within one second


def live_before(moves: Sequence[Move], current: Optional[str]) -> list[tuple[str, Optional[Move]]]:
    """The builds that were live before ``current``, the most recent first, each once, with the move that
    took the fleet off it (None when the history does not say)."""
    periods: list[list] = []  # [build, the move that ended its time live]
    for move in moves:
        if move.source and (not periods or periods[-1][0] != move.source):
            periods.append([move.source, None])  # a gap in the history: it was live, the record says so
        if periods and periods[-1][0] == move.source:
            periods[-1][1] = move
        if move.target and (not periods or periods[-1][0] != move.target):
            periods.append([move.target, None])
    seen = {current}
    before = []
    for build, left in reversed(periods):
        if build not in seen:
            seen.add(build)
            before.append((build, left))
    return before


def choose_previous(moves: Sequence[Move], current: str, why_not: Callable[[str], Optional[str]],
                    fallback: Callable[[], Optional[str]]) -> RollbackChoice:
    """THE rule of where a rollback goes: the build live before ``current`` per the history, skipping every
    build ``why_not`` objects to (failed, rolled-away, incomplete, missing); when the history names none, the
    newest good build older than ``current`` (``fallback``).  The fleet's default target and what prune keeps
    on each host are both this rule."""
    skipped = []
    for build, left in live_before(moves, current):
        why = why_not(build)
        if why is None:
            reason = "the build live before the current one" if not skipped else \
                "the newest good build live before the current one"
            return RollbackChoice(build, reason + (f" ({left.describe()})" if left else "") + _skips(skipped))
        skipped.append(f"{build}: {why}")
    target = fallback()
    cause = "no switch in the hosts' history" if not moves else "the history names no good build live before it"
    if target is None:
        return RollbackChoice(None, f"no build older than {current} is good (complete, not failed, not "
                                    f"rolled-away) on every host{_skips(skipped)}")
    return RollbackChoice(target, f"the newest good build older than the current one ({cause}){_skips(skipped)}")


def _skips(skipped: Sequence[str]) -> str:
    return f"; skipped {', '.join(skipped)}" if skipped else ""


def fleet_objection(states: States, build_id: str) -> Optional[str]:
    """Why ``build_id`` is not a good default target on every reachable host (``rolled-away``, ``failed on
    web2``, ``not on web3``), or None when it is."""
    words = {}
    for name, state in reachable(states).items():
        build = state.build(build_id)
        if build is None or not build.good:
            words[name] = "not there" if build is None else build.state
    if not words:
        return None
    groups = group_hosts(words)
    if len(groups) == 1 and len(words) == len(reachable(states)):
        return groups[0][0]
    return "; ".join(f"{word} on {host_list(names)}" for word, names in groups)


def default_rollback_target(states: States) -> RollbackChoice:
    """The fleet's default rollback target and why (see :func:`choose_previous`), or None and why there is none."""
    current = fleet_current(states)
    if not reachable(states):
        return RollbackChoice(None, "no host could be read")
    if not current.agree:
        return RollbackChoice(None, f"the hosts disagree on the current build ({current.describe()}): "
                                    "name the build to roll back to")
    if current.build is None:
        return RollbackChoice(None, "nothing is current yet")
    return choose_previous(fleet_moves(states), current.build, lambda b: fleet_objection(states, b),
                           lambda: previous_good_build(states, current.build))


def last_good_live(state: HostState, current: Optional[str] = None) -> Optional[str]:
    """On one host: the newest build that was live and healthy before ``current`` (its own by default), by the
    same rule as the fleet's rollback target; prune never removes it."""
    current = current if current is not None else state.current
    if current is None:
        return None
    good = {b.id for b in state.builds if b.good}
    older = [b for b in good if b < current]
    return choose_previous(state.moves, current, lambda b: None if b in good else "not good here",
                           lambda: max(older) if older else None).target


# --- rollback -------------------------------------------------------------------------

@dataclass
class HostSwitch:
    """One host's part of a switch: from its current build to the target."""

    host: str
    current: Optional[str]
    target: str
    venv_changes: bool = False
    target_failed: bool = False
    target_rolled_away: bool = False

    @property
    def needed(self) -> bool:
        """Whether the host must switch at all (it may already serve the target)."""
        return self.current != self.target

    @property
    def rolls_away(self) -> bool:
        """Whether this switch goes back to an older build, so the one it leaves is marked ``rolled-away`` when
        the rollback commits (a switch forward to a newer build marks nothing)."""
        return self.needed and self.current is not None and self.target < self.current


@dataclass
class RollbackPlan:
    """A rollback decided from every targeted host's state: all switch, or none."""

    target: Optional[str]
    requested: Optional[str]
    hosts: list[HostSwitch] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    # Where a rollback with no id goes, and why (the dry run and the confirmation say it).
    default: Optional[RollbackChoice] = None

    @property
    def ok(self) -> bool:
        """Whether the rollback may go ahead on every host."""
        return not self.refusals

    @property
    def reason(self) -> str:
        """Why this target, for a person: the default's reason, or that it was named and where the default goes."""
        default = self.default
        if default is None:
            return ""
        if self.requested is None or self.requested == default.target:
            return default.reason
        return (f"named; with no id the rollback would go to {default.target}: {default.reason}" if default.target
                else f"named; with no id the rollback is refused: {default.reason}")

    @property
    def switching(self) -> list[HostSwitch]:
        """The hosts that actually change build."""
        return [h for h in self.hosts if h.needed]


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


def plan_rollback(states: States, requested: Optional[str] = None, ignore_locks: bool = False) -> RollbackPlan:
    """Check the target on every host; refuse (naming each host and why) unless ALL can switch.

    With no ``requested`` id the target is the build live before the current
    one (:func:`default_rollback_target`), and ``reason`` says why.  A failed
    or rolled-away build may be named explicitly; it is allowed, and the plan
    says how it is marked.
    """
    if requested is not None:
        check_build_id(requested)
    plan = RollbackPlan(target=requested, requested=requested)
    plan.refusals.extend(read_refusals(states, ignore_locks))
    plan.refusals.extend(layout_refusals(states, action="roll back"))
    hosts = reachable(states)
    plan.default = default_rollback_target(states)
    if requested is None:
        if plan.default.target is None:
            plan.refusals.append(Refusal(None, plan.default.reason))
            return plan
        plan.target = plan.default.target
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
        plan.hosts.append(HostSwitch(name, state.current, target, venv_changes, build.failed, build.rolled_away))
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
    wheels: str = "host"            # `wheels:` for this host: "host" (pip wheel there) or "ship"
    send_wheels: bool = False       # the wheelhouse is built here and sent with the build (see wheels_to_send)

    @property
    def wheelhouse(self) -> Optional[str]:
        """The wheelhouse (``wheelhouses/<key>`` on the host) this host's new venv installs from, when it ships."""
        return self.venv if self.wheels == "ship" and not self.venv_reused else None


@dataclass(frozen=True)
class LocalBuilder:
    """What this machine can build wheels for: its OS and machine as ``uname -sm`` says them (``Linux x86_64``)
    and its interpreters by major.minor (``{"3.11": "/usr/bin/python3.11"}``)."""

    platform: str
    pythons: Mapping[str, str] = field(default_factory=dict)


def major_minor(version: Optional[str]) -> str:
    """``3.11.7`` -> ``3.11`` ('' for None)."""
    return ".".join((version or "").split(".")[:2])


def wheels_to_send(state: HostState, venv: Optional[str], mode: str) -> bool:
    """THE rule of shipping wheels: a ``wheels: ship`` host is sent the wheelhouse only when its new venv must be
    built (not reused) and the wheelhouse for that venv is not already on the host."""
    return mode == "ship" and venv is not None and venv not in state.venvs and venv not in state.wheelhouses


def wheelhouse_refusal(state: HostState, local: Optional[LocalBuilder]) -> Optional[str]:
    """Why this machine cannot build the wheelhouse a host needs (None when it can): wheels built here install
    there only when the OS, the machine and Python's major.minor are the same."""
    version = major_minor(state.python_version)
    if local is None:
        return "wheels: ship needs this machine's platform, which was not given"
    if state.platform == local.platform and version in local.pythons:
        return None
    here = f"{local.platform}, Python {', '.join(sorted(local.pythons)) or 'none'}"
    return (f"wheels: ship builds the wheelhouse on this machine ({here}), which does not match the host "
            f"({state.platform or 'platform unknown'}, Python {version or '?'}): set wheels: host for it, or deploy "
            f"from a machine where python{version or 'X.Y'} runs on {state.platform or 'its platform'}")


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
                roots: Optional[Mapping[str, str]] = None, wheels: Optional[Mapping[str, str]] = None,
                local: Optional[LocalBuilder] = None) -> DeployPlan:
    """The new build's id (the same on every host), and per host: from which build, whether its venv is reused,
    whether it is sent the wheelhouse (``wheels``: each host's mode; ``local``: what this machine builds for).

    Refused on every host when one cannot take part (unreachable, locked, its
    interpreter missing, a shared file missing, a wheelhouse this machine cannot
    build for it).  ``python`` names each host's interpreter and ``roots`` its
    project root, for the messages.
    """
    plan = DeployPlan(None, requirements_sha256)
    plan.refusals.extend(read_refusals(states, ignore_locks))
    plan.refusals.extend(layout_refusals(states))
    hosts = reachable(states)
    for name, state in hosts.items():
        if not state.python_version:
            plan.refusals.append(Refusal(name, f"interpreter {python.get(name, 'python3')!r} does not run there "
                                               "(set `python:` for this host)"))
    plan.refusals.extend(shared_refusals(hosts, roots or {}))
    plan.build_id = unique_build_id(base_id, (b.id for s in hosts.values() for b in s.builds))
    for name, state in hosts.items():
        key = venv_key(requirements_sha256, state.python_version) if state.python_version else None
        mode = (wheels or {}).get(name, "host")
        send = wheels_to_send(state, key, mode)
        why = wheelhouse_refusal(state, local) if send else None
        if why:
            plan.refusals.append(Refusal(name, why))
        plan.hosts.append(HostDeploy(name, state.current, key, bool(key and key in state.venvs), state.python_version,
                                     mode, send))
    return plan


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


# --- prune ------------------------------------------------------------------------------

@dataclass
class HostPrune:
    """What prune removes on one host, and why each kept build stays."""

    host: str
    remove: list[str] = field(default_factory=list)
    remove_venvs: list[str] = field(default_factory=list)
    reasons: dict = field(default_factory=dict)  # build id -> why it goes or stays
    remove_wheelhouses: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Nothing to remove."""
        return not self.remove and not self.remove_venvs and not self.remove_wheelhouses


def plan_prune(state: HostState, keep: int, protect: Iterable[Optional[str]] = (),
               current: Optional[str] = None) -> HostPrune:
    """What prune removes on one host.

    Never: the current build, the builds in ``protect`` (the fleet's rollback
    target), the newest build that was live and healthy before the current
    one (:func:`last_good_live`, whatever its age), pinned builds.  First:
    every incomplete, damaged and failed build.  Then the good builds beyond
    the ``keep`` newest; a rolled-away build stays only while the good ones
    leave room among ``keep``, so no good build goes while a failed,
    rolled-away or incomplete one is still there to remove.  Venvs no
    remaining build uses go too, and so do the wheelhouses they were filled
    from (a wheelhouse is keyed like its venv).  ``current`` overrides the state's (a
    deploy prunes as if its new build were already current).
    """
    if keep < MIN_KEEP_BUILDS:
        raise ValueError(f"keep must be at least {MIN_KEEP_BUILDS}")
    current = current if current is not None else state.current
    protected = {b for b in protect if b} | ({current} if current else set())
    last_good = last_good_live(state, current)
    plan = HostPrune(state.name)
    good = sorted((b.id for b in state.builds if b.good), reverse=True)
    newest = set(good[:keep])
    away = sorted((b.id for b in state.builds if b.complete and not b.damaged and not b.failed and b.rolled_away),
                  reverse=True)
    room = set(away[:max(0, keep - len(good))])
    kept: set[str] = set()
    for build in state.builds:
        if build.id == current:
            plan.reasons[build.id] = "current"
        elif build.id in protected:
            plan.reasons[build.id] = "the fleet's rollback target"
        elif build.id == last_good:
            plan.reasons[build.id] = "the newest build live and healthy before the current one"
        elif build.pinned:
            plan.reasons[build.id] = "pinned"
        elif build.id in newest:
            plan.reasons[build.id] = f"among the {keep} newest good builds"
        elif build.id in room:
            plan.reasons[build.id] = f"rolled-away, kept while the good builds leave room among {keep}"
        else:
            plan.remove.append(build.id)
            plan.reasons[build.id] = build.state if not build.good else f"older than the {keep} newest good builds"
            continue
        kept.add(build.id)
    used = {b.venv for b in state.builds if b.id in kept and b.venv}
    plan.remove_venvs = [v for v in state.venvs if v not in used]
    plan.remove_wheelhouses = [w for w in state.wheelhouses if w not in used]
    return plan


# --- rollouts ---------------------------------------------------------------------------

@dataclass(frozen=True)
class CanaryProblem:
    """Why a canary cannot mean what was asked: the reason, and which listed name is at fault (if one is)."""

    reason: str
    index: Optional[int] = None      # the position of the name at fault in a list of names
    unknown: Optional[str] = None    # a name that is no host at all (the caller may suggest a near miss)


def canary_problem(canary: Union[int, Sequence[str], None], hosts: Sequence[str],
                   known: Optional[Iterable[str]] = None, where: str = "targeted") -> Optional[CanaryProblem]:
    """The one check of ``--canary`` and ``rollout.canary`` against ``hosts``; None when the canary is meaningful.

    A canary is the first wave, and the rest wait for its verdict: so a count
    must leave at least one host after it (``--canary 7`` on 3 hosts would
    switch every host in one wave), and names must be distinct hosts among
    ``hosts`` (``known``: every configured name, to tell a typo from a host
    left out by ``--host``), not all of them.  ``where`` qualifies "hosts" in
    the reason (``targeted``, ``configured``).
    """
    hosts = list(hosts)
    if canary is None:
        return None
    if isinstance(canary, int):
        if canary < 0:
            return CanaryProblem("must be a number of hosts (0 or more) or a list of hosts")
        if canary and canary >= len(hosts):
            return CanaryProblem(f"{canary} host{'s' if canary != 1 else ''} first would switch "
                                 f"{_every(len(hosts), where)} in one wave, none left to wait for the canary "
                                 + _canary_hint(len(hosts)))
        return None
    known = set(hosts if known is None else known)
    seen: list[str] = []
    for index, name in enumerate(canary):
        if name not in known:
            return CanaryProblem(f"no host named {show(name)}", index, name)
        if name not in hosts:
            return CanaryProblem(f"{show(name)} is not a {where} host", index)
        if name in seen:
            return CanaryProblem(f"{show(name)} is listed twice", index)
        seen.append(name)
    if seen and set(seen) >= set(hosts):
        return CanaryProblem(f"names {_every(len(hosts), where)}: none left to wait for the canary "
                             + _canary_hint(len(hosts)))
    return None


def _every(count: int, where: str) -> str:
    return f"the only {where} host" if count == 1 else f"all {count} {where} hosts"


def _canary_hint(count: int) -> str:
    return "(a canary needs at least 2 hosts)" if count < 2 else f"(use fewer than {count})"


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
