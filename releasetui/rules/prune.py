"""What prune removes on a host, and what it always keeps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Optional

from ..models import MIN_KEEP_BUILDS, HostState
from .targets import last_good_live


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
