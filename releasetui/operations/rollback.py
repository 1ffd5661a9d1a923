"""A rollback: read and lock every host, plan (all can switch, or none does), activate in waves.

Two round trips per host: the locked read, then the activate script (which
restarts, checks health unless told not to, and commits or switches back).
The target is checked on EVERY targeted host before any host switches; the
default target is the build live before the current one, per the hosts'
history (:func:`releasetui.rules.plan_rollback`).  When the fleet commits,
each host's activate script marks the build it left ``rolled-away`` (a
rollback to an older build) and clears that mark from the target.
"""

from __future__ import annotations

import time
from typing import Optional, Sequence

from .. import commands, rules
from ..clock import iso
from ..metadata import meta_json, rolled_away_meta, without_rolled_away
from ..commands import ActivateRecords
from ..config import HostConfig
from ..models import HostOutcome, HostState, OperationResult, check_build_id
from .activation import Activation, HostActivation, outcome_of, outside_ending
from .context import OperationContext
from .outcomes import describe_abort, refusal_outcomes
from .waves import RolloutChoice, activation_deadline, verdict_timeout, waves_for
from .hooks import describe_hooks, hook_env, run_local_hooks
from .locking import FleetRead, ReadRequest, read_states, release


class Rollback:
    """One rollback of ``hosts`` to ``build_id`` (None: the fleet's previous good build)."""

    def __init__(self, ctx: OperationContext, hosts: Sequence[HostConfig], build_id: Optional[str] = None,
                 rollout: Optional[RolloutChoice] = None, health: bool = True):
        self.ctx = ctx
        self.hosts = list(hosts)
        self.requested = check_build_id(build_id) if build_id is not None else None
        self.rollout = rollout
        self.health = health
        self.result = OperationResult("rollback", build_id=self.requested, dry_run=ctx.dry_run)
        self.fleet = FleetRead()
        self.plan: Optional[rules.RollbackPlan] = None

    def current(self) -> dict:
        """Each host's current build as read."""
        return self.fleet.current()

    def run(self) -> OperationResult:
        """Read and lock, plan, then switch every host or none."""
        started = time.monotonic()
        self.fleet = read_states(self.ctx, self.hosts, ReadRequest(operation="rollback", build_id=self.requested))
        self.plan = rules.plan_rollback(self.fleet.states, self.requested)
        if self.plan.target:
            self.result.build_id = self.plan.target
        if self.plan.ok:  # a refusal says its own why, once
            self.ctx.report(None, "target", "info", message=f"{self.plan.target}: {self.plan.reason}", phase="plan")
        if self.ctx.stop.is_set():
            release(self.ctx, self.fleet.locked)
            describe_abort(self.result, self.hosts, self.current(), "interrupted", interrupted=True)
            return self.ctx.finish(self.result, started, self.hosts)
        if not self.plan.ok:
            release(self.ctx, self.fleet.locked)
            refusal_outcomes(self.result, self.plan.refusals, self.hosts, self.current(), self.fleet.states)
            return self.ctx.finish(self.result, started, self.hosts)
        switching = {h.host for h in self.plan.switching}
        for switch in self.plan.hosts:
            if not switch.needed:
                self.result.outcomes[switch.host] = HostOutcome(switch.host, "ok", f"{switch.target} is already current",
                                                                current=switch.target, previous=switch.current,
                                                                build_id=switch.target)
        already = [h for h in self.hosts if h.name not in switching]
        hosts = [h for h in self.hosts if h.name in switching]
        if self.ctx.dry_run:
            self.describe(hosts)
            return self.ctx.finish(self.result, started, self.hosts)
        release(self.ctx, [h for h in already if h in self.fleet.locked])
        if hosts:
            # Before activation begins, so a Ctrl-C during a slow local hook still aborts cleanly.
            failure = run_local_hooks(self.ctx, "local_before", self.local_env())
            if failure:
                release(self.ctx, hosts)
                describe_abort(self.result, self.hosts, self.current(), failure)
                run_local_hooks(self.ctx, "local_failed", self.local_env())
                return self.ctx.finish(self.result, started, self.hosts)
        if hosts and not self.ctx.interrupts.enter_activation():
            release(self.ctx, hosts)
            describe_abort(self.result, self.hosts, self.current(), "interrupted", interrupted=True)
            return self.ctx.finish(self.result, started, self.hosts)
        if hosts:
            self.activate(hosts)
        return self.ctx.finish(self.result, started, self.hosts)

    def activate(self, hosts: list[HostConfig]) -> None:
        """Waves over the hosts that switch; commit, or every switched host goes back."""
        waves, pause = waves_for(self.ctx.config, hosts, self.rollout)
        timeout = verdict_timeout(hosts, waves, pause, "after_rollback", self.health)
        alone = len(hosts) == 1
        items = [HostActivation(h, self.plan.target, self.current()[h.name],
                                lambda elapsed, h=h: self.script_for(h, timeout, alone, elapsed),
                                self.switch_back_for(h), activation_deadline(h, "after_rollback", self.health),
                                decided=alone)
                 for h in hosts]
        outcome = Activation(self.ctx, items, waves, pause).run()
        for item in outcome.items.values():
            self.result.outcomes[item.host.name] = outcome_of(item, "rollback", outcome.committed, outcome.interrupted)
            if outcome.interrupted and self.result.outcomes[item.host.name].status == "aborted":
                self.result.outcomes[item.host.name].status = "interrupted"
        never = [i.host for i in outcome.items.values() if not i.started]
        if never:
            release(self.ctx, never)
        run_local_hooks(self.ctx, "local_after" if outcome.committed else "local_failed", self.local_env())

    def script_for(self, host: HostConfig, verdict: float, decided: bool = False, elapsed: float = 0.0) -> str:
        """The activate script of a rollback on ``host`` (``decided``: the only host, it commits once healthy;
        ``elapsed``: seconds the rollback has run when it starts)."""
        previous, target = self.current()[host.name], self.plan.target
        # A target that fails its restart or health check after the switch is marked failed on that host.
        state: HostState = self.fleet.states[host.name]  # type: ignore[assignment]
        return commands.activate_script(
            host.root, self.ctx.token, target=target, previous=previous, restart=host.restart,
            restart_timeout=host.restart_timeout, python=host.python,
            health=host.healthcheck if self.health else None,
            hooks=[h for h in host.hooks if h.name == "after_rollback"],
            hook_env=hook_env(self.ctx, "rollback", target, previous, state.build(target).git_commit, host=host),
            records=ActivateRecords(history=self.ctx.record("rollback", host.name, timed=False,
                                                            **{"from": previous, "to": target}),
                                    commit_metas=self.marks_for(host.name)),
            verdict_timeout=verdict, decided=decided, elapsed=elapsed)

    def marks_for(self, host: str) -> tuple:
        """(build, metadata) the host writes when the fleet commits: the build it leaves marked rolled-away
        (going back to an older one), the target's rolled-away mark cleared."""
        state: HostState = self.fleet.states[host]  # type: ignore[assignment]
        switch = next((h for h in self.plan.hosts if h.host == host), None) if self.plan else None
        if switch is None:
            return ()
        marks = []
        left = state.metas.get(switch.current) if switch.current else None
        if switch.rolls_away and left:
            note = f"rolled back to {switch.target} at {iso()} by {self.ctx.identity}"
            marks.append((switch.current, meta_json(rolled_away_meta(left, note))))
        target = state.metas.get(switch.target)
        if switch.target_rolled_away and target:
            marks.append((switch.target, meta_json(without_rolled_away(target))))
        return tuple(marks)

    def switch_back_for(self, host: HostConfig):
        """The outside switch-back for ``host``."""
        def build(elapsed: float) -> str:
            previous = self.current()[host.name]
            return commands.switch_back_script(
                host.root, self.ctx.token, target=self.plan.target, previous=previous, restart=host.restart,
                restart_timeout=host.restart_timeout,
                history=self.ctx.record("rollback", host.name, timed=False,
                                        **{"from": previous, "to": self.plan.target}),
                elapsed=elapsed, **outside_ending(self.ctx))
        return build

    def target_commit(self) -> Optional[str]:
        """The git commit of the target build, as its metadata on the first host that has it says."""
        target = self.plan.target if self.plan else None
        for state in self.fleet.states.values():
            build = state.build(target) if isinstance(state, HostState) and target else None
            if build is not None and build.git_commit:
                return build.git_commit
        return None

    def local_env(self) -> dict:
        """The environment of the local hooks."""
        previous = {c for c in self.current().values() if c}
        return hook_env(self.ctx, "rollback", self.plan.target if self.plan else None, " ".join(sorted(previous)),
                        self.target_commit(), hosts=self.hosts)

    def describe(self, hosts: list[HostConfig]) -> None:
        """``--dry-run``: the scripts, per host."""
        waves, pause = waves_for(self.ctx.config, hosts, self.rollout)
        timeout = verdict_timeout(hosts, waves, pause, "after_rollback", self.health)
        describe_hooks(self.ctx, hosts, "rollback", self.plan.target)
        for host in hosts:
            # As deploy's dry run: the elapsed time is the wave's, unknown here.
            self.ctx.executor(host).record("activate", self.script_for(host, timeout, len(hosts) == 1, 0.0))
            current = self.current()[host.name]
            self.result.outcomes[host.name] = HostOutcome(host.name, "ok", f"would switch {current} -> {self.plan.target}",
                                                          current=current, previous=current, build_id=self.plan.target)
