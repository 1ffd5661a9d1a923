"""The before-activate hook script: runs inside the NEW build, its venv first on PATH, before any host switches."""

from __future__ import annotations

from typing import Sequence

from ..config import Hook
from ..models import check_build_id
from .base import PREAMBLE, Tagged, enter_root, env_exports, op_marker, owner_check, q, record_worker, timed


def before_activate_script(root: str, token: str, build_id: str, hooks: Sequence[Hook], env: dict) -> str:
    """Run ``hooks`` in ``builds/<id>/`` (migrations, asset builds, cache warm-up); the first failure stops.

    Each hook's output comes back as ``output`` steps; ``HOOKFAILED`` names
    the hook that failed (exit code or timeout).
    """
    check_build_id(build_id)
    lines = [f": {op_marker(token)}", PREAMBLE + enter_root(root) + owner_check(token) + record_worker(token).rstrip(),
             f"cd builds/{q(build_id)} || {{ echo 'HOOKFAILED\tbuild directory missing'; exit 1; }}",
             'PATH="$PWD/env/bin:$PATH"; export PATH; VIRTUAL_ENV="$PWD/env"; export VIRTUAL_ENV',
             env_exports(env).rstrip("\n"),
             "_log=$(mktemp) || exit 1", "trap 'rm -f \"$_log\"' EXIT"]
    for hook in hooks:
        secs = int(max(1, round(hook.timeout)))
        lines += [
            f"begin {hook.name}",
            f"{timed(hook.command, hook.timeout)} >\"$_log\" 2>&1; _rc=$?",
            f"while IFS= read -r _l; do say {hook.name} \"$_l\"; done < \"$_log\"",
            "if [ \"$_rc\" != 0 ]; then",
            f"  if [ \"$_rc\" = 124 ]; then _why={q(f'timed out after {secs}s')}; else _why=\"exit $_rc\"; fi",
            f"  end failed \"$_why\"; printf 'HOOKFAILED\\t%s: %s\\n' {q(hook.command[:80])} \"$_why\"; exit 1",
            "fi",
            "end ok",
        ]
    return "\n".join(lines) + "\necho HOOKSDONE\n"


def parse_hooks(stdout: str) -> dict:
    """``{"done": bool, "failed": reason or None, "lost_lock": bool}``."""
    tags = Tagged.parse(stdout)
    failed = tags.first("HOOKFAILED")
    return {"done": tags.has("HOOKSDONE"), "failed": "\t".join(failed) if failed else None,
            "lost_lock": tags.has("LOSTLOCK")}
