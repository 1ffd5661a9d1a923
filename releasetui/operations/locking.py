"""Phase 1: read every targeted host, taking the fleet's lock so exactly one operation proceeds.

Taking N locks in parallel lets two racing operations each win half and both
give up.  So the first targeted host in sorted order is the gate: its lock is
taken first, and only then the others' (in parallel, their connections
already open).  Two operations against the same hosts meet at the gate:
exactly one proceeds, the other exits 4, or with ``lock_wait`` backs off and
tries again until the holder is done.  Overlapping subsets (``--host``) can
still meet elsewhere; the loser releases what it took, and the retry's
jitter separates them.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Optional, Sequence, Union

from .. import clock, commands, rules
from ..commands import FinishReport, LockRequest
from ..config import HostConfig
from ..models import HostState
from ..runner import sleep_unless
from .context import OperationContext
from .source import pid_alive

States = dict[str, Union[HostState, BaseException]]


@dataclass
class ReadRequest:
    """What phase 1 reads on each host besides builds and lock."""

    operation: Optional[str] = None      # take the lock for this operation (None: a read-only listing)
    build_id: Optional[str] = None       # what the lock says it is for
    create: bool = False                 # make the layout (a deploy to a new host)
    python: bool = False                 # report the host's interpreter version
    manifest: bool = False               # include the current build's manifest
    shared_files: Sequence[str] = ()
    env_digest: Optional[str] = None     # report whether envs/<digest> is there


@dataclass
class FleetRead:
    """Phase 1's result: every host's state, and which locks this operation now holds."""

    states: States = field(default_factory=dict)
    locked: list = field(default_factory=list)   # HostConfig of the hosts whose lock we hold
    waited: float = 0.0

    def current(self) -> dict[str, Optional[str]]:
        """Each host's current build as read (None when unknown)."""
        return {name: (s.current if isinstance(s, HostState) else None) for name, s in self.states.items()}

    def conflicts(self) -> list[str]:
        """Hosts whose lock another operation holds."""
        return [name for name, s in self.states.items()
                if isinstance(s, HostState) and s.lock is not None and not s.locked_by_us]


def read_lock_script(ctx: OperationContext, host: HostConfig, request: ReadRequest, lock: bool = True) -> str:
    """Phase 1's script for ``host``: read its state and (``lock``) take this operation's lock."""
    return commands.read_script(
        host.root, lock=LockRequest(ctx.token, ctx.lock_json(request.operation, request.build_id)) if lock else None,
        create=request.create and lock, python=host.python if request.python else None,
        manifest=request.manifest, shared_files=request.shared_files, env_digest=request.env_digest,
        platform=request.python and host.wheels == "ship")  # what a shipped wheelhouse must match


def read_one(ctx: OperationContext, host: HostConfig, request: ReadRequest, lock: bool,
             waiting: bool = False) -> HostState:
    """Connect and read one host (taking its lock when ``lock``): one round trip.

    ``waiting``: a lock held by another operation is not reported as a failed step (the wait says it once).
    """
    ctx.connect(host)
    started = time.monotonic()
    result = ctx.executor(host).run(read_lock_script(ctx, host, request, lock and not ctx.dry_run), mutating=False,
                                    timeout=ctx.config.script_timeout)
    if not result.ok:
        raise RuntimeError(f"reading the host failed: {result.error_text()}")
    state = commands.parse_read(host.name, result.stdout, ctx.token if lock else None)
    if state.lock is not None and not state.locked_by_us:
        state.lock.stale = rules.lock_is_stale(state.lock, ctx.machine, pid_alive)
    if lock and not ctx.dry_run:
        if state.locked_by_us:
            ctx.report(host.name, "lock", "ok", time.monotonic() - started,
                       f"current {state.current or state.serving() or 'none'}" + (f", {python_words(host, state)}"
                                                               if request.python else ""), "lock")
        elif state.lock is not None and not waiting:
            ctx.report(host.name, "lock", "failed", time.monotonic() - started,
                       f"locked by another operation: {state.lock.describe()}", "lock")
    return state


def python_words(host: HostConfig, state: HostState) -> str:
    """``python 3.11.7``, or that the configured interpreter does not run there."""
    if state.python_version:
        return f"python {state.python_version}"
    return f"python: {host.python!r} does not run there"


def read_states(ctx: OperationContext, hosts: Sequence[HostConfig], request: ReadRequest) -> FleetRead:
    """Read every host; with ``request.operation`` take the fleet's lock (gate first), waiting per ``lock_wait``."""
    hosts = list(hosts)
    if request.operation is None or ctx.dry_run:
        outcomes = ctx.runner.map(hosts, lambda h: read_one(ctx, h, request, lock=False))
        return FleetRead({name: o.value if o.ok else o.error for name, o in outcomes.items()})
    deadline = time.monotonic() + ctx.lock_wait
    started = time.monotonic()
    attempt = 0
    said: Optional[tuple] = None  # the holder the wait was last announced for
    while True:
        attempt += 1
        fleet = _lock_once(ctx, hosts, request, waiting=ctx.lock_wait > 0)
        conflicts = fleet.conflicts()
        if not conflicts or ctx.stop.is_set():
            fleet.waited = time.monotonic() - started
            return fleet
        release(ctx, fleet.locked)
        fleet.locked = []
        remaining = deadline - time.monotonic()
        holder = fleet.states[conflicts[0]]
        if remaining <= 0:
            fleet.waited = time.monotonic() - started
            if said:  # the refusal that follows says who holds it; this says the wait is over
                ctx.report(None, "lock", "info", message=f"gave up waiting after {fleet.waited:.0f}s "
                           f"(--lock-wait {ctx.lock_wait:g})", phase="lock")
            return fleet
        # Said once per holder (a new one may take the lock while we wait); every poll in between is silent.
        if said != (conflicts[0], holder.lock.describe()):
            said = (conflicts[0], holder.lock.describe())
            until = (clock.now() + timedelta(seconds=remaining)).astimezone().strftime("%H:%M:%S")
            ctx.report(None, "lock", "info", message=f"waiting for {conflicts[0]}'s lock, held by "
                       f"{holder.lock.describe()}, until {until} (--lock-wait {ctx.lock_wait:g})", phase="lock")
        # Exponential back-off with jitter: two waiting pipelines must not keep meeting at the same instant.
        pause = min(remaining, random.uniform(0.5, 1.5) * min(10.0, 0.5 * 2 ** min(attempt, 5)))
        if sleep_unless(ctx.stop, pause):
            fleet.waited = time.monotonic() - started
            return fleet


def _lock_once(ctx: OperationContext, hosts: list[HostConfig], request: ReadRequest, waiting: bool) -> FleetRead:
    gate = min(hosts, key=lambda h: h.name)
    gate_done = threading.Event()
    gate_won = threading.Event()

    def work(host: HostConfig) -> HostState:
        if host is gate:
            try:
                state = read_one(ctx, host, request, lock=True, waiting=waiting)
                if state.locked_by_us:
                    gate_won.set()
                return state
            finally:
                gate_done.set()
        ctx.connect(host)  # in parallel with the gate's lock: the connection is ready when it is won
        gate_done.wait()
        # Lost gate: only read (so the refusal can say what is live), never lock.
        return read_one(ctx, host, request, lock=gate_won.is_set() and not ctx.stop.is_set(), waiting=waiting)

    ordered = [gate] + [h for h in hosts if h is not gate]
    outcomes = ctx.runner.map(ordered, work)
    fleet = FleetRead()
    for host in hosts:
        outcome = outcomes[host.name]
        fleet.states[host.name] = outcome.value if outcome.ok else outcome.error
        if outcome.ok and outcome.value.locked_by_us:
            fleet.locked.append(host)
    return fleet


def release(ctx: OperationContext, hosts: Sequence[HostConfig], remove_build: Optional[str] = None,
            meta: Optional[dict] = None, history: Optional[dict] = None) -> dict[str, FinishReport]:
    """Release this operation's lock on ``hosts`` (abort: stop its scripts, remove its partial build); never interrupted.

    ``meta`` (host name -> metadata JSON) keeps the build and marks it instead
    of removing it; ``history`` (host name -> record JSON) is appended.
    """
    def one(host: HostConfig) -> FinishReport:
        started = time.monotonic()
        script = commands.release_script(host.root, ctx.token, remove_build,
                                         (history or {}).get(host.name), (meta or {}).get(host.name))
        result = ctx.executor(host).run(script, on_line=ctx.step_lines(host.name, "abort"),
                                        timeout=ctx.config.script_timeout)
        parsed = commands.parse_finish(result.stdout)
        if remove_build or meta:
            what = "lock released" if parsed.released else "lock NOT released (no longer ours)"
            if parsed.removed_build:
                what += f", partial build {remove_build} removed"
            elif meta and host.name in meta:
                what += f", build {remove_build} kept, marked failed"
            ctx.report(host.name, "cleanup", "ok" if parsed.released else "failed", time.monotonic() - started,
                       what, "abort")
        return parsed

    if ctx.dry_run:
        return {}
    outcomes = ctx.runner.map(hosts, one)
    return {name: (o.value if o.ok else FinishReport()) for name, o in outcomes.items()}
