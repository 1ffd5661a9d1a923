"""Making text from elsewhere safe to show: remote output, log lines, lock files, metadata.

A host's files are not ours to trust: a log line may carry ANSI escape
sequences that move the cursor or retitle the terminal, a lock file may be
5 MB.  Everything that reaches a terminal (CLI or TUI) from a host goes
through :func:`clean` first.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

# CSI/OSC/other escape sequences first (so their parameters go with them), then any other control character.
_ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])|\x9b[0-?]*[ -/]*[@-~]")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: Any, limit: int = 0) -> str:
    """``text`` with escape sequences removed and other control characters shown as ``?``.

    Tabs become spaces; newlines are kept (callers split lines).  With
    ``limit`` > 0 the result is cut to that many characters with an ellipsis.
    """
    if not isinstance(text, str):
        text = str(text)
    text = _ESCAPES.sub("", text).replace("\t", " ")
    text = _CONTROLS.sub("?", text)
    return shorten(text, limit) if limit else text


def clean_line(text: Any, limit: int = 0) -> str:
    """Like :func:`clean`, for one line: newlines become spaces too."""
    return clean(text, limit).replace("\n", " ")


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, ending in an ellipsis when it was longer."""
    if limit <= 0 or len(text) <= limit:
        return text
    return text[: max(0, limit - 1)] + "…"


_NUMBERED = re.compile(r"^(.*?)(\d+)$")


def host_list(names: Sequence[str], limit: int = 6) -> str:
    """``web01..web48`` for a numbered run, else ``a, b, c``; long lists end in ``… (+N more)``."""
    names = list(names)
    if not names:
        return "no host"
    runs: list[list[str]] = []
    for name in names:
        match = _NUMBERED.match(name)
        if runs and match:
            last = _NUMBERED.match(runs[-1][-1])
            if last and last.group(1) == match.group(1) and len(last.group(2)) == len(match.group(2)) \
                    and int(match.group(2)) == int(last.group(2)) + 1:
                runs[-1].append(name)
                continue
        runs.append([name])
    parts = [f"{run[0]}..{run[-1]}" if len(run) > 2 else ", ".join(run) for run in runs]
    if len(parts) > limit:
        return ", ".join(parts[:limit]) + f", … (+{sum(len(r) for r in runs[limit:])} more)"
    return ", ".join(parts)


SHOWN_CHARS = 80          # a value quoted in a message is cut to this


def _escape(text: str) -> str:
    """``text`` with every non-printable character written as an escape, so a message stays one line."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def clip(text: str, limit: int) -> str:
    """``text`` on one line and at most ``limit`` characters, ending in an ellipsis when cut."""
    text = _escape(text[: limit * 2])  # escaping at most quadruples; never escape a 200 kB value whole
    return text if len(text) <= limit else text[: limit - 1] + "…"


def show(value: Any) -> str:
    """A value as a message may quote it: one line, at most about :data:`SHOWN_CHARS` characters."""
    if isinstance(value, str):
        return repr(clip(value, SHOWN_CHARS))
    return clip(repr(value), SHOWN_CHARS)


def group_hosts(values: Mapping[str, object]) -> list[tuple[object, list[str]]]:
    """Hosts grouped by value, biggest group first (ties: first seen)."""
    groups: dict[object, list[str]] = {}
    for host, value in values.items():
        groups.setdefault(value, []).append(host)
    return sorted(groups.items(), key=lambda item: -len(item[1]))
