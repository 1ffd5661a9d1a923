"""``wheels: ship``: the wheelhouse a new venv installs from, built once and sent with the build.

The wheelhouse of a venv key (``<requirements digest>-py<X.Y>``) is built with
``python -m pip wheel -r <requirements> -w <dir>`` (plus the config's
``pip_args``) into this machine's cache, ``$XDG_CACHE_HOME/releasetui/wheelhouses/<key>/``,
and reused by every later deploy of the same requirements.  Only an interpreter of
the hosts' major.minor on the hosts' OS and machine builds it here
(:func:`releasetui.rules.builds_here`); for other hosts one of them builds it
(:func:`releasetui.rules.wheelhouse_builders`,
:func:`releasetui.commands.wheelhouse_script`) and this machine keeps what it
sent under a folder of that platform (:func:`host_cache_dir`, :func:`store`).
Which hosts are sent it is :func:`releasetui.rules.wheels_to_send`.  On the wire it is one JSON line
(name, size, sha256 of each wheel) and the wheels' bytes, read by
:data:`releasetui.commands.ship_helper.WHEELS_PY` on the host.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Optional, Sequence

from ..commands import check_venv_key
from ..models import HostState
from ..rules import LocalBuilder, major_minor
from ..text import clean_line
from .source import OperationError

COMPLETE = ".releasetui-complete"   # written last: a cache entry without it is rebuilt
CHUNK = 1 << 20


def cache_dir(environ: Optional[dict] = None, pip_args: Sequence[str] = ()) -> Path:
    """Where wheelhouses are kept on this machine: ``$XDG_CACHE_HOME/releasetui/wheelhouses`` (``~/.cache`` when
    unset), in a folder of their own for each set of ``pip_args`` (another index or ``--only-binary`` builds other
    wheels from the same requirements)."""
    env = os.environ if environ is None else environ
    base = Path(env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")) / "releasetui" / "wheelhouses"
    if pip_args:
        base = base / ("args-" + hashlib.sha256("\0".join(pip_args).encode("utf-8")).hexdigest()[:12])
    return base


def host_cache_dir(platform: Optional[str], version: str, pip_args: Sequence[str] = (),
                   environ: Optional[dict] = None) -> Path:
    """Where wheelhouses built on hosts of ``platform`` (``uname -sm``) and Python ``version`` (major.minor) are
    kept here: ``<cache_dir>/host-Linux-aarch64-py3.12``, apart from this machine's own (same key, other wheels)."""
    name = re.sub(r"[^A-Za-z0-9_.+-]+", "-", (platform or "unknown").strip()).strip("-.") or "unknown"
    return cache_dir(environ, pip_args) / f"host-{name[:60]}-py{major_minor(version)}"


def local_builder(versions: Iterable[str]) -> LocalBuilder:
    """This machine's platform as ``uname -sm`` says it, and an interpreter for each of ``versions`` (major.minor)
    it has: the one running releasetui, else ``pythonX.Y`` on ``PATH``."""
    import platform  # only a deploy with wheels: ship asks (the CLI's start stays lean)
    pythons = {f"{sys.version_info[0]}.{sys.version_info[1]}": sys.executable}
    for version in {major_minor(v) for v in versions if v}:
        found = None if version in pythons else shutil.which(f"python{version}")
        if found and _runs_as(found, version):
            pythons[version] = found
    return LocalBuilder(f"{platform.system()} {platform.machine()}{libc_suffix()}", pythons)


def libc_suffix(root: str = "/") -> str:
    """`` musl`` where this machine's C library is musl (as the hosts' read script says it), else ''."""
    import glob
    return " musl" if glob.glob(os.path.join(root, "lib", "ld-musl-*.so.1")) else ""


def builder_for(hosts: Iterable, states: Mapping[str, object]) -> Optional[LocalBuilder]:
    """What this machine builds wheels for, asked only when some of ``hosts`` (HostConfig) has ``wheels: ship``
    (for the Pythons those hosts run, as read); the deploy and the TUI's confirmation both plan with it."""
    versions = [s.python_version for h in hosts if h.wheels == "ship"
                for s in [states.get(h.name)] if isinstance(s, HostState) and s.python_version]
    return local_builder(versions) if any(h.wheels == "ship" for h in hosts) else None


def _runs_as(python: str, version: str) -> bool:
    """Whether ``python`` runs and is that major.minor (a pyenv shim is on PATH for versions it does not have)."""
    try:
        proc = subprocess.run([python, "--version"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    words = proc.stdout.decode("utf-8", "replace").split()
    return proc.returncode == 0 and len(words) >= 2 and major_minor(words[1]) == version


@dataclass
class Wheelhouse:
    """A complete wheelhouse on this machine: its key, folder and wheels (name, size, sha256)."""

    key: str
    path: Path
    wheels: list = field(default_factory=list)
    built: bool = False          # built by this deploy (else found in the cache)

    @property
    def size(self) -> int:
        """Bytes of all its wheels."""
        return sum(w[1] for w in self.wheels)

    def chunks(self) -> Iterator[bytes]:
        """What the host's ``WHEELS_PY`` reads: the JSON line, then each wheel's bytes in order."""
        yield json.dumps({"wheels": self.wheels}).encode("utf-8") + b"\n"
        for name, _, _ in self.wheels:
            with open(self.path / name, "rb") as handle:
                yield from iter(lambda: handle.read(CHUNK), b"")


def _listing(path: Path) -> list:
    """Each wheel in ``path`` as ``[name, size, sha256]``, by name (checksummed now: what is sent is what is checked)."""
    wheels = []
    for item in sorted(path.iterdir()):
        if item.name.endswith(".whl") and item.is_file() and not item.is_symlink():
            digest = hashlib.sha256()
            with open(item, "rb") as handle:
                for chunk in iter(lambda: handle.read(CHUNK), b""):
                    digest.update(chunk)
            wheels.append([item.name, item.stat().st_size, digest.hexdigest()])
    return wheels


def pip_wheel_command(python: str, requirements: Path, into: Path, pip_args: Sequence[str]) -> list[str]:
    """The one command that builds a wheelhouse (also what a dry run shows)."""
    return [python, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "-r", str(requirements),
            "-w", str(into), *pip_args]


def cached(key: str, root: Optional[Path] = None, pip_args: Sequence[str] = ()) -> Optional[Wheelhouse]:
    """The wheelhouse of ``key`` (built with ``pip_args``) in this machine's cache when it is complete, else None."""
    path = (root or cache_dir(pip_args=pip_args)) / check_venv_key(key)
    if not (path / COMPLETE).is_file():
        return None
    return Wheelhouse(key, path, _listing(path))


def ensure(key: str, python: str, requirements: Path, pip_args: Sequence[str], cwd: Path, timeout: float,
           root: Optional[Path] = None, text: Optional[str] = None) -> Wheelhouse:
    """The wheelhouse of ``key``: from the cache, else built now (in a temporary folder renamed into place whole)
    from ``requirements`` (a file of the source), or from ``text`` (what a lock or pyproject.toml resolved to).

    OperationError, with pip's last words, when pip fails: a wheelhouse that cannot be built here cannot be shipped.
    """
    found = cached(key, root, pip_args)
    if found is not None:
        return found
    base = root or cache_dir(pip_args=pip_args)
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=base))
    if text is not None:
        requirements = tmp.with_name(tmp.name + ".requirements.txt")
        requirements.write_text(text)
    try:
        try:
            proc = subprocess.run(pip_wheel_command(python, requirements, tmp, pip_args), cwd=cwd,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise OperationError(f"wheels: ship: pip wheel could not run with {python}: {exc}") from None
        if proc.returncode != 0:
            tail = " ".join(proc.stdout.decode("utf-8", "replace").strip().splitlines()[-3:])
            raise OperationError(f"wheels: ship: pip wheel -r {requirements.name} failed here: {clean_line(tail, 400)}")
        (tmp / COMPLETE).write_text("")
        final = base / key
        if final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if text is not None:
            requirements.unlink(missing_ok=True)
    house = Wheelhouse(key, final, _listing(final), built=True)
    return house


class Receiving:
    """A wheelhouse of ``key`` arriving under ``root`` (from a builder host): each wheel written as it comes into
    a temporary folder (:meth:`open_wheel`), then kept whole (:meth:`keep`: the complete marker last, renamed into
    place) or dropped (:meth:`drop`): a cache entry without its marker is never used."""

    def __init__(self, key: str, root: Path):
        self.key, self.root = check_venv_key(key), root
        root.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=root))

    def open_wheel(self, name: str):
        """A new file for the wheel ``name`` (already checked by the reader), opened to write."""
        if "/" in name or name.startswith((".", "-")) or not name.endswith(".whl"):
            raise ValueError(f"invalid wheel name {name!r}")   # the reader refused it already
        return open(self.tmp / name, "xb")

    def keep(self) -> Wheelhouse:
        """The wheels received, kept as the wheelhouse of the key."""
        try:
            (self.tmp / COMPLETE).write_text("")
            final = self.root / self.key
            if final.exists():
                shutil.rmtree(final)
            os.rename(self.tmp, final)
        finally:
            self.drop()
        return Wheelhouse(self.key, final, _listing(final), built=True)

    def drop(self) -> None:
        """Forget what arrived (nothing stays but a kept wheelhouse)."""
        shutil.rmtree(self.tmp, ignore_errors=True)


def store(key: str, wheels: Sequence[tuple], root: Path) -> Wheelhouse:
    """Keep the wheels ``[(name, bytes)]`` (checked by :func:`releasetui.commands.parse_wheelhouse`) as the
    wheelhouse of ``key`` under ``root``, as :class:`Receiving` keeps those that stream in."""
    arriving = Receiving(key, root)
    try:
        for name, data in wheels:
            with arriving.open_wheel(name) as handle:
                handle.write(data)
    except BaseException:
        arriving.drop()
        raise
    return arriving.keep()


__all__ = ["COMPLETE", "Wheelhouse", "builder_for", "cache_dir", "cached", "ensure", "host_cache_dir",
           "local_builder", "pip_wheel_command", "Receiving", "store"]
