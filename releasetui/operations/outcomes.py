"""How an operation that stopped before its switch ends on each host: refused (and why), aborted or interrupted,
every host's current build unchanged.  Shared by deploy, rollback and maintenance, which are peers."""

from __future__ import annotations

from typing import Optional, Sequence

from ..config import HostConfig
from ..models import HostOutcome, HostState, OperationResult


def describe_abort(result: OperationResult, hosts: Sequence[HostConfig], current: dict, why: str,
                   interrupted: bool = False) -> None:
    """Every host without an outcome yet: not switched, current unchanged."""
    for host in hosts:
        if host.name in result.outcomes:
            if result.outcomes[host.name].current is None:
                result.outcomes[host.name].current = current.get(host.name)
            continue
        status = "interrupted" if interrupted else "aborted"
        text = "interrupted before the switch" if interrupted else f"not switched: {why}"
        result.outcomes[host.name] = HostOutcome(host.name, status, f"{text}; current unchanged",
                                                 current=current.get(host.name))


def refusal_outcomes(result: OperationResult, refusals: list, hosts: Sequence[HostConfig], current: dict,
                     states: Optional[dict] = None) -> None:
    """Outcomes from the plan's refusals: the refused hosts say why; the others that nothing was done.

    ``states`` (as read) say what a host serves when its ``current`` is not a build (a directory put there).
    """
    for refusal in refusals:
        targets = [refusal.host] if refusal.host else [h.name for h in hosts]
        for name in targets:
            if name in result.outcomes:
                result.outcomes[name].message += f"; {refusal.reason}"
                continue
            result.outcomes[name] = HostOutcome(name, refusal.kind, refusal.reason, current=current.get(name))
    refused = sorted({r.host for r in refusals if r.host})
    describe_abort(result, hosts, current, f"refused on {', '.join(refused)}" if refused else "refused")
    for name, state in (states or {}).items():
        if isinstance(state, HostState) and name in result.outcomes:
            result.outcomes[name].serving = state.serving()
