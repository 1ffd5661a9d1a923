"""What the benchmarks under bench/ share: this checkout on the path, the bench user, the sample app, hosts.yml.

Import it after putting the repository root on ``sys.path`` (``bench/*.py`` do so
themselves), then call :func:`use_this_checkout` so child processes (rsync's
relay, a ``python -m releasetui`` run) import the same copy of the package as
the benchmark does, not whatever the virtualenv has installed.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def use_this_checkout() -> None:
    """Import ``releasetui`` from this checkout, here and in every child process."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(REPO)]
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO), *paths])


def ensure_user(name: str) -> pwd.struct_passwd:
    """The bench user, created with /bin/sh as its shell when missing (needs root).

    A login shell with no start-up files: root's ~/.bashrc here runs ``pyenv init``
    (~110 ms) on every SSH command, which would hide the engine's own cost.
    """
    try:
        return pwd.getpwnam(name)
    except KeyError:
        # '*' rather than useradd's '!': with UsePAM no, sshd refuses "locked" ('!') accounts even for keys.
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", "--password", "*", name], check=True)
        return pwd.getpwnam(name)


def host_python(user: str) -> str:
    """An interpreter the bench user can run (root's pyenv lives under a 0700 /root)."""
    if user == "root":
        return os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    return shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin") or "python3"


def session_env(directory: Path) -> str:
    """sshd_config lines that keep a session's temporary files and pip's cache under ``directory``.

    So removing ``directory`` removes everything the bench user wrote, and two
    benchmarks run by different people with the same user do not share a cache.
    """
    tmp, cache = directory / "tmp", directory / "cache"
    for path in (tmp, cache):
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o1777)
    return f"SetEnv TMPDIR={tmp} XDG_CACHE_HOME={cache}\n"


def make_wheelhouse(directory: Path) -> Path:
    """A wheelhouse with one tiny wheel, ``tinylib==1.0`` (the app's only requirement; no network)."""
    from releasetui.demo import build_wheel

    build_wheel(directory, "tinylib", "1.0")
    return directory


def make_app(directory: Path, files: int = 200) -> Path:
    """A small app: ``app.py``, ``requirements.txt`` (tinylib==1.0) and ``files`` static files."""
    (directory / "static").mkdir(parents=True)
    (directory / "app.py").write_text("VERSION = 1\n")
    (directory / "requirements.txt").write_text("tinylib==1.0\n")
    for n in range(files):
        (directory / "static" / f"file{n}.css").write_text("body { color: red; }\n" * 50)
    return directory


def touch_app(app: Path) -> None:
    """Change one file, so the next deploy ships something new (the rest hard-links to the build before)."""
    (app / "app.py").write_text(f"VERSION = {time.time()!r}\n")


def wait_for_new_second() -> None:
    """Sleep into the next wall-clock second: build ids have one-second resolution."""
    now = time.time()
    time.sleep(1.0 - (now - int(now)) + 0.01)


def write_config(path: Path, *, app: Path, python: str, wheelhouse: Path, user: str, key: Path,
                 known_hosts: Path, hosts: list[tuple[str, int, Path]], restart: str = "true") -> Path:
    """A hosts.yml: every host at 127.0.0.1 with its own port and root; requirements from ``wheelhouse`` only."""
    lines = [
        "project: bench", f"source: {app}", f"python: {python}",
        f"pip_args: [--no-index, --find-links, {wheelhouse}]", "keep_builds: 5", f"restart: '{restart}'",
        f"ssh: {{user: {user}, key_file: {key}, known_hosts: {known_hosts}}}", "hosts:",
    ]
    lines += [f"  {name}: {{address: 127.0.0.1, port: {port}, root: {root}}}" for name, port, root in hosts]
    path.write_text("\n".join(lines) + "\n")
    return path
