"""How a config mistake is said: one :class:`ConfigError` naming the file, the line and the key, every quoted
value cut short and escaped, and "did you mean" for near misses."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Iterable, Optional, Union

from ..text import SHOWN_CHARS, _escape, clip, show  # noqa: F401  (config's names for them)

__all__ = ["SHOWN_CHARS", "ConfigError", "clip", "listing", "show", "suggest", "suggest_word"]

_MAX_KEY_CHARS = 120      # the key path of a message
_MAX_MESSAGE_CHARS = 240  # the message itself


class ConfigError(Exception):
    """A problem with the configuration file, located by file, line and key.

    Whatever it is given, its text is one line of bounded length: control
    characters are escaped and long keys and messages are cut.
    """

    def __init__(self, path: Union[str, Path, None], line: Optional[int], key: Optional[str], message: str):
        self.path = str(path) if path is not None else "<config>"
        self.line = line
        self.key = clip(key, _MAX_KEY_CHARS) if key else key
        self.message = clip(message, _MAX_MESSAGE_CHARS)
        super().__init__(str(self))

    def __str__(self) -> str:
        path = _escape(self.path)
        where = path if self.line is None else f"{path}:{self.line}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


def suggest(name: str, choices: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for a near miss, else ``""``."""
    close = suggest_word(name, choices)
    return f"; did you mean {close!r}?" if close else ""


def suggest_word(name: str, choices: Iterable[str]) -> Optional[str]:
    """The near miss of ``name`` among ``choices``, or None."""
    if not isinstance(name, str) or len(name) > 64:  # difflib on a 200 kB name is slow and never close
        return None
    close = difflib.get_close_matches(name, sorted(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def listing(names: Iterable[str], limit: int = 160) -> str:
    """Names joined by commas, cut at about ``limit`` characters (a fleet may have hundreds)."""
    text = ", ".join(names)
    return text if len(text) <= limit else text[: limit - 1].rsplit(", ", 1)[0] + ", …"
