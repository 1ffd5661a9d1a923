"""The one clock releasetui reads wall time through: build ids, history times, lock ``since``.

Durations and deadlines never use it (they use :func:`time.monotonic`, which
no clock change moves).  Tests set the wall clock here instead of sleeping to
the next second or comparing a fixed date with now:

- in the same process, :func:`set_clock` installs any ``() -> datetime``;
- for a ``releasetui`` subprocess, ``RELEASETUI_CLOCK=2030-01-01T00:00:00Z``
  makes the clock read that instant when the process starts and advance in
  real time from there (so durations stay true).
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone
from typing import Callable, Optional

ENV_VAR = "RELEASETUI_CLOCK"
ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
BUILD_ID_FORMAT = "%Y%m%d%H%M%S"

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The machine's wall clock, in UTC."""
    return datetime.now(timezone.utc)


def parse_iso(text: str) -> datetime:
    """``2030-01-01T00:00:00Z`` (or with an offset) as an aware datetime; ValueError if it is not one."""
    when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if when.tzinfo is None:
        raise ValueError(f"{text!r} names no time zone (end it with Z)")
    return when.astimezone(timezone.utc)


def parse_stamp(text: object) -> Optional[datetime]:
    """A stamp releasetui wrote (``2026-11-28T10:15:00Z``, as :func:`iso` writes it) as an aware UTC datetime; None
    for anything else (a record or metadata from a host is untrusted)."""
    if not isinstance(text, str):
        return None
    try:
        return datetime.strptime(text, ISO_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def clock_from_env(environ: Optional[dict] = None) -> Optional[Clock]:
    """The clock ``RELEASETUI_CLOCK`` asks for (None when unset); ValueError when its value is not a time."""
    value = (os.environ if environ is None else environ).get(ENV_VAR)
    if not value:
        return None
    start, anchor = parse_iso(value), time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - anchor)


_clock: Optional[Clock] = None


def set_clock(clock: Optional[Clock]) -> Optional[Clock]:
    """Install ``clock`` (None: back to ``RELEASETUI_CLOCK`` or the system clock); returns the previous one."""
    global _clock
    previous, _clock = _clock, clock
    return previous


def now() -> datetime:
    """The current time in UTC, through the installed clock."""
    global _clock
    if _clock is None:
        try:
            _clock = clock_from_env() or system_clock
        except ValueError:
            _clock = system_clock  # the CLI refuses a bad RELEASETUI_CLOCK before any operation starts
    return _clock()


def iso(when: Optional[datetime] = None) -> str:
    """``2026-11-28T10:15:00Z`` (now, unless ``when`` is given)."""
    return (when or now()).astimezone(timezone.utc).strftime(ISO_FORMAT)


def build_id_at(when: Optional[datetime] = None) -> str:
    """The build id for a deploy starting at ``when`` (now): ``%Y%m%d%H%M%S`` in UTC."""
    return (when or now()).astimezone(timezone.utc).strftime(BUILD_ID_FORMAT)
