"""How a rollout is cut into waves: the canary hosts first, then batches."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence, Union

from ..text import show


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
