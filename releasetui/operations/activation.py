"""Phase 5, shared by deploy and rollback: activate in waves, then commit every host or switch every host back.

Each host runs ONE activate script (see :mod:`releasetui.commands.activate`):
switch, restart, after-hooks, health, then it waits for the verdict.  A wave
is a group of hosts activated together (the canary, then batches; one wave of
all hosts without a rollout).  After each wave:

* a host failed -> every host still waiting is told to switch back (``BACK``),
  hosts of later waves never switch: the fleet ends on the build it had;
* the operator pressed Ctrl-C once -> no further wave starts; if waves
  remain, every switched host goes back (exit 130), else the fleet commits;
* otherwise the next wave starts (after ``pause``), and after the last one
  every host is told ``COMMIT``.

A second Ctrl-C stops waiting: hosts still in their wave are stopped and
switched back from outside (:func:`~releasetui.commands.activate.switch_back_script`),
waiting hosts are told ``BACK``.  Whatever happens, each host's outcome says
what it serves now.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from .. import commands
from ..commands.activate import ActivateReport
from ..commands.sudo import sudoers_line
from ..config import HostConfig
from ..executors import HostUnreachable, RemoteProcess, ScriptTimeout
from ..models import HostOutcome
from ..present import host_list
from ..runner import sleep_unless
from .context import OperationContext


@dataclass
class HostActivation:
    """One host's part: its switch from ``previous`` to ``target``, and the script that does it."""

    host: HostConfig
    target: str
    previous: Optional[str]
    script: Callable[[float], str]       # the activate script, given the seconds the operation has run as it starts
    switch_back: Callable[[float], str]  # the outside switch-back script (second Ctrl-C, a stuck script), likewise
    deadline: float                      # seconds the script may take up to its verdict
    process: Optional[RemoteProcess] = None
    report: ActivateReport = field(default_factory=ActivateReport)
    error: Optional[BaseException] = None
    wave: int = 0
    started: bool = False
    done: bool = False
    decided: bool = False                # its script commits by itself once healthy (an operation on one host)


@dataclass
class ActivationResult:
    """How activation ended: committed everywhere, or why not (then every switched host was sent back)."""

    committed: bool
    interrupted: bool = False
    failed_hosts: list = field(default_factory=list)
    items: dict = field(default_factory=dict)


class Activation:
    """Runs the waves (see the module docstring)."""

    def __init__(self, ctx: OperationContext, items: list[HostActivation], waves: list[list[str]],
                 pause: float = 0.0):
        self.ctx = ctx
        self.items = {item.host.name: item for item in items}
        self.waves = [[name for name in wave if name in self.items] for wave in waves]
        self.waves = [wave for wave in self.waves if wave]
        self.pause = pause
        # One host decides alone (its script commits by itself once healthy): never one host of several.
        if len(self.items) > 1 and any(item.decided for item in items):
            raise ValueError("only an operation on one host may commit without a verdict")

    # --- one host ------------------------------------------------------------------------------

    def _start(self, item: HostActivation) -> None:
        item.started = True
        try:
            item.process = self.ctx.start(item.host, item.script(self.ctx.elapsed()), phase="activate")
            deadline = time.monotonic() + item.deadline
            # The first Ctrl-C lets the wave finish; only the second (hurry) stops waiting for it.
            line = item.process.read_until(("HEALTHY", "UNHEALTHY", "SWITCHFAILED", "LOSTLOCK", "REFUSED"),
                                           stop=self.ctx.interrupts.hurry, deadline=deadline)
            if line is None and not self.ctx.interrupts.hurry.is_set() or (line and not line.startswith("HEALTHY")):
                self._end(item)
            else:
                item.report = commands.parse_activate("\n".join(item.process.out.lines))
                if item.decided and line and line.startswith("HEALTHY"):
                    self._end(item)
        except (HostUnreachable, ScriptTimeout) as exc:
            item.error = exc
            if item.process is not None:
                item.process.abandon()
            item.report = commands.parse_activate("\n".join(item.process.out.lines)) if item.process else item.report

    def _end(self, item: HostActivation) -> None:
        """Read the script to its end and parse what it said."""
        try:
            result = item.process.wait(deadline=time.monotonic() + self.ctx.config.script_timeout + 60)
            item.report = commands.parse_activate(result.stdout)
            if not result.ok and not (item.report.healthy is False or item.report.lost_lock or item.report.refused):
                item.error = RuntimeError(result.error_text())
        except (HostUnreachable, ScriptTimeout) as exc:
            item.error = exc
            item.report = commands.parse_activate("\n".join(item.process.out.lines))
        item.done = True

    def _verdict(self, item: HostActivation, verdict: bytes) -> None:
        if item.done or item.process is None:
            return
        try:
            item.process.send(verdict)
            item.process.close_stdin()
        except HostUnreachable as exc:
            item.error = exc
            item.done = True
            return
        self._end(item)

    def _outside_switch_back(self, item: HostActivation) -> None:
        """The host's script was stopped or lost: switch it back from a new script."""
        if item.process is not None:
            item.process.abandon()
        try:
            result = self.ctx.run(item.host, item.switch_back(self.ctx.elapsed()), phase="activate",
                                  interruptible=False)
            item.report = commands.parse_activate(result.stdout)
            item.report.switched = True
        except (HostUnreachable, ScriptTimeout) as exc:
            item.error = exc
        item.done = True

    # --- the waves -------------------------------------------------------------------------------

    def run(self) -> ActivationResult:
        """Activate wave by wave; commit, or send every switched host back."""
        ctx = self.ctx
        failed: list[str] = []
        interrupted = False
        for number, wave in enumerate(self.waves, 1):
            if len(self.waves) > 1:
                ctx.report(None, "wave", "info", message=f"wave {number}/{len(self.waves)}: {', '.join(wave)}",
                           phase="activate")
            for name in wave:
                self.items[name].wave = number
            ctx.interrupts.begin_wave(number, len(self.waves))
            # Not bounded by `parallel`: connections are open already, and a wave should switch as one.
            ctx.runner.map([self.items[n].host for n in wave], lambda h: self._start(self.items[h.name]),
                           limit=len(wave))
            if ctx.interrupts.hurry.is_set():
                interrupted = True
                break
            failed = [n for n in wave if not self._healthy(self.items[n])]
            if failed:
                break
            if ctx.stop.is_set():
                interrupted = number < len(self.waves)
                if interrupted:
                    ctx.report(None, "interrupt", "info", phase="activate",
                               message=f"stopped after wave {number}/{len(self.waves)}: switching every host back")
                break
            if number < len(self.waves) and self.pause:
                if sleep_unless(ctx.stop, self.pause):
                    interrupted = True
                    break
        committed = not failed and not interrupted
        started = [item for item in self.items.values() if item.started]
        if committed:
            ctx.runner.map([i.host for i in started], lambda h: self._verdict(self.items[h.name], commands.verdict_line(True)),
                           limit=len(started))
        else:
            # "interrupted by WHO": the hosts record themselves as interrupted, by WHO (see activate_script).
            reason = ("another host failed: " + host_list(failed)) if failed else ctx.interrupts.reason

            def back(host: HostConfig) -> None:
                item = self.items[host.name]
                if item.done:
                    return
                if item.error is not None or not self._healthy(item):
                    self._outside_switch_back(item)
                else:
                    self._verdict(item, commands.verdict_line(False, reason))

            ctx.runner.map([i.host for i in started], back, limit=len(started))
        return ActivationResult(committed and all(i.report.committed for i in started), interrupted, failed,
                                self.items)

    @staticmethod
    def _healthy(item: HostActivation) -> bool:
        return item.error is None and item.report.healthy is True and not item.report.lost_lock


def outside_ending(ctx: OperationContext) -> dict:
    """How an outside switch-back records its host: ``interrupted`` (by whom) when the operator stopped the
    operation, else ``switched-back`` because the host's own script could not finish."""
    if ctx.interrupts.pressed:
        return {"outcome": "interrupted", "reason": f"switched back: {ctx.interrupts.reason}",
                "by": ctx.interrupts.by}
    return {"outcome": "switched-back", "reason": "switched back: its activate script could not finish"}


def sudo_hint(host: str, restart: Optional[str], report: ActivateReport) -> str:
    """When sudo asked for a password: the sudoers line that fixes it, naming the host ("" otherwise)."""
    if not report.sudo_user:
        return ""
    line = sudoers_line(report.sudo_user, report.sudo_program or "", restart)
    return (f"; sudo on {host} asks {report.sudo_user} for a password (releasetui runs it as sudo -n): allow the "
            f"restart without one with `visudo -f /etc/sudoers.d/releasetui` on {host} and this line: {line}")


def lost_switch_fate(item: HostActivation, committed: bool) -> str:
    """What a switched host does once its connection is gone (its script carries on alone: see KEEP_GOING)."""
    back = f"goes back to {item.previous}" if item.previous else "stays on it, marked failed (no earlier build)"
    if item.decided:
        fate = f"keeps {item.target} if healthy, else {back}"
    elif committed:
        fate = f"keeps {item.target} if the fleet's COMMIT reached it, else {back}: the hosts may now differ"
    else:
        fate = f"gets no verdict, so it {back}"
    return (f"its script carries on without the connection: it {fate} and releases the lock; see what it serves "
            f"with: releasetui --headless builds --host {item.host.name}")


def outcome_of(item: HostActivation, operation: str, committed: bool, interrupted: bool = False) -> HostOutcome:
    """What one host's activation means for the person: what it serves now, and why (``interrupted``: Ctrl-C)."""
    name, report = item.host.name, item.report
    if not item.started:
        return HostOutcome(name, "aborted", f"not switched: the {operation} stopped before this host's wave",
                           current=item.previous, previous=item.previous, build_id=item.target)
    if report.lost_lock:
        return HostOutcome(name, "failed", "its lock was removed during the switch (unlock?); it now belongs to "
                           "another operation: not switched back by this one", current=None,
                           previous=item.previous, build_id=item.target)
    if report.refused:
        return HostOutcome(name, "failed", f"refused: {report.refused}", current=item.previous,
                           previous=item.previous, build_id=item.target)
    if report.switch_failed:
        return HostOutcome(name, "failed", f"build {item.target}: {report.switch_failed}; not switched, still on "
                           f"{item.previous or 'no build'}", current=item.previous, previous=item.previous,
                           build_id=item.target)
    if committed and report.committed:
        return HostOutcome(name, "ok", f"live: {item.target}" + (f" (was {item.previous or 'none'})"),
                           current=item.target, previous=item.previous, build_id=item.target,
                           removed=list(report.removed))
    current = report.back_on or (item.target if report.switched and not report.back_on else item.previous)
    if item.error is not None and not report.back_on:
        where = "still on " + item.target if report.switched else "not switched"
        message = f"{item.error}; {where} as far as releasetui knows"
        if report.switched and isinstance(item.error, HostUnreachable):
            message = f"{item.error} after its switch to {item.target}; {lost_switch_fate(item, committed)}"
        return HostOutcome(name, "unreachable" if isinstance(item.error, HostUnreachable) else "failed", message,
                           current=item.target if report.switched else item.previous,
                           previous=item.previous, build_id=item.target)
    if report.healthy is False:
        why = report.why or "unhealthy"
        sudo = sudo_hint(name, item.host.restart, report)
        if report.no_previous:
            return HostOutcome(name, "failed", f"build {item.target}: {why}; no earlier build to switch back to: "
                               f"it stays current, marked failed{sudo}", current=item.target, build_id=item.target)
        extra = "; ITS RESTART FAILED TOO" if report.back_restart_failed else ""
        return HostOutcome(name, "failed", f"build {item.target}: {why}; switched back to {current}{extra}{sudo}",
                           current=current, previous=item.previous, build_id=item.target)
    if report.no_previous:
        return HostOutcome(name, "aborted", f"{report.why or 'the ' + operation + ' failed'}; no earlier build to go "
                           f"back to: it stays on {item.target}, marked failed", current=item.target,
                           build_id=item.target)
    extra = "; ITS RESTART FAILED" if report.back_restart_failed else ""
    why = report.why or ("interrupted (Ctrl-C)" if interrupted else f"the {operation} failed")
    why = commands.strip_verdict(why)
    return HostOutcome(name, "aborted", f"switched back to {current}: {why}"
                       f"{extra}", current=current, previous=item.previous, build_id=item.target)
