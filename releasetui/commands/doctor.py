"""``doctor``'s script: what a host needs to take a deploy, checked in the same round trip as the read.

It runs before the (read-only) listing of :func:`~releasetui.commands.read.read_script`, so one script tells
both what the host has (interpreter, venv, pip, GNU ``mv -T`` and ``timeout``, free disk and inodes, write
permission, ``sudo -n`` when ``restart`` needs it, its clock) and what its root holds (locks, damaged builds,
missing shared files).  Nothing is changed: a scratch directory from ``mktemp`` is made and removed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from .base import Tagged, q

_CHECK = "_chk() { printf 'CHECK\\t%s\\t%s\\t%s\\n' \"$1\" \"$2\" \"$3\"; }\n"


def doctor_script(root: str, python: str, sudo: bool) -> str:
    """The checks, printed as ``CHECK name ok|fail|warn detail``, ``CLOCK``, ``DISK`` and ``INODES`` lines."""
    r, py = q(root), q(python)
    lines = [
        _CHECK,
        "printf 'CLOCK\\t%s\\n' \"$(date -u +%s.%N 2>/dev/null)\"",
        # The nearest existing folder on the way to the root: where the first deploy will make it.
        f"_d={r}; while [ ! -d \"$_d\" ]; do _d=$(dirname -- \"$_d\"); done",
        f"if _v=$(cd \"$_d\" && {py} -c 'import sys, venv; print(\"%d.%d.%d\" % sys.version_info[:3])' 2>&1 </dev/null);"
        " then _chk python ok \"$_v\"; else _chk python fail \"$(printf '%s' \"$_v\" | tail -n 1)\"; fi",
        f"if _v=$(cd \"$_d\" && {py} -m pip --version 2>/dev/null </dev/null); then _chk pip ok \"${{_v#pip }}\"; "
        "else _chk pip warn 'no pip in that interpreter (new venvs fall back to ensurepip: slower)'; fi",
        "if command -v timeout >/dev/null 2>&1; then _chk timeout ok ''; "
        "else _chk timeout fail 'GNU timeout is missing (coreutils): restarts and hooks cannot be bounded'; fi",
        "_t=$(mktemp -d 2>/dev/null) && ln -s x \"$_t/a\" && mv -Tf \"$_t/a\" \"$_t/b\" 2>/dev/null "
        "&& _chk mv ok '' || _chk mv fail 'mv -T is missing (GNU coreutils): current cannot be switched atomically'; "
        "[ -n \"$_t\" ] && rm -rf -- \"$_t\"",
        "if [ -w \"$_d\" ]; then _chk write ok \"$_d\"; else _chk write fail \"$_d is not writable by $(id -un)\"; fi",
        "df -Pk \"$_d\" 2>/dev/null | awk 'NR==2 {print \"DISK\\t\" $4}'",
        "df -Pi \"$_d\" 2>/dev/null | awk 'NR==2 {print \"INODES\\t\" $4}'",
    ]
    if sudo:
        lines.append("if sudo -n true 2>/dev/null </dev/null; then _chk sudo ok ''; "
                     "else _chk sudo fail 'sudo -n needs a password (restart uses sudo)'; fi")
    return "\n".join(lines) + "\n"


@dataclass
class DoctorReport:
    """What :func:`doctor_script` printed: each check's status and detail, the host's clock, free disk."""

    checks: dict[str, tuple[str, str]] = field(default_factory=dict)
    clock: Optional[float] = None        # the host's time, seconds since the epoch
    disk_kb: Optional[int] = None        # free under the root (or where it will be made)
    inodes: Optional[int] = None


def parse_doctor(stdout: str) -> DoctorReport:
    """Turn :func:`doctor_script`'s lines into a :class:`DoctorReport` (the read script's lines are ignored)."""
    tags = Tagged.parse(stdout)
    report = DoctorReport()
    for fields in tags.all("CHECK"):
        if len(fields) >= 2 and fields[1] in ("ok", "fail", "warn"):
            report.checks[fields[0]] = (fields[1], "\t".join(fields[2:]))

    def number(tag: str) -> Optional[int]:
        text = tags.value(tag).strip()
        return int(text) if text.isdigit() else None

    report.disk_kb, report.inodes = number("DISK"), number("INODES")
    # GNU date gives nanoseconds; another prints "%N" as it is, and then the whole seconds still count.
    seconds = tags.value("CLOCK").strip().split(".")
    if seconds[0].isdigit():
        fraction = seconds[1] if len(seconds) > 1 and seconds[1].isdigit() else "0"
        report.clock = float(f"{seconds[0]}.{fraction}")
    return report
