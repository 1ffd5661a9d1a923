"""Hooks: the environment every hook gets, the local ones (run here), and the before-activate phase (run there)."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from typing import Optional, Sequence

from .. import commands
from ..commands.hooks import before_activate_script, parse_hooks
from ..config import HostConfig, Hook
from ..text import clean_line
from .context import OperationContext


def hook_env(ctx: OperationContext, operation: str, build_id: Optional[str], previous: Optional[str],
             git_commit: Optional[str] = None, host: Optional[HostConfig] = None,
             hosts: Sequence[HostConfig] = ()) -> dict:
    """``RELEASETUI_*`` for a hook: on a host (``host``) or here (``hosts``).

    ``PYTHONUNBUFFERED=1`` too: a Python hook's output then streams as it is printed, in order with its errors,
    instead of arriving all at once when it exits.
    """
    env = {"RELEASETUI_BUILD_ID": build_id or "", "RELEASETUI_PREVIOUS_BUILD_ID": previous or "",
           "RELEASETUI_OPERATION": operation, "RELEASETUI_GIT_COMMIT": git_commit or "",
           "RELEASETUI_PROJECT": ctx.config.project, "RELEASETUI_DEPLOYED_BY": ctx.identity,
           "PYTHONUNBUFFERED": "1", "RELEASETUI_STAGE": ctx.config.stage or ""}
    if host is not None:
        env["RELEASETUI_HOST"] = host.name
        env["RELEASETUI_ROOT"] = host.root
    else:
        env["RELEASETUI_HOSTS"] = " ".join(h.name for h in hosts)
        env["RELEASETUI_ROOT"] = " ".join(sorted({h.root for h in hosts}))
    return env


def run_local_hooks(ctx: OperationContext, name: str, env: dict) -> Optional[str]:
    """Run the local hooks called ``name`` here, in the config's directory; None when all passed, else why not.

    Their output is streamed as events (host ``-``); each is bounded by its timeout.
    """
    hooks = [h for h in ctx.config.hooks if h.name == name]
    for hook in hooks:
        if ctx.dry_run:
            ctx.report(None, name, "dry-run", message=f"would run here: {hook.command}")
            continue
        started = time.monotonic()
        ctx.report(None, name, "started", phase="hooks")
        proc = subprocess.Popen(["sh", "-c", hook.command], cwd=str(ctx.config.path.parent), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, **env},
                                start_new_session=True)

        def pump() -> None:
            for raw in proc.stdout:
                ctx.report(None, name, "output", message=clean_line(raw.decode("utf-8", "replace").rstrip("\n"), 400),
                           phase="hooks")

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            code = proc.wait(timeout=hook.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            code = None
        reader.join(timeout=5)
        why = None if code == 0 else (f"timed out after {hook.timeout:g}s" if code is None else f"exit {code}")
        ctx.report(None, name, "ok" if why is None else "failed", time.monotonic() - started,
                   hook.command if why is None else f"{hook.command}: {why}", "hooks")
        if why is not None:
            return f"{name} hook {hook.command!r} failed: {why}"
    return None


def once_host(hook: Hook, hosts: Sequence[HostConfig]) -> Optional[HostConfig]:
    """Where a ``once: true`` hook runs: its ``host`` when targeted, else the first targeted host carrying it.

    "First" is in config order, so the same host runs it every time the same
    hosts are targeted.
    """
    carrying = [h for h in hosts if hook in h.hooks]
    if hook.host:
        named = [h for h in carrying if h.name == hook.host]
        return named[0] if named else None
    return carrying[0] if carrying else None


def once_refusals(hosts: Sequence[HostConfig]) -> list[str]:
    """A ``once`` hook pinned to a host (``host: web1``) that this operation does not target would silently not
    run (a migration skipped): each such hook, as one line saying how to fix it."""
    problems = []
    targeted = {h.name for h in hosts}
    seen: set = set()
    for host in hosts:
        for hook in host.hooks:
            if hook.name == "before_activate" and hook.once and hook.host and hook not in seen:
                seen.add(hook)
                if hook.host not in targeted:
                    problems.append(f"the before_activate hook {hook.command!r} runs once, on {hook.host}, which "
                                    f"this deploy does not target: add --host {hook.host}")
    return problems


def before_activate_plan(hosts: Sequence[HostConfig]) -> dict[str, list[Hook]]:
    """Which before-activate hooks run on which host (``once`` ones on one host only), in each host's order."""
    plan: dict[str, list[Hook]] = {h.name: [] for h in hosts}
    chosen = {}
    for host in hosts:
        for hook in host.hooks:
            if hook.name == "before_activate" and hook.once and hook not in chosen:
                target = once_host(hook, hosts)
                chosen[hook] = target.name if target is not None else None
    for host in hosts:
        for hook in host.hooks:
            if hook.name != "before_activate":
                continue
            if not hook.once or chosen.get(hook) == host.name:
                plan[host.name].append(hook)
    return plan


def describe_hooks(ctx: OperationContext, hosts: Sequence[HostConfig], operation: str, build_id: Optional[str]) -> None:
    """``--dry-run``: every hook the operation would run, where, and when (as ``dry-run`` events)."""
    local = {name: [h for h in ctx.config.hooks if h.name == name] for name in ("local_before", "local_after",
                                                                                 "local_failed")}
    when = {"local_before": "here, before anything changes", "local_after": "here, once it succeeded",
            "local_failed": "here, if it fails"}
    for hook in local["local_before"]:
        ctx.report(None, hook.name, "dry-run", message=f"would run {when[hook.name]}: {hook.command}")
    remote = before_activate_plan(hosts) if operation == "deploy" else {h.name: [] for h in hosts}
    after = "after_activate" if operation == "deploy" else "after_rollback"
    where = f"builds/{build_id}" if build_id else "the new build"
    for host in hosts:
        for hook in remote[host.name]:
            once = " (once: this host only)" if hook.once else ""
            ctx.report(host.name, hook.name, "dry-run",
                       message=f"would run in {where}, its venv first on PATH, before any host switches{once}: "
                               f"{hook.command}")
        for hook in (h for h in host.hooks if h.name == after):
            ctx.report(host.name, hook.name, "dry-run",
                       message=f"would run in {where} after its switch and restart (a failure switches back): "
                               f"{hook.command}")
    for name in ("local_after", "local_failed"):
        for hook in local[name]:
            ctx.report(None, hook.name, "dry-run", message=f"would run {when[name]}: {hook.command}")


# What run_before_activate says of a host whose hooks were stopped by an interrupt: not a failure of its own.
INTERRUPTED = "interrupted"


def run_before_activate(ctx: OperationContext, hosts: Sequence[HostConfig], build_id: str,
                        previous: dict, git_commit: Optional[str]) -> dict[str, Optional[str]]:
    """Run the before-activate hooks on every host that has some; host -> None (passed), :data:`INTERRUPTED`, or
    why it failed."""
    plan = before_activate_plan(hosts)
    results: dict[str, Optional[str]] = {}
    with_hooks = [h for h in hosts if plan.get(h.name)]
    if not with_hooks:
        return results

    def one(host: HostConfig) -> Optional[str]:
        env = hook_env(ctx, "deploy", build_id, previous.get(host.name), git_commit, host=host)
        script = before_activate_script(host.root, ctx.token, build_id, plan[host.name], env)
        timeout = sum(h.timeout for h in plan[host.name]) + ctx.config.script_timeout
        result = ctx.run(host, script, phase="hooks", timeout=timeout)
        parsed = parse_hooks(result.stdout)
        if parsed.done and result.ok:
            return None
        if parsed.lost_lock:
            return "its lock was removed (unlock?) before the hooks ran"
        if result.stopped:
            return INTERRUPTED
        return parsed.failed or result.error_text()

    for name, outcome in ctx.runner.map(with_hooks, one).items():
        results[name] = outcome.value if outcome.ok else clean_line(str(outcome.error), 300)
    return results


__all__ = ["INTERRUPTED", "before_activate_plan", "describe_hooks", "hook_env", "once_host", "once_refusals",
           "run_before_activate", "run_local_hooks", "commands"]
