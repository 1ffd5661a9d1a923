#!/usr/bin/env python3
"""Where one host's CPU goes in a deploy: per SSH connection and per script, exact to the microsecond.

Run from the repository root, as root:

    python bench/host_cpu.py                 # 1 host, 200-file app, requirements unchanged, 10 deploys
    python bench/host_cpu.py --runs 20 --forks   # also list what each script forks and execs (strace)

The world is ``bench/fleet.py``'s (one OpenSSH sshd on 127.0.0.1, the bench user ``releasetui-bench`` whose
shell is /bin/sh, the 200-file app whose requirements never change after the first deploy), without the
latency proxy.  sshd runs in a cgroup of its own (cgroup v1 ``cpuacct``), so everything it and its children
use, exited processes included, is counted to the nanosecond (``/proc/<pid>/stat`` only counts in 10 ms ticks,
and only children that were waited for).  Each deploy is a fresh ``Operations`` (a CLI run); the harness reads
the cgroup when the connection opens, when each script starts and when the operation has ended, so the
CPU between two readings is the connection's (key exchange, authentication, sshd's re-exec) or one script's
(its session and its shell, and all the shell ran).  ``--forks``: one more deploy under ``strace -f`` (timing
not counted), listing the programs each script executes.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import touch_app, use_this_checkout, wait_for_new_second  # noqa: E402

use_this_checkout()

from bench.fleet import Fleet, Runner, prime  # noqa: E402
from releasetui.executors import ssh as ssh_executor  # noqa: E402

CGROUP_ROOT = Path("/sys/fs/cgroup/cpuacct")


class CpuGroup:
    """A cpuacct cgroup holding one process and all it will start; ``usage()`` in seconds."""

    def __init__(self, pid: int):
        if not (CGROUP_ROOT / "cpuacct.usage").exists():
            raise SystemExit(f"no cgroup v1 cpuacct hierarchy at {CGROUP_ROOT}")
        self.path = CGROUP_ROOT / f"releasetui-hostcpu-{os.getpid()}"
        self.path.mkdir()
        (self.path / "cgroup.procs").write_text(str(pid))

    def usage(self) -> float:
        return int((self.path / "cpuacct.usage").read_text()) / 1e9

    def close(self) -> None:
        for pid in (self.path / "cgroup.procs").read_text().split():
            try:
                (CGROUP_ROOT / "cgroup.procs").write_text(pid)
            except OSError:
                pass
        try:
            self.path.rmdir()
        except OSError:
            pass


def script_kind(script: str) -> str:
    """Which phase a script is, by what it says."""
    for marker, kind in (("LOCKTAKEN", "read (lock)"), ("begin ship", "prepare"), ("begin switch", "activate"),
                         ("begin prune", "prune/finish"), ("RELEASED", "finish")):
        if marker in script:
            return kind
    return "other"


def instrument(group: CpuGroup, marks: list) -> None:
    """Record (event, cgroup usage) when a connection opens and when each script starts."""
    real_connect, real_start = ssh_executor.SSHExecutor.connect, ssh_executor.SSHExecutor.start

    def connect(self):
        if self._connection is None:
            marks.append(("connect", group.usage()))
        return real_connect(self)

    def start(self, script, **kwargs):
        if self._connection is not None:
            marks.append((script_kind(script), group.usage()))
            return real_start(self, script, **kwargs)
        self.connect()
        marks.append((script_kind(script), group.usage()))
        return real_start(self, script, **kwargs)

    ssh_executor.SSHExecutor.connect = connect
    ssh_executor.SSHExecutor.start = start


def one_deploy(runner: Runner, config, group: CpuGroup, marks: list) -> dict:
    """One measured deploy: {part: CPU seconds}, 'total' included."""
    marks.clear()
    wait_for_new_second()
    touch_app(runner.fleet.app)
    start = group.usage()
    runner.op("deploy", config, list(config.hosts), record=False)
    end = group.usage()
    parts: dict = {}
    points = marks + [("end", end)]
    for (name, at), (_, until) in zip(points, points[1:]):
        parts[name] = parts.get(name, 0.0) + until - at
    parts["before connect"] = (marks[0][1] if marks else end) - start
    parts["total"] = end - start
    return parts


def session_cost(config, group: CpuGroup, count: int = 30) -> tuple[float, float]:
    """CPU of one connection (with one ``:``) and of one more session running ``:`` on it, in seconds."""
    from releasetui.executors import make_executor

    host = config.hosts[0]
    before = group.usage()
    executor = make_executor(host)
    executor.run(":")
    executor.close()
    time.sleep(0.2)
    one = group.usage() - before
    executor = make_executor(host)
    executor.run(":")
    before = group.usage()
    for _ in range(count):
        executor.run(":")
    more = (group.usage() - before) / count
    executor.close()
    return one, more


def forks(fleet: Fleet, runner: Runner, config) -> None:
    """One deploy under strace: the programs each session executes."""
    out = Path(tempfile.mkdtemp(prefix="releasetui-hostcpu-")) / "trace"
    tracer = subprocess.Popen(["strace", "-f", "-qq", "-e", "trace=execve", "-e", "signal=none", "-o", str(out),
                               "-p", str(fleet.sshd_pid)], stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    wait_for_new_second()
    touch_app(fleet.app)
    runner.op("deploy", config, list(config.hosts), record=False)
    time.sleep(0.3)
    tracer.terminate()
    tracer.wait()
    programs = []
    for line in out.read_text().splitlines():
        m = re.match(r'(\d+)\s+execve\("([^"]+)", \[(.*?)\]', line)
        if m and "= 0" in line or (m and "<unfinished" in line):
            args = m.group(3)[:100]
            programs.append(f"{m.group(1)} {m.group(2)} {args}")
    print(f"\nexecve calls in one deploy: {len(programs)}")
    for p in programs:
        print("  " + p)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--forks", action="store_true")
    args = parser.parse_args()
    fleet = Fleet(1, "releasetui-bench", args.files)
    group = None
    try:
        group = CpuGroup(fleet.sshd_pid)
        runner = Runner(fleet, log=print)
        prime(fleet, runner, print)
        config = fleet.config(1, "direct", direct=True)
        marks: list = []
        instrument(group, marks)
        one_deploy(runner, config, group, marks)  # warm-up
        rows = [one_deploy(runner, config, group, marks) for _ in range(args.runs)]
        print(f"\none host's CPU per deploy (sshd and all it ran), medians of {args.runs}, ms:")
        for part in sorted({p for r in rows for p in r}, key=lambda p: (p == "total", p)):
            values = [r.get(part, 0.0) * 1000 for r in rows]
            print(f"  {part:<16} {statistics.median(values):7.1f}   (min {min(values):.1f}, max {max(values):.1f})")
        one, more = session_cost(config, group)
        print(f"  (a connection with one ':' costs {one * 1000:.1f} ms; one more session running ':' {more * 1000:.1f} ms)")
        if args.forks:
            forks(fleet, runner, config)
    finally:
        if group is not None:
            group.close()
        fleet.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
