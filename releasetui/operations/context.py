"""What every operation carries: config, reporter, connections, runner, interrupts, its token.

Operations know nothing of terminals: they call ``report(Event)`` from
worker threads and return an :class:`~releasetui.models.OperationResult`.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from typing import Callable, Mapping, Optional, Sequence

from .. import commands
from ..commands.base import parse_step
from ..config import Config, HostConfig
from ..executors import (CommandResult, Executor, ExecutorPool, HostUnreachable, RecordingExecutor, RemoteProcess,
                         ScriptTimeout)
from ..models import Event, HostOutcome, OperationResult
from ..runner import HostRunner, Interrupts
from ..text import clean_line
from .source import ci_job_url, deployer_identity, iso, this_machine

Reporter = Callable[[Event], None]


class OperationContext:
    """One operation's shared means: see the module docstring."""

    def __init__(self, config: Config, report: Optional[Reporter] = None, pool: Optional[ExecutorPool] = None,
                 dry_run: bool = False, interrupts: Optional[Interrupts] = None, parallel: Optional[int] = None,
                 message: Optional[str] = None, lock_wait: Optional[float] = None):
        self.config = config
        self.report_event = report or (lambda event: None)
        self.pool = pool if pool is not None else ExecutorPool(connect_timeout=config.connect_timeout)
        self._owns_pool = pool is None
        self.dry_run = dry_run
        self.interrupts = interrupts or Interrupts()
        self.runner = HostRunner(parallel or config.parallel)
        self.message = message
        self.lock_wait = config.lock_wait if lock_wait is None else lock_wait
        self.token = secrets.token_hex(8)
        self.identity = deployer_identity()
        self.ci_url = ci_job_url()
        self.machine = this_machine()
        self.started = iso()
        self._t0 = time.monotonic()  # the same instant as `started`: every record's duration counts from here
        self.recorded: list = []
        self._baseline: dict[str, int] = {}
        self._connected: set[str] = set()
        self._lock = threading.Lock()

    # --- plumbing ------------------------------------------------------------------------

    @property
    def stop(self) -> threading.Event:
        """Set by the first interrupt."""
        return self.interrupts.stop

    def close(self) -> None:
        """Close connections this context opened itself."""
        if self._owns_pool:
            self.pool.close()

    def report(self, host: Optional[str], step: str, status: str, duration: Optional[float] = None,
               message: str = "", phase: Optional[str] = None) -> None:
        """Send one event to the reporter."""
        self.report_event(Event(host, step, status, duration, message, phase=phase))

    def executor(self, host: HostConfig) -> Executor:
        """The host's executor, wrapped for recording under ``--dry-run``."""
        executor = self.pool.get(host)
        with self._lock:
            self._baseline.setdefault(host.name, executor.round_trips)
        if self.dry_run:
            def record(command) -> None:
                self.recorded.append(command)
                self.report(command.host, command.kind, "dry-run", message=command.text)
            return RecordingExecutor(executor, record)
        return executor

    def round_trips(self, host: HostConfig) -> int:
        """Scripts this operation has run on the host (the baseline is its first use: a pool is shared)."""
        executor = self.pool.get(host)
        return executor.round_trips - self._baseline.get(host.name, executor.round_trips)

    def step_lines(self, host: str, phase: Optional[str] = None) -> Callable[[str], None]:
        """A line handler that turns the scripts' ``@@step`` lines into events as they stream in."""
        def handle(line: str) -> None:
            step = parse_step(line)
            if step is not None:
                self.report(host, clean_line(step.name, 30), clean_line(step.status, 10), step.seconds,
                            clean_line(step.message, 400), phase)
        return handle

    def connect(self, host: HostConfig) -> None:
        """Connect (once per operation reported), saying how long it took."""
        started = time.monotonic()
        self.executor(host).connect()
        if host.transport == "ssh" and host.name not in self._connected:
            self._connected.add(host.name)
            self.report(host.name, "connect", "ok", time.monotonic() - started, host.label, "lock")

    def run(self, host: HostConfig, script: str, *, phase: str, stdin=None, timeout: Optional[float] = None,
            interruptible: bool = True, mutating: bool = True) -> CommandResult:
        """Run one script on the host, its steps reported as events.

        ``interruptible`` scripts are abandoned when the operation is stopped
        (their cleanup stops what they left running); the others (switching,
        releasing) are short and always run to their end.
        """
        return self.executor(host).run(script, on_line=self.step_lines(host.name, phase), stdin=stdin,
                                       mutating=mutating, stop=self.stop if interruptible else None,
                                       timeout=timeout or self.config.script_timeout)

    def finish_script(self, host: HostConfig, name: str, script: str) -> Optional[CommandResult]:
        """Run a short finishing script that must run to its end; in a dry run only record it (None)."""
        if self.dry_run:
            self.executor(host).record(name, script)
            return None
        return self.run(host, script, phase="finish", interruptible=False)

    def start(self, host: HostConfig, script: str, *, phase: str) -> RemoteProcess:
        """Start a script that will be talked to while it runs (activation)."""
        return self.executor(host).start(script, on_line=self.step_lines(host.name, phase))

    # --- what the hosts are told ------------------------------------------------------------------

    def lock_json(self, operation: str, build_id: Optional[str] = None) -> str:
        """The lock's info.json: who, where, since, what, pid, CI job, message, token.

        A manual ``lock`` records no pid: no process holds it, so it is never STALE.
        """
        pid = None if operation == "lock" else os.getpid()
        return json.dumps({"who": self.identity, "where": self.machine, "since": iso(), "operation": operation,
                           "build_id": build_id, "pid": pid, "token": self.token, "ci_url": self.ci_url,
                           "message": self.message, "stage": self.config.stage}, sort_keys=True)

    def elapsed(self) -> float:
        """Seconds since this operation started (monotonic: no clock change moves it)."""
        return time.monotonic() - self._t0

    def record(self, event: str, host: str, timed: bool = True, **fields) -> dict:
        """A history record (as a dict): what happened, when, by whom, from where, in which operation.

        ``when`` is when releasetui wrote it (the operator's clock), ``started`` when the operation began, and
        ``duration`` (``timed``) the seconds since then, to the millisecond (:meth:`elapsed`).  A record a
        host's script completes leaves it out (``timed=False``): the script adds its own, counted up to the
        moment it records (:func:`releasetui.commands.activate.record_lines`).
        """
        record = {"event": event, "when": iso(), "started": self.started, "who": self.identity,
                  "where": self.machine, "host": host, "op": self.token}
        if timed:
            record["duration"] = round(self.elapsed(), 3)
        if self.ci_url:
            record["ci_url"] = self.ci_url
        if self.config.stage:
            record["stage"] = self.config.stage
        if self.message:
            record["message"] = self.message
        record.update(fields)
        return record

    def record_json(self, event: str, host: str, **fields) -> str:
        """:meth:`record` as one JSON line."""
        return json.dumps(self.record(event, host, **fields), sort_keys=True)

    def ending(self, failure: Optional[str] = None) -> dict:
        """A record's outcome fields when the operation stopped before its end: ``interrupted`` (by whom) when
        it was asked to stop and no ``failure`` of its own came first, else ``aborted`` with the failure's words."""
        if failure is None and self.interrupts.pressed:
            return {"outcome": "interrupted", "reason": self.interrupts.reason, "interrupted_by": self.interrupts.by}
        return {"outcome": "aborted", "reason": clean_line(failure or "aborted", 400)}

    # --- outcomes ------------------------------------------------------------------------------------

    @staticmethod
    def failure(host: HostConfig, exc: BaseException, current: Optional[str] = None) -> HostOutcome:
        """The outcome of an exception on a host."""
        if isinstance(exc, HostUnreachable):
            return HostOutcome(host.name, "unreachable", clean_line(str(exc), 300), current=current)
        if isinstance(exc, ScriptTimeout):
            return HostOutcome(host.name, "failed", f"timed out: {exc}", current=current)
        return HostOutcome(host.name, "failed", clean_line(f"{type(exc).__name__}: {exc}", 300), current=current)

    def each_host(self, result: OperationResult, hosts: Sequence[HostConfig], work: Callable[[HostConfig], HostOutcome],
                  current: Optional[Mapping[str, Optional[str]]] = None, limit: Optional[int] = None) -> None:
        """Run ``work`` on every host at once; each host's outcome (an exception becomes its failure) into ``result``."""
        by_name = {host.name: host for host in hosts}
        for name, outcome in self.runner.map(hosts, work, limit=limit).items():
            result.outcomes[name] = outcome.value if outcome.ok else \
                self.failure(by_name[name], outcome.error, (current or {}).get(name))

    def finish(self, result: OperationResult, started: float, hosts) -> OperationResult:
        """Stamp the duration and each host's round trips."""
        result.duration = time.monotonic() - started
        result.stage = self.config.stage
        # Hosts in config order, whatever order their outcomes were decided in.
        order = {host.name: i for i, host in enumerate(hosts)}
        result.outcomes = dict(sorted(result.outcomes.items(), key=lambda item: order.get(item[0], len(order))))
        for host in hosts:
            outcome = result.outcomes.get(host.name)
            if outcome is not None:
                outcome.round_trips = self.round_trips(host)
        return result


__all__ = ["OperationContext", "Reporter", "commands"]
