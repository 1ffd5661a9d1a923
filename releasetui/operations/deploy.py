"""A deploy, as named phases: read and lock, plan, prepare, before-activate, activate, (abort).

* **read and lock** — every host at once, the gate's lock first (:mod:`.locking`);
* **plan** — pure: the build id, venv reuse, every refusal (:func:`releasetui.rules.plan_deploy`);
* **prepare** — ship the build and install its venv on every host (at most ``parallel`` at once);
  the build becomes ``complete`` last;
* **before activate** — hooks that must run before anything serves the new build (migrations);
* **activate** — waves: switch, restart, hooks, health; commit or switch every host back (:mod:`.activation`);
* **abort** — before activation, on any failure or interrupt: partial builds removed, locks released,
  nothing switched anywhere.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional, Sequence

from .. import commands, rules
from ..commands import ActivateRecords, FinishReport
from ..config import HostConfig
from ..executors import HostUnreachable, ScriptTimeout
from ..manifest import Manifest, Payload
from ..metadata import complete_meta, failed_meta, meta_json, new_meta
from ..models import BuildInfo, HostOutcome, HostState, OperationResult, check_build_id
from ..secrets import EnvFile, SecretError, resolve as resolve_env
from ..shipping import held_back_line
from ..text import clean_line
from .activation import Activation, HostActivation, outcome_of, outside_ending
from .outcomes import describe_abort, refusal_outcomes
from .waves import RolloutChoice, activation_deadline, verdict_timeout, waves_for
from .context import OperationContext
from .hooks import INTERRUPTED, describe_hooks, hook_env, once_refusals, run_before_activate, run_local_hooks
from .locking import FleetRead, ReadRequest, read_lock_script, read_states, release
from . import wheels as wheelhouses
from .preparing import Preparing
from .shipped_wheels import ShippedWheels
from .source import (OperationError, RefSource, SourceInfo, archive_ref, inspect_source, iso, new_build_id,
                     source_manifest)


class Deploy:
    """One deploy of ``source`` to ``hosts`` (see the module docstring)."""

    def __init__(self, ctx: OperationContext, hosts: Sequence[HostConfig], source: Optional[Path] = None,
                 build_id: Optional[str] = None, rollout: Optional[RolloutChoice] = None, health: bool = True,
                 source_info: Optional[SourceInfo] = None, ref: Optional[str] = None):
        self.ctx = ctx
        self.config = ctx.config
        self.hosts = list(hosts)
        self.source = Path(source) if source else self.config.source
        self.base_id = check_build_id(build_id) if build_id else None
        self.rollout = rollout
        self.health = health
        self.info = source_info
        self.ref = ref
        self._ref_tree: Optional[RefSource] = None
        self.result = OperationResult("deploy", dry_run=ctx.dry_run)
        self.fleet = FleetRead()
        self.plan: Optional[rules.DeployPlan] = None
        self.manifest: Optional[Manifest] = None
        self.metas: dict[str, dict] = {}
        self.preparing = Preparing(self)                             # phase 3: each host's prepare script
        self.env: Optional[EnvFile] = None
        # (venv key, where built: None = here, else the builder host) -> the wheelhouse to send, kept here
        self.wheels = ShippedWheels(self)                            # wheels: ship: the wheelhouses sent
        self.local: Optional[rules.LocalBuilder] = None              # what this machine builds wheels for

    # --- phases -----------------------------------------------------------------------------------

    def run(self) -> OperationResult:
        """All phases in order; returns how it ended on every host."""
        started = time.monotonic()
        try:
            self.inspect()
            self.base_id = self.base_id or new_build_id()
            self.result.build_id = self.base_id
            self.read_and_lock()
            if not self.make_plan():
                return self.finish(started)
            if self.ctx.dry_run:
                self.describe()
                return self.finish(started)
            failure = run_local_hooks(self.ctx, "local_before", self.local_env())
            if failure or self.ctx.stop.is_set():
                self.abort(failure or "interrupted", remove=False, interrupted=self.ctx.stop.is_set())
                return self.finish(started)
            if not self.prepare():
                return self.finish(started)
            if not self.before_activate():
                return self.finish(started)
            if not self.ctx.interrupts.enter_activation():
                self.abort("interrupted", interrupted=True)
                return self.finish(started)
            self.activate()
            return self.finish(started)
        finally:
            for payload in self.preparing.payloads.values():
                if isinstance(payload, Payload):
                    payload.discard()
            if self._ref_tree is not None:
                self._ref_tree.discard()

    def inspect(self) -> None:
        """Local: the source (a working tree, or with ``ref`` exactly that commit's tree), its requirements hash and
        git state, its manifest (what would ship); refusals that need no host (require_clean, a once-hook's host)."""
        problems = once_refusals(self.hosts)
        if problems:
            raise OperationError(problems[0])
        if self.info is None and self.ref:
            self._ref_tree = archive_ref(self.source, self.ref, self.config.requirements,
                                         self.config.requirements_extras)
            self.info = self._ref_tree.info
        if self.info is None:
            self.info = inspect_source(self.source, self.config.requirements, extras=self.config.requirements_extras)
        if self.config.require_clean and not self.info.git_ref:
            if self.info.git_commit is None:
                raise OperationError(f"{self.source} is not in a git repository and require_clean is set: "
                                     "deploy from a git checkout")
            if self.info.git_dirty is not False:
                raise OperationError(f"{self.source} has uncommitted changes and require_clean is set: commit "
                                     "them, or deploy a commit with --ref")
        self.manifest = source_manifest(self.config, self.info)
        git = ""
        if self.info.git_commit:
            git = f", git {self.info.git_commit[:10]}{' dirty' if self.info.git_dirty else ''}"
            if self.info.git_subject:
                git += f" {clean_line(self.info.git_subject, 60)!r}"
        where = f"{self.info.origin} at {self.info.git_ref}" if self.info.origin else str(self.info.path)
        self.ctx.report(None, "deploy", "info", message=f"source {where} ({self.manifest.file_count()} files"
                        f"{' as git would commit them' if self.manifest.git else ''}, "
                        f"requirements {self.info.requirements.label if self.info.requirements else ''} "
                        f"{self.info.requirements_sha256[:12]}{git})", phase="plan")
        if self.manifest.held_back:
            self.ctx.report(None, "source", "skipped", message=held_back_line(self.manifest.held_back), phase="plan")
        try:
            self.env = resolve_env(self.config.env, self.config.path.parent)
        except SecretError as exc:
            raise OperationError(str(exc)) from None
        if self.env is not None:
            self.ctx.report(None, "env", "info", message=f"env {self.env.path}: {len(self.env.names)} name(s) "
                            f"({', '.join(self.env.names)}), digest {self.env.digest}", phase="plan")

    def read_request(self) -> ReadRequest:
        """What phase 1 reads on each host, under this deploy's lock."""
        return ReadRequest(operation="deploy", build_id=self.base_id, create=True, python=True, manifest=True,
                           shared_files=self.config.shared.files, env_digest=self.env.digest if self.env else None)

    def read_and_lock(self) -> None:
        """Phase 1: every host's state, read under this deploy's lock."""
        self.fleet = read_states(self.ctx, self.hosts, self.read_request())

    def current(self) -> dict:
        """Each host's current build as read (None when unknown)."""
        return self.fleet.current()

    def make_plan(self) -> bool:
        """Phase 2: decide; on a refusal release every lock taken and stop (nothing changed)."""
        local = wheelhouses.builder_for(self.hosts, self.fleet.states)
        self.plan = rules.plan_deploy(self.fleet.states, self.info.requirements_sha256, self.base_id,
                                      {h.name: h.python for h in self.hosts}, ignore_locks=False,
                                      roots={h.name: h.root for h in self.hosts},
                                      wheels={h.name: h.wheels for h in self.hosts}, local=local)
        self.local = local
        if self.ctx.stop.is_set():
            release(self.ctx, self.fleet.locked)
            describe_abort(self.result, self.hosts, self.current(), "interrupted", interrupted=True)
            return False
        if not self.plan.ok:
            release(self.ctx, self.fleet.locked)
            refusal_outcomes(self.result, self.plan.refusals, self.hosts, self.current(), self.fleet.states)
            return False
        self.result.build_id = self.plan.build_id
        hosts = ", ".join(h.name for h in self.hosts) if len(self.hosts) <= 8 else f"{len(self.hosts)} hosts"
        self.ctx.report(None, "deploy", "info", message=f"build {self.plan.build_id} on {hosts}", phase="plan")
        return True

    def part(self, host: HostConfig) -> rules.HostDeploy:
        """The plan's part for ``host``."""
        return next(p for p in self.plan.hosts if p.host == host.name)

    def meta_for(self, host: HostConfig) -> dict:
        """The new build's metadata on ``host`` (its venv key depends on the host's Python)."""
        if host.name not in self.metas:
            part = self.part(host)
            self.metas[host.name] = new_meta(
                self.plan.build_id, project=self.config.project, created_at=iso(),
                requirements_sha256=self.info.requirements_sha256, python_version=part.python_version or "0.0",
                venv=part.venv, deployed_by=self.ctx.identity, git_commit=self.info.git_commit,
                git_dirty=self.info.git_dirty, git_ref=self.info.git_ref, git_subject=self.info.git_subject,
                source=str(self.info.origin or self.info.path))
            if self.env is not None:
                self.metas[host.name]["env_digest"] = self.env.digest  # `diff` can say "env changed", no value
        return self.metas[host.name]

    def prepare(self) -> bool:
        """Phase 3 on every host, at most ``parallel`` at once; any failure or interrupt aborts the deploy."""
        failure = self.wheels.build()
        if failure or self.ctx.stop.is_set():  # Ctrl-C reaches the local pip too: say interrupted, not failed
            stopped = self.ctx.stop.is_set()
            self.abort("interrupted" if stopped else failure, remove=False, interrupted=stopped)
            return False
        outcomes = self.ctx.runner.map(self.hosts, self.preparing.prepare_host)
        failed = []
        for host in self.hosts:
            outcome = outcomes[host.name]
            value = outcome.value if outcome.ok else self.ctx.failure(host, outcome.error, self.current()[host.name])
            if value.status != "ok":
                self.result.outcomes[host.name] = value
                failed.append(host.name)
        if failed or self.ctx.stop.is_set():
            interrupted = self.ctx.stop.is_set() and not any(
                self.result.outcomes[n].status in ("failed", "unreachable") for n in failed)
            self.abort(f"prepare failed on {', '.join(failed)}" if failed and not interrupted else "interrupted",
                       interrupted=interrupted)
            return False
        return True

    def before_activate(self) -> bool:
        """Phase 4: hooks inside the new build on the hosts (``once`` ones on one host); a failure aborts."""
        previous = self.current()
        failures = run_before_activate(self.ctx, self.hosts, self.plan.build_id, previous, self.info.git_commit)
        # A hook stopped by the interrupt did not fail: the deploy was interrupted (exit 130, recorded so).
        bad = {name: why for name, why in failures.items() if why and why != INTERRUPTED}
        if bad or self.ctx.stop.is_set():
            for name, why in bad.items():
                self.result.outcomes[name] = HostOutcome(name, "failed", f"{why}; nothing switched anywhere",
                                                         current=previous.get(name))
            self.abort(f"before_activate failed on {', '.join(bad)}" if bad else "interrupted",
                       interrupted=not bad and self.ctx.stop.is_set())
            return False
        return True

    def activation_setup(self) -> tuple[list, float, float, dict[str, rules.HostPrune]]:
        """The waves, the pause between them, how long a host waits for the verdict, and what each host prunes
        once committed: the same for the deploy and its dry run."""
        waves, pause = waves_for(self.ctx.config, self.hosts, self.rollout)
        timeout = verdict_timeout(self.hosts, waves, pause, "after_activate", self.health)
        after = self.states_after()
        protect = rules.default_rollback_target(after).target
        prunes = {}
        for host in self.hosts:
            current = self.fleet.states[host.name].current  # type: ignore[union-attr]
            prunes[host.name] = rules.plan_prune(after[host.name], self.config.keep_builds,
                                                 protect=[protect, current], current=self.plan.build_id)
        return waves, pause, timeout, prunes

    def activate(self) -> None:
        """Phase 5: waves, then commit or switch every host back."""
        waves, pause, timeout, prunes = self.activation_setup()
        items = []
        alone = len(self.hosts) == 1
        for host in self.hosts:
            state: HostState = self.fleet.states[host.name]  # type: ignore[assignment]
            prune = prunes[host.name]
            # Built as the host's wave starts: its records count the operation's time up to then.
            script = (lambda elapsed, host=host, state=state, prune=prune:
                      self.activate_script_for(host, state, timeout, prune, decided=alone, elapsed=elapsed))
            items.append(HostActivation(
                host, self.plan.build_id, state.current, script,
                self.switch_back_for(host, state), activation_deadline(host, "after_activate", self.health),
                decided=alone))
        outcome = Activation(self.ctx, items, waves, pause).run()
        for item in outcome.items.values():
            self.result.outcomes[item.host.name] = outcome_of(item, "deploy", outcome.committed, outcome.interrupted)
        if not outcome.committed:
            # Hosts of later waves never switched: their (complete) build is kept, marked failed.
            never = [i.host for i in outcome.items.values() if not i.started]
            if never:
                metas = {h.name: meta_json(failed_meta(complete_meta(self.meta_for(h)),
                                                       "not activated: the deploy failed on another host"))
                         for h in never}
                ending = self.ctx.ending(None if outcome.interrupted else
                                         "not activated: the deploy failed on another host")
                history = {h.name: self.ctx.record_json("deploy", h.name, **{"from": self.current().get(h.name),
                                                                             "to": self.plan.build_id}, **ending)
                           for h in never}
                release(self.ctx, never, self.plan.build_id, meta=metas, history=history)
            for item in outcome.items.values():
                if outcome.interrupted and self.result.outcomes[item.host.name].status == "aborted":
                    self.result.outcomes[item.host.name].status = "interrupted"
            run_local_hooks(self.ctx, "local_failed", self.local_env())
        else:
            run_local_hooks(self.ctx, "local_after", self.local_env())

    def abort(self, why: str, remove: bool = True, interrupted: bool = False) -> None:
        """Nothing was switched: remove the partial build and release the lock on every host we locked."""
        build = self.plan.build_id if (self.plan and remove) else None
        history = self.abort_records(why, interrupted) if self.plan is not None and self.plan.ok else None
        released = release(self.ctx, self.fleet.locked, build, history=history)
        for host in self.fleet.locked:
            if not released.get(host.name, FinishReport()).released:
                outcome = self.result.outcomes.get(host.name) or HostOutcome(host.name, "failed", why)
                self.result.outcomes[host.name] = outcome
                outcome.left = [f"the deploy lock (token {self.ctx.token})"] + (
                    [f"the partial build {build}"] if build else [])
                clear = f"releasetui --headless unlock --host {host.name}" + (
                    f" && releasetui --headless prune --host {host.name}" if build else "")
                outcome.message += f"; left on the host: {' and '.join(outcome.left)}; clear with: {clear}"
        describe_abort(self.result, self.hosts, self.current(), why, interrupted)
        if self.plan is not None and self.plan.ok:
            run_local_hooks(self.ctx, "local_failed", self.local_env())

    def abort_records(self, why: str, interrupted: bool) -> dict[str, str]:
        """Each locked host's history record of an abort: its real ``from``, and ``interrupted`` (by whom) or
        ``failed`` in the host's own words, else ``aborted`` with the reason (another host failed)."""
        current, records = self.current(), {}
        for host in self.fleet.locked:
            own = self.result.outcomes.get(host.name)
            if interrupted:
                ending = self.ctx.ending()
            elif own is not None and own.status in ("failed", "unreachable"):
                ending = {"outcome": "failed", "reason": clean_line(own.message, 400)}
            else:
                ending = self.ctx.ending(why)
            records[host.name] = self.ctx.record_json(
                "deploy", host.name, **{"from": current.get(host.name), "to": self.plan.build_id}, **ending)
        return records

    # --- what the phases hand to the hosts ---------------------------------------------------------

    def states_after(self) -> dict[str, HostState]:
        """Each host's state as it will be once the new build is complete there (for prune's plan)."""
        after = {}
        for host in self.hosts:
            state: HostState = self.fleet.states[host.name]  # type: ignore[assignment]
            meta = self.meta_for(host)
            new = BuildInfo(self.plan.build_id, complete=True, venv=meta["venv"],
                            requirements_sha256=meta["requirements_sha256"])
            after[host.name] = HostState(host.name, current=self.plan.build_id, builds=[*state.builds, new],
                                         venvs=sorted({*state.venvs, meta["venv"]}), lock=state.lock,
                                         wheelhouses=list(state.wheelhouses),
                                         python_version=state.python_version, locked_by_us=state.locked_by_us,
                                         moves=state.moves)
        return after

    def activate_script_for(self, host: HostConfig, state: HostState, verdict: float, prune,
                            decided: bool = False, elapsed: float = 0.0) -> str:
        """The activate script for ``host`` (``decided``: it is the only host, and commits once healthy;
        ``elapsed``: seconds the deploy has run when it starts)."""
        meta = complete_meta(self.meta_for(host))
        build_id, previous = self.plan.build_id, state.current
        records = ActivateRecords(
            history=self.ctx.record("deploy", host.name, timed=False, **{"from": previous, "to": build_id}),
            failed_meta=meta_json(failed_meta(meta, "its restart, a hook or its health check failed after the switch")),
            back_meta=meta_json(failed_meta(meta, "switched back: the deploy failed on another host")),
            switch_failed_meta=meta_json(failed_meta(meta, "its switch failed: current could not be replaced")))
        return commands.activate_script(
            host.root, self.ctx.token, target=build_id, previous=previous, restart=host.restart,
            restart_timeout=host.restart_timeout, python=host.python,
            health=host.healthcheck if self.health else None,
            hooks=[h for h in host.hooks if h.name == "after_activate"],
            hook_env=hook_env(self.ctx, "deploy", build_id, previous, self.info.git_commit, host=host),
            records=records, verdict_timeout=verdict, prune_builds=prune.remove, prune_venvs=prune.remove_venvs,
            decided=decided, elapsed=elapsed, prune_wheelhouses=prune.remove_wheelhouses)

    def switch_back_for(self, host: HostConfig, state: HostState):
        """The outside switch-back for ``host`` (built only when needed)."""
        def build(elapsed: float) -> str:
            meta = complete_meta(self.meta_for(host))
            return commands.switch_back_script(
                host.root, self.ctx.token, target=self.plan.build_id, previous=state.current, restart=host.restart,
                restart_timeout=host.restart_timeout,
                history=self.ctx.record("deploy", host.name, timed=False,
                                        **{"from": state.current, "to": self.plan.build_id}),
                meta=meta_json(failed_meta(meta, "switched back: the deploy was stopped")),
                elapsed=elapsed, **outside_ending(self.ctx))
        return build

    def local_env(self) -> dict:
        """The environment of the local hooks."""
        previous = {s.current for s in self.fleet.states.values() if isinstance(s, HostState)}
        return hook_env(self.ctx, "deploy", self.plan.build_id if self.plan else self.base_id,
                        " ".join(sorted(p for p in previous if p)), self.info.git_commit if self.info else None,
                        hosts=self.hosts)

    def describe(self) -> None:
        """``--dry-run``: every script the deploy would run, per host, and what it would send; nothing changes."""
        waves, pause, timeout, prunes = self.activation_setup()
        describe_hooks(self.ctx, self.hosts, "deploy", self.plan.build_id)
        for host in self.hosts:
            state: HostState = self.fleet.states[host.name]  # type: ignore[assignment]
            recorder = self.ctx.executor(host)
            link_from = state.current if state.current_manifest is not None else None
            send = self.manifest.to_send(state.current_manifest if link_from else None)
            recorder.record("lock", read_lock_script(self.ctx, host, self.read_request()))
            recorder.record("ship", f"send {len(send)} of {self.manifest.file_count()} files"
                            + (f", link the rest from builds/{link_from}" if link_from else " (nothing to link from)"))
            # The script as it will run, its stream (base64 in a here-document when small) shown by its size only.
            script, _ = self.preparing.prepare_command(host, self.preparing.payload_for(state, send, link_from), shown=lambda text: (
                f"[the stream of {len(send)} file(s): {len(text)} characters of base64]\n"))
            recorder.record("prepare", script)
            if self.part(host).wheels == "ship":
                recorder.record("wheels", self.wheels.dry_run_line(self.part(host)))
            if self.part(host).wheels_built_on == host.name and not wheelhouses.cached(
                    self.part(host).venv, self.wheels.host_cache(host.name)):
                recorder.record("wheelhouse", self.wheels.script_for(host, self.part(host).venv))
            prune = prunes[host.name]
            # The elapsed time a real wave's script carries is known only when the wave starts: 0 here, so
            # hosts whose scripts are otherwise the same print as one.
            recorder.record("activate", self.activate_script_for(host, state, timeout, prune,
                                                                 decided=len(self.hosts) == 1, elapsed=0.0))
            self.result.outcomes[host.name] = HostOutcome(
                host.name, "ok", f"would switch {state.current or 'none'} -> {self.plan.build_id}"
                + ("" if not prune.remove else f", then prune {' '.join(prune.remove)}"),
                current=state.current, previous=state.current, build_id=self.plan.build_id)
        if len(waves) > 1:
            self.ctx.report(None, "rollout", "dry-run", message="waves: " + " | ".join(", ".join(w) for w in waves))

    def finish(self, started: float) -> OperationResult:
        """Duration and round trips per host."""
        return self.ctx.finish(self.result, started, self.hosts)


__all__ = ["Deploy", "RolloutChoice", "describe_abort", "refusal_outcomes", "waves_for", "verdict_timeout",
           "activation_deadline", "HostUnreachable", "ScriptTimeout"]
