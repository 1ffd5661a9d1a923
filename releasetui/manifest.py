"""What a build is made of: the manifest of a source tree, and the one stream that ships it.

A manifest maps each relative path to ``[kind, mode, sha256, size, link
target]`` (kind ``f`` file, ``d`` directory, ``l`` symlink).  Which files are
in it is decided by :func:`select_files`: the local ``rsync`` lists what the
excludes allow (a dry run with the config's ``--exclude-from``, so excludes
mean exactly what they mean to rsync), ``git ls-files`` what git would
commit, and :func:`releasetui.shipping.choose` applies the rule (git's files
only, secrets held back unless ``include:`` names them).

A host keeps each build's manifest beside it (``.releasetui-manifest.json``,
written on the host from what it actually wrote).  A deploy compares the
source's manifest with the host's current build's and sends, in ONE stream,
a header (how the manifest differs from the current build's, and the digest
of the whole) and a gzip'd tar of only the files that differ; the host
rebuilds the manifest, checks the digest, and hard-links every other file
from its current build, after checking it is still what the manifest says.  Unchanged files cost no bytes and no disk,
like rsync's ``--link-dest``, without rsync's several round trips.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import stat
import subprocess
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

from . import shipping
from .gitrepo import run_git
from .metadata import MANIFEST_FILE, META_FILE

# Never shipped, whatever the excludes file says: the repository, the build's venv link, releasetui's own files.
ALWAYS_EXCLUDED = ("/.git/", "/env", "/" + META_FILE, "/" + MANIFEST_FILE, "/.releasetui-*")
_ESCAPE = re.compile(rb"\\#([0-7]{3})")


class ManifestError(Exception):
    """The source cannot be listed or read: one line for the user."""


def _rsync_names(source: Path, excludes: Sequence[str], excludes_file: Optional[Path]) -> list[tuple[str, bool]]:
    """(relative path, is a directory) of everything rsync would ship from ``source``."""
    with tempfile.TemporaryDirectory(prefix="releasetui-list-") as empty:
        argv = ["rsync", "-r", "-l", "--dry-run", "--out-format=%n"]
        argv += [f"--exclude={pattern}" for pattern in (*ALWAYS_EXCLUDED, *excludes)]
        if excludes_file is not None:
            argv.append(f"--exclude-from={excludes_file}")
        argv += [str(source).rstrip("/") + "/", empty + "/"]
        try:
            proc = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL, timeout=300)
        except FileNotFoundError:
            raise ManifestError("rsync is not installed on this machine (Debian: apt-get install rsync)") from None
        except subprocess.TimeoutExpired:
            raise ManifestError(f"listing {source} took more than 300 s") from None
    if proc.returncode not in (0, 23, 24):  # 23/24: some files vanished or were unreadable; checked below
        raise ManifestError(f"rsync could not list {source}: {proc.stderr.decode('utf-8', 'replace').strip()[:300]}")
    names = []
    for raw in proc.stdout.splitlines():
        # rsync escapes unprintable bytes as \#ooo (and a backslash only when it would read as one): back to the
        # bytes, then to the name as the file system (and git) spell it.
        name = os.fsdecode(_ESCAPE.sub(lambda m: bytes([int(m.group(1), 8)]), raw))
        if name in ("./", "."):
            continue
        is_dir = name.endswith("/")
        names.append((name.rstrip("/"), is_dir))
    return names


def _git_lines(directory: Path, *args: str) -> Optional[list[str]]:
    """NUL-separated output of a git command run in ``directory`` (None when git fails or is missing)."""
    proc = run_git(directory, *args, timeout=300, text=False)
    if proc is None or proc.returncode != 0:
        return None
    return [os.fsdecode(item) for item in proc.stdout.split(b"\0") if item]


def git_files(source: Path, prefix: str = "") -> Optional[set[str]]:
    """What git would commit under ``source`` (relative paths): tracked files that exist, and untracked files no
    ``.gitignore``, ``.git/info/exclude`` or global excludes file ignores; None when ``source`` is not in a git work
    tree (or git ignores all of it: then git would commit nothing of it, and git is no guide).

    A submodule or a nested repository contributes what IT would commit.
    """
    inside = _git_lines(source, "rev-parse", "--is-inside-work-tree")
    if not inside or inside[0].strip() != "true" or (_git_lines(source, "check-ignore", "-q", ".") is not None):
        return None
    listed = _git_lines(source, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    if listed is None:
        raise ManifestError(f"git could not list the files of {source} (git ls-files failed)")
    found: set[str] = set()
    for name in listed:
        name = name.rstrip("/")
        path = source / name
        if path.is_dir() and not path.is_symlink():
            if os.path.lexists(path / ".git"):   # a submodule or a nested repository: its own rule
                found |= git_files(path, f"{prefix}{name}/") or set()
            continue
        if os.path.lexists(path):                # a tracked file deleted from the working tree is not shipped
            found.add(prefix + name)
    return found


@dataclass
class Selection:
    """The files a deploy ships from a source (``(path, is_dir)``), the secrets held back, and whether git decided."""

    names: list
    held_back: list
    git: bool


def select_files(source: Path, excludes: Sequence[str] = (), excludes_file: Optional[Path] = None,
                 include: Sequence[str] = (), git: bool = True) -> Selection:
    """What a deploy of ``source`` ships: what the excludes allow, narrowed by git (``git``: when ``source`` is in
    a work tree) and the secret rule (:func:`releasetui.shipping.choose`).  Deploy, dry run and ``diff`` use this."""
    source = Path(source)
    candidates = _rsync_names(source, excludes, excludes_file)
    tracked = git_files(source) if git else None
    choice = shipping.choose(candidates, tracked, include)
    return Selection(choice.names, choice.held_back, tracked is not None)


def _hash_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


@dataclass
class Manifest:
    """The files of a source tree as they would be shipped (see the module docstring)."""

    root: Path
    files: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)  # non-regular files rsync -rl would skip too
    held_back: list = field(default_factory=list)  # files that look like secrets, not named under include:
    git: bool = False                               # git decided which files (the source is in a work tree)

    @classmethod
    def of(cls, source: Path, excludes: Sequence[str] = (), excludes_file: Optional[Path] = None,
           include: Sequence[str] = (), git: bool = True) -> "Manifest":
        """Hash every file :func:`select_files` selects from ``source``."""
        selection = select_files(Path(source), excludes, excludes_file, include, git)
        manifest = cls(Path(source), held_back=selection.held_back, git=selection.git)
        for name, _ in selection.names:
            path = Path(source) / name
            try:
                info = os.lstat(path)
            except OSError as exc:
                raise ManifestError(f"cannot read {path}: {exc.strerror or exc}") from None
            mode = stat.S_IMODE(info.st_mode) & 0o777
            if stat.S_ISDIR(info.st_mode):
                manifest.files[name] = ["d", mode, None, 0, None]
            elif stat.S_ISLNK(info.st_mode):
                manifest.files[name] = ["l", 0o777, None, 0, os.readlink(path)]
            elif stat.S_ISREG(info.st_mode):
                try:
                    sha, size = _hash_file(path)
                except OSError as exc:
                    raise ManifestError(f"cannot read {path}: {exc.strerror or exc}") from None
                manifest.files[name] = ["f", mode, sha, size, None]
            else:
                manifest.skipped.append(name)
        return manifest

    @property
    def digest(self) -> str:
        """A hash of the whole manifest: two sources with the same digest ship the same build."""
        return hashlib.sha256(json.dumps(self.files, sort_keys=True).encode()).hexdigest()

    def file_count(self) -> int:
        """Regular files and symlinks (directories not counted)."""
        return sum(1 for entry in self.files.values() if entry[0] != "d")

    def to_send(self, remote: Optional[dict]) -> list[str]:
        """The paths a host must receive: every file and symlink its current build lacks or has otherwise.

        ``remote`` is the host's current manifest (None: nothing can be linked, send everything).
        """
        sending = []
        for path, entry in self.files.items():
            if entry[0] == "d":
                continue
            if entry[0] == "f" and remote is not None:
                theirs = remote.get(path)
                if theirs and theirs[0] == "f" and theirs[1] == entry[1] and theirs[2] == entry[2]:
                    continue  # linked on the host
            sending.append(path)
        return sorted(sending)

    def payload(self, paths: Iterable[str], link_from: Optional[str], level: int = 6,
                base: Optional[dict] = None) -> "Payload":
        """The stream for one host: a JSON header line, then a tar of ``paths``, all gzip'd.

        With ``base`` (the manifest of the build at ``link_from``, as the host
        has it) the header carries only what differs from it and the digest
        of the whole, so a small change makes a small stream whatever the
        app's size; the host rebuilds the manifest and checks the digest.
        """
        return Payload.build(self, sorted(paths), link_from, level, base)

    def canonical_digest(self) -> str:
        """The digest the host recomputes from a delta header (the ship helper's exact JSON form)."""
        return canonical_digest(self.files)

    def delta(self, base: dict) -> dict:
        """What differs from ``base``: ``{"changed": {path: entry}, "removed": [paths], "digest": ...}``."""
        changed = {path: entry for path, entry in self.files.items() if list(base.get(path, [])[:5]) != entry}
        removed = sorted(path for path in base if path not in self.files)
        return {"changed": changed, "removed": removed, "digest": self.canonical_digest()}


class _GzipWriter(io.RawIOBase):
    """A write-only file that gzips into another (tarfile's stream mode cannot set the level everywhere)."""

    def __init__(self, target, level: int):
        self.target = target
        self.compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
        self.raw_size = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.raw_size += len(data)
        self.target.write(self.compressor.compress(bytes(data)))
        return len(data)

    def finish(self) -> None:
        self.target.write(self.compressor.flush())


@dataclass
class Payload:
    """One shipping stream, built once and sent to every host that needs the same files."""

    data: Optional[bytes]
    path: Optional[str]
    size: int
    files: int
    raw_size: int

    @classmethod
    def build(cls, manifest: Manifest, paths: Sequence[str], link_from: Optional[str], level: int,
              base: Optional[dict] = None) -> "Payload":
        """Write the stream into memory (small) or a temporary file (large)."""
        spool = tempfile.NamedTemporaryFile(prefix="releasetui-payload-", suffix=".gz", delete=False)
        try:
            writer = _GzipWriter(spool, level)
            head: dict = {"format": 1, "link_from": link_from, "sent": list(paths)}
            if base is not None and link_from:
                head["base"] = manifest.delta(base)
            else:
                head["files"] = manifest.files
            header = json.dumps(head, sort_keys=True)
            writer.write(header.encode("utf-8") + b"\n")
            with tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                for path in paths:
                    entry = manifest.files[path]
                    full = manifest.root / path
                    info = tarfile.TarInfo(path)
                    info.mode = entry[1]
                    if entry[0] == "l":
                        info.type = tarfile.SYMTYPE
                        info.linkname = entry[4]
                        tar.addfile(info)
                    else:
                        with open(full, "rb") as handle:
                            info.size = os.fstat(handle.fileno()).st_size
                            tar.addfile(info, handle)
            writer.finish()
            spool.close()
            size = os.path.getsize(spool.name)
            if size <= 32 << 20:
                with open(spool.name, "rb") as handle:
                    data = handle.read()
                os.unlink(spool.name)
                return cls(data, None, size, len(paths), writer.raw_size)
            return cls(None, spool.name, size, len(paths), writer.raw_size)
        except BaseException:
            spool.close()
            if os.path.exists(spool.name):
                os.unlink(spool.name)
            raise

    def chunks(self, size: int = 1 << 16):
        """The stream, chunk by chunk (each caller gets its own reader)."""
        if self.data is not None:
            view = memoryview(self.data)
            for start in range(0, len(view), size):
                yield bytes(view[start:start + size])
            return
        with open(self.path, "rb") as handle:
            for chunk in iter(lambda: handle.read(size), b""):
                yield chunk

    def discard(self) -> None:
        """Remove the temporary file, if any."""
        if self.path and os.path.exists(self.path):
            os.unlink(self.path)


def canonical_digest(files: dict) -> str:
    """sha256 of ``files`` (path -> the first five fields) as compact sorted JSON: what the ship helper computes."""
    trimmed = {path: list(entry[:5]) for path, entry in files.items()}
    return hashlib.sha256(json.dumps(trimmed, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


# --- differences -------------------------------------------------------------------------------

@dataclass
class ManifestDiff:
    """Files added, removed and changed between two manifests."""

    added: list = field(default_factory=list)
    removed: list = field(default_factory=list)
    changed: list = field(default_factory=list)

    @property
    def total(self) -> int:
        """How many paths differ."""
        return len(self.added) + len(self.removed) + len(self.changed)


def diff_manifests(old: dict, new: dict) -> ManifestDiff:
    """What changes from ``old`` to ``new`` (directories only when added or removed)."""
    result = ManifestDiff()
    for path in sorted(set(old) | set(new)):
        a, b = old.get(path), new.get(path)
        if a is None:
            result.added.append(path)
        elif b is None:
            result.removed.append(path)
        elif a[0] != b[0] or a[1] != b[1] or a[2] != b[2] or (a[0] == "l" and a[4] != b[4]):
            result.changed.append(path)
    return result
