"""What a change would change: files, requirements and commits between two builds (or a build and the source).

Pure: built from two manifests (path -> ``[kind, mode, sha256, size, link
target, ...]``, as :mod:`releasetui.manifest` writes them and every build
keeps beside it), two requirements texts and a commit list, all read
elsewhere (one round trip per host, none for the local source).  The CLI's
``diff``, its ``--json`` and the TUI's confirmations show these texts.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

from .manifest import diff_manifests
from .models import ExitCode
from .present import hosts_phrase
from .text import group_hosts, host_list
from .shipping import held_back_line
from .text import clean_line

SOURCE = "source"          # the label of "what a deploy would ship now"
ENV_UNKNOWN = "unknown"    # the source's env digest when a secret is not set here: never called "changed"
_SUMMARY_ITEMS = 3         # requirements and commits named in a one-line summary


@dataclass(frozen=True)
class DiffSide:
    """One end of a diff: a build on a host, or the source a deploy would ship now.

    ``manifest`` and ``requirements`` are None when they cannot be known (a
    build made before manifests were kept, a requirements file not there).
    """

    label: str                           # a build id, or SOURCE (or the --ref given)
    build_id: Optional[str] = None       # None: the local source
    manifest: Optional[Mapping[str, Any]] = None
    requirements: Optional[str] = None
    commit: Optional[str] = None
    subject: Optional[str] = None
    dirty: Optional[bool] = None
    current: bool = False                # the host's current build
    held_back: tuple = ()                # the source only: files that look like secrets, not shipped
    path: Optional[str] = None           # the source only: where its files are read (``diff -p``)
    env_digest: Optional[str] = None     # the env file's digest (``env:``), never its values

    def describe(self) -> str:
        """``20261128101500 (current)`` or ``source (git 1a2b3c4d5e, dirty)``."""
        words = []
        if self.current:
            words.append("current")
        if self.commit:
            words.append(f"git {self.commit[:10]}" + (", dirty" if self.dirty else ""))
        return self.label + (f" ({', '.join(words)})" if words else "")

    def to_dict(self) -> dict:
        """JSON-ready form (no manifest: the diff says what differs)."""
        return {"label": self.label, "build_id": self.build_id, "current": self.current, "git_commit": self.commit,
                "git_subject": self.subject, "git_dirty": self.dirty, "held_back": list(self.held_back)}


@dataclass(frozen=True)
class Commit:
    """A commit between the two ends: ``+`` only in the new one (shipped), ``-`` only in the old (taken away)."""

    id: str
    subject: str
    side: str

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {"id": self.id, "subject": self.subject, "side": self.side}


def requirement_lines(text: Optional[str]) -> list[str]:
    """The requirements that count: comments, blank lines and trailing spaces dropped, order kept."""
    lines = []
    for raw in (text or "").splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if line:
            lines.append(line)
    return lines


@dataclass
class BuildDiff:
    """Files, requirements and commits from one side to the other (see the module docstring)."""

    old: DiffSide
    new: DiffSide
    added: Optional[list] = None         # None: a manifest is unknown
    removed: Optional[list] = None
    changed: Optional[list] = None
    files_note: Optional[str] = None     # why the files are unknown
    requirements_added: list = field(default_factory=list)
    requirements_removed: list = field(default_factory=list)
    requirements_diff: list = field(default_factory=list)   # unified diff lines of the two texts
    requirements_note: Optional[str] = None
    commits: Optional[list] = None       # None: unknown (see commits_note)
    commits_note: Optional[str] = None
    patches: Optional[dict] = None       # ``diff -p``: path -> unified diff lines (capped)

    @property
    def env_changed(self) -> bool:
        """Whether the env file differs (by digest: no value is ever compared or shown)."""
        ends = (self.old.env_digest, self.new.env_digest)
        return ENV_UNKNOWN not in ends and ends != (None, None) and ends[0] != ends[1]

    @property
    def files_total(self) -> Optional[int]:
        """How many files differ (None when unknown)."""
        if self.added is None:
            return None
        return len(self.added) + len(self.removed) + len(self.changed)

    @property
    def same(self) -> bool:
        """Nothing differs, as far as can be known (unknown files are never "the same")."""
        return (self.files_total == 0 and not self.requirements_diff and not self.commits and not self.env_changed
                and self.old.commit == self.new.commit and bool(self.old.dirty) == bool(self.new.dirty))

    def summary(self) -> str:
        """One line: ``12 files changed, requirements: +redis==5.0.1, 3 commits: Add cache; Fix login; …``."""
        parts = []
        total = self.files_total
        if total is None:
            parts.append("files unknown")
        elif total:
            detail = [f"{len(x)} {word}" for x, word in ((self.added, "added"), (self.removed, "removed")) if x]
            parts.append(f"{total} file{'s' if total != 1 else ''} changed"
                         + (f" ({', '.join(detail)})" if detail else ""))
        else:
            parts.append("no file changes")
        reqs = [f"+{r}" for r in self.requirements_added] + [f"-{r}" for r in self.requirements_removed]
        if reqs:
            parts.append("requirements: " + ", ".join(reqs[:_SUMMARY_ITEMS]) + (", …" if len(reqs) > _SUMMARY_ITEMS
                                                                                else ""))
        elif self.requirements_diff:
            parts.append("requirements reordered or reformatted")
        if self.commits:
            ahead = [c for c in self.commits if c.side == "+"]
            behind = [c for c in self.commits if c.side == "-"]
            for commits, word in ((ahead, ""), (behind, " undone")):
                if commits:
                    names = "; ".join(clean_line(c.subject, 40) for c in commits[:_SUMMARY_ITEMS])
                    more = "; …" if len(commits) > _SUMMARY_ITEMS else ""
                    parts.append(f"{len(commits)} commit{'s' if len(commits) != 1 else ''}{word}: {names}{more}")
        if self.env_changed:
            parts.append("env changed")
        if self.same:
            return "no changes (same files, requirements and commit)"
        return ", ".join(parts)

    def lines(self) -> list[str]:
        """The full diff, for people: files (+ added, - removed, ~ changed), the requirements diff, the commits."""
        out = [f"  {self.summary()}"]
        if self.new.held_back:   # what a deploy would print: the same files are not in the diff
            out.append(f"  {clean_line(held_back_line(self.new.held_back), 2000)}")
        if self.added is None:
            out.append(f"  files: unknown: {self.files_note}")
        elif self.files_total:
            out.append("  files:")
            marked = ([(p, "+") for p in self.added] + [(p, "-") for p in self.removed]
                      + [(p, "~") for p in self.changed])
            out += [f"    {mark} {clean_line(path, 300)}" for path, mark in sorted(marked)]
        if self.requirements_note:
            out.append(f"  requirements: {self.requirements_note}")
        elif self.requirements_diff:
            out.append("  requirements:")
            out += [f"    {clean_line(line, 300)}" for line in self.requirements_diff]
        if self.commits is None:
            if self.commits_note:
                out.append(f"  commits: {self.commits_note}")
        elif self.commits:
            out.append("  commits:")
            out += [f"    {c.side} {c.id[:10]} {clean_line(c.subject, 200)}" for c in self.commits]
        if self.env_changed:
            out.append(f"  env: changed ({self.old.env_digest or 'none'} -> {self.new.env_digest or 'none'}; "
                       "values are never shown)")
        for path, patch in sorted((self.patches or {}).items()):
            out += [f"  {line}" for line in patch]
        return out

    def to_dict(self) -> dict:
        """JSON-ready form (one group of ``diff --json``)."""
        return {
            "from": self.old.to_dict(), "to": self.new.to_dict(),
            "files": None if self.added is None else {"added": self.added, "removed": self.removed,
                                                     "changed": self.changed},
            "files_note": self.files_note,
            "requirements": {"added": self.requirements_added, "removed": self.requirements_removed,
                             "diff": self.requirements_diff},
            "requirements_note": self.requirements_note,
            "commits": None if self.commits is None else [c.to_dict() for c in self.commits],
            "commits_note": self.commits_note,
            "env": {"from": self.old.env_digest, "to": self.new.env_digest, "changed": self.env_changed},
            "summary": self.summary(),
            **({"patches": {p: "\n".join(lines) for p, lines in self.patches.items()}} if self.patches else {}),
        }


PATCH_LINES = 400   # per file: a diff longer than this is cut, and says so
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f]")


def file_patch(path: str, old: Optional[tuple[int, bytes]], new: Optional[tuple[int, bytes]],
               limit: int = PATCH_LINES) -> list[str]:
    """The unified diff of one file between two sides (``(size, first bytes)``, None when absent), for a terminal:
    control characters shown as ``?``, binary files and cut files said so, at most ``limit`` lines."""
    header = [f"--- a/{clean_line(path, 300)}", f"+++ b/{clean_line(path, 300)}"]
    texts, cut = [], False
    for side in (old, new):
        size, data = side if side is not None and side[0] >= 0 else (0, b"")
        cut = cut or size > len(data)
        if b"\0" in data:
            return header + ["Binary files differ"]
        try:
            texts.append(data.decode("utf-8"))
        except UnicodeDecodeError:
            return header + ["Binary files differ"]
    lines = [_UNSAFE.sub("?", line) for line in difflib.unified_diff(
        texts[0].splitlines(), texts[1].splitlines(), f"a/{path}", f"b/{path}", lineterm="")][2:]
    if len(lines) > limit:
        lines = lines[:limit] + [f"... {len(lines) - limit} more lines of this diff not shown"]
    return header + lines + (["... (only the first part of a large file was compared)"] if cut else [])


def _files_only(manifest: Mapping[str, Any]) -> dict:
    """Files and symlinks (a directory differs only through what is in it)."""
    return {path: entry for path, entry in manifest.items() if entry and entry[0] != "d"}


def build_diff(old: DiffSide, new: DiffSide, commits: Optional[Sequence[Commit]] = None,
               commits_note: Optional[str] = None, requirements_name: str = "requirements.txt") -> BuildDiff:
    """Compare two sides (see :class:`BuildDiff`); ``commits`` from the local repository, when it knows them."""
    result = BuildDiff(old, new, commits=list(commits) if commits is not None else None, commits_note=commits_note)
    if old.manifest is None or new.manifest is None:
        unknown = old if old.manifest is None else new
        result.files_note = f"{unknown.label} has no file list (made before releasetui kept one)"
    else:
        files = diff_manifests(_files_only(old.manifest), _files_only(new.manifest))
        result.added, result.removed, result.changed = files.added, files.removed, files.changed
    if old.requirements is None or new.requirements is None:
        unknown = old if old.requirements is None else new
        result.requirements_note = f"{requirements_name} of {unknown.label} could not be read"
    else:
        before, after = requirement_lines(old.requirements), requirement_lines(new.requirements)
        result.requirements_added = [r for r in after if r not in set(before)]
        result.requirements_removed = [r for r in before if r not in set(after)]
        if old.requirements != new.requirements:
            result.requirements_diff = [line.rstrip("\n") for line in difflib.unified_diff(
                old.requirements.splitlines(), new.requirements.splitlines(), f"{old.label}/{requirements_name}",
                f"{new.label}/{requirements_name}", n=1, lineterm="")]
    if result.commits is None and result.commits_note is None and old.commit and old.commit == new.commit:
        result.commits = []
    return result


@dataclass
class DiffReport:
    """A diff over several hosts: hosts with the same result grouped, and the hosts it could not be made for."""

    from_label: str
    to_label: str
    groups: list = field(default_factory=list)      # [(BuildDiff, [host names])], biggest group first
    errors: dict = field(default_factory=dict)      # host -> why there is no diff for it
    unreachable: list = field(default_factory=list)
    hosts: int = 0

    @classmethod
    def grouped(cls, from_label: str, to_label: str, diffs: Mapping[str, BuildDiff], errors: Mapping[str, str],
                unreachable: Sequence[str] = ()) -> "DiffReport":
        """Group hosts whose diffs are the same (same ends, same files, requirements and commits)."""
        groups: dict[str, tuple[BuildDiff, list]] = {}
        for host, diff in diffs.items():
            key = json.dumps(diff.to_dict(), sort_keys=True)
            groups.setdefault(key, (diff, []))[1].append(host)
        ordered = sorted(groups.values(), key=lambda item: -len(item[1]))
        return cls(from_label, to_label, [(d, hosts) for d, hosts in ordered], dict(errors), list(unreachable),
                   len(diffs) + len(errors))

    @property
    def exit_code(self) -> ExitCode:
        """0 when every host has its diff; 3 when a host was unreachable; else 1."""
        if self.unreachable:
            return ExitCode.UNREACHABLE
        return ExitCode.FAILED if self.errors else ExitCode.OK

    def summary(self) -> str:
        """One line (the TUI's confirmations): the diff's summary, or each group's with its hosts when hosts differ."""
        parts = []
        for diff, hosts in self.groups:
            text = diff.summary()
            parts.append(text if len(self.groups) == 1 and not self.errors else f"{host_list(hosts)}: {text}")
        for why, hosts in group_hosts(self.errors):
            parts.append(f"{host_list(hosts)}: {why}")
        return "; ".join(parts) or "nothing to compare"

    def lines(self) -> list[str]:
        """The full diff for people: per group of hosts, from -> to, then the diff; then each host's problem."""
        out = []
        for diff, hosts in self.groups:
            who = hosts_phrase(hosts, self.hosts) if len(hosts) > 1 else hosts[0]
            out.append(f"{who}: {diff.old.describe()} -> {diff.new.describe()}")
            out += diff.lines()
        for why, hosts in group_hosts(self.errors):
            out.append(f"{hosts_phrase(hosts, self.hosts) if len(hosts) > 1 else hosts[0]}: {why}")
        return out

    def to_dict(self) -> dict:
        """The one document ``diff --json`` prints."""
        return {"from": self.from_label, "to": self.to_label,
                "groups": [{"hosts": hosts, **diff.to_dict()} for diff, hosts in self.groups],
                "errors": self.errors, "exit_code": int(self.exit_code)}


__all__ = ["BuildDiff", "Commit", "DiffReport", "DiffSide", "SOURCE", "build_diff", "requirement_lines"]
