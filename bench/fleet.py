#!/usr/bin/env python3
"""Fleet benchmark: deploy, rollback and builds on N hosts at 0 and 60 ms round trip, and where the client's CPU goes.

Run from the repository root, as root (it creates the user ``releasetui-bench``
with /bin/sh as its shell, so no login-shell start-up hides the engine's cost):

    python bench/fleet.py                                   # --hosts 1,20,50 --rtt 0,60 --runs 3
    python bench/fleet.py --hosts 1,20 --rtt 0,60 --runs 3
    python bench/fleet.py --hosts 20,50 --rtt 0 --profile-only          # just the profile
    python bench/fleet.py --hosts 1,20 --rtt 0 --runs 1 --json out.json  # quick, with the raw numbers

The world: ONE OpenSSH sshd on 127.0.0.1; each host has its own project root
and its own port on a latency proxy (bench/latency_proxy.py, in its own
process) in front of that sshd, so each host has its own TCP and SSH connection
as separate machines would.  ``--rtt`` sets the round trip (one-way delay =
rtt/2; the proxy also charges the TCP handshake: 1.5 round trips before the
server sees a connection, ``--no-handshake`` to skip it).  A 200-file app whose
requirements (one tiny local wheel) never change after the first deploy,
``restart: 'true'``, nothing beyond 127.0.0.1.  Before measuring, every host
gets its first deploy (a venv each: pip runs once per host, in batches).

Per (N, RTT): one warm-up deploy, then ``--runs`` times: deploy (a new build:
waits for a new second, changes app.py), rollback (default target), roll
forward again (not timed), builds (``Operations.states``).  Every measured
operation is a fresh ``Operations`` with a fresh ``ExecutorPool``, i.e. what
one CLI run pays, connection included, timed in-process with
``time.perf_counter``.  Then one CLI deploy and one CLI builds
(``python -m releasetui --headless ... --json``, a subprocess) so process
start-up and imports show.

The table: per RTT, N and operation the median / min / max, ``x/1`` (the
median over the smallest fleet's median at the same RTT), CPU seconds of the client
(this process), its children (rsync and the rsync relay), the server side
(sshd and everything it ran, measured once the sessions have exited), the
proxy, and how busy the whole machine was (``machine``: busy CPU time over
wall time x cores) and how much of that was not this benchmark (``others``:
the machine is shared; a WARNING line says when others took over 10%, and
``--quiet SHARE`` (default 0.25) waits before each run until the machine is
less busy than that, at most ``--quiet-timeout`` s).  ``trips/host`` is what
``Operations.round_trips(host)`` counts, as ``scripts+transfers``.  Then
"round trips of latency paid" = (median at RTT - median at 0 ms) / RTT.

``--profile`` (or ``--profile-only``) deploys to ``--profile-hosts`` (20,50) at
0 ms: once plain (CPU vs wall), once under cProfile with a per-thread CPU
timer in every thread (not just the main one), and once sampled by py-spy in
``--gil`` mode (only when ``py-spy`` is installed: ``pip install py-spy``),
which says what fraction of the wall time some thread held the GIL and what it
ran.  Both are grouped by what the code is: key exchange and auth, packetizing
(framing, cipher, MAC), the rsync relay's byte copying, subprocess spawns,
Fabric/Invoke, imports, releasetui itself, threads and waiting.  cProfile's
shares overweight code made of many small Python calls (its per-call cost);
py-spy's do not.  Also: the CPU of one relay interpreter and one rsync spawn,
of one SSH connection and of one more command (client and server side), of
paramiko loading the known_hosts file (each connection does, whole), and a
verdict: the machine is the bound when all its cores are busy, the client's
GIL when this process alone uses a core's worth.  ``--profile`` runs after the
table; ``--profile-only`` skips the table.

``--json PATH`` writes every sample.  A failed operation prints the host and why
and exits 1 (its time is never reported); Ctrl-C exits 130.  sshd, the proxy,
the temporary directory (roots, keys, the user's TMPDIR and pip cache) are
removed on every exit.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import pwd
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (REPO, ensure_user, host_python, make_app, make_wheelhouse, session_env,  # noqa: E402
                          touch_app, use_this_checkout, wait_for_new_second, write_config)

use_this_checkout()

from bench.latency_proxy import LatencyProxyProcess  # noqa: E402
from releasetui.config import load_config  # noqa: E402
from releasetui.executors import ExecutorPool  # noqa: E402
from releasetui.operations import Operations  # noqa: E402
from tests.support.sshd import SSHServer, make_client_key, start_sshd  # noqa: E402

OPS = ("deploy", "rollback", "builds")
CLOCK_TICK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1
PRIME_BATCH = 10  # hosts whose first deploy (a venv each) runs at once: bounded, pip is CPU-bound


class BenchFailure(Exception):
    """An operation failed: the benchmark stops and reports nothing for it."""


# --- measuring ---------------------------------------------------------------


def machine_busy() -> float:
    """CPU-seconds the whole machine has been busy (all cores, everyone's processes) since boot."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / CLOCK_TICK


def process_tree_cpu(pid: int) -> float:
    """user + sys of ``pid`` and of its children it has waited for (what exited sessions cost)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / CLOCK_TICK


def has_children(pid: int) -> bool:
    try:
        return bool(Path(f"/proc/{pid}/task/{pid}/children").read_text().split())
    except OSError:
        return False


def wait_quiet(threshold: float, timeout: float, log: Callable[[str], None]) -> float:
    """Wait (up to ``timeout`` s) until the machine is less than ``threshold`` busy over half a second.

    The machine is shared: someone else's test run would be measured as ours.  Returns the last share seen.
    """
    deadline = time.monotonic() + timeout
    said = False
    while True:
        busy0, t0 = machine_busy(), time.monotonic()
        time.sleep(0.5)
        share = (machine_busy() - busy0) / ((time.monotonic() - t0) * CORES)
        if share < threshold or threshold >= 1:
            return share
        if time.monotonic() > deadline:
            log(f"  the machine is still {share:.0%} busy with other work after {timeout:g} s: measuring anyway")
            return share
        if not said:
            log(f"  waiting for the machine to quieten ({share:.0%} busy with other work)")
            said = True


def own_cpu() -> tuple[float, float]:
    """(this process, its waited-for children): user + sys seconds."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


@dataclass
class Sample:
    """One measured operation."""

    op: str
    hosts: int
    rtt_ms: float
    wall: float
    cpu_self: float
    cpu_children: float
    cpu_server: float
    cpu_proxy: float
    machine_busy: float  # CPU-seconds over the operation, all cores
    round_trips: dict[str, Any] = field(default_factory=dict)


def others_share(sample: dict) -> float:
    """The share of all cores busy with work that is not this benchmark's (other people's), during one sample."""
    ours = sample["cpu_self"] + sample["cpu_children"] + sample["cpu_server"] + sample["cpu_proxy"]
    return max(0.0, sample["machine_busy"] - ours) / (sample["wall"] * CORES) if sample["wall"] > 0 else 0.0


def trips_text(value: Any) -> str:
    """``Operations.round_trips(host)`` as text: (scripts, transfers) -> '3+1'; anything else as it is."""
    if isinstance(value, (tuple, list)):
        return "+".join(str(v) for v in value)
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def describe_failure(op: str, result: Any, hosts: list) -> Optional[str]:
    """Which hosts failed and why, or None when the operation succeeded everywhere."""
    if op == "builds":
        bad = [f"{name}: {type(value).__name__}: {value}" for name, value in result.items()
               if isinstance(value, BaseException)]
        missing = [h.name for h in hosts if h.name not in result]
        bad += [f"{name}: no answer" for name in missing]
        return "; ".join(bad) or None
    outcomes = getattr(result, "outcomes", {})
    bad = [f"{name}: {o.status}: {o.message}" for name, o in outcomes.items() if o.status != "ok"]
    if not bad and not getattr(result, "ok", True):
        bad = [f"status {getattr(result, 'status', '?')}"]
    return "; ".join(bad) or None


# --- the world ---------------------------------------------------------------


class Fleet:
    """One sshd, the bench user, N project roots, the app and a wheelhouse, all under one temp dir."""

    def __init__(self, size: int, user_name: str, files: int):
        self.size = size
        self.base = Path(tempfile.mkdtemp(prefix="releasetui-fleet-"))
        self.base.chmod(0o755)  # the bench user reaches its roots, authorized_keys and the wheelhouse through it
        self.server: Optional[SSHServer] = None
        self.proxy: Optional[LatencyProxyProcess] = None
        self.rtt_ms: Optional[float] = None
        try:
            self._build(user_name, files)
        except BaseException:
            self.close()
            raise

    def _build(self, user_name: str, files: int) -> None:
        size = self.size
        self.user = ensure_user(user_name) if os.geteuid() == 0 else pwd.getpwnam(user_name)
        self.key = make_client_key(self.base)
        self.app = make_app(self.base / "app", files)
        self.wheelhouse = make_wheelhouse(self.base / "wheelhouse")
        self.python = host_python(self.user.pw_name)
        self.roots = []
        for i in range(size):
            root = self.base / "roots" / f"web{i:02d}"
            root.mkdir(parents=True)
            os.chown(root, self.user.pw_uid, self.user.pw_gid)
            self.roots.append(root)
        self.server = start_sshd(self.base, 0, (self.base / "id_ed25519.pub").read_text(),
                                 session_env(self.base / "session"))

    @property
    def sshd_pid(self) -> int:
        return self.server.process.pid

    def config(self, n: int, name: str, direct: bool = False):
        """The hosts.yml for the first ``n`` hosts: through the current proxy, or ``direct`` to sshd."""
        if direct:
            ports = [self.server.port] * n
        else:
            ports = self.proxy.ports[:n]
        known = self.base / f"known_hosts-{name}"
        key_part = self.server.known_hosts_line.split(" ", 1)[1]
        known.write_text("".join(f"[127.0.0.1]:{p} {key_part}\n" for p in sorted(set(ports))))
        path = write_config(self.base / f"hosts-{name}.yml", app=self.app, python=self.python,
                            wheelhouse=self.wheelhouse, user=self.user.pw_name, key=self.key, known_hosts=known,
                            hosts=[(f"web{i:02d}", ports[i], self.roots[i]) for i in range(n)])
        return load_config(path)

    def use_rtt(self, rtt_ms: float, handshake: bool) -> None:
        """Put a proxy with this round trip in front of sshd (one port per host), replacing the last one."""
        self.stop_proxy()
        self.proxy = LatencyProxyProcess([self.server.port] * self.size, rtt_ms / 2000, handshake=handshake).start()
        self.rtt_ms = rtt_ms

    def stop_proxy(self) -> None:
        if self.proxy is not None:
            self.proxy.stop()
            self.proxy = None

    def settle(self, timeout: float = 10.0) -> bool:
        """Wait until sshd has no sessions left (so their CPU is counted and the next run starts quiet)."""
        deadline = time.monotonic() + timeout
        while has_children(self.sshd_pid):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self) -> None:
        self.stop_proxy()
        if self.server is not None:
            self.server.stop()
            self.server = None
        shutil.rmtree(self.base, ignore_errors=True)


class Runner:
    """Runs operations on a fleet, each with a fresh Operations + ExecutorPool, and measures them."""

    def __init__(self, fleet: Fleet, quiet: float = 1.0, quiet_timeout: float = 0.0,
                 log: Callable[[str], None] = print):
        self.fleet = fleet
        self.quiet = quiet
        self.quiet_timeout = quiet_timeout
        self.log = log

    def wait_quiet(self) -> None:
        """Before a measured run: let other people's work (and our last sessions) die down first."""
        if self.quiet < 1:
            wait_quiet(self.quiet, self.quiet_timeout, self.log)

    def op(self, op: str, config, hosts: list, build_id: Optional[str] = None, record: bool = True,
           around: Optional[Callable[[Callable[[], Any]], Any]] = None, rollout=None) -> tuple[Any, Optional[Sample]]:
        """Run ``op`` once; raise :class:`BenchFailure` naming the failed hosts.  ``around`` wraps the call."""
        fleet = self.fleet
        pool = ExecutorPool()
        ops = Operations(config, pool=pool)

        def call() -> Any:
            if op == "deploy":
                return ops.deploy(hosts, rollout=rollout)
            if op == "rollback":
                return ops.rollback(hosts, build_id)
            return ops.states(hosts)

        server0 = process_tree_cpu(fleet.sshd_pid)
        proxy0 = fleet.proxy.cpu_seconds() if fleet.proxy else 0.0
        self0, kids0 = own_cpu()
        busy0 = machine_busy()
        started = time.perf_counter()
        try:
            try:
                result = around(call) if around else call()
            except Exception as exc:  # an error outside any one host (bad source, config): still a failure
                raise BenchFailure(f"{op} raised {type(exc).__name__}: {exc}") from exc
            wall = time.perf_counter() - started
            busy1 = machine_busy()
            self1, kids1 = own_cpu()
            proxy1 = fleet.proxy.cpu_seconds() if fleet.proxy else 0.0
            trips = {h.name: ops.round_trips(h) for h in hosts}
        finally:
            ops.close()
            pool.close()
        fleet.settle()
        server1 = process_tree_cpu(fleet.sshd_pid)
        if any(getattr(o, "status", "") == "interrupted" for o in getattr(result, "outcomes", {}).values()):
            raise KeyboardInterrupt  # the engine took Ctrl-C itself (and cleaned up the hosts): stop here too
        failure = describe_failure(op, result, hosts)
        if failure:
            where = f"{len(hosts)} host(s) at {fleet.rtt_ms:g} ms" if fleet.rtt_ms is not None else f"{len(hosts)} host(s)"
            raise BenchFailure(f"{op} on {where} failed: {failure}")
        sample = None
        if record:
            sample = Sample(op, len(hosts), fleet.rtt_ms or 0.0, wall, self1 - self0, kids1 - kids0,
                            server1 - server0, proxy1 - proxy0, busy1 - busy0,
                            {name: list(v) if isinstance(v, tuple) else v for name, v in trips.items()})
        return result, sample

    def deploy(self, config, hosts: list, **kwargs) -> tuple[Any, Optional[Sample]]:
        """A deploy of a new build (a new second for its id, one changed file)."""
        wait_for_new_second()
        touch_app(self.fleet.app)
        return self.op("deploy", config, hosts, **kwargs)

    def cli(self, config, args: list[str]) -> dict:
        """``python -m releasetui --headless ... --json`` as a subprocess: wall time, CPU, exit code, outcome."""
        argv = [sys.executable, "-m", "releasetui", "--config", str(config.path), "--headless", *args, "--json"]
        kids0 = own_cpu()[1]
        started = time.perf_counter()
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, cwd=REPO)
        wall = time.perf_counter() - started
        cpu = own_cpu()[1] - kids0
        self.fleet.settle()
        if proc.returncode != 0:
            tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:]
            detail = "; ".join(tail)
            try:  # deploy/rollback end with a summary object naming each host's outcome
                summary = json.loads(proc.stdout.strip().splitlines()[-1])
                detail = "; ".join(f"{h.get('host')}: {h.get('status')}: {h.get('message')}"
                                   for h in summary.get("hosts", []) if h.get("status") != "ok") or detail
            except (ValueError, IndexError, AttributeError):
                pass
            raise BenchFailure(f"CLI {' '.join(args)} exited {proc.returncode}: {detail}")
        return {"argv": args, "wall": wall, "cpu": cpu, "exit_code": proc.returncode}


# --- one configuration -------------------------------------------------------


def prime(fleet: Fleet, runner: Runner, log: Callable[[str], None]) -> float:
    """Every host's first deploy (it builds the host's venv), PRIME_BATCH hosts at a time, straight to sshd."""
    config = fleet.config(fleet.size, "prime", direct=True)
    started = time.perf_counter()
    for first in range(0, fleet.size, PRIME_BATCH):
        hosts = config.hosts[first:first + PRIME_BATCH]
        runner.deploy(config, hosts, record=False)
    took = time.perf_counter() - started
    log(f"first deploy on {fleet.size} host(s) (a venv each, {PRIME_BATCH} at a time): {took:.1f} s")
    return took


def measure_rollout(fleet: Fleet, runner: Runner, n: int, rtt_ms: float, runs: int, canary: int, batch: str,
                    log: Callable[[str], None]) -> dict:
    """Deploy all at once vs in waves (canary, then batches): what the waves cost on top."""
    from releasetui.operations import RolloutChoice
    from releasetui.rules import plan_waves

    config = fleet.config(n, f"rollout-{n}-{rtt_ms:g}")
    hosts = list(config.hosts)
    runner.deploy(config, hosts, record=False)  # warm-up
    waves = len(plan_waves([h.name for h in hosts], canary, batch))
    times: dict[str, list[float]] = {"all at once": [], f"canary {canary} + batches of {batch}": []}
    for _ in range(runs):
        for label, choice in (("all at once", None), (f"canary {canary} + batches of {batch}",
                                                       RolloutChoice(canary, batch, 0.0))):
            runner.wait_quiet()
            _, sample = runner.deploy(config, hosts, rollout=choice)
            times[label].append(sample.wall)
    medians = {label: statistics.median(values) for label, values in times.items()}
    log(f"  rollout on {n} host(s) at {rtt_ms:g} ms: " + ", ".join(f"{k} {v:.2f} s" for k, v in medians.items()))
    return {"hosts": n, "rtt_ms": rtt_ms, "waves": waves, "medians": medians, "samples": times}


def measure_config(fleet: Fleet, runner: Runner, n: int, rtt_ms: float, runs: int, cli: bool,
                   log: Callable[[str], None]) -> dict:
    """Warm-up, then ``runs`` x (deploy, rollback, forward, builds), then the CLI once."""
    config = fleet.config(n, f"{n}-{rtt_ms:g}")
    hosts = list(config.hosts)
    runner.deploy(config, hosts, record=False)  # warm-up
    samples: dict[str, list[Sample]] = {op: [] for op in OPS}
    for _ in range(runs):
        runner.wait_quiet()
        result, sample = runner.deploy(config, hosts)
        samples["deploy"].append(sample)
        _, sample = runner.op("rollback", config, hosts)
        samples["rollback"].append(sample)
        runner.op("rollback", config, hosts, build_id=result.build_id, record=False)  # forward again
        _, sample = runner.op("builds", config, hosts)
        samples["builds"].append(sample)
    cli_runs = {}
    if cli:
        runner.wait_quiet()
        wait_for_new_second()
        touch_app(fleet.app)
        cli_runs["deploy"] = runner.cli(config, ["deploy"])
        cli_runs["builds"] = runner.cli(config, ["builds"])
    med = {op: statistics.median(s.wall for s in samples[op]) for op in OPS}
    log(f"  {n:>3} host(s) at {rtt_ms:g} ms: " + ", ".join(f"{op} {med[op]:.2f} s" for op in OPS)
        + (f"; CLI deploy {cli_runs['deploy']['wall']:.2f} s" if cli_runs else ""))
    return {"hosts": n, "rtt_ms": rtt_ms, "samples": {op: [asdict(s) for s in samples[op]] for op in OPS},
            "cli": cli_runs}


# --- the table ---------------------------------------------------------------


def _med(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def bound_of(sample: dict, one_host_wall: float) -> float:
    """What the machine allows for this run: max(one host's wall time, busy CPU-seconds of all cores / cores).

    The simulated hosts share the client's cores, so N hosts can never finish faster than the CPU they all
    need spread over every core, nor faster than one host alone (latency).
    """
    return max(one_host_wall, sample["machine_busy"] / CORES)


def print_bounds(results: list[dict], out=sys.stdout) -> None:
    """Per RTT, fleet size and operation: median wall, the bound, their ratio; and the CPU per host."""
    by = {(r["hosts"], r["rtt_ms"]): r for r in results}
    sizes = sorted({r["hosts"] for r in results})
    if 1 not in sizes:
        print("\n(the bound needs the 1-host run: add 1 to --hosts)", file=out)
        return
    print(f"\nagainst the bound = max(1 host's median wall, machine busy CPU / {CORES} cores) per run "
          "(goal: within 15%)", file=out)
    head = (f"{'rtt ms':>6} {'hosts':>5}  {'operation':<10}{'wall':>8}{'bound':>8}{'x bound':>9}"
            f"{'client ms/extra host':>22}{'host ms/host':>14}")
    print(head, file=out)
    print("-" * len(head), file=out)
    for rtt in sorted({r["rtt_ms"] for r in results}):
        one = by.get((1, rtt))
        if one is None:
            continue
        for n in sizes:
            r = by.get((n, rtt))
            if r is None:
                continue
            for op in OPS:
                rows = r["samples"][op]
                single = _med(one["samples"][op], "wall")
                wall = _med(rows, "wall")
                bound = statistics.median(bound_of(s, single) for s in rows)
                extra = ((_med(rows, "cpu_self") - _med(one["samples"][op], "cpu_self")) / (n - 1) * 1000
                         if n > 1 else float("nan"))
                per_host = _med(rows, "cpu_server") / n * 1000
                print(f"{rtt:>6g} {n:>5}  {op:<10}{wall:>8.3f}{bound:>8.3f}{wall / bound:>9.2f}"
                      f"{extra:>22.1f}{per_host:>14.1f}", file=out)
    print("(client ms/extra host = (this process's CPU at N hosts - at 1 host) / (N - 1); host ms/host = sshd and "
          "all it ran, per host)", file=out)


def print_table(results: list[dict], out=sys.stdout) -> None:
    by = {(r["hosts"], r["rtt_ms"]): r for r in results}
    rtts = sorted({r["rtt_ms"] for r in results})
    sizes = sorted({r["hosts"] for r in results})
    unit = sizes[0]
    head = (f"{'rtt ms':>6} {'hosts':>5}  {'operation':<11}{'median':>8}{'min':>8}{'max':>8}{f'x/{unit}':>7}"
            f"{'client':>8}{'childr':>8}{'server':>8}{'proxy':>7}{'machine':>9}{'others':>8}  trips/host")
    print(head, file=out)
    print("-" * len(head), file=out)
    noisy = 0.0
    for rtt in rtts:
        for n in sizes:
            r = by.get((n, rtt))
            if r is None:
                continue
            for op in OPS:
                rows = r["samples"][op]
                walls = [s["wall"] for s in rows]
                base = by.get((unit, rtt))
                ratio = statistics.median(walls) / _med(base["samples"][op], "wall") if base else float("nan")
                share = statistics.median(s["machine_busy"] / (s["wall"] * CORES) for s in rows)
                others = statistics.median(others_share(s) for s in rows)
                noisy = max(noisy, others)
                trips = sorted({trips_text(v) for s in rows for v in s["round_trips"].values()})
                print(f"{rtt:>6g} {n:>5}  {op:<11}{statistics.median(walls):>8.3f}{min(walls):>8.3f}{max(walls):>8.3f}"
                      f"{ratio:>7.2f}{_med(rows, 'cpu_self'):>8.2f}{_med(rows, 'cpu_children'):>8.2f}"
                      f"{_med(rows, 'cpu_server'):>8.2f}{_med(rows, 'cpu_proxy'):>7.2f}{share:>8.0%}{others:>8.0%}  {'/'.join(trips)}",
                      file=out)
            for op, run in r["cli"].items():
                inproc = _med(r["samples"][op], "wall")
                print(f"{rtt:>6g} {n:>5}  {'CLI ' + op:<11}{run['wall']:>8.3f}{'':>8}{'':>8}{'':>7}"
                      f"{'':>8}{run['cpu']:>8.2f}  (one run; +{run['wall'] - inproc:.2f} s over in-process: "
                      f"start-up, imports, config)", file=out)
    print("(seconds; client = this process's CPU, childr = its rsync + relay children, server = sshd and all it ran,"
          f"\n proxy = the latency proxy process, machine = busy share of all {CORES} cores during the operation,"
          "\n others = the part of it that was not this benchmark; CLI rows: childr = the whole CLI process)", file=out)
    if noisy > 0.10:
        print(f"WARNING: other work took up to {noisy:.0%} of the cores during some operations: the machine was not "
              "quiet, times are inflated; re-run when it is", file=out)
    zero = rtts[0]
    for rtt in rtts[1:]:
        print(f"\nround trips of latency paid = (median at {rtt:g} ms - median at {zero:g} ms) / {rtt / 1000:g} s", file=out)
        print(f"{'hosts':>5}" + "".join(f"{op:>10}" for op in OPS) + f"{'CLI deploy':>12}", file=out)
        for n in sizes:
            a, b = by.get((n, zero)), by.get((n, rtt))
            if a is None or b is None:
                continue
            cells = ""
            for op in OPS:
                paid = (_med(b["samples"][op], "wall") - _med(a["samples"][op], "wall")) / (rtt / 1000)
                busy = statistics.median(x["machine_busy"] / (x["wall"] * CORES) for x in a["samples"][op])
                cells += f"{paid:>9.1f}{'*' if busy >= 0.85 else ' '}"
            cli = ""
            if a["cli"].get("deploy") and b["cli"].get("deploy"):
                cli = f"{(b['cli']['deploy']['wall'] - a['cli']['deploy']['wall']) / (rtt / 1000):>12.1f}"
            print(f"{n:>5}{cells}{cli}", file=out)
        print(f"(* the {zero:g} ms run had >= 85% of the cores busy (ours or others' work): CPU-bound, so the "
              "difference is not latency alone;\n read the 1-host row for round trips, the N-host rows for how latency "
              "overlaps)", file=out)


# --- profiling ---------------------------------------------------------------

CATEGORIES = (
    "paramiko kex + auth (connect)",
    "paramiko packetizing (framing, cipher, MAC)",
    "shipping (manifest, tar, gzip)",
    "subprocess spawns",
    "fabric + invoke (Connection, config)",
    "imports",
    "releasetui (our code)",
    "threads + waiting",
    "other",
)
KEX_FUNCS = {"_negotiate_keys", "_parse_kex_init", "_send_kex_init", "_activate_outbound", "_activate_inbound",
             "_compute_key", "_verify_key", "_get_cipher", "_get_engine", "start_client", "auth_publickey",
             "_parse_newkeys", "_parse_kex_reply", "_expect_packet", "_log_agreement", "_parse_ext_info",
             "get_remote_server_key", "_auth", "_post_open_auth"}
KEX_FILES = ("paramiko/kex_", "paramiko/auth_handler", "paramiko/auth_strategy", "paramiko/pkey", "paramiko/ed25519key",
             "paramiko/ecdsakey", "paramiko/rsakey", "paramiko/dsskey", "paramiko/hostkeys", "paramiko/primes",
             "paramiko/agent", "paramiko/client", "paramiko/ssh_gss", "/nacl/", "/bcrypt/", "primitives/asymmetric",
             "primitives/serialization", "primitives/kdf", "cryptography/x509")
PACKET_FILES = ("paramiko/", "primitives/ciphers", "/hmac.py", "/hashlib.py", "cryptography/")
WAIT_NAMES = ("select", "poll", "acquire", "sleep", "wait", "join", "epoll")


def classify(path: str, func: str) -> Optional[str]:
    """The category of one function (file path, name), or None for generic code (attributed to its caller)."""
    path = path.replace("\\", "/")
    if not path.startswith(("/", "<", "~")):  # py-spy shortens paths: 'paramiko/packet.py'
        path = "/" + path
    if path == "~":  # a builtin: '<built-in method select.select>', "<method 'recv' of '_socket.socket' objects>"
        if "fork_exec" in func or "waitpid" in func:
            return "subprocess spawns"
        if any(f"{w}" in func for w in WAIT_NAMES) and "socket" not in func:
            return "threads + waiting"
        return None
    if "releasetui/manifest.py" in path or "/tarfile.py" in path or "/gzip.py" in path or "zlib" in func:
        return "shipping (manifest, tar, gzip)"
    if any(s in path for s in KEX_FILES) or ("paramiko/transport" in path and func in KEX_FUNCS):
        return "paramiko kex + auth (connect)"
    if any(s in path for s in PACKET_FILES):
        return "paramiko packetizing (framing, cipher, MAC)"
    if path.endswith("subprocess.py") or "_posixsubprocess" in path:
        return "subprocess spawns"
    if "/fabric/" in path or "/invoke/" in path:
        return "fabric + invoke (Connection, config)"
    if "importlib" in path:
        return "imports"
    if path.startswith("<frozen"):  # frozen os, posixpath, abc...: generic, counted where they were called from
        return None
    if "/releasetui/" in path:
        return "releasetui (our code)"
    if path.endswith(("threading.py", "queue.py", "selectors.py")) or "concurrent/futures" in path:
        return "threads + waiting"
    return None


class AllThreadsProfile:
    """cProfile in every thread started while active (cProfile alone sees only the thread that enabled it).

    The timer is each thread's own CPU clock, so the numbers are CPU seconds, not waiting.
    """

    def __init__(self) -> None:
        self.profiles: list[cProfile.Profile] = []
        self._lock = threading.Lock()

    def _hook(self, frame, event, arg) -> None:  # first event in a new thread: give it its own profiler
        sys.setprofile(None)
        prof = cProfile.Profile(time.thread_time)
        with self._lock:
            self.profiles.append(prof)
        prof.enable()

    def __enter__(self) -> "AllThreadsProfile":
        threading.setprofile(self._hook)
        self._main = cProfile.Profile(time.thread_time)
        self.profiles.append(self._main)
        self._main.enable()
        return self

    def __exit__(self, *exc) -> None:
        self._main.disable()
        threading.setprofile(None)

    def stats(self) -> pstats.Stats:
        for prof in self.profiles:
            prof.create_stats()
        stats = pstats.Stats(self.profiles[0])
        for prof in self.profiles[1:]:
            if prof.stats:
                stats.add(prof)
        return stats


def group_stats(stats: pstats.Stats) -> dict[str, float]:
    """Self time per category; a generic function's (builtins, socket.py...) goes to its callers' categories."""
    table = stats.stats  # (file, line, func) -> (cc, nc, tt, ct, callers)
    totals = {c: 0.0 for c in CATEGORIES}

    def attribute(key, amount: float, depth: int) -> None:
        category = classify(key[0], key[2])
        if category is None and depth < 8:
            callers = table.get(key, (0, 0, 0, 0, {}))[4]
            weights = {caller: info[2] for caller, info in callers.items() if info[2] > 0}
            total = sum(weights.values())
            if total > 0:
                for caller, weight in weights.items():
                    attribute(caller, amount * weight / total, depth + 1)
                return
        totals[category or "other"] += amount

    for key, (_, _, tt, _, _) in table.items():
        if tt > 0:
            attribute(key, tt, 0)
    return totals


def fmt_func(key) -> str:
    path, line, func = key
    if path == "~":
        return func
    parts = Path(path).parts
    short = "/".join(parts[-2:]) if len(parts) > 1 else path
    return f"{short}:{line}({func})"


def top_entries(stats: pstats.Stats, index: int, count: int) -> list[tuple[float, int, str, str]]:
    rows = sorted(stats.stats.items(), key=lambda item: item[1][index], reverse=True)[:count]
    return [(info[index], info[1], fmt_func(key), classify(key[0], key[2]) or "(by caller)") for key, info in rows]


def py_spy_path() -> Optional[str]:
    found = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    return found


def py_spy_gil(run: Callable[[], Any], rate: int = 250) -> Optional[dict]:
    """Sample this process with ``py-spy record --gil`` while ``run()`` runs: who holds the GIL, how often."""
    spy = py_spy_path()
    if spy is None:
        return None
    with tempfile.NamedTemporaryFile(prefix="fleet-pyspy-", suffix=".txt", delete=False) as tmp:
        out = Path(tmp.name)
    proc = subprocess.Popen([spy, "record", "--pid", str(os.getpid()), "--gil", "--nonblocking", "--rate", str(rate),
                             "--format", "raw", "--output", str(out)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        first = proc.stdout.readline()  # "py-spy> Sampling process 250 times a second ..."
        if "Sampling" not in first:
            proc.kill()
            return {"error": first.strip() or "py-spy did not start"}
        started = time.perf_counter()
        run()
        wall = time.perf_counter() - started
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=30)[0]
    stacks: dict[str, int] = {}
    leaves: dict[str, int] = {}
    held = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        held += int(count)
        category = "other" if stack.strip() else "no Python frame (thread start/exit)"
        frames = stack.split(";")
        for frame in reversed(frames):  # leaf first
            name, _, where = frame.partition(" (")
            found = classify(where.rsplit(":", 1)[0], name.split(".")[-1].strip())
            if found:
                category = found
                break
        stacks[category] = stacks.get(category, 0) + int(count)
        leaves[frames[-1]] = leaves.get(frames[-1], 0) + int(count)
    out.unlink()
    errors = [line.strip() for line in rest.splitlines() if "rror" in line or "behind" in line]
    # py-spy --gil keeps only the samples in which a thread held the GIL: the share is over the samples due.
    due = rate * wall
    return {"wall": wall, "rate": rate, "gil_held": held, "gil_share": min(1.0, held / due) if due else float("nan"),
            "by_category": stacks, "top_leaves": sorted(leaves.items(), key=lambda kv: -kv[1])[:15],
            "messages": errors[:5]}


def spawn_costs(runs: int = 5) -> dict[str, float]:
    """CPU seconds of one interpreter start and of one rsync (the local file listing runs rsync once a deploy)."""
    def cpu_of(argv: list[str]) -> float:
        values = []
        for _ in range(runs):
            before = own_cpu()[1]
            subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            values.append(own_cpu()[1] - before)
        return statistics.median(values)

    return {"python -c pass": cpu_of([sys.executable, "-c", "pass"]),
            "rsync --version": cpu_of([shutil.which("rsync") or "rsync", "--version"])}


def unit_costs(fleet: Fleet, connections: int = 10, commands: int = 20) -> dict[str, float]:
    """CPU of one SSH connection (with one ``true``) and of one more command on it, client and server side."""
    config = fleet.config(1, "unit")
    host = config.hosts[0]

    def measure(work: Callable[[], None]) -> tuple[float, float]:
        fleet.settle()
        server0, client0 = process_tree_cpu(fleet.sshd_pid), own_cpu()[0]
        work()
        client1 = own_cpu()[0]
        fleet.settle()
        return client1 - client0, process_tree_cpu(fleet.sshd_pid) - server0

    def connect_and_run(times: int, count: int) -> Callable[[], None]:
        def work() -> None:
            for _ in range(times):
                pool = ExecutorPool()
                try:
                    executor = pool.get(host)
                    for _ in range(count):
                        executor.run("true", mutating=False)
                finally:
                    pool.close()
        return work

    # A session's CPU reaches sshd's listener only when its connection ends: count whole connections.
    one = measure(connect_and_run(connections, 1))
    many = measure(connect_and_run(2, 1 + commands))
    return {"connection + 1 command, client": one[0] / connections,
            "connection + 1 command, server": one[1] / connections,
            "1 more command, client": (many[0] / 2 - one[0] / connections) / commands,
            "1 more command, server": (many[1] / 2 - one[1] / connections) / commands}


def known_hosts_load_cost(config, repeat: int = 5) -> tuple[int, float]:
    """(lines, CPU seconds) for paramiko to load this config's known_hosts once, as each connection does."""
    import paramiko

    path = config.hosts[0].known_hosts
    lines = sum(1 for line in path.read_text().splitlines() if line.strip())
    values = []
    for _ in range(repeat):
        started = time.thread_time()
        paramiko.HostKeys().load(str(path))
        values.append(time.thread_time() - started)
    return lines, statistics.median(values)


def profile_config(fleet: Fleet, runner: Runner, n: int, log: Callable[[str], None]) -> dict:
    """At 0 ms: a plain deploy (CPU vs wall), one under cProfile in every thread, one under py-spy --gil."""
    config = fleet.config(n, f"profile-{n}")
    hosts = list(config.hosts)
    runner.deploy(config, hosts, record=False)  # warm-up
    runner.wait_quiet()
    _, plain = runner.deploy(config, hosts)
    prof = AllThreadsProfile()

    def profiled(call):
        with prof:
            return call()

    _, under = runner.deploy(config, hosts, around=profiled)
    stats = prof.stats()
    groups = group_stats(stats)
    spy = None
    if py_spy_path():
        holder: dict = {}

        def sampled(call):
            def go():
                holder["result"] = call()
            holder["spy"] = py_spy_gil(go)
            return holder["result"]

        runner.deploy(config, hosts, around=sampled)
        spy = holder.get("spy")
    log(f"  profiled {n} hosts")
    return {"hosts": n, "plain": asdict(plain), "cprofile_wall": under.wall, "groups": groups,
            "spawn_costs": spawn_costs(), "unit_costs": unit_costs(fleet),
            "known_hosts_load": known_hosts_load_cost(config),
            "top_self": top_entries(stats, 2, 14), "top_cumulative": top_entries(stats, 3, 14), "py_spy": spy}


def verdict(sample: dict) -> str:
    share = sample["machine_busy"] / (sample["wall"] * CORES)
    client = (sample["cpu_self"]) / sample["wall"]
    if share >= 0.85:
        return (f"the machine is the bound: {share:.0%} of {CORES} cores busy "
                f"(client {sample['cpu_self'] + sample['cpu_children']:.2f} s + server {sample['cpu_server']:.2f} s "
                f"+ proxy {sample['cpu_proxy']:.2f} s of CPU in {sample['wall']:.2f} s)")
    if client >= 0.85:
        return f"the client's one interpreter is the bound: {client:.0%} of a core in this process (GIL)"
    return f"neither the machine ({share:.0%} busy) nor the client ({client:.0%} of a core) is saturated: waiting"


def print_profile(profiles: list[dict], out=sys.stdout) -> None:
    for p in profiles:
        s = p["plain"]
        print(f"\nprofile: deploy to {p['hosts']} hosts at 0 ms", file=out)
        print(f"  plain run: wall {s['wall']:.2f} s; CPU: client {s['cpu_self']:.2f} s ({s['cpu_self'] / s['wall']:.0%} "
              f"of a core), its children (rsync, relays) {s['cpu_children']:.2f} s, server {s['cpu_server']:.2f} s, "
              f"proxy {s['cpu_proxy']:.2f} s; machine {s['machine_busy'] / (s['wall'] * CORES):.0%} busy "
              f"({s['machine_busy']:.2f} CPU-s of {s['wall'] * CORES:.2f}; not this benchmark's: {others_share(s):.0%})",
              file=out)
        if others_share(s) > 0.10:
            print("  WARNING: the machine was not quiet during this run; its shares are not this benchmark's alone",
                  file=out)
        print(f"  -> {verdict(s)}", file=out)
        spawns = p.get("spawn_costs", {})
        if spawns:
            print("  one child process, CPU: " + "; ".join(f"{k} {v * 1000:.0f} ms" for k, v in spawns.items())
                  + f"  (x {p['hosts']} hosts = {sum(spawns.values()) * p['hosts']:.2f} CPU-s; "
                  "rsync's remote end and sessions are in 'server')", file=out)
        units = p.get("unit_costs", {})
        if units:
            print("  unit costs, CPU: " + "; ".join(f"{k} {v * 1000:.1f} ms" for k, v in units.items()), file=out)
            per_host = s["cpu_server"] / p["hosts"]
            print(f"  server CPU per host in this deploy: {per_host * 1000:.0f} ms; on real hosts each pays its own, "
                  f"here all {p['hosts']} share these {CORES} cores with the client", file=out)
        if p.get("known_hosts_load"):
            lines, secs = p["known_hosts_load"]
            print(f"  known_hosts ({lines} lines) loaded by paramiko: {secs * 1000:.1f} ms CPU per connection, "
                  f"x {p['hosts']} connections = {secs * p['hosts']:.2f} s per operation (N connections x N lines)",
                  file=out)
        total = sum(p["groups"].values()) or 1.0
        print(f"  client CPU by kind (cProfile, every thread, per-thread CPU clock; {total:.2f} CPU-s under the "
              f"profiler, wall {p['cprofile_wall']:.2f} s; Python-level code is inflated most):", file=out)
        for category in CATEGORIES:
            value = p["groups"].get(category, 0.0)
            if value > 0.0005:
                print(f"    {category:<46}{value:>7.3f} s {value / total:>5.0%}", file=out)
        print("  top self (CPU s, calls, function, kind):", file=out)
        for secs, calls, name, kind in p["top_self"][:10]:
            print(f"    {secs:>7.3f} {calls:>8}  {name:<60.60} {kind}", file=out)
        print("  top cumulative:", file=out)
        for secs, calls, name, kind in p["top_cumulative"][:10]:
            print(f"    {secs:>7.3f} {calls:>8}  {name:<60.60} {kind}", file=out)
        spy = p.get("py_spy")
        if spy and "error" not in spy:
            print(f"  py-spy --gil ({spy['rate']}/s over {spy['wall']:.2f} s, another deploy): some thread held the "
                  f"GIL in {spy['gil_held']} samples = {spy['gil_share']:.0%} of the wall time; what it ran:", file=out)
            for category, count in sorted(spy["by_category"].items(), key=lambda kv: -kv[1]):
                print(f"    {category:<46}{count / spy['gil_held'] if spy['gil_held'] else 0:>6.0%}", file=out)
            print("    top leaf frames: " + "; ".join(f"{leaf.split(' (')[0]} {c}" for leaf, c in spy["top_leaves"][:6]),
                  file=out)
            for message in spy.get("messages", []):
                print(f"    py-spy: {message}", file=out)
        elif spy:
            print(f"  py-spy: {spy['error']}", file=out)
        else:
            print("  py-spy: not installed (pip install py-spy) - GIL occupancy not measured", file=out)


# --- main --------------------------------------------------------------------


def int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def float_list(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:8]))
    parser.add_argument("--hosts", type=int_list, default=[1, 20, 50], help="fleet sizes (default 1,20,50)")
    parser.add_argument("--rtt", type=float_list, default=[0.0, 60.0], help="round trips in ms (default 0,60)")
    parser.add_argument("--runs", type=int, default=3, help="measured runs per configuration (default 3)")
    parser.add_argument("--files", type=int, default=200, help="static files in the app (default 200)")
    parser.add_argument("--no-cli", action="store_true", help="skip the CLI (subprocess) runs")
    parser.add_argument("--no-handshake", action="store_true",
                        help="the proxy connects upstream at once (a new connection 1.5 round trips cheaper)")
    parser.add_argument("--profile", action="store_true", help="also profile the client's deploy at 0 ms")
    parser.add_argument("--profile-only", action="store_true", help="only the profile, no table")
    parser.add_argument("--profile-hosts", type=int_list, default=[20, 50], help="fleet sizes to profile (20,50)")
    parser.add_argument("--quiet", type=float, default=0.25, metavar="SHARE",
                        help="before each run wait until the machine is less busy than this (default 0.25; 1 = never "
                             "wait): the machine is shared")
    parser.add_argument("--quiet-timeout", type=float, default=180, metavar="S",
                        help="wait at most this long for quiet, then measure anyway (default 180)")
    parser.add_argument("--rollout", action="store_true",
                        help="also time a deploy in waves (--canary, --batch) against all at once, at the largest "
                             "--hosts and --rtt")
    parser.add_argument("--canary", type=int, default=1, help="with --rollout: canary hosts (default 1)")
    parser.add_argument("--batch", default="25%", help="with --rollout: batch size, N or P%% (default 25%%)")
    parser.add_argument("--json", type=Path, help="write every sample here")
    parser.add_argument("--user", default="releasetui-bench" if os.geteuid() == 0 else pwd.getpwuid(os.getuid()).pw_name)
    args = parser.parse_args()
    if not args.hosts or min(args.hosts) < 1 or args.runs < 1 or not args.rtt or min(args.rtt) < 0:
        parser.error("--hosts needs sizes >= 1, --runs >= 1, --rtt values >= 0")
    profiling = args.profile or args.profile_only
    sizes = sorted(set(args.hosts))
    rtts = sorted(set(args.rtt))
    size = max(sizes + (args.profile_hosts if profiling else []))

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    def terminate(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in the background (SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))

    import paramiko
    version = subprocess.run(["/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else "sshd", "-V"],
                             capture_output=True, text=True).stderr.strip().split(",")[0]
    header = (f"releasetui fleet bench: one {version} sshd on 127.0.0.1, a latency proxy port per host "
              f"({'TCP handshake charged' if not args.no_handshake else 'no handshake delay'}), user {args.user}, "
              f"{args.files}-file app, requirements unchanged, restart 'true'\n"
              f"{CORES} cores, Python {platform.python_version()}, paramiko {paramiko.__version__}, "
              f"load average at start {os.getloadavg()[0]:.2f}; medians of {args.runs} runs, fresh connection per "
              "operation (a CLI run)")
    fleet: Optional[Fleet] = None
    report: dict[str, Any] = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                              "machine": {"cores": CORES, "python": platform.python_version(),
                                          "paramiko": paramiko.__version__, "sshd": version,
                                          "loadavg_start": os.getloadavg()},
                              "configs": [], "profiles": []}
    try:
        log(header)
        fleet = Fleet(size, args.user, args.files)
        runner = Runner(fleet, args.quiet, args.quiet_timeout, log)
        report["prime_seconds"] = prime(fleet, runner, log)
        if not args.profile_only:
            for rtt in rtts:
                fleet.use_rtt(rtt, handshake=not args.no_handshake)
                for n in sizes:
                    report["configs"].append(measure_config(fleet, runner, n, rtt, args.runs, not args.no_cli, log))
        if args.rollout:
            fleet.use_rtt(max(rtts), handshake=not args.no_handshake)
            batch = int(args.batch) if args.batch.isdigit() else args.batch
            report["rollout"] = measure_rollout(fleet, runner, max(sizes), max(rtts), args.runs, args.canary, batch,
                                                log)
        if profiling:
            fleet.use_rtt(0.0, handshake=not args.no_handshake)
            for n in args.profile_hosts:
                report["profiles"].append(profile_config(fleet, runner, n, log))
    except BenchFailure as exc:
        log(f"fleet bench: FAILED: {exc}")
        return 1
    except KeyboardInterrupt:
        log("fleet bench: interrupted; cleaning up")
        return 130
    finally:
        if fleet is not None:
            fleet.close()
    print(header)
    if report["configs"]:
        print()
        print_table(report["configs"])
        print_bounds(report["configs"])
    if report.get("rollout"):
        r = report["rollout"]
        (plain_label, plain), (waves_label, waved) = r["medians"].items()
        print(f"\nrollout, {r['hosts']} hosts at {r['rtt_ms']:g} ms, medians of {args.runs}: {plain_label} {plain:.2f} s; "
              f"{waves_label} ({r['waves']} waves) {waved:.2f} s: +{waved - plain:.2f} s, "
              f"{(waved - plain) / max(1, r['waves'] - 1) * 1000:.0f} ms per extra wave")
    if report["profiles"]:
        print_profile(report["profiles"])
    report["loadavg_end"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str) + "\n")
        print(f"\nraw numbers: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
