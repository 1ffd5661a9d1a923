"""Deploy, rollback, builds, prune, logs and unlock, host by host, reporting typed events.

Operations know nothing of terminals: they call ``report(Event)`` from worker
threads (one per host) and return an :class:`OperationResult`.  The headless
CLI prints those events; the TUI posts them as messages.
"""

from __future__ import annotations

import dataclasses
import getpass
import hashlib
import json
import os
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Optional

from . import commands
from .config import Config, HostConfig
from .executors import (CommandResult, Executor, ExecutorPool, HostUnreachable, RecordedCommand,
                        RecordingExecutor)
from .models import (BUILD_ID_PATTERN, BuildInfo, Event, HostOutcome, HostState, LockInfo,
                     OperationResult, check_build_id)

Reporter = Callable[[Event], None]


class OperationError(Exception):
    """An operation cannot start (bad source, bad build id...): one line for the user, exit 2."""


@dataclass
class SourceInfo:
    """What is about to be shipped: its path, requirements hash and git state."""

    path: Path
    requirements_sha256: str
    git_commit: Optional[str]
    git_dirty: Optional[bool]


def inspect_source(source: Path, requirements: str) -> SourceInfo:
    """Hash the requirements file and read the git commit of ``source``; OperationError if unusable."""
    if not source.is_dir():
        raise OperationError(f"source directory {source} does not exist")
    req = source / requirements
    try:
        digest = hashlib.sha256(req.read_bytes()).hexdigest()
    except OSError as exc:
        raise OperationError(f"requirements file {req} cannot be read: {exc.strerror or exc}") from None
    commit, dirty = None, None
    try:
        inside = subprocess.run(["git", "-C", str(source), "rev-parse", "--is-inside-work-tree"],
                                capture_output=True, text=True, timeout=10)
        if inside.returncode == 0 and inside.stdout.strip() == "true":
            head = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
            if head.returncode == 0:
                commit = head.stdout.strip()
                status = subprocess.run(["git", "-C", str(source), "status", "--porcelain", "--", "."],
                                        capture_output=True, text=True, timeout=30)
                dirty = bool(status.stdout.strip())
    except (OSError, subprocess.TimeoutExpired):
        pass
    return SourceInfo(source, digest, commit, dirty)


def deployer_identity(environ: Optional[dict] = None) -> str:
    """Who deploys: CircleCI's user and build number when set, else ``$USER@hostname``."""
    env = os.environ if environ is None else environ
    if env.get("CIRCLE_USERNAME") or env.get("CIRCLE_BUILD_NUM"):
        user = env.get("CIRCLE_USERNAME") or "circleci"
        build = env.get("CIRCLE_BUILD_NUM")
        return f"{user} (CircleCI build {build})" if build else f"{user} (CircleCI)"
    user = env.get("USER") or env.get("LOGNAME")
    if not user:
        try:
            user = getpass.getuser()
        except Exception:
            user = "unknown"
    return f"{user}@{socket.gethostname()}"


def utc_now() -> datetime:
    """The current time in UTC (a seam for tests)."""
    return datetime.now(timezone.utc)


def new_build_id(now: Optional[datetime] = None) -> str:
    """The build id for a deploy starting at ``now``: ``%Y%m%d%H%M%S`` in UTC."""
    return (now or utc_now()).astimezone(timezone.utc).strftime("%Y%m%d%H%M%S")


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
    raise OperationError(f"more than 99 builds started in the second {base}")


def parse_state(host: str, stdout: str) -> HostState:
    """Turn the output of :func:`commands.state_script` into a :class:`HostState`."""
    state = HostState(name=host)
    for line in stdout.splitlines():
        parts = line.split("\t")
        tag = parts[0]
        if tag == "NOROOT":
            state.initialized = False
        elif tag == "CURRENT" and len(parts) > 1:
            state.current = parts[1] if BUILD_ID_PATTERN.fullmatch(parts[1]) else None
        elif tag in ("LOCK", "LOCKED") and len(parts) > 1:
            state.lock = LockInfo.from_json(parts[1])
        elif tag == "PYTHON" and len(parts) > 1:
            state.python_version = parts[1] or None
        elif tag == "VENV" and len(parts) > 1:
            state.venvs.append(parts[1])
        elif tag == "BUILD" and len(parts) >= 4:
            state.builds.append(_parse_build(parts[1], parts[2], "\t".join(parts[3:])))
    state.builds.sort(key=lambda b: b.id)
    for build in state.builds:
        build.current = build.id == state.current
    return state


def _parse_build(build_id: str, env_target: str, meta_text: str) -> BuildInfo:
    try:
        meta = json.loads(meta_text) if meta_text.strip() else {}
    except ValueError:
        meta = {}
    if not isinstance(meta, dict):
        meta = {}
    venv = None
    if env_target.startswith("../../venvs/"):
        venv = env_target[len("../../venvs/"):].rstrip("/")
    return BuildInfo(
        id=build_id,
        complete=meta.get("complete") is True,
        failed=meta.get("failed") is True,
        created_at=meta.get("created_at"),
        requirements_sha256=meta.get("requirements_sha256"),
        git_commit=meta.get("git_commit"),
        git_dirty=meta.get("git_dirty"),
        deployed_by=meta.get("deployed_by"),
        python_version=meta.get("python_version"),
        venv=venv or meta.get("venv"),
        failure=meta.get("failure"),
    )


def plan_prune(state: HostState, keep: int, current: Optional[str] = None) -> tuple[list[str], list[str]]:
    """Which builds and venvs a prune removes on this host.

    Keeps the ``keep`` newest complete builds, current and the build before
    it (the default rollback target); removes every other build, incomplete
    ones included, and every venv no remaining build uses.
    """
    current = current if current is not None else state.current
    complete = sorted(b.id for b in state.builds if b.complete)
    kept = set(complete[-keep:]) if keep > 0 else set()
    if current:
        kept.add(current)
        older = [b.id for b in state.builds if b.complete and not b.failed and b.id < current]
        if older:
            kept.add(max(older))
    remove = [b.id for b in state.builds if b.id not in kept]
    used = {b.venv for b in state.builds if b.id in kept and b.venv}
    venvs = [v for v in state.venvs if v not in used]
    return remove, venvs


def _iso(now: Optional[datetime] = None) -> str:
    return (now or utc_now()).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Operations:
    """The release operations over a set of hosts.

    ``report`` receives every :class:`Event` (from worker threads); ``pool``
    keeps connections open across operations; ``dry_run`` records instead of
    changing anything.
    """

    def __init__(self, config: Config, report: Optional[Reporter] = None, pool: Optional[ExecutorPool] = None,
                 dry_run: bool = False):
        self.config = config
        self.report_event = report or (lambda event: None)
        self.pool = pool or ExecutorPool()
        self._owns_pool = pool is None
        self.dry_run = dry_run
        self.recorded: list[RecordedCommand] = []
        self.stop = threading.Event()
        # Each host's counters when this object first used it: a shared pool's counts keep growing.
        self._baseline: dict[str, tuple[int, int]] = {}

    # --- plumbing -----------------------------------------------------------

    def close(self) -> None:
        """Close connections this object opened itself."""
        if self._owns_pool:
            self.pool.close()

    def report(self, host: Optional[str], step: str, status: str, duration: Optional[float] = None, message: str = "") -> None:
        """Send one event to the reporter."""
        self.report_event(Event(host, step, status, duration, message))

    def _pooled(self, host: HostConfig) -> Executor:
        """The pool's executor for ``host``, noting its counters the first time this object uses it."""
        executor = self.pool.get(host)
        self._baseline.setdefault(host.name, (executor.round_trips, executor.rsync_connections))
        return executor

    def executor(self, host: HostConfig) -> Executor:
        """The host's executor, wrapped for recording under ``--dry-run``."""
        executor = self._pooled(host)
        if self.dry_run:
            def record(command: RecordedCommand) -> None:
                self.recorded.append(command)
                self.report(command.host, command.kind, "dry-run", message=command.text)
            return RecordingExecutor(executor, record)
        return executor

    def _step_lines(self, host: str) -> Callable[[str], None]:
        """A line handler that turns the scripts' ``@@step`` lines into events as they stream in."""
        def handle(line: str) -> None:
            if not line.startswith(commands.STEP_PREFIX):
                return
            parts = line.split("\t")
            if len(parts) < 5:
                return
            _, step, status, millis, message = parts[:5]
            duration = int(millis) / 1000 if millis.isdigit() else None
            self.report(host, step, status, duration, message.strip())
        return handle

    def _parallel(self, hosts: Iterable[HostConfig], work: Callable[[HostConfig], object],
                  interruptible: bool = True) -> dict[str, object]:
        """Run ``work`` for each host in its own thread; exceptions are returned, not raised.

        Ctrl-C sets ``stop`` and re-raises; when not ``interruptible`` (the switch, cleanup) it is
        noted and the work finishes on every host first, so no host is left half-switched or locked.
        """
        hosts = list(hosts)
        results: dict[str, object] = {}
        if not hosts:
            return results

        def guarded(host: HostConfig) -> object:
            try:
                return work(host)
            except Exception as exc:  # each host's failure is reported on its own
                return exc

        with ThreadPoolExecutor(max_workers=max(1, len(hosts)), thread_name_prefix="releasetui-host") as pool:
            futures = {host.name: pool.submit(guarded, host) for host in hosts}
            for name, future in futures.items():
                while name not in results:
                    try:
                        results[name] = future.result(timeout=0.2)
                    except FutureTimeout:
                        continue
                    except KeyboardInterrupt:
                        if interruptible:
                            self.stop.set()
                            raise
                        self.report(None, "interrupt", "info", message="finishing what is under way on every host first")
        return results

    def _collect(self, result: OperationResult, hosts: list[HostConfig], work: Callable[[HostConfig], object],
                 interruptible: bool = True) -> None:
        """Run ``work`` on every host in parallel and record each host's outcome (an exception becomes one)."""
        outcomes = self._parallel(hosts, work, interruptible)
        for host in hosts:
            outcome = outcomes[host.name]
            result.outcomes[host.name] = outcome if isinstance(outcome, HostOutcome) else self._failure(host, outcome)

    def _run(self, host: HostConfig, script: str, step: str, mutating: bool = True,
             interruptible: bool = True) -> CommandResult:
        """Connect if needed and run one script, reporting its remote steps.

        Scripts that switch or clean up are not ``interruptible``: they are short, and
        killing one halfway would leave a host locked or half-switched.
        """
        executor = self.executor(host)
        return executor.run(script, on_line=self._step_lines(host.name), mutating=mutating,
                            stop=self.stop if interruptible else None)

    def _connect(self, host: HostConfig) -> None:
        started = time.monotonic()
        self.executor(host).connect()
        if host.transport == "ssh":
            self.report(host.name, "connect", "ok", time.monotonic() - started, host.label)

    def round_trips(self, host: HostConfig) -> tuple[int, int]:
        """(remote scripts, rsync transfers) this object has made to this host."""
        executor = self._pooled(host)
        base_scripts, base_rsyncs = self._baseline[host.name]
        return executor.round_trips - base_scripts, executor.rsync_connections - base_rsyncs

    def _lock_json(self, operation: str, build_id: Optional[str] = None) -> str:
        return json.dumps({"who": deployer_identity(), "where": socket.gethostname(), "since": _iso(),
                           "operation": operation, "build_id": build_id, "pid": os.getpid()}, sort_keys=True)

    def _history(self, event: str, host: HostConfig, **fields) -> str:
        return json.dumps({"event": event, "when": _iso(), "who": deployer_identity(), "host": host.name, **fields},
                          sort_keys=True)

    @staticmethod
    def _failure(host: HostConfig, exc: Exception) -> HostOutcome:
        if isinstance(exc, HostUnreachable):
            return HostOutcome(host.name, "unreachable", str(exc))
        return HostOutcome(host.name, "failed", f"{type(exc).__name__}: {exc}")

    def _finish(self, result: OperationResult, started: float, hosts: Iterable[HostConfig]) -> OperationResult:
        result.duration = time.monotonic() - started
        for host in hosts:
            outcome = result.outcomes.get(host.name)
            if outcome is not None:
                outcome.round_trips = sum(self.round_trips(host))
        return result

    # --- builds ---------------------------------------------------------------

    def states(self, hosts: Iterable[HostConfig]) -> dict[str, object]:
        """Each host's :class:`HostState` (one read-only round trip per host), or the exception it raised."""
        return self._parallel(hosts, self.read_state)

    def read_state(self, host: HostConfig) -> HostState:
        """One host's :class:`HostState`, in one read-only round trip (never recorded, even in a dry run)."""
        result = self._pooled(host).run(commands.state_script(host.root), mutating=False, stop=self.stop)
        if not result.ok:
            raise RuntimeError(result.error_text())
        return parse_state(host.name, result.stdout)

    # --- deploy ---------------------------------------------------------------

    def deploy(self, hosts: Iterable[HostConfig], source: Optional[Path] = None, build_id: Optional[str] = None) -> OperationResult:
        """Ship ``source`` to every host as a new build; switch only once every host has it complete."""
        hosts = list(hosts)
        started = time.monotonic()
        info = inspect_source(source or self.config.source, self.config.requirements)
        if self.config.excludes_file is not None and not self.config.excludes_file.is_file():
            raise OperationError(f"{self.config.path}: excludes_file: no such file: {self.config.excludes_file}")
        base_id = check_build_id(build_id) if build_id else new_build_id()
        result = OperationResult("deploy", build_id=base_id, dry_run=self.dry_run)
        self.report(None, "deploy", "info", message=f"source {info.path} (requirements {info.requirements_sha256[:12]}"
                    + (f", git {info.git_commit[:10]}{' dirty' if info.git_dirty else ''}" if info.git_commit else "") + ")")
        lock_json = self._lock_json("deploy", base_id)
        states: dict[str, HostState] = {}
        locked_hosts: list[HostConfig] = []
        state_lock = threading.Lock()

        def prepare(host: HostConfig) -> HostOutcome:
            self._connect(host)
            t0 = time.monotonic()
            self.report(host.name, "lock", "started")
            if self.dry_run:
                self._run(host, commands.prepare_script(host.root, lock_json, self.config.python), "lock")
                res = self.executor(host).run(commands.state_script(host.root, self.config.python), mutating=False)
            else:
                # Not interruptible: killed between mkdir and our bookkeeping, the lock would be left behind.
                res = self._run(host, commands.prepare_script(host.root, lock_json, self.config.python), "lock",
                                interruptible=False)
            state = parse_state(host.name, res.stdout)
            if res.exit_code == commands.LOCKED_EXIT:
                lock = state.lock or LockInfo()
                self.report(host.name, "lock", "failed", time.monotonic() - t0, f"locked: {lock.describe()}")
                return HostOutcome(host.name, "locked", f"locked by another operation: {lock.describe()}",
                                   current=state.current)
            if not res.ok:
                self.report(host.name, "lock", "failed", time.monotonic() - t0, res.error_text())
                return HostOutcome(host.name, "failed", res.error_text(), current=state.current)
            if not self.dry_run and not state.python_version:
                with state_lock:
                    locked_hosts.append(host)
                self.report(host.name, "lock", "failed", time.monotonic() - t0,
                            f"{self.config.python} does not run on the host")
                return HostOutcome(host.name, "failed", f"interpreter {self.config.python!r} not found on the host",
                                   current=state.current)
            with state_lock:
                states[host.name] = state
                locked_hosts.append(host)
            self.report(host.name, "lock", "ok", time.monotonic() - t0,
                        f"current {state.current or 'none'}, python {state.python_version or '?'}")
            return HostOutcome(host.name, "ok", current=state.current)

        try:
            self._collect(result, hosts, prepare)
        except KeyboardInterrupt:
            return self._abort(result, hosts, locked_hosts, None, started, states, interrupted=True)
        if self.stop.is_set():  # stopped (the TUI's quit) while the locks were being taken
            return self._abort(result, hosts, locked_hosts, None, started, states, interrupted=True)
        if not result.ok:
            return self._abort(result, hosts, locked_hosts, None, started, states)

        final_id = unique_build_id(base_id, (b.id for s in states.values() for b in s.builds))
        result.build_id = final_id
        self.report(None, "deploy", "info", message=f"build {final_id} on {', '.join(h.name for h in hosts)}")
        deployed_by = deployer_identity()
        created_at = _iso()

        def build_meta(state: HostState, **changes) -> dict:
            """The new build's metadata on that host (its venv key depends on the host's Python)."""
            python_version = state.python_version or "0.0"
            return {"id": final_id, "project": self.config.project, "created_at": created_at,
                    "requirements_sha256": info.requirements_sha256, "git_commit": info.git_commit,
                    "git_dirty": info.git_dirty, "deployed_by": deployed_by, "python_version": python_version,
                    "venv": commands.venv_key(info.requirements_sha256, python_version),
                    "complete": False, "failed": False, **changes}

        def build(host: HostConfig) -> HostOutcome:
            state = states[host.name]
            meta = build_meta(state)
            key = meta["venv"]
            t0 = time.monotonic()
            self.report(host.name, "rsync", "started")
            rs = self.executor(host).rsync(info.path, final_id, state.current, self.config.excludes_file)
            if not rs.ok:
                self.report(host.name, "rsync", "failed", time.monotonic() - t0, rs.error_text())
                return HostOutcome(host.name, "failed", f"rsync failed: {rs.error_text()}", current=state.current)
            link = f"linked against {state.current}" if state.current else "full copy"
            self.report(host.name, "rsync", "skipped" if self.dry_run else "ok", time.monotonic() - t0,
                        f"dry run: would be {link}" if self.dry_run else link)
            if self.stop.is_set():
                raise KeyboardInterrupt
            t0 = time.monotonic()
            self.report(host.name, "install", "started")
            script = commands.install_script(host.root, final_id, self.config.requirements, key, self.config.python,
                                             self.config.pip_args, commands.meta_json(meta),
                                             commands.meta_json({**meta, "complete": True}))
            res = self._run(host, script, "install")
            if res.stopped:
                raise KeyboardInterrupt
            if not res.ok:
                self.report(host.name, "install", "failed", time.monotonic() - t0, res.error_text())
                return HostOutcome(host.name, "failed", f"install failed: {res.error_text()}", current=state.current)
            self.report(host.name, "install", "skipped" if self.dry_run else "ok", time.monotonic() - t0,
                        f"dry run: would make build {final_id}" if self.dry_run else f"build {final_id} complete")
            state.builds.append(BuildInfo(id=final_id, complete=True, venv=key))
            if key not in state.venvs:
                state.venvs.append(key)
            return HostOutcome(host.name, "ok", build_id=final_id, current=state.current, previous=state.current)

        try:
            self._collect(result, hosts, build)
        except KeyboardInterrupt:
            return self._abort(result, hosts, locked_hosts, final_id, started, states, interrupted=True)
        if not result.ok:
            return self._abort(result, hosts, locked_hosts, final_id, started, states)

        meta_failed = {}

        def activate(host: HostConfig) -> HostOutcome:
            state = states[host.name]
            previous = state.current
            prune_builds, prune_venvs = plan_prune(state, self.config.keep_builds, current=final_id)
            failed_meta = commands.meta_json(build_meta(
                state, complete=True, failed=True, failure="restart or health check failed after the switch"))
            meta_failed[host.name] = failed_meta
            health_history = self._history("health-failed", host, build=final_id, back_to=previous)
            script = commands.activate_script(
                host.root, final_id, previous, self.config.restart,
                self._history("deploy", host, **{"from": previous, "to": final_id}),
                python=self.config.python, health=self.config.healthcheck, failed_meta=failed_meta,
                health_failed_history=health_history, prune_builds=prune_builds, prune_venvs=prune_venvs)
            res = self._run(host, script, "activate", interruptible=False)
            removed = []
            for line in res.stdout.splitlines():
                if line.startswith("REMOVED\t"):
                    removed = line.split("\t", 1)[1].split()
            if "UNHEALTHY" in res.stdout.split():
                what = "its health check" if self.config.healthcheck else "its restart"
                if previous is None:
                    return HostOutcome(host.name, "failed", f"build {final_id} failed {what}; no earlier build to "
                                       "switch back to: it stays current, marked failed", current=final_id,
                                       build_id=final_id)
                return HostOutcome(host.name, "failed", f"build {final_id} failed {what}; switched back to {previous}",
                                   current=previous, previous=previous, build_id=final_id)
            if not res.ok or (not self.dry_run and "SWITCHED" not in res.stdout.split()):
                switched = "current -> builds/" in res.stdout
                return HostOutcome(host.name, "failed", f"activate failed: {res.error_text()}",
                                   current=final_id if switched else previous, previous=previous, build_id=final_id)
            if self.dry_run:
                return HostOutcome(host.name, "ok", f"would switch {previous or 'none'} -> {final_id}",
                                   current=previous, previous=previous, build_id=final_id)
            return HostOutcome(host.name, "ok", f"live: {final_id}", current=final_id, previous=previous,
                               build_id=final_id, removed=removed)

        # Not interruptible: every host finishes its switch (and, if it must, its switch-back).
        self._collect(result, hosts, activate, interruptible=False)
        if not result.ok:
            self._compensate(result, hosts, final_id, meta_failed)
        return self._finish(result, started, hosts)

    def _compensate(self, result: OperationResult, hosts: list[HostConfig], build_id: str,
                    failed_metas: Optional[dict] = None) -> None:
        """A host failed after others switched: take those back too, so every host serves the same build.

        The build is marked failed there as well: left "good" on these hosts, it
        would become their default rollback target after the next deploy.
        """
        def take_back(host: HostConfig) -> None:
            outcome = result.outcomes[host.name]
            mark = None
            if failed_metas and failed_metas.get(host.name):
                meta = json.loads(failed_metas[host.name])
                meta["failure"] = "switched back: the deploy failed on another host"
                mark = (build_id, commands.meta_json(meta))
            res = self._run(host, commands.rollback_script(host.root, outcome.previous, self.config.restart,
                                                          self._lock_json("rollback", outcome.previous),
                                                          deployer_identity(), _iso(), host.name,
                                                          mark_failed=mark), "rollback", interruptible=False)
            if res.ok:
                outcome.status = "aborted"
                outcome.current = outcome.previous
                outcome.message = f"switched back to {outcome.previous}: another host failed"
            else:
                outcome.status = "failed"
                outcome.message = f"could not switch back to {outcome.previous}: {res.error_text()}"

        switched = [h for h in hosts if result.outcomes[h.name].status == "ok" and result.outcomes[h.name].previous]
        self._parallel(switched, take_back, interruptible=False)

    def _abort(self, result: OperationResult, hosts: list[HostConfig], locked_hosts: list[HostConfig],
               build_id: Optional[str], started: float, states: dict[str, HostState],
               interrupted: bool = False) -> OperationResult:
        """Nothing was switched: remove the partial build and release the lock on every host we locked.

        Runs to the end even after an interrupt (the stop event is left set for the caller to see).
        """
        failed = [name for name, o in result.outcomes.items() if o.status != "ok"]
        for host in hosts:
            outcome = result.outcomes.get(host.name)
            current = states[host.name].current if host.name in states else (outcome.current if outcome else None)
            if interrupted and (outcome is None or outcome.status == "ok"):
                result.outcomes[host.name] = HostOutcome(host.name, "interrupted",
                                                         "interrupted before the switch; current unchanged", current=current)
            elif outcome is None or outcome.status == "ok":
                result.outcomes[host.name] = HostOutcome(
                    host.name, "aborted", f"not switched: {', '.join(failed)} failed; current unchanged", current=current)
            elif outcome.current is None:
                outcome.current = current

        def release(host: HostConfig) -> None:
            t0 = time.monotonic()
            res = self._run(host, commands.release_lock_script(host.root, build_id), "unlock", interruptible=False)
            self.report(host.name, "cleanup", "ok" if res.ok else "failed", time.monotonic() - t0,
                        "lock released" + (f", partial build {build_id} removed" if build_id else ""))

        self._parallel(locked_hosts, release, interruptible=False)
        return self._finish(result, started, hosts)

    # --- rollback -------------------------------------------------------------

    def rollback(self, hosts: Iterable[HostConfig], build_id: Optional[str] = None) -> OperationResult:
        """Switch each host to ``build_id`` (or the build before current) and restart: one round trip per host."""
        hosts = list(hosts)
        started = time.monotonic()
        if build_id is not None:
            check_build_id(build_id)
        result = OperationResult("rollback", build_id=build_id, dry_run=self.dry_run)

        def roll(host: HostConfig) -> HostOutcome:
            self._connect(host)
            if self.dry_run:
                state = self.read_state(host)
                target = build_id or state.previous_build()
                self._run(host, commands.rollback_script(host.root, build_id, self.config.restart,
                                                         self._lock_json("rollback", build_id), deployer_identity(), _iso(), host.name), "rollback")
                build = state.build(target) if target else None
                if build is None or not build.complete:
                    choices = ", ".join(state.complete_ids()) or "none"
                    return HostOutcome(host.name, "failed", f"would refuse: {target or 'no earlier build'} is not a complete build (could choose: {choices})")
                return HostOutcome(host.name, "ok", f"would switch {state.current} -> {target}", current=state.current,
                                   previous=state.current, build_id=target)
            res = self._run(host, commands.rollback_script(host.root, build_id, self.config.restart,
                                                           self._lock_json("rollback", build_id), deployer_identity(), _iso(), host.name), "rollback")
            fields = {}
            for line in res.stdout.splitlines():
                parts = line.split("\t", 1)
                if len(parts) == 2 and parts[0] in ("FROM", "TO", "CANDIDATES", "LOCKED"):
                    fields[parts[0]] = parts[1].strip()
            previous = fields.get("FROM") or None
            if res.exit_code == commands.LOCKED_EXIT:
                lock = LockInfo.from_json(fields.get("LOCKED", ""))
                return HostOutcome(host.name, "locked", f"locked by another operation: {lock.describe()}", current=previous)
            if res.exit_code == commands.REFUSED_EXIT:
                choices = fields.get("CANDIDATES", "").split()
                reason = res.stderr.strip().splitlines()[-1] if res.stderr.strip() else "refused"
                return HostOutcome(host.name, "failed",
                                   f"{reason}; complete builds you can choose: {', '.join(choices) or 'none'}",
                                   current=previous)
            target = fields.get("TO")
            if not res.ok:
                switched = "current -> builds/" in res.stdout
                return HostOutcome(host.name, "failed", f"rollback failed: {res.error_text()}",
                                   current=target if switched else previous, previous=previous, build_id=target)
            return HostOutcome(host.name, "ok", f"live: {target} (was {previous or 'none'})", current=target,
                               previous=previous, build_id=target)

        self._collect(result, hosts, roll)
        return self._finish(result, started, hosts)

    # --- prune ----------------------------------------------------------------

    def prune(self, hosts: Iterable[HostConfig], keep: Optional[int] = None) -> OperationResult:
        """Remove old complete builds beyond ``keep``, every incomplete build and unused venvs (two round trips)."""
        hosts = list(hosts)
        started = time.monotonic()
        keep = self.config.keep_builds if keep is None else keep
        if keep < 1:
            raise OperationError("--keep must be at least 1")
        result = OperationResult("prune", dry_run=self.dry_run)

        def prune_host(host: HostConfig) -> HostOutcome:
            self._connect(host)
            state = self.read_state(host)
            if state.lock is not None:
                return HostOutcome(host.name, "locked", f"locked by another operation: {state.lock.describe()}",
                                   current=state.current)
            builds, venvs = plan_prune(state, keep)
            planned = builds + [f"venv:{v}" for v in venvs]
            self.report(host.name, "plan", "info", message=("would remove: " if self.dry_run else "removing: ")
                        + (" ".join(planned) or "nothing"))
            if not planned:
                return HostOutcome(host.name, "ok", "nothing to prune", current=state.current)
            keep_ids = [state.current] if state.current else []
            if state.previous_build():
                keep_ids.append(state.previous_build())
            res = self._run(host, commands.prune_script(host.root, builds, venvs, self._lock_json("prune"),
                                                        self._history("prune", host, removed=planned), keep_ids), "prune")
            if res.exit_code == commands.LOCKED_EXIT:
                lock = parse_state(host.name, res.stdout).lock or LockInfo()
                return HostOutcome(host.name, "locked", f"locked by another operation: {lock.describe()}", current=state.current)
            if not res.ok:
                return HostOutcome(host.name, "failed", f"prune failed: {res.error_text()}", current=state.current)
            removed = planned
            for line in res.stdout.splitlines():
                if line.startswith("REMOVED\t"):
                    removed = line.split("\t", 1)[1].split()
            verb = "would remove" if self.dry_run else "removed"
            return HostOutcome(host.name, "ok", f"{verb} {len(removed)}: {' '.join(removed) or 'nothing'}",
                               current=state.current, removed=removed)

        self._collect(result, hosts, prune_host)
        return self._finish(result, started, hosts)

    # --- unlock ---------------------------------------------------------------

    def unlock(self, hosts: Iterable[HostConfig]) -> OperationResult:
        """Remove a stale deploy lock on each host and record who held it in history."""
        hosts = list(hosts)
        started = time.monotonic()
        result = OperationResult("unlock", dry_run=self.dry_run)

        def unlock_host(host: HostConfig) -> HostOutcome:
            self._connect(host)
            # Read first (one more round trip; unlock is rare) so history says whose lock was removed.
            state = self.read_state(host)
            if state.lock is None:
                return HostOutcome(host.name, "ok", "was not locked", current=state.current)
            history = self._history("unlock", host, lock=dataclasses.asdict(state.lock))
            res = self._run(host, commands.unlock_script(host.root, history), "unlock")
            if not res.ok:
                return HostOutcome(host.name, "failed", f"unlock failed: {res.error_text()}")
            if "NOTLOCKED" in res.stdout.split():
                return HostOutcome(host.name, "ok", "was not locked")
            lock = parse_state(host.name, res.stdout).lock or LockInfo()
            return HostOutcome(host.name, "ok", f"removed lock held for {lock.describe()}")

        self._collect(result, hosts, unlock_host)
        return self._finish(result, started, hosts)

    # --- logs -----------------------------------------------------------------

    def logs(self, hosts: Iterable[HostConfig], lines: int = 50, follow: bool = False,
             stop: Optional[threading.Event] = None) -> OperationResult:
        """Tail the configured log files on each host; each line is a ``log`` event labelled with its host.

        With ``follow`` it streams until ``stop`` is set (or the caller is interrupted).
        """
        hosts = list(hosts)
        started = time.monotonic()
        if stop is not None:
            self.stop = stop
        result = OperationResult("logs")

        def tail(host: HostConfig) -> HostOutcome:
            self._connect(host)
            handler = lambda line: self.report(host.name, "log", "log", message=line)
            res = self.executor(host).run(commands.logs_script(host.root, self.config.logs, lines, follow),
                                          on_line=handler, mutating=False, stop=self.stop, keep_stdin=follow)
            if res.stopped or res.ok:
                return HostOutcome(host.name, "ok", "stopped" if res.stopped else "")
            return HostOutcome(host.name, "failed", res.error_text())

        self._collect(result, hosts, tail)
        return self._finish(result, started, hosts)
