"""Shared fixtures: real OpenSSH sshd servers on loopback, tiny local wheels, sample projects.

Nothing here reaches beyond 127.0.0.1 or a package index: the wheels are
written with :mod:`zipfile`, and pip runs with ``--no-index``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from releasetui.demo import build_wheel  # the demo's own wheel writer; no build tools, no network

from .sshd import SSHServer, find_tool, free_port, make_client_key, start_sshd  # noqa: F401 - free_port is re-exported for tests

ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# The interpreter the "hosts" make venvs with: this test run's base Python, whose pip is recent.
HOST_PYTHON = os.path.realpath(getattr(sys, "_base_executable", sys.executable))


def _need(tool: str) -> str:
    path = find_tool(tool)
    if path is None:
        message = f"{tool} is not installed (Debian: openssh-server, openssh-client, rsync)"
        if ON_CI:
            pytest.fail(message + "; under CI=true this is an error, not a skip")
        pytest.skip(message)
    return path


@dataclass
class SSHEnv:
    """The test SSH world: servers, the client key, a known_hosts file that trusts all servers."""

    dir: Path
    client_key: Path
    known_hosts: Path
    servers: list[SSHServer] = field(default_factory=list)
    user: str = "root"


@pytest.fixture(scope="session")
def ssh_env(tmp_path_factory) -> SSHEnv:
    """Two real sshd servers on loopback (two "hosts"), an ed25519 client key and a known_hosts for both."""
    _need("ssh")
    _need("rsync")
    base = tmp_path_factory.mktemp("ssh")
    _need("sshd")
    _need("ssh-keygen")
    client_key = make_client_key(base)
    client_pub = (base / "id_ed25519.pub").read_text()
    env = SSHEnv(dir=base, client_key=client_key, known_hosts=base / "known_hosts",
                 user=os.environ.get("USER") or "root")
    import getpass
    env.user = getpass.getuser()
    for index in range(2):
        env.servers.append(start_sshd(base, index, client_pub))
    env.known_hosts.write_text("".join(s.known_hosts_line + "\n" for s in env.servers))
    yield env
    for server in env.servers:
        server.stop()


# --- wheels -----------------------------------------------------------------------

@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory) -> Path:
    """A local wheelhouse with ``tinylib`` 1.0 and 2.0."""
    house = tmp_path_factory.mktemp("wheelhouse")
    build_wheel(house, "tinylib", "1.0")
    build_wheel(house, "tinylib", "2.0")
    return house


# --- projects -----------------------------------------------------------------------

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

    def cli(self, *args: str, timeout: float = 180, env: dict | None = None) -> subprocess.CompletedProcess:
        """Run ``python -m releasetui --config hosts.yml ARGS`` in a subprocess."""
        full_env = {**os.environ, **(env or {})}
        full_env.pop("RELEASETUI_CONFIG", None)
        return subprocess.run([sys.executable, "-m", "releasetui", "--config", str(self.config), *args],
                              capture_output=True, text=True, timeout=timeout, env=full_env)

    def current(self, host: str) -> str | None:
        """The build id ``current`` points at on that host (read straight from disk)."""
        link = self.roots[host] / "current"
        return os.readlink(link).split("/")[-1] if link.is_symlink() else None


def make_project(base: Path, wheelhouse: Path, hosts: dict[str, dict], extra: str = "", ssh_env: SSHEnv | None = None) -> Project:
    """Write a sample app and a hosts.yml with ``hosts`` (name -> host settings; ``root`` is made under ``base``)."""
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
        "keep_builds: 3",
        f"restart: echo restarted >> {base}/restarts.log",
        f"logs: [{base}/app.log]",
    ]
    if ssh_env is not None:
        lines.append(f"ssh: {{user: {ssh_env.user}, key_file: {ssh_env.client_key}, known_hosts: {ssh_env.known_hosts}}}")
    lines.append(extra.rstrip("\n")) if extra else None
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


@pytest.fixture
def local_project(tmp_path, wheelhouse) -> Project:
    """A project with one ``local`` host called ``box``."""
    _need("rsync")
    return make_project(tmp_path, wheelhouse, {"box": {"transport": "local"}})


@pytest.fixture
def ssh_project(tmp_path, wheelhouse, ssh_env) -> Project:
    """A project with two ssh hosts (``web1``, ``web2``) on two loopback sshd servers, different roots."""
    hosts = {f"web{i + 1}": {"address": "127.0.0.1", "port": server.port} for i, server in enumerate(ssh_env.servers)}
    return make_project(tmp_path, wheelhouse, hosts, ssh_env=ssh_env)
