"""``exec``'s script: a one-off command in the live build on a host, as a hook runs (its venv first on PATH,
``RELEASETUI_*`` in its environment), bounded by a timeout and recorded in the host's history.

The command's output is captured whole and sent after a marker line, so output that looks like a tagged line
cannot be taken for one; the exit status comes last.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Sequence

from .base import PREAMBLE, env_exports, enter_root, json_prefix, q, timed

OUTPUT_MARK = "@@releasetui-exec-output"
MAX_OUTPUT_BYTES = 256 * 1024   # per host: a one-off command, not a log tail


# The history record: what the operation knew, plus the exit status and outcome only the host knows.
_RECORD = ("if [ \"$_rc\" = 0 ]; then _o=ok; else _o=\"exit $_rc\"; fi; history_append \"$(printf '%s' {prefix})"
           "\\\"exit\\\": $_rc, \\\"outcome\\\": \\\"$_o\\\"}}\"")


def command_line(argv: Sequence[str]) -> str:
    """What the host's shell runs: one argument is a shell command line (as ``ssh host 'a | b'``); several are
    quoted word by word (``exec -- grep -c 'a b' file``)."""
    return argv[0] if len(argv) == 1 else shlex.join(argv)


def exec_in_current(command: str) -> str:
    """Shell that runs ``command`` in the live build with its venv first on PATH (the caller has entered the root)."""
    return ('cd current 2>/dev/null && PATH="$PWD/env/bin:$PATH" && VIRTUAL_ENV="$PWD/env" && '
            f"export PATH VIRTUAL_ENV && exec sh -c {q(command)}")


def interactive_script(root: str, command: str, env: dict, history: dict) -> str:
    """``exec -i``: the command in ``current`` with the terminal it is given, recorded in history afterwards."""
    return (PREAMBLE + enter_root(root) + env_exports(env)
            + "RELEASETUI_BUILD_ID=$(current_id); export RELEASETUI_BUILD_ID\n"
            + f"( {exec_in_current(command)} ); _rc=$?\n"
            + f"{_RECORD.format(prefix=q(json_prefix(history)))}\nexit $_rc\n")


def exec_script(root: str, command: str, timeout: float, env: dict, history: dict) -> str:
    """Run ``command`` in ``current`` on one host, capture its output (capped) and exit status, record both."""
    lines = [PREAMBLE + enter_root(root).rstrip("\n"),
             "[ -e current/env/bin/python ] || { echo 'EXECREFUSED\tno live build with a venv here'; exit 0; }",
             env_exports(env).rstrip("\n"),
             "_out=$(mktemp) || exit 1", "trap 'rm -f \"$_out\"' EXIT",
             'RELEASETUI_BUILD_ID=$(current_id); export RELEASETUI_BUILD_ID',
             f"{timed(exec_in_current(command), timeout)} >\"$_out\" 2>&1; _rc=$?",
             f"echo {OUTPUT_MARK}",
             f"head -c {MAX_OUTPUT_BYTES} \"$_out\"",
             f"[ \"$(wc -c < \"$_out\")\" -gt {MAX_OUTPUT_BYTES} ] && printf '\\n[output cut at {MAX_OUTPUT_BYTES // 1024} KiB]'",
             f"printf '\\n{OUTPUT_MARK}-end\\t%s\\n' \"$_rc\"",
             _RECORD.format(prefix=q(json_prefix(history)))]
    return "\n".join(lines) + "\n"


@dataclass
class ExecResult:
    """One host's answer: the command's combined output and exit status, or why it did not run."""

    output: str = ""
    exit_code: int | None = None
    refused: str | None = None


def parse_exec(stdout: str) -> ExecResult:
    """Split :func:`exec_script`'s output into the command's output and its exit status."""
    head, marker, rest = stdout.partition(OUTPUT_MARK + "\n")
    # Only what the script printed before the marker is the script's: after it, anything is the command's.
    for line in head.splitlines():
        if line == "NOROOT":
            return ExecResult(refused="no live build with a venv here (no project root yet)")
        if line.startswith("EXECREFUSED\t"):
            return ExecResult(refused=line.split("\t", 1)[1])
    if not marker:
        return ExecResult(refused="the host sent no result")
    body, end, tail = rest.rpartition(f"\n{OUTPUT_MARK}-end\t")
    if not end:
        return ExecResult(output=rest, refused="the command's result was cut short")
    status = tail.split("\n", 1)[0].strip()
    return ExecResult(output=body, exit_code=int(status) if status.isdigit() else None)
