"""``exec``: a one-off command on the fleet, in each host's live build (``flask db current``, a cache flush).

No lock is taken: like ``ssh host cmd``, it may run while a deploy does, and it changes nothing releasetui
keeps.  Each host runs it once, bounded by the timeout, in parallel up to ``parallel``; each host's history
records the command, who ran it and its exit status.  ``-i`` runs it on one host with this terminal.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Optional, Sequence

from ..commands.exec import ExecResult, command_line, exec_script, interactive_script, parse_exec
from ..config import HostConfig
from ..models import HostUnreachable
from .context import OperationContext
from .hooks import hook_env


@dataclass
class ExecRun:
    """What ``exec`` did on each host: its result, or the error that kept it from running."""

    command: str
    results: dict[str, ExecResult] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    unreachable: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether it ran and exited 0 everywhere."""
        return not self.errors and all(r.exit_code == 0 for r in self.results.values())

    def groups(self) -> list[tuple[tuple, list[str]]]:
        """Hosts with the same outcome (exit status, output, or error) together, in first-seen order."""
        grouped: dict[tuple, list[str]] = {}
        for name, result in self.results.items():
            key = ("refused", result.refused, "") if result.refused else ("exit", result.exit_code, result.output)
            grouped.setdefault(key, []).append(name)
        for name, error in self.errors.items():
            grouped.setdefault(("error", error, ""), []).append(name)
        return list(grouped.items())

    def to_dict(self) -> dict:
        """The run as JSON: each host's exit status and output, and the groups."""
        hosts = {name: {"exit": r.exit_code, "output": r.output, "error": r.refused}
                 for name, r in self.results.items()}
        hosts.update({name: {"exit": None, "output": "", "error": e} for name, e in self.errors.items()})
        return {"event": "exec", "command": self.command, "ok": self.ok, "hosts": hosts}


def run_exec(ctx: OperationContext, hosts: Sequence[HostConfig], argv: Sequence[str],
             timeout: Optional[float] = None) -> ExecRun:
    """Run ``argv`` in the live build of every host in ``hosts`` (see the module docstring)."""
    command = command_line(argv)
    run = ExecRun(command)
    limit = timeout or ctx.config.script_timeout

    def one(host: HostConfig) -> ExecResult:
        ctx.connect(host)
        env = hook_env(ctx, "exec", None, None, None, host=host)
        script = exec_script(host.root, command, limit, env, ctx.record("exec", host.name, command=command))
        if ctx.dry_run:
            ctx.executor(host).record("exec", script)
            return ExecResult(output="", exit_code=0)
        done = ctx.executor(host).run(script, mutating=False, timeout=limit + 30)
        result = parse_exec(done.stdout)
        if result.refused is None and result.exit_code is None and not done.ok:
            result.refused = done.error_text()
        return result

    for name, outcome in ctx.runner.map(list(hosts), one).items():
        if outcome.ok:
            run.results[name] = outcome.value
        else:
            run.errors[name] = str(outcome.error)
            if isinstance(outcome.error, HostUnreachable):
                run.unreachable.append(name)
    return run


def interactive_command(ctx: OperationContext, host: HostConfig, argv: Sequence[str]) -> list[str]:
    """The argv that runs ``argv`` on ``host`` with this terminal: OpenSSH's ``ssh -t`` (the host's key checked
    against its known_hosts, never trusted on first use), or ``sh`` for a local host."""
    command = command_line(argv)
    script = interactive_script(host.root, command, hook_env(ctx, "exec", None, None, None, host=host),
                                ctx.record("exec", host.name, command=command, interactive=True))
    if host.transport == "local":
        return ["sh", "-c", script]
    ssh = ["ssh", "-t", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"]
    if host.known_hosts:
        ssh += ["-o", f"UserKnownHostsFile={host.known_hosts}"]
    if host.key_file:
        ssh += ["-i", str(host.key_file), "-o", "IdentitiesOnly=yes"]
    if host.port:
        ssh += ["-p", str(host.port)]
    if host.jump is not None:
        jump = host.jump
        ssh += ["-J", f"{jump.user + '@' if jump.user else ''}{jump.address}{':' + str(jump.port) if jump.port else ''}"]
    target = f"{host.user}@{host.address}" if host.user else str(host.address)
    return ssh + [target, "sh -c " + shlex.quote(script)]
