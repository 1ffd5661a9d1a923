"""The before-activate hook script: runs inside the NEW build, its venv first on PATH, before any host switches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from ..config import Hook
from ..models import check_build_id
from .base import PREAMBLE, Tagged, enter_root, env_exports, hook_failure, hook_run, op_marker, owner_check, q, \
    record_worker


def before_activate_script(root: str, token: str, build_id: str, hooks: Sequence[Hook], env: dict) -> str:
    """Run ``hooks`` in ``builds/<id>/`` (migrations, asset builds, cache warm-up); the first failure stops.

    The build is complete (venv and shared links in place) and not live yet.
    Each hook's output streams back as ``output`` steps while it runs;
    ``HOOKFAILED`` says which hook failed, how (exit code or timeout) and its
    last line of output.
    """
    check_build_id(build_id)
    lines = [f": {op_marker(token)}", PREAMBLE + enter_root(root) + owner_check(token) + record_worker(token).rstrip(),
             f"B={q(build_id)}",
             "[ -d \"builds/$B\" ] && [ -e \"builds/$B/env/bin/python\" ] || "
             "{ echo 'HOOKFAILED\tthe build or its venv is missing'; exit 1; }",
             env_exports(env).rstrip("\n"),
             "_log=$(mktemp) || exit 1", "trap 'rm -f \"$_log\"' EXIT"]
    for hook in hooks:
        lines += [
            hook_run(hook.name, hook.command, hook.timeout, "B").rstrip("\n"),
            "if [ \"$_rc\" != 0 ]; then",
            hook_failure(hook.name, hook.command, hook.timeout).rstrip("\n"),
            "  end failed \"$_why\"; printf 'HOOKFAILED\\t%s\\n' \"$_why\"; exit 1",
            "fi",
            f"end ok {q(hook.command[:200] + (' (once: on this host only)' if hook.once else ''))}",
        ]
    return "\n".join(lines) + "\necho HOOKSDONE\n"


@dataclass
class HooksReport:
    """How the hosts' hook script ended: every hook done, one failed (and why), or the lock lost."""

    done: bool
    failed: Optional[str]
    lost_lock: bool


def parse_hooks(stdout: str) -> HooksReport:
    """The hook script's tags as a :class:`HooksReport`."""
    tags = Tagged.parse(stdout)
    failed = tags.first("HOOKFAILED")
    return HooksReport(done=tags.has("HOOKSDONE"), failed="\t".join(failed) if failed else None,
                       lost_lock=tags.has("LOSTLOCK"))
