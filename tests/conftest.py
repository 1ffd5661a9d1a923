"""Shared fixtures: real OpenSSH sshd servers on loopback, tiny local wheels, sample projects.

Nothing here reaches beyond 127.0.0.1 or a package index: the wheels are
written with :mod:`zipfile`, and pip runs with ``--no-index``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from releasetui.demo import build_wheel  # the demo's own wheel writer; no build tools, no network

from releasetui import clock

from .support.helpers import (DEPLOYED_VERSIONS, HEALTH, HOST_PYTHON, ON_CI, TEST_CLOCK, Project, SSHEnv,  # noqa: F401
                              deploy_versions, make_project, need, ssh_hosts)
from .support.sshd import make_client_key, start_sshd


SH_USER = "releasetui-sh"


@pytest.fixture(autouse=True)
def test_clock():
    """Every test reads the test clock, never the machine's date (see :class:`~tests.support.helpers.TestClock`)."""
    previous = clock.set_clock(TEST_CLOCK)
    TEST_CLOCK.tick()
    yield TEST_CLOCK
    clock.set_clock(previous)


def fast_login_user() -> str:
    """The user the test hosts log in as.

    As root: a uid-0 alias whose login shell is /bin/sh, so root's interactive shell start-up (here: pyenv in
    ~/.bashrc, ~110-250 ms) is not paid by every SSH command of every test. Key-only (password '*'), only on this
    test machine. Otherwise: the current user.
    """
    import getpass
    import pwd
    import subprocess

    if os.geteuid() != 0:
        return getpass.getuser()
    try:
        pwd.getpwnam(SH_USER)
    except KeyError:
        proc = subprocess.run(["useradd", "--non-unique", "--uid", "0", "--gid", "0", "--no-create-home",
                               "--home-dir", "/", "--shell", "/bin/sh", "--password", "*", SH_USER],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            try:  # another test worker (pytest-xdist) made it a moment ago
                pwd.getpwnam(SH_USER)
            except KeyError:
                return "root"
    return SH_USER


@pytest.fixture(scope="session")
def ssh_env(tmp_path_factory) -> SSHEnv:
    """Two real sshd servers on loopback (two "hosts"), an ed25519 client key and a known_hosts for both."""
    need("rsync")
    base = tmp_path_factory.mktemp("ssh")
    need("sshd")
    need("ssh-keygen")
    client_key = make_client_key(base)
    client_pub = (base / "id_ed25519.pub").read_text()
    env = SSHEnv(dir=base, client_key=client_key, known_hosts=base / "known_hosts", user=fast_login_user())
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

@pytest.fixture
def local_project(tmp_path, wheelhouse) -> Project:
    """A project with one ``local`` host called ``box``."""
    need("rsync")
    return make_project(tmp_path, wheelhouse, {"box": {"transport": "local"}})


@pytest.fixture
def local_pair(tmp_path, wheelhouse) -> Project:
    """A project with two ``local`` hosts, ``a`` and ``b`` (fleet rules without SSH)."""
    need("rsync")
    return make_project(tmp_path, wheelhouse, {"a": {"transport": "local"}, "b": {"transport": "local"}})


@pytest.fixture
def ssh_project(tmp_path, wheelhouse, ssh_env) -> Project:
    """A project with two ssh hosts (``web1``, ``web2``) on two loopback sshd servers, different roots."""
    return make_project(tmp_path, wheelhouse, ssh_hosts(ssh_env), ssh_env=ssh_env)


@pytest.fixture
def health_project(tmp_path, wheelhouse, ssh_env) -> Project:
    """Two ssh hosts with a command health check."""
    return make_project(tmp_path, wheelhouse, ssh_hosts(ssh_env), extra=HEALTH, ssh_env=ssh_env)


@pytest.fixture(scope="session")
def deployed_template(tmp_path_factory, wheelhouse):
    """Three real deploys to a local host, made ONCE per session (two venvs, ~4 s) for the tests to copy."""
    project = make_project(tmp_path_factory.mktemp("deployed-template"), wheelhouse, {"box": {"transport": "local"}})
    return project, deploy_versions(project, DEPLOYED_VERSIONS)


@pytest.fixture
def deployed(local_project, deployed_template):
    """The local project with three builds (DEPLOYED_VERSIONS: the third changes the requirements); its ids.

    A copy of the session's template root (builds, venvs, current, history) and its last source: what three
    deploys would have made here, without paying for two venvs in every test. A copied venv works where it
    lands (the interpreter finds its pyvenv.cfg beside it); the next deploy re-checks the copied files' hashes
    before it links them (their inodes are not the ones recorded).
    """
    template, ids = deployed_template
    shutil.copytree(template.roots["box"], local_project.roots["box"], symlinks=True)
    local_project.write_app(*DEPLOYED_VERSIONS[-1])
    return local_project, ids
