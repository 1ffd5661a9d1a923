"""Prune, pin, unmark, lock and unlock: phases 1, 2 and 6 (read and lock, plan, finish), two round trips per host.

Prune decides what to remove from the state it read UNDER its own lock, so
a rollback cannot slip in between the plan and the removal, and history
records what was actually removed.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Optional, Sequence

from .. import commands, rules
from ..metadata import meta_json, unmarked_meta
from ..config import MIN_KEEP_BUILDS, HostConfig
from ..models import HostOutcome, HostState, OperationResult, check_build_id
from .context import OperationContext
from .outcomes import describe_abort, refusal_outcomes
from .locking import FleetRead, ReadRequest, read_one, read_states, release
from .source import OperationError


def check_keep(keep: int) -> int:
    """``--keep`` obeys the same minimum as ``keep_builds``."""
    if keep < MIN_KEEP_BUILDS:
        raise OperationError(f"--keep must be at least {MIN_KEEP_BUILDS} (the live build and one to roll back to)")
    return keep


def prune_plans(states: dict, keep: int) -> dict[str, rules.HostPrune]:
    """Each reachable host's prune plan; the fleet's rollback target is protected everywhere (and on each host
    the build live and healthy before the current one, by :func:`releasetui.rules.plan_prune` itself)."""
    target = rules.default_rollback_target(states).target
    return {name: rules.plan_prune(state, keep, protect=[target])
            for name, state in rules.reachable(states).items()}


def _stopped_before(ctx: OperationContext, result: OperationResult, hosts: Sequence[HostConfig], fleet: FleetRead,
                    refusals: list, states: Optional[dict] = None, why: str = "interrupted") -> bool:
    """Refused, or asked to stop, before anything changed: release the locks taken and say so on every host."""
    if not refusals and not ctx.stop.is_set():
        return False
    release(ctx, fleet.locked)
    if refusals:
        refusal_outcomes(result, refusals, hosts, fleet.current(), states)
    else:
        describe_abort(result, hosts, fleet.current(), why, interrupted=ctx.stop.is_set())
    return True


def _finished(run, current: Optional[str], host: str, done: str) -> HostOutcome:
    """A finishing script's outcome: ``done`` when it ran and kept its lock, else why not."""
    parsed = commands.parse_finish(run.stdout)
    if parsed.lost_lock or not run.ok:
        return HostOutcome(host, "failed", parsed.refused or run.error_text(), current=current)
    return HostOutcome(host, "ok", done, current=current)


def prune(ctx: OperationContext, hosts: Sequence[HostConfig], keep: Optional[int] = None) -> OperationResult:
    """Remove failed, incomplete and old builds and unused venvs (see :func:`releasetui.rules.plan_prune`)."""
    started = time.monotonic()
    hosts = list(hosts)
    keep = check_keep(ctx.config.keep_builds if keep is None else keep)
    result = OperationResult("prune", dry_run=ctx.dry_run)
    fleet = read_states(ctx, hosts, ReadRequest(operation="prune"))
    current = fleet.current()
    refusals = rules.lock_refusals(fleet.states) + rules.layout_refusals(fleet.states, switching=False, action="prune")
    if _stopped_before(ctx, result, hosts, fleet, refusals, fleet.states):
        return ctx.finish(result, started, hosts)
    plans = prune_plans(fleet.states, keep)
    for host in hosts:
        state = fleet.states[host.name]
        if not isinstance(state, HostState):
            result.outcomes[host.name] = ctx.failure(host, state)
            continue
        plan = plans[host.name]
        planned = plan.remove + [f"venv:{v}" for v in plan.remove_venvs] + [f"wheelhouse:{w}"
                                                                              for w in plan.remove_wheelhouses]
        if ctx.dry_run or host in fleet.locked:
            ctx.report(host.name, "plan", "info", message=("would remove: " if ctx.dry_run else "removing: ")
                       + (" ".join(planned) or "nothing"), phase="plan")
        if ctx.dry_run:
            if not plan.empty:
                ctx.executor(host).record("prune", commands.prune_script(host.root, ctx.token, plan.remove,
                                                                         plan.remove_venvs, ctx.record("prune", host.name),
                                                                         plan.remove_wheelhouses))
            result.outcomes[host.name] = HostOutcome(host.name, "ok", f"would remove {len(planned)}: "
                                                     f"{' '.join(planned) or 'nothing'}", current=state.current,
                                                     removed=planned)

    def finish(host: HostConfig) -> HostOutcome:
        state: HostState = fleet.states[host.name]  # type: ignore[assignment]
        plan = plans[host.name]
        script = commands.prune_script(host.root, ctx.token, plan.remove, plan.remove_venvs,
                                       ctx.record("prune", host.name, keep=keep), plan.remove_wheelhouses)
        run = ctx.run(host, script, phase="finish", interruptible=False)
        parsed = commands.parse_finish(run.stdout)
        if parsed.lost_lock:
            return HostOutcome(host.name, "failed", "its lock was removed before the prune (unlock?): nothing removed",
                               current=state.current)
        if not run.ok:
            return HostOutcome(host.name, "failed", f"prune failed: {run.error_text()}", current=state.current)
        removed = parsed.removed
        return HostOutcome(host.name, "ok", f"removed {len(removed)}: {' '.join(removed) or 'nothing'}",
                           current=state.current, removed=removed)

    if not ctx.dry_run:
        ctx.each_host(result, fleet.locked, finish, current)
        # A host read but not locked (the gate, the first host by name, could not be reached): left alone, and said.
        gate = min(h.name for h in hosts) if hosts else None
        for host in hosts:
            if host.name not in result.outcomes:
                result.outcomes[host.name] = HostOutcome(
                    host.name, "aborted", f"not pruned: its lock was not taken ({gate} could not be locked first)",
                    current=current.get(host.name))
    return ctx.finish(result, started, hosts)


def pin(ctx: OperationContext, hosts: Sequence[HostConfig], build_id: str, pinned: bool = True) -> OperationResult:
    """Pin a build on every targeted host (prune never removes it), or unpin it; all hosts or none."""
    started = time.monotonic()
    hosts = list(hosts)
    check_build_id(build_id)
    operation = "pin" if pinned else "unpin"
    result = OperationResult(operation, build_id=build_id, dry_run=ctx.dry_run)
    fleet = read_states(ctx, hosts, ReadRequest(operation=operation, build_id=build_id))
    current = fleet.current()
    if _stopped_before(ctx, result, hosts, fleet, rules.pin_refusals(fleet.states, build_id, pinned), fleet.states):
        return ctx.finish(result, started, hosts)

    def finish(host: HostConfig) -> HostOutcome:
        run = ctx.finish_script(host, operation, commands.pin_script(
            host.root, ctx.token, build_id, pinned, ctx.record_json(operation, host.name, build=build_id)))
        if run is None:
            return HostOutcome(host.name, "ok", f"would {operation} {build_id}", current=current[host.name])
        return _finished(run, current[host.name], host.name, f"{build_id} {'pinned' if pinned else 'unpinned'}")

    ctx.each_host(result, hosts, finish, current)
    return ctx.finish(result, started, hosts)


def hold(ctx: OperationContext, hosts: Sequence[HostConfig]) -> OperationResult:
    """Take the fleet's lock and keep it (``releasetui lock -m WHY``) until ``unlock``: every other operation
    exits 4 showing who holds it and why.  All hosts or none: a host already locked refuses the whole."""
    started = time.monotonic()
    hosts = list(hosts)
    if not ctx.message:
        raise OperationError("lock needs -m TEXT: say why deploys are held (everyone refused will read it)")
    result = OperationResult("lock", dry_run=ctx.dry_run)
    fleet = read_states(ctx, hosts, ReadRequest(operation="lock"))
    current = fleet.current()
    unreachable = [h for h in hosts if not isinstance(fleet.states[h.name], HostState)]
    for host in unreachable:
        result.outcomes[host.name] = ctx.failure(host, fleet.states[host.name])
    if unreachable and not ctx.stop.is_set() and not rules.lock_refusals(fleet.states):
        release(ctx, fleet.locked)
        describe_abort(result, hosts, current, "not every host could be locked")
        return ctx.finish(result, started, hosts)
    if _stopped_before(ctx, result, hosts, fleet, rules.lock_refusals(fleet.states)):
        return ctx.finish(result, started, hosts)

    def keep(host: HostConfig) -> HostOutcome:
        run = ctx.finish_script(host, "lock", commands.hold_script(host.root, ctx.token,
                                                                   ctx.record_json("lock", host.name)))
        if run is None:
            return HostOutcome(host.name, "ok", "would hold the lock", current=current[host.name])
        if not run.ok or not commands.parse_finish(run.stdout).held:
            return HostOutcome(host.name, "failed", f"lock not held: {run.error_text()}", current=current[host.name])
        return HostOutcome(host.name, "ok", "locked until `releasetui --headless unlock`", current=current[host.name])

    ctx.each_host(result, hosts, keep, current)
    if not result.ok:
        release(ctx, [h for h in fleet.locked if result.outcomes[h.name].status != "ok"])
    return ctx.finish(result, started, hosts)


def unmark(ctx: OperationContext, hosts: Sequence[HostConfig], build_id: str) -> OperationResult:
    """Clear a build's ``rolled-away`` and ``failed`` marks on every targeted host where it carries one, so it
    may be a default rollback target again; all hosts or none, recorded in history like ``pin``."""
    started = time.monotonic()
    hosts = list(hosts)
    check_build_id(build_id)
    result = OperationResult("unmark", build_id=build_id, dry_run=ctx.dry_run)
    fleet = read_states(ctx, hosts, ReadRequest(operation="unmark", build_id=build_id))
    current = fleet.current()
    if _stopped_before(ctx, result, hosts, fleet, rules.unmark_refusals(fleet.states, build_id)):
        return ctx.finish(result, started, hosts)

    def finish(host: HostConfig) -> HostOutcome:
        state: HostState = fleet.states[host.name]  # type: ignore[assignment]
        build, meta = state.build(build_id), state.metas.get(build_id)
        was = build.state if build is not None and build.marked else None
        run = ctx.finish_script(host, "unmark", commands.unmark_script(
            host.root, ctx.token, build_id, meta_json(unmarked_meta(meta)) if was and meta else None,
            ctx.record_json("unmark", host.name, build=build_id, was=was)))
        if run is None:
            return HostOutcome(host.name, "ok", f"would clear {build_id}'s mark ({was})" if was else
                               f"{build_id} carries no mark here", current=current[host.name])
        return _finished(run, current[host.name], host.name,
                         f"{build_id} is no longer {was}" if was else f"{build_id} carries no mark here")

    ctx.each_host(result, hosts, finish, current)
    return ctx.finish(result, started, hosts)


def unlock(ctx: OperationContext, hosts: Sequence[HostConfig]) -> OperationResult:
    """Remove the lock each host shows (whatever state it is in), stopping what its operation still runs there."""
    started = time.monotonic()
    hosts = list(hosts)
    result = OperationResult("unlock", dry_run=ctx.dry_run)

    def one(host: HostConfig) -> HostOutcome:
        state = read_one(ctx, host, ReadRequest(), lock=False)
        if state.lock is None:
            return HostOutcome(host.name, "ok", "was not locked", current=state.current)
        lock = state.lock
        script = commands.unlock_script(host.root, lock.token or "",
                                        ctx.record_json("unlock", host.name, lock=dataclasses.asdict(lock)))
        run = ctx.finish_script(host, "unlock", script)
        if run is None:
            return HostOutcome(host.name, "ok", f"would remove the lock held for {lock.describe(hint=False)}",
                               current=state.current)
        parsed = commands.parse_finish(run.stdout)
        if parsed.not_locked:
            return HostOutcome(host.name, "ok", "was not locked", current=state.current)
        if parsed.changed:
            return HostOutcome(host.name, "failed", "the lock changed since it was read (another operation took it): "
                               "left alone; run unlock again to see it", current=state.current)
        if not run.ok or not parsed.unlocked:
            return HostOutcome(host.name, "failed", f"unlock failed: {run.error_text()}", current=state.current)
        return HostOutcome(host.name, "ok", f"removed the lock held for {lock.describe(hint=False)}", current=state.current)

    ctx.each_host(result, hosts, one)
    return ctx.finish(result, started, hosts)
