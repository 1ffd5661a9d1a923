"""Helpers shared by the test modules: sample projects, CLI runs and what to read from them.

Fixtures live in conftest.py; everything else a test module needs from
another lives here (never import one test module from another).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Optional

import pytest

from releasetui import clock

from .sshd import SSHServer, find_tool

ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# The interpreter the "hosts" make venvs with: this test run's base Python, whose pip is recent.
HOST_PYTHON = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
REPO = Path(__file__).resolve().parent.parent.parent


class TestClock:
    """The wall clock every test reads (never the machine's): fixed instants an hour apart, real time between.

    :meth:`tick` moves to the next instant, so each operation that a test starts
    after a tick gets a plain build id later than every earlier one, without
    sleeping to the next second and whatever the machine's date.  Installed in
    the test process by an autouse fixture; handed to every ``releasetui``
    subprocess as ``RELEASETUI_CLOCK``.
    """

    __test__ = False  # not a test class, whatever its name
    BASE = datetime(2031, 1, 1, tzinfo=timezone.utc)
    BASE_ENV = "RELEASETUI_TEST_CLOCK_BASE"   # CI moves it (the last hours of 2099) to cross a year's end
    STEP = timedelta(hours=1)

    def __init__(self) -> None:
        base = os.environ.get(self.BASE_ENV)
        self.instant = clock.parse_iso(base) if base else self.BASE
        self.anchor = time.monotonic()

    def tick(self) -> datetime:
        """Jump to the next instant (an hour after the last) and return it."""
        self.instant = self.instant + self.STEP
        self.anchor = time.monotonic()
        return self.instant

    def __call__(self) -> datetime:
        return self.instant + timedelta(seconds=time.monotonic() - self.anchor)

    def env(self) -> dict:
        """``RELEASETUI_CLOCK`` for a subprocess starting at the next instant."""
        return {clock.ENV_VAR: clock.iso(self.tick())}


TEST_CLOCK = TestClock()


def need(tool: str) -> str:
    """The tool's path; a missing tool fails the test under CI=true and skips it elsewhere."""
    path = find_tool(tool)
    if path is None:
        message = f"{tool} is not installed (Debian: openssh-server, openssh-client, rsync)"
        if ON_CI:
            pytest.fail(message + "; under CI=true this is an error, not a skip")
        pytest.skip(message)
    return path


def find_uv() -> Optional[str]:
    """The uv of the test extra (``pip install uv`` puts it beside the interpreter), else uv on PATH, else None."""
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if beside.is_file() else shutil.which("uv")


def uv_binary() -> str:
    """:func:`find_uv`'s uv; a missing uv fails the test under CI=true (`.ci/run` installs the test extra) and
    skips it elsewhere."""
    found = find_uv()
    if found is None:
        message = "uv is not installed (pip install -e '.[test]')"
        if ON_CI:
            pytest.fail(message + "; under CI=true this is an error, not a skip")
        pytest.skip(message)
    return found


@dataclass
class SSHEnv:
    """The test SSH world: servers, the client key, a known_hosts file that trusts all servers."""

    dir: Path
    client_key: Path
    known_hosts: Path
    servers: list[SSHServer] = field(default_factory=list)
    user: str = "root"


@dataclass
class Project:
    """A sample app plus a hosts.yml pointing at real hosts (sshd or local)."""

    dir: Path
    source: Path
    config: Path
    roots: dict[str, Path]

    def write_app(self, version: str, requirement: str = "tinylib==1.0") -> None:
        """Change what the next deploy ships."""
        (self.source / "app.py").write_text(f"VERSION = {version!r}\n")
        (self.source / "requirements.txt").write_text(requirement + "\n")

    def cli(self, *args: str, timeout: float = 180, env: Optional[dict] = None) -> subprocess.CompletedProcess:
        """Run ``python -m releasetui --config hosts.yml ARGS`` in a subprocess."""
        full_env = {**os.environ, **TEST_CLOCK.env(), **(env or {})}
        full_env.pop("RELEASETUI_CONFIG", None)
        full_env["PYTHONPATH"] = str(REPO)
        return subprocess.run([sys.executable, "-m", "releasetui", "--config", str(self.config), *args],
                              capture_output=True, text=True, timeout=timeout, env=full_env)

    def popen(self, *args: str, env: Optional[dict] = None) -> subprocess.Popen:
        """Start ``python -m releasetui --config hosts.yml ARGS`` without waiting."""
        full_env = {**os.environ, **TEST_CLOCK.env(), **(env or {}), "PYTHONPATH": str(REPO)}
        full_env.pop("RELEASETUI_CONFIG", None)
        return subprocess.Popen([sys.executable, "-m", "releasetui", "--config", str(self.config), *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env)

    def current(self, host: str) -> Optional[str]:
        """The build id ``current`` points at on that host (read straight from disk)."""
        link = self.roots[host] / "current"
        return os.readlink(link).split("/")[-1] if link.is_symlink() else None

    def builds(self, host: str) -> list[str]:
        """The build directories on that host, sorted."""
        path = self.roots[host] / "builds"
        return sorted(os.listdir(path)) if path.is_dir() else []

    def set(self, key: str, value: str) -> None:
        """Replace (or add) a top-level key of hosts.yml: ``set("restart", "'true'")``."""
        lines = self.config.read_text().splitlines()
        index = next((i for i, line in enumerate(lines) if line.startswith(f"{key}:")), None)
        if index is None:
            index = lines.index("hosts:")
            lines.insert(index, f"{key}: {value}")
        else:
            lines[index] = f"{key}: {value}"
        self.config.write_text("\n".join(lines) + "\n")

    def history(self, host: str) -> list[dict]:
        """The host's history.jsonl, parsed."""
        return [json.loads(line) for line in (self.roots[host] / "history.jsonl").read_text().splitlines() if line]


def test_installer() -> list[str]:
    """The hosts.yml lines that make the sample projects' venvs with uv, the test extra's (a venv in ~0.1 s where pip
    takes ~3 s: most tests only need *a* venv); pip keeps its own tests.  No uv outside CI: pip, as a host without it."""
    found = find_uv()
    if found is None and ON_CI:
        raise RuntimeError("uv is not installed (pip install -e '.[test]'); under CI=true this is an error")
    return ["installer: uv", f"uv: {found}"] if found else ["installer: pip"]


def make_project(base: Path, wheelhouse: Path, hosts: dict[str, dict], extra: str = "",
                 ssh_env: Optional[SSHEnv] = None, installer: str = "uv") -> Project:
    """Write a sample app and a hosts.yml with ``hosts`` (name -> host settings; ``root`` is made under ``base``).

    ``installer``: ``uv`` (the default, when the test extra's uv is there) or ``pip`` for the venvs."""
    source = base / "app"
    source.mkdir(parents=True)
    (source / "static").mkdir()
    (source / "static" / "big.txt").write_text("x" * 100_000)
    (source / "notes.tmp").write_text("excluded\n")
    (base / "rsync_excludes").write_text("*.tmp\n")
    roots = {}
    lines = [
        "project: sample",
        "source: app",
        "requirements: requirements.txt",
        "excludes_file: rsync_excludes",
        f"python: {HOST_PYTHON}",
        f"pip_args: [--no-index, --find-links, {wheelhouse}]",
        *(test_installer() if installer == "uv" else ["installer: pip"]),
        "keep_builds: 3",
        f"restart: echo restarted >> {base}/restarts.log",
        f"logs: [{base}/app.log]",
    ]
    if ssh_env is not None:
        lines.append(f"ssh: {{user: {ssh_env.user}, key_file: {ssh_env.client_key}, known_hosts: {ssh_env.known_hosts}}}")
    if extra:
        lines.append(extra.rstrip("\n"))
    lines.append("hosts:")
    for name, settings in hosts.items():
        root = base / f"root-{name}"
        roots[name] = root
        parts = [f"root: {root}"] + [f"{k}: {v}" for k, v in settings.items()]
        lines.append(f"  {name}: {{{', '.join(parts)}}}")
    config = base / "hosts.yml"
    config.write_text("\n".join(lines) + "\n")
    (base / "app.log").write_text("".join(f"line {i}\n" for i in range(1, 21)))
    project = Project(dir=base, source=source, config=config, roots=roots)
    project.write_app("v1")
    return project


def ssh_hosts(ssh_env: SSHEnv) -> dict[str, dict]:
    """``web1``, ``web2``... one per loopback sshd."""
    return {f"web{i + 1}": {"address": "127.0.0.1", "port": server.port} for i, server in enumerate(ssh_env.servers)}


# --- reading what a run printed --------------------------------------------------------------

def summary(proc: subprocess.CompletedProcess) -> dict:
    """The final summary object of a --json run."""
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert lines and lines[-1]["event"] == "summary", proc.stdout + proc.stderr
    return lines[-1]


def events(proc: subprocess.CompletedProcess) -> list[dict]:
    """Every step event of a --json run."""
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip() and '"event": "step"' in line]


def statuses(proc: subprocess.CompletedProcess) -> dict[str, str]:
    """Host -> status from a --json run's summary."""
    return {h["host"]: h["status"] for h in summary(proc)["hosts"]}


def builds_doc(project: Project) -> dict:
    """``builds --json``, parsed (the run must succeed)."""
    proc = project.cli("--headless", "builds", "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def deploy_ok(project: Project, *args: str) -> str:
    """Deploy (at the test clock's next instant, so ids stay plain); returns the new build id."""
    proc = project.cli("--headless", "deploy", "--json", *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return summary(proc)["build_id"]


def read_terminal(master: int, proc: subprocess.Popen, timeout: float,
                  on_output: Optional[Callable[[bytes], None]] = None) -> bytes:
    """Everything a process writes to a pseudo-terminal (``master`` its other end) until it closes it or exits;
    ``on_output`` sees what has come so far after each read (to type an answer, or to send a signal)."""
    import select

    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
            if on_output is not None:
                on_output(b"".join(chunks))
        elif proc.poll() is not None:
            break
    os.close(master)
    return b"".join(chunks)


def plant_lock(root: Path, token: str = "0123456789abcdef", **info) -> Path:
    """Put another operation's lock in a host's root (``info``: who, where, since, operation, pid...)."""
    lock = root / "deploy.lock"
    lock.mkdir()
    (lock / "token").write_text(token + "\n")
    (lock / "info.json").write_text(json.dumps({"token": token, **info}))
    return lock


def wait_for(condition: Callable[[], bool], timeout: float = 60, what: str = "the condition") -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def gated_python(project: Project, when: str, marker: Path, gate: Path) -> Path:
    """Point ``python:`` at a wrapper that, when its arguments contain ``when``, touches ``marker`` and waits
    for ``gate`` to exist before going on; returns the wrapper's path."""
    wrapper = project.dir / f"gated-python-{abs(hash(when)) % 10000}"
    wrapper.write_text(f"#!/bin/sh\ncase \"$*\" in *{when}*) touch {marker}; until [ -e {gate} ]; do sleep 0.05; done;; esac\n"
                       f"exec {HOST_PYTHON} \"$@\"\n")
    wrapper.chmod(0o755)
    project.config.write_text(project.config.read_text().replace(f"python: {HOST_PYTHON}", f"python: {wrapper}"))
    if when in ("pip", "venv"):  # the gate is on pip's own command line, and uv never runs one
        project.set("installer", "pip")
    return wrapper


# --- builds made through the core --------------------------------------------------------------------

def deploy_versions(project: "Project", versions) -> list[str]:
    """Deploy each (version, requirement) through the core (each an hour after the last); return the build ids,
    oldest first."""
    from releasetui.config import load_config
    from releasetui.operations import Operations
    config = load_config(project.config)
    ids = []
    for version, requirement in versions:
        project.write_app(version, requirement)
        TEST_CLOCK.tick()
        ops = Operations(config)
        result = ops.deploy(config.hosts)
        ops.close()
        assert result.ok, result.to_dict()
        ids.append(result.build_id)
    return ids


# What the ``deployed`` fixture deploys: three builds, the third changes the requirements.
DEPLOYED_VERSIONS = [("v1", "tinylib==1.0"), ("v2", "tinylib==1.0"), ("v3", "tinylib==2.0")]

# Healthy unless an `unhealthy` file sits in the host's project root; the output must show the build just
# switched to (the `{build_id}` placeholder), so a check answered by the previous build never passes.
HEALTH = ('healthcheck: {command: "test ! -e unhealthy && readlink current", expect: "builds/{build_id}", '
          'timeout: 1, interval: 0.2}')


class IndexTrap:
    """A package index that answers nothing: a TCP listener on 127.0.0.1 that counts every connection and drops
    it, so a pip pointed at it fails, and a test can tell whether pip tried an index at all."""

    def __init__(self) -> None:
        import socket
        import threading
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/simple/"
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        """Stop listening."""
        self.sock.close()


def no_index_python(project: Project, trap: IndexTrap) -> Path:
    """Point ``python:`` at a wrapper whose pip reads no pip.conf and knows only ``trap`` as its index (no
    find-links, no retries): a host with no index access. Returns the wrapper's path."""
    wrapper = project.dir / "no-index-python"
    wrapper.write_text("#!/bin/sh\nunset PIP_FIND_LINKS PIP_NO_INDEX PIP_EXTRA_INDEX_URL PIP_CONSTRAINT\n"
                       f"PIP_CONFIG_FILE=/dev/null PIP_INDEX_URL={trap.url} PIP_RETRIES=0 PIP_TIMEOUT=2\n"
                       "export PIP_CONFIG_FILE PIP_INDEX_URL PIP_RETRIES PIP_TIMEOUT\n"
                       f"exec {HOST_PYTHON} \"$@\"\n")
    wrapper.chmod(0o755)
    text = project.config.read_text().replace(f"python: {HOST_PYTHON}", f"python: {wrapper}")
    uv = find_uv()
    if uv and f"uv: {uv}\n" in text:  # uv reads no pip setting: its own wrapper, with the same dead index
        uv_wrapper = project.dir / "no-index-uv"
        uv_wrapper.write_text("#!/bin/sh\nunset UV_FIND_LINKS UV_EXTRA_INDEX_URL UV_INDEX UV_NO_INDEX\n"
                              f"UV_NO_CONFIG=1 UV_INDEX_URL={trap.url} UV_DEFAULT_INDEX={trap.url} UV_HTTP_TIMEOUT=2\n"
                              "export UV_NO_CONFIG UV_INDEX_URL UV_DEFAULT_INDEX UV_HTTP_TIMEOUT\n"
                              f"exec {uv} \"$@\"\n")
        uv_wrapper.chmod(0o755)
        text = text.replace(f"uv: {uv}\n", f"uv: {uv_wrapper}\n")
    project.config.write_text(text)
    return wrapper


def client_index_env(project: Project, wheelhouse: Path) -> dict:
    """The environment of a client that reaches the packages (``wheelhouse``) and a host that does not: pip finds
    them through the client's own environment, never through ``pip_args`` (which hosts would get too); the
    client's wheelhouse cache is the project's own."""
    return {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheelhouse), "PIP_CONFIG_FILE": os.devnull,
            "XDG_CACHE_HOME": str(project.dir / "cache")}
