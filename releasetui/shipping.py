"""What ships, decided once: which of the source's files a deploy sends, and which it holds back as secrets.

Pure: given what the excludes allow (the listing of
:func:`releasetui.manifest.select_files`), what git would commit (None
outside git) and the config's ``include:`` patterns, :func:`choose` says what
ships and what is held back.  The deploy, its ``--dry-run``, ``diff`` and the
TUI all get their file list through it, so they agree.

The rule:

* inside a git work tree, a file ships only when git would commit it (tracked,
  or untracked and not ignored), or when ``include:`` names it;
* whatever the source, a file that :func:`looks_like_secret` is held back
  unless ``include:`` names it;
* ``include:`` never overrides ``excludes_file``, ``shared:`` or releasetui's
  own exclusions: what those keep out never reaches this function.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import AbstractSet, Iterable, Optional, Sequence

# Matched against a file's NAME (any folder), case-insensitively.  Names that usually hold a key, a password or a
# token: dotenv files, private keys and certificate bundles, key stores, credential files.
SECRET_PATTERNS = (
    ".env", ".env.*", "*.env",
    "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "*.kdbx",
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*",
    "credentials*.json", "client_secret*.json", "service-account*.json",
    ".netrc", ".pgpass", ".pypirc", ".htpasswd", ".git-credentials",
    "secrets.yml", "secrets.yaml", "secrets.json", "secrets.toml", "*.tfvars",
)
_SECRET = re.compile("|".join(fnmatch.translate(p) for p in SECRET_PATTERNS))
HELD_BACK_NAMED = 10   # paths a held-back line names before "and N more"


def looks_like_secret(path: str) -> bool:
    """Whether the file at ``path`` (relative, ``/``-separated) looks like it holds a secret, by its name."""
    name = path.rsplit("/", 1)[-1].lower()
    return bool(name) and _SECRET.match(name) is not None


def pattern_problem(pattern: str) -> Optional[str]:
    """Why ``pattern`` cannot be an ``include:`` entry (None when it can): a path or glob inside the source."""
    if not pattern or pattern.strip() != pattern:
        return "must be a path or glob relative to source, e.g. .env.example or certs/*.pem"
    if not pattern.isprintable():
        return "must not contain control characters"
    parts = pattern.strip("/").split("/")
    if pattern.startswith(("/", "~")) or ".." in parts:
        return "must be inside source: no leading '/' or '~', no '..'"
    if pattern.strip("/") in ("", ".", "**"):
        return "would include everything: name the files (e.g. .env.example, certs/*.pem)"
    try:
        include_regex([pattern])
    except re.error as exc:
        return f"not a valid glob: {exc}"
    return None


def _glob_regex(pattern: str) -> str:
    """``*`` and ``?`` within one folder, ``**`` across folders, ``[...]`` a character class."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:[^/]*/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[" and "]" in pattern[i + 2:]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1:end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body).replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


def include_regex(patterns: Sequence[str]) -> Optional[re.Pattern]:
    """One regex for ``include:``: each pattern is relative to source and names a file, or a folder and all in it."""
    if not patterns:
        return None
    parts = [_glob_regex(p.strip("/")[2:] if p.startswith("./") else p.strip("/")) for p in patterns]
    return re.compile("(?:" + "|".join(parts) + ")(?:/.*)?", re.DOTALL)


@dataclass(frozen=True)
class Choice:
    """What ships (paths with whether each is a folder, in listing order) and the secrets held back (sorted)."""

    names: list = field(default_factory=list)
    held_back: list = field(default_factory=list)


def choose(candidates: Sequence[tuple[str, bool]], git_files: Optional[AbstractSet[str]],
           include: Sequence[str] = ()) -> Choice:
    """THE shipping rule (module docstring) over ``candidates`` (what the excludes allow, ``(path, is_dir)``).

    ``git_files``: what git would commit under the source (None: not in git, everything the excludes allow is a
    candidate).  Inside git a folder ships only as the parent of something that ships (git keeps no empty folder).
    """
    named = include_regex(include)
    wanted = (lambda path: named.fullmatch(path) is not None) if named else (lambda path: False)
    files, held = [], []
    for path, is_dir in candidates:
        if is_dir:
            continue
        if git_files is not None and path not in git_files and not wanted(path):
            continue
        if looks_like_secret(path) and not wanted(path):
            held.append(path)
            continue
        files.append(path)
    if git_files is None:
        keep_dirs = {path for path, is_dir in candidates if is_dir}
    else:
        keep_dirs = {path[:i] for path in files for i, c in enumerate(path) if c == "/"}
    chosen = set(files)
    names = [(path, is_dir) for path, is_dir in candidates if (path in keep_dirs if is_dir else path in chosen)]
    return Choice(names, sorted(held))


def held_back_line(held_back: Iterable[str], limit: int = HELD_BACK_NAMED) -> str:
    """The one line a deploy (and ``diff``) prints about held-back files: their names only, never their contents."""
    paths = sorted(held_back)
    shown = ", ".join(paths[:limit]) + (f" and {len(paths) - limit} more" if len(paths) > limit else "")
    count = f"{len(paths)} file{'s' if len(paths) != 1 else ''}"
    looks = "looks like a secret" if len(paths) == 1 else "look like secrets"
    return f"held back {count} that {looks}: {shown} (name them under include: to ship them)"


__all__ = ["Choice", "SECRET_PATTERNS", "choose", "held_back_line", "include_regex", "looks_like_secret",
           "pattern_problem"]
