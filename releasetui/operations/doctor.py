"""``doctor``: is every host (and this machine) ready for a deploy?  One read-only round trip per host.

What is judged a problem is decided here, in pure functions (:func:`host_problems`, :func:`local_problems`),
from what the host's script printed and what its root holds; the CLI only groups and prints them.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

from .. import clock, commands, rules
from ..commands.doctor import DoctorReport, doctor_script, parse_doctor
from ..config import Config, HostConfig
from ..models import HostState
from .context import OperationContext
from .source import pid_alive

MIN_FREE_KB = 1024 * 1024        # a venv with a few packages, a build, and room to spare: 1 GiB
MIN_FREE_INODES = 20_000         # a venv alone is a few thousand files
MAX_SKEW_SECONDS = 5.0           # the host's clock is read to the second; more than this is a real difference


@dataclass
class HostCheckup:
    """One host's answers: its checks, its root's state, how far its clock is from this machine's."""

    name: str
    problems: list[str] = field(default_factory=list)
    report: Optional[DoctorReport] = None
    skew: Optional[float] = None
    unreachable: bool = False


@dataclass
class Checkup:
    """Every host's checkup and this machine's problems."""

    hosts: dict[str, HostCheckup] = field(default_factory=dict)
    local: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every check passed everywhere."""
        return not self.local and all(not h.problems for h in self.hosts.values())

    def to_dict(self) -> dict:
        """The checkup as JSON."""
        return {"ok": self.ok, "local": self.local,
                "hosts": {name: {"problems": h.problems, "unreachable": h.unreachable,
                                 "clock_skew_seconds": None if h.skew is None else round(h.skew, 1),
                                 "checks": {k: {"status": s, "detail": d} for k, (s, d) in
                                            (h.report.checks.items() if h.report else ())}}
                          for name, h in self.hosts.items()}}


def host_problems(host: HostConfig, report: DoctorReport, state: HostState, skew: Optional[float],
                  this_machine: str, alive: Callable[[int], bool] = pid_alive) -> list[str]:
    """Every problem on one host, one short line each (``check: what is wrong``)."""
    problems = [f"{name}: {detail}" for name, (status, detail) in report.checks.items() if status == "fail"]
    if "python" not in report.checks:
        problems.append(f"python: {host.python} did not answer")
    if report.disk_kb is not None and report.disk_kb < MIN_FREE_KB:
        problems.append(f"disk: {report.disk_kb / 1024 / 1024:.1f} GiB free under {host.root} (want at least "
                        f"{MIN_FREE_KB // 1024 // 1024} GiB)")
    if report.inodes is not None and 0 < report.inodes < MIN_FREE_INODES:
        problems.append(f"inodes: {report.inodes} free under {host.root} (want at least {MIN_FREE_INODES})")
    if skew is not None and abs(skew) > MAX_SKEW_SECONDS:
        problems.append(f"clock: {abs(skew):.0f}s {'ahead of' if skew > 0 else 'behind'} this machine's "
                        "(build ids and history times come from this machine; fix the host's NTP)")
    if state.lock is not None and rules.lock_is_stale(state.lock, this_machine, alive):
        problems.append(f"lock: STALE: {state.lock.describe()}")
    for build in state.builds:
        if build.damaged:
            problems.append(f"build {build.id}: damaged: {build.damaged}")
    for path in state.shared_missing:
        problems.append(f"shared: {path} is missing under shared/ (a deploy refuses this host)")
    problems += [f"current: {p}" for p in state.problems]
    return problems


def local_problems(config: Config, which: Callable[[str], Optional[str]] = shutil.which) -> list[str]:
    """What this machine lacks: rsync always; git when the source is a git work tree."""
    problems = []
    if which("rsync") is None:
        problems.append("rsync is not installed here (Debian: apt-get install rsync)")
    if which("git") is None and any((p / ".git").exists() for p in (config.source, *config.source.parents)):
        problems.append("git is not installed here, and the source is a git work tree")
    if not Path(config.source).is_dir():
        problems.append(f"source {config.source} does not exist")
    return problems


def checkup(ctx: OperationContext, hosts: Sequence[HostConfig]) -> Checkup:
    """Run the checks on every host (in parallel, one round trip each) and here."""
    result = Checkup(local=local_problems(ctx.config))

    def one(host: HostConfig) -> HostCheckup:
        ctx.connect(host)
        sudo = bool(host.restart and "sudo" in host.restart)
        script = doctor_script(host.root, host.python, sudo) + commands.read_script(
            host.root, shared_files=ctx.config.shared.files)
        arrived: list[float] = []
        sent = clock.now().timestamp()
        started = time.monotonic()
        run = ctx.executor(host).run(script, mutating=False, timeout=ctx.config.script_timeout,
                                     on_line=lambda line: arrived.append(time.monotonic())
                                     if line.startswith("CLOCK\t") else None)
        if not run.ok and not run.stdout:
            raise RuntimeError(f"the checks did not run: {run.error_text()}")
        report = parse_doctor(run.stdout)
        state = commands.parse_read(host.name, run.stdout)
        # The host printed its clock first thing: compare it with ours halfway between sending and hearing it.
        heard = (arrived[0] if arrived else time.monotonic()) - started
        skew = None if report.clock is None else report.clock - (sent + heard / 2)
        checked = HostCheckup(host.name, report=report, skew=skew)
        checked.problems = host_problems(host, report, state, skew, ctx.machine)
        ctx.report(host.name, "doctor", "ok" if not checked.problems else "failed", time.monotonic() - started,
                   f"{len(checked.problems)} problem(s)" if checked.problems else "every check passed", "read")
        return checked

    for name, outcome in ctx.runner.map(list(hosts), one).items():
        result.hosts[name] = outcome.value if outcome.ok else HostCheckup(
            name, problems=[f"unreachable: {outcome.error}"], unreachable=True)
    return result
