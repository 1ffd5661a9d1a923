"""``wheels: ship`` when this machine cannot build for the hosts: the wheelhouse is built on one host and brought here.

ONE script, run on the builder host under the deploy's lock (before anything
is prepared anywhere): ``<host python> -m pip wheel`` of the resolved
requirements (carried in the script) into a temporary folder inside the project
root, then the wheels written to stdout as text, each announced by
``WHEEL<TAB>name<TAB>size<TAB>sha256`` and followed by its bytes in base64 lines
of at most :data:`LINE_CHARS` characters (``W64<TAB>...``: the executor decodes
stdout as text and joins a line's pieces, so no line may be huge), then
``WHEELSEND<TAB>count``.  The temporary folder goes on every exit (a trap):
the host is left exactly as it was.  :func:`parse_wheelhouse` checks every
name, size and checksum before the client keeps anything.
"""

from __future__ import annotations

import binascii
import hashlib
import io
import re
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Optional, Sequence

from .base import (CLEAN_LEFTOVERS, LOST_LOCK_EXIT, PREAMBLE, TMP_PREFIX, check_venv_key, enter_root, op_marker,
                   owner_check, q, record_worker, refuse_linked_layout)
from .venv import REQUIREMENTS_END, requirements_lines

RAW_PER_LINE = 36 * 1024                 # bytes of a wheel per W64 line...
LINE_CHARS = RAW_PER_LINE // 3 * 4       # ...48 KiB of base64 (plus the tag): what one line may carry
# A wheel's file name as the client accepts it: no path separator, no leading dot, nothing a shell would read.
WHEEL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+!-]{0,250}\.whl")

# Runs with the host's Python (3.6 or newer, -I -S: the standard library only): every wheel of the folder given,
# by name, announced then sent in bounded base64 lines (bytes on stdout: a name is never re-encoded by a locale).
EMIT_PY = r'''
import binascii, hashlib, os, sys
folder, out, raw = sys.argv[1], sys.stdout.buffer, int(sys.argv[2])
names = sorted(n for n in os.listdir(folder) if n.endswith(".whl"))
for name in names:
    path = os.path.join(folder, name)
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    out.write(b"WHEEL\t" + os.fsencode(name) + ("\t%d\t%s\n" % (size, digest.hexdigest())).encode("ascii"))
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(raw), b""):
            out.write(b"W64\t" + binascii.b2a_base64(chunk))
out.write(("WHEELSEND\t%d\n" % len(names)).encode("ascii"))
'''


def host_pip_wheel(python: str, pip_args: Sequence[str], requirements: str = '"$_wd/requirements.txt"',
                   into: str = '"$_wd/wheels"') -> str:
    """The ``pip wheel`` the builder host runs (also what a dry run shows): no cache written in the host's home
    (``--no-cache-dir``), the config's ``pip_args`` last."""
    extra = "".join(" " + q(a) for a in pip_args)
    return (f"{q(python)} -m pip wheel -q --disable-pip-version-check --no-cache-dir -r {requirements} "
            f"-w {into}{extra}")


def wheelhouse_script(root: str, token: str, *, key: str, python: str, requirements_text: str,
                      pip_args: Sequence[str], install_timeout: float) -> str:
    """The script that builds the wheelhouse ``key`` on the builder host and writes it to stdout (see the module
    docstring); it stops (``LOSTLOCK``) when the lock no longer carries ``token``, before and after pip."""
    check_venv_key(key)
    if REQUIREMENTS_END in requirements_text.splitlines():
        raise ValueError("the requirements text holds the here-document's end line")
    pip_timeout = int(max(30, install_timeout - 30))
    start = f": {op_marker(token)}\n" + PREAMBLE + enter_root(root) + owner_check(token) + refuse_linked_layout()
    return start + record_worker(token) + f"""{CLEAN_LEFTOVERS}_wd=$(mktemp -d {TMP_PREFIX}XXXXXX) || exit 1
# On every exit, an interrupt's or unlock's TERM included: pip stopped first (`timeout` leads a process group of its
# own, which the signal to this script's group does not reach; told, it stops its whole group), the folder removed
# at once (the KILL that follows the TERM by 0.2 s may not wait), and again once pip is gone.  What a KILL still
# leaves, the release that ends the deploy removes: the host is as it was.
_pp=''
_stop_pip() {{ [ -n "$_pp" ] || return 0; kill -TERM "$_pp" 2>/dev/null; rm -rf -- "$_wd"; wait "$_pp"; }}
trap '_stop_pip; rm -rf -- "$_wd"' EXIT
trap 'exit 130' INT TERM HUP
trap 'exit 141' PIPE  # the client gone: dash would die of SIGPIPE without running the EXIT trap
mkdir "$_wd/wheels" "$_wd/tmp" || exit 1
begin wheelhouse
{requirements_lines("requirements.txt", requirements_text, python, target='"$_wd/requirements.txt"')}\
# pip's own temporary files (an sdist built into a wheel) in the folder the trap removes.  In the background, so
# a signal is handled at once (a shell runs its traps only once a foreground command ends).
TMPDIR="$PWD/$_wd/tmp" timeout -k 10 {pip_timeout} {host_pip_wheel(python, pip_args)} >"$_wd/log" 2>&1 </dev/null &
_pp=$!
wait "$_pp"; _rc=$?; _pp=''
if [ "$_rc" != 0 ]; then
  if [ "$_rc" = 124 ] || [ "$_rc" = 137 ]; then _why={q(f'timed out after {pip_timeout}s')}
  else _why=$(tail -n 3 "$_wd/log" | _clean); fi
  end failed "pip wheel: $_why"; printf 'WHEELSFAILED\\t%s\\n' "$_why"; exit 1
fi
owns_lock || {{ end failed "the lock was removed"; echo LOSTLOCK; lock_info; exit {LOST_LOCK_EXIT}; }}
end ok "built $(ls "$_wd/wheels" | grep -c '[.]whl$') wheel(s) for {key}"
{q(python)} -I -S -c {q(EMIT_PY)} "$_wd/wheels" {RAW_PER_LINE} || exit 1
"""


@dataclass
class BuiltWheelhouse:
    """What the builder host sent: each wheel's name and bytes (checked), or why not."""

    wheels: list = field(default_factory=list)     # [(name, bytes)], in the order sent (parse_wheelhouse only)
    complete: bool = False                         # WHEELSEND came, and every wheel announced arrived whole
    failed: Optional[str] = None                   # pip's last words when it failed
    lost_lock: bool = False
    problem: Optional[str] = None                  # what arrived wrong (a name, a size, a checksum)


class WheelhouseReader:
    """The builder host's output read line by line as it arrives (:meth:`take`): each wheel's bytes go straight to
    the binary file ``open_wheel(name)`` returns (the caller's), its size and sha256 checked as they come, so a
    wheelhouse of any size is never held in memory.  Every name matches :data:`WHEEL_NAME` (no path, no leading
    dot or dash, no repeat); the count at the end is the count received.  The first problem stops the reading
    (``report.problem``): nothing of a wheelhouse with a problem is to be kept."""

    def __init__(self, open_wheel: Callable[[str], BinaryIO]):
        self.open_wheel = open_wheel
        self.report = BuiltWheelhouse()
        self.names: list[str] = []                 # the wheels received whole, in the order sent
        self._current: Optional[list] = None       # [name, size, sha256, hasher, file, bytes so far]
        self._done = False

    def take(self, line: str) -> bool:
        """Read one line of the output; whether to keep it in the script's output (a wheel's bytes need not be)."""
        if self._done:
            return not line.startswith("W64\t")
        tag, _, rest = line.partition("\t")
        if tag == "W64":
            if self._current is None:
                self._stop("wheel data came before its name")
            else:
                self._write(rest)
            return False
        if tag in ("WHEEL", "WHEELSEND") and self._current is not None:
            self._close_current()
        if self._done:
            return tag != "WHEEL"
        if tag == "WHEEL":
            self._open(rest.split("\t"))
            return False
        if tag == "WHEELSEND":
            self.report.complete = rest.strip() == str(len(self.names))
            if not self.report.complete:
                self.report.problem = f"{len(self.names)} wheel(s) arrived of the {rest.strip()[:20]} sent"
            self._done = True
        elif tag == "WHEELSFAILED":
            self.report.failed = rest.strip() or "pip wheel failed"
        elif tag == "LOSTLOCK":
            self.report.lost_lock = True
        return True

    def end(self) -> BuiltWheelhouse:
        """The report, once the output has ended (a wheel still open then did not arrive whole)."""
        if self._current is not None:
            self._stop(f"{self._current[0]} did not arrive whole")
        return self.report

    def _open(self, fields: list) -> None:
        name = fields[0]
        if not WHEEL_NAME.fullmatch(name) or name.lower() in (n.lower() for n in self.names):
            self._stop(f"refusing the wheel name {name[:120]!r}")
        elif len(fields) != 3 or not fields[1].isdigit() or not re.fullmatch(r"[0-9a-f]{64}", fields[2]):
            self._stop(f"the announcement of {name} is not a size and a sha256")
        else:
            self._current = [name, int(fields[1]), fields[2], hashlib.sha256(), self.open_wheel(name), 0]

    def _write(self, text: str) -> None:
        current = self._current
        try:
            data = binascii.a2b_base64(text)
        except (binascii.Error, ValueError):
            self._stop(f"{current[0]} arrived damaged (bad base64)")
            return
        current[5] += len(data)
        if current[5] > current[1]:
            self._stop(f"{current[0]} arrived damaged (size or checksum mismatch)")
            return
        current[3].update(data)
        current[4].write(data)

    def _close_current(self) -> None:
        name, size, sha, hasher, handle, got = self._current
        self._current = None
        handle.close()
        if got != size or hasher.hexdigest() != sha:
            self._stop(f"{name} arrived damaged (size or checksum mismatch)")
        else:
            self.names.append(name)

    def _stop(self, problem: str) -> None:
        if self._current is not None:
            self._current[4].close()
            self._current = None
        self.report.problem = problem
        self._done = True


class _Kept(io.BytesIO):
    """A wheel's bytes kept in memory, readable after :class:`WheelhouseReader` closes it."""

    def close(self) -> None:
        pass


def parse_wheelhouse(stdout: str) -> BuiltWheelhouse:
    """The builder host's whole output, read by :class:`WheelhouseReader` into memory: ``wheels`` are
    ``[(name, bytes)]`` (for the tests and small outputs; a deploy streams them to disk instead)."""
    kept: dict = {}
    reader = WheelhouseReader(lambda name: kept.setdefault(name, _Kept()))
    for line in stdout.splitlines():
        reader.take(line)
    report = reader.end()
    if report.problem is None:
        report.wheels = [(name, kept[name].getvalue()) for name in reader.names]
    return report


__all__ = ["BuiltWheelhouse", "CLEAN_LEFTOVERS", "EMIT_PY", "LINE_CHARS", "RAW_PER_LINE", "TMP_PREFIX", "WHEEL_NAME",
           "WheelhouseReader", "host_pip_wheel", "parse_wheelhouse", "wheelhouse_script"]
