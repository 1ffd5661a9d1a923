"""What a build's venv is made from: the app's requirements source, resolved to pinned lines pip and uv install.

Pure: it reads files under the source directory and nothing else (no network, no subprocess).

Sources, and the order :func:`detect` tries them in when ``requirements:`` is unset (a lock first: it says
exactly what to install, where the others name ranges)::

    pylock.toml      PEP 751: every package listed, each with its marker
    uv.lock          the project's dependencies (plus the extras named), walked through the lock
    poetry.lock      the main group (plus the extras named); lock-version 2.1, what Poetry 2 writes
    requirements.txt as is (the host installs from the build's own copy, so ``-r``/``-c`` includes work)
    pyproject.toml   ``[project] dependencies`` plus the named ``optional-dependencies``

From a lock come ``name==version`` lines (``name @ url`` for a git or URL source) that keep each environment
marker, so the HOST decides what applies to it (pip and uv evaluate them).  The app itself is never in them
(the lock's editable, virtual or directory entries: it changes every build, and runs from its build).

The venv key digests what resolves the environment: a ``.txt`` file's bytes (as releasetui always did), else
the resolved text, so a lock change changes it and an edit of pyproject.toml that leaves its dependencies
alone does not.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

LOCKS = ("pylock.toml", "uv.lock", "poetry.lock")
AUTO_ORDER = LOCKS + ("requirements.txt", "pyproject.toml")
RESOLVED_NAME = ".releasetui-requirements.txt"   # the resolved text on the host, beside the build's metadata
MAX_BYTES = 16 * 1024 * 1024


from .checks import REQ_HEAD, RequirementsError, normalize
from .locks import from_poetry_lock, from_pylock, from_pyproject, from_uv_lock


@dataclass(frozen=True)
class Requirements:
    """The resolved requirements of one source: ``path`` (inside the source), its ``kind``, the ``text`` pip and
    uv install, and ``sha256`` (the venv key's input)."""

    path: str
    kind: str                  # txt | pyproject | uv.lock | poetry.lock | pylock
    text: str
    sha256: str
    extras: tuple[str, ...] = ()

    @property
    def carried(self) -> Optional[str]:
        """The text the host must be given (None for a ``.txt``: the host installs from the build's own copy)."""
        return None if self.kind == "txt" else self.text

    @property
    def label(self) -> str:
        """``uv.lock`` or ``pyproject.toml [web, pg]``, for output lines."""
        return self.path + (f" [{', '.join(self.extras)}]" if self.extras else "")

    def unpinned_wheels(self, names: Sequence[str]) -> list[str]:
        """Which of the wheel file ``names`` (a wheelhouse built on a host) a lock does not account for: a package it
        does not list, or another version than it pins.  Only a lock lists every package a venv gets; from any other
        source nothing can be said ([] always)."""
        if self.kind not in ("uv.lock", "poetry.lock", "pylock"):
            return []
        pins: dict = {}
        for line in self.text.splitlines():
            head = REQ_HEAD.match(line)
            if head:
                version = re.match(r"\s*==\s*([^\s;]+)", line[head.end():])
                pins.setdefault(normalize(head.group(1)), set()).add(version.group(1).lower() if version else None)
        wrong = []
        for name in names:
            dist, _, rest = name.partition("-")
            version = rest.split("-", 1)[0].lower()
            allowed = pins.get(normalize(dist))
            if allowed is None or (None not in allowed and version not in allowed):
                wrong.append(name)
        return wrong


def kind_of(path: str) -> Optional[str]:
    """Which kind of source the file name says ``path`` is (None when it is none releasetui reads)."""
    name = path.rsplit("/", 1)[-1]
    if name.endswith(".txt"):
        return "txt"
    if name == "pyproject.toml":
        return "pyproject"
    if name in ("uv.lock", "poetry.lock"):
        return name
    if name == "pylock.toml" or re.fullmatch(r"pylock\.[^.]+\.toml", name):
        return "pylock"
    return None


KINDS_HINT = "requirements*.txt (any .txt), pyproject.toml, uv.lock, poetry.lock or pylock.toml"


def detect(source: Path) -> str:
    """The requirements source of ``source`` when ``requirements:`` is unset: the first of :data:`AUTO_ORDER`."""
    for name in AUTO_ORDER:
        if (source / name).is_file():
            return name
    raise RequirementsError(f"{source}: no requirements found (looked for {', '.join(AUTO_ORDER)}); set "
                            "requirements: in the config")


def resolve(source: Path, requirements: Optional[str] = None, extras: Sequence[str] = ()) -> Requirements:
    """THE resolution of a source's requirements (deploy, dry run, diff and the TUI all call it).

    ``requirements``: a path inside ``source``, or None to :func:`detect` it; ``extras``: the optional
    dependency groups of a pyproject.toml, uv.lock or poetry.lock to install too.
    """
    rel = requirements or detect(source)
    kind = kind_of(rel)
    if kind is None:
        raise RequirementsError(f"requirements: {rel} is not a kind releasetui reads ({KINDS_HINT})")
    path = source / rel
    extras = tuple(dict.fromkeys(normalize(e) for e in extras))
    if extras and kind in ("txt", "pylock"):
        raise RequirementsError(f"requirements_extras: {rel} has no extras to choose (they apply to pyproject.toml, "
                                "uv.lock and poetry.lock)")
    where = str(path)  # what a message names: the file, whole
    data = _read(path, where)
    if kind == "txt":
        return Requirements(rel, kind, data.decode("utf-8", "replace"), hashlib.sha256(data).hexdigest())
    doc = _toml(data, where)
    if kind == "pyproject":
        lines = from_pyproject(doc, where, extras)
    elif kind == "uv.lock":
        lines = from_uv_lock(doc, where, extras)
    elif kind == "poetry.lock":
        lines = from_poetry_lock(doc, where, extras)
    else:
        lines = from_pylock(doc, where)
    text = "".join(settle_extras(line, extras) + "\n" for line in lines)
    return Requirements(rel, kind, text, hashlib.sha256(text.encode("utf-8")).hexdigest(), extras)


_EXTRA_ATOM = re.compile(r"""\bextra\s*==\s*(['"])([^'"]+)\1""")
# What a marker atom becomes once releasetui has decided it: pip and uv evaluate the rest on the host.
MARKER_TRUE, MARKER_FALSE = 'python_version >= "0"', 'python_version < "0"'


def settle_extras(line: str, extras: Sequence[str]) -> str:
    """``line`` with each ``extra == "x"`` of its marker decided: true for an extra in ``requirements_extras``,
    false for any other.  Installing from a requirements file, pip and uv see no extra at all, so a lock's
    ``extra == "pg"`` (Poetry 2.1 writes it on an extra's packages; uv's conflict markers name
    ``extra-N-PROJECT-EXTRA``) would skip what the deploy asked for."""
    spec, sep, marker = line.partition(" ; ")
    if not sep or "extra" not in marker:
        return line

    def atom(match: "re.Match[str]") -> str:
        name = match.group(2)
        encoded = re.fullmatch(r"extra-([0-9]+)-(.+)", name)
        if encoded and int(encoded.group(1)) < len(encoded.group(2)):
            name = encoded.group(2)[int(encoded.group(1)) + 1:]
        return MARKER_TRUE if normalize(name) in extras else MARKER_FALSE

    return spec + sep + _EXTRA_ATOM.sub(atom, marker)


def _read(path: Path, rel: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise RequirementsError(f"requirements file {path} cannot be read: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise RequirementsError(f"{rel}: larger than {MAX_BYTES // (1024 * 1024)} MB: not a requirements source")
    return data


def _toml(data: bytes, rel: str) -> dict:
    try:
        import tomllib  # type: ignore[import-not-found]
    except ImportError:  # Python < 3.11
        try:
            import tomli as tomllib  # type: ignore[import-not-found,no-redef]
        except ImportError:
            raise RequirementsError(f"{rel}: reading TOML needs Python 3.11 or newer here (or `pip install tomli`); "
                                    "or name a requirements.txt") from None
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise RequirementsError(f"{rel}:{line}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise RequirementsError(f"{rel}: not valid TOML: {exc}") from None


__all__ = ["AUTO_ORDER", "KINDS_HINT", "LOCKS", "MARKER_FALSE", "MARKER_TRUE", "RESOLVED_NAME", "Requirements",
           "RequirementsError", "detect", "kind_of", "normalize", "resolve", "settle_extras"]
