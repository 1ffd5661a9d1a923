"""Which build the fleet runs, and which build is the rollback target: the build live before the current one,
read from the hosts' history of moves, skipping failed and rolled-away builds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from ..models import HostState, Move
from ..text import group_hosts, host_list
from .refusals import States, reachable


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
