"""Hosts behind a jump host, over two real loopback sshd servers: one the jump host, one the target.

How the tests know the jump host is used: the target sshd listens on 127.0.0.2 (and refuses every user on
127.0.0.1), and the client processes run with a guard (``sitecustomize`` for the CLI, a monkeypatch in
process) that refuses any connection they make to 127.0.0.2, as if it were a private network only the jump
host can route to. The jump sshd, a separate process, connects there freely. A client that went direct would
fail; ``test_the_target_is_unreachable_without_the_jump_host`` shows it does.
"""

from __future__ import annotations

import getpass
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from releasetui.config import HostConfig, JumpHost
from releasetui.executors import ExecutorPool, HostKeyRefused, HostUnreachable

from .support.helpers import (REPO, TEST_CLOCK, IndexTrap, Project, SSHEnv, client_index_env, make_project, need,
                              no_index_python, summary)
from .support.sshd import SSHServer, free_port, make_client_key, start_sshd

pytestmark = pytest.mark.ssh

TARGET_ADDRESS = "127.0.0.2"
GUARD_ENV = "RELEASETUI_TEST_UNROUTABLE"
GUARD = '''\
"""Test guard: this process may not open TCP connections to the addresses in $RELEASETUI_TEST_UNROUTABLE."""
import os
import socket

_UNROUTABLE = set(filter(None, os.environ.get("RELEASETUI_TEST_UNROUTABLE", "").split(",")))


def _check(address):
    if isinstance(address, tuple) and address and address[0] in _UNROUTABLE:
        raise ConnectionRefusedError(111, f"{address[0]} is only reachable through the jump host (test guard)")


class _GuardedSocket(socket.socket):
    __slots__ = ()

    def connect(self, address):
        _check(address)
        return super().connect(address)

    def connect_ex(self, address):
        _check(address)
        return super().connect_ex(address)


socket.socket = _GuardedSocket
'''


@dataclass
class JumpWorld:
    """A jump sshd on 127.0.0.1 and a target sshd the client may only reach through it."""

    dir: Path
    client_key: Path
    user: str
    jump: SSHServer
    target: SSHServer
    guard_dir: Path

    @property
    def jump_line(self) -> str:
        return f"[127.0.0.1]:{self.jump.port} {self.jump.host_public_key}\n"

    @property
    def target_line(self) -> str:
        return f"[{TARGET_ADDRESS}]:{self.target.port} {self.target.host_public_key}\n"

    def known_hosts(self, name: str, text: str) -> Path:
        path = self.dir / name
        path.write_text(text)
        return path


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> JumpWorld:
    need("sshd")
    need("ssh-keygen")
    need("rsync")
    base = tmp_path_factory.mktemp("jump")
    client_key = make_client_key(base)
    client_pub = (base / "id_ed25519.pub").read_text()
    jump = start_sshd(base, 0, client_pub)  # AllowTcpForwarding defaults to yes
    # The target also listens on 127.0.0.2 (start_sshd's readiness check uses 127.0.0.1) and lets no one in
    # there: only a connection to 127.0.0.2 (the jump host's) can log in.
    target = start_sshd(base, 1, client_pub, f"ListenAddress {TARGET_ADDRESS}\n"
                                             "Match LocalAddress 127.0.0.1\n  DenyUsers *\n")
    guard_dir = base / "guard"
    guard_dir.mkdir()
    (guard_dir / "sitecustomize.py").write_text(GUARD)
    world = JumpWorld(dir=base, client_key=client_key, user=getpass.getuser(), jump=jump, target=target,
                      guard_dir=guard_dir)
    (base / "known_hosts").write_text(world.jump_line + world.target_line)
    yield world
    jump.stop()
    target.stop()


@pytest.fixture
def unroutable(monkeypatch):
    """The in-process guard: this test's connections to 127.0.0.2 are refused."""
    namespace: dict = {}
    monkeypatch.setenv(GUARD_ENV, TARGET_ADDRESS)
    real = socket.socket
    exec(compile(GUARD, "guard", "exec"), namespace)  # replaces socket.socket...
    monkeypatch.setattr(socket, "socket", socket.socket)  # ... and monkeypatch puts it back afterwards
    monkeypatch.setattr(socket, "socket", namespace["_GuardedSocket"])
    assert socket.socket is not real


def cli(p: Project, world: JumpWorld, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m releasetui --config hosts.yml ARGS`` with the guard loaded."""
    full_env = {**os.environ, **TEST_CLOCK.env(), **(env or {}), GUARD_ENV: TARGET_ADDRESS,
                "PYTHONPATH": f"{world.guard_dir}{os.pathsep}{REPO}"}
    full_env.pop("RELEASETUI_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "releasetui", "--config", str(p.config), *args],
                          capture_output=True, text=True, timeout=180, env=full_env)


def project(tmp_path: Path, wheelhouse: Path, world: JumpWorld, hosts: dict, known_hosts: Path | None = None) -> Project:
    env = SSHEnv(dir=world.dir, client_key=world.client_key, known_hosts=known_hosts or world.dir / "known_hosts",
                 user=world.user)
    return make_project(tmp_path, wheelhouse, hosts, ssh_env=env)


def behind_jump(world: JumpWorld, names=("web1",), jump: str | None = None) -> dict:
    jump = jump if jump is not None else f'"127.0.0.1:{world.jump.port}"'
    return {name: {"address": TARGET_ADDRESS, "port": world.target.port, "jump": jump} for name in names}


# --- end to end through the CLI ---------------------------------------------------------------------

def test_deploy_and_rollback_through_a_jump_host(tmp_path, wheelhouse, world):
    p = project(tmp_path, wheelhouse, world, behind_jump(world, ("web1", "web2")))
    first = cli(p, world, "--headless", "deploy", "--json")
    assert first.returncode == 0, first.stdout + first.stderr
    v1 = summary(first)["build_id"]
    p.write_app("v2", "tinylib==2.0")
    second = cli(p, world, "--headless", "deploy", "--json")
    assert second.returncode == 0, second.stdout + second.stderr
    # A jump host adds no script: still read+lock, prepare, activate per host.
    assert [h["round_trips"] for h in summary(second)["hosts"]] == [3, 3]
    for name in ("web1", "web2"):
        assert (p.roots[name] / "current" / "app.py").read_text() == "VERSION = 'v2'\n"
    back = cli(p, world, "--headless", "rollback", "--json")
    assert back.returncode == 0, back.stdout + back.stderr
    assert {p.current("web1"), p.current("web2")} == {v1}
    assert (p.roots["web1"] / "current" / "app.py").read_text() == "VERSION = 'v1'\n"
    builds = cli(p, world, "--headless", "builds")
    assert builds.returncode == 0 and v1 in builds.stdout, builds.stdout + builds.stderr
    assert builds.stderr == ""


def test_a_shipped_wheelhouse_goes_through_the_jump_host(tmp_path, wheelhouse, world):
    """``wheels: ship`` to a host behind a bastion with no index: the wheelhouse rides the same connection."""
    trap = IndexTrap()
    try:
        p = project(tmp_path, wheelhouse, world, behind_jump(world))
        p.set("pip_args", "[]")
        p.set("wheels", "ship")
        no_index_python(p, trap)
        proc = cli(p, world, "--headless", "deploy", "--json", env=client_index_env(p, wheelhouse))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert [h["round_trips"] for h in summary(proc)["hosts"]] == [3]
        assert trap.connections == 0
        venv = os.path.basename(os.readlink(p.roots["web1"] / "current" / "env"))
        assert [w.name for w in (p.roots["web1"] / "wheelhouses").iterdir()] == [venv]
    finally:
        trap.close()


def test_the_target_is_unreachable_without_the_jump_host(tmp_path, wheelhouse, world):
    """The proof the other tests rest on: a client that goes direct never gets in."""
    p = project(tmp_path, wheelhouse, world, behind_jump(world, jump="null"))
    proc = cli(p, world, "--headless", "deploy", "--host", "web1")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "only reachable through the jump host" in proc.stdout
    assert not p.roots["web1"].exists()
    # And 127.0.0.1 (where the target also listens) lets no one log in.
    p.config.write_text(p.config.read_text().replace(f"address: {TARGET_ADDRESS}, port: {world.target.port}",
                                                     f"address: 127.0.0.1, port: {world.target.port}"))
    (world.dir / "known_hosts_direct").write_text(f"[127.0.0.1]:{world.target.port} {world.target.host_public_key}\n")
    p.config.write_text(p.config.read_text().replace(f"known_hosts: {world.dir / 'known_hosts'}",
                                                     f"known_hosts: {world.dir / 'known_hosts_direct'}"))
    proc = cli(p, world, "--headless", "deploy", "--host", "web1")
    assert proc.returncode == 3 and "authentication failed" in proc.stdout, proc.stdout + proc.stderr
    assert not p.roots["web1"].exists()


def ssh_config_home(tmp_path: Path, world: JumpWorld, proxy_jump: str = "bastion", extra: str = "") -> Path:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text(textwrap.dedent(f"""\
        Host app
          HostName {TARGET_ADDRESS}
          Port {world.target.port}
          User {world.user}
          IdentityFile {world.client_key}
          ProxyJump {proxy_jump}
        Host bastion bastion2
          HostName 127.0.0.1
          Port {world.jump.port}
          User {world.user}
          IdentityFile {world.client_key}
        """) + extra)
    return home


def proxy_jump_project(tmp_path, wheelhouse, world, known_hosts: Path | None = None) -> Project:
    """web1 at the ssh config alias ``app``; hosts.yml names no user, key or jump host."""
    p = project(tmp_path, wheelhouse, world, {"web1": {"address": "app"}}, known_hosts)
    text = p.config.read_text()
    text = text.replace(f"ssh: {{user: {world.user}, key_file: {world.client_key}, known_hosts:", "ssh: {known_hosts:")
    assert "key_file" not in text
    p.config.write_text(text)
    return p


def test_proxy_jump_from_the_ssh_config(tmp_path, wheelhouse, world):
    p = proxy_jump_project(tmp_path, wheelhouse, world)
    home = ssh_config_home(tmp_path, world)
    proc = cli(p, world, "--headless", "deploy", env={"HOME": str(home)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (p.roots["web1"] / "current" / "app.py").read_text() == "VERSION = 'v1'\n"
    # Two hops (ProxyJump bastion,bastion2: the jump sshd, then through it to itself again) work too.
    home = ssh_config_home(tmp_path / "two", world, "bastion,bastion2")
    proc = cli(p, world, "--headless", "builds", env={"HOME": str(home)})
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("source", ["hosts.yml", "ProxyJump"])
def test_an_unknown_jump_host_key_is_refused(tmp_path, wheelhouse, world, source):
    only_target = world.known_hosts(f"only_target_{source}", world.target_line)
    env = {}
    if source == "hosts.yml":
        p = project(tmp_path, wheelhouse, world, behind_jump(world), only_target)
    else:  # on main, Fabric's own gateway took this one with AutoAddPolicy: any jump host key was trusted
        p = proxy_jump_project(tmp_path, wheelhouse, world, only_target)
        env["HOME"] = str(ssh_config_home(tmp_path, world))
    proc = cli(p, world, "--headless", "deploy", env=env)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert f"host key for jump host 127.0.0.1:{world.jump.port} is not in" in proc.stdout or \
        f"host key for jump host bastion (127.0.0.1:{world.jump.port}) is not in" in proc.stdout, proc.stdout
    assert "refusing to connect" in proc.stdout and f"ssh-keyscan -p {world.jump.port} 127.0.0.1" in proc.stdout
    assert proc.stderr == "", proc.stderr
    assert not p.roots["web1"].exists(), "nothing may run behind a jump host whose key is unknown"


def test_a_changed_jump_host_key_is_refused(tmp_path, wheelhouse, world):
    # The jump host's entry carries the target's key: what a man in the middle at the bastion looks like.
    wrong = world.known_hosts("wrong_jump", f"[127.0.0.1]:{world.jump.port} {world.target.host_public_key}\n"
                                            + world.target_line)
    p = project(tmp_path, wheelhouse, world, behind_jump(world), wrong)
    proc = cli(p, world, "--headless", "deploy")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert f"host key for jump host 127.0.0.1:{world.jump.port} CHANGED" in proc.stdout, proc.stdout
    assert proc.stderr == ""
    assert not p.roots["web1"].exists()


def test_the_jump_hosts_own_known_hosts_file_is_used(tmp_path, wheelhouse, world):
    """``jump: {known_hosts: ...}`` is where the jump host's key is checked; the host's file has only the target."""
    jump_known = world.known_hosts("jump_only", world.jump_line)
    target_known = world.known_hosts("target_only", world.target_line)
    jump = f"{{address: 127.0.0.1, port: {world.jump.port}, known_hosts: {jump_known}}}"
    p = project(tmp_path, wheelhouse, world, behind_jump(world, jump=jump), target_known)
    proc = cli(p, world, "--headless", "deploy")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_an_unreachable_jump_host_says_so(tmp_path, wheelhouse, world):
    port = free_port()
    p = project(tmp_path, wheelhouse, world, behind_jump(world, ("web1", "web2"), jump=f'"127.0.0.1:{port}"'))
    proc = cli(p, world, "--headless", "deploy")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert f"cannot connect to jump host 127.0.0.1:{port}" in proc.stdout, proc.stdout
    assert not p.roots["web1"].exists()


# --- the pool: one shared jump connection, lost and reopened, closed ------------------------------

def hosts_behind(world: JumpWorld, tmp_path: Path, names=("a", "b"), **jump) -> list[HostConfig]:
    jump_host = JumpHost("127.0.0.1", port=jump.pop("port", world.jump.port), **jump)
    return [HostConfig(name, str(tmp_path / name), address=TARGET_ADDRESS, port=world.target.port, user=world.user,
                       key_file=world.client_key, known_hosts=world.dir / "known_hosts", jump=jump_host)
            for name in names]


def sshd_sessions(server: SSHServer) -> list[int]:
    """The pids of the processes serving ``server``'s connections (its listener's descendants)."""
    found, todo = [], [server.process.pid]
    while todo:
        children = Path(f"/proc/{todo.pop()}/task")
        for task in children.iterdir() if children.exists() else ():
            text = (task / "children").read_text() if (task / "children").exists() else ""
            for pid in map(int, text.split()):
                found.append(pid)
                todo.append(pid)
    return found


def test_one_jump_connection_is_shared_lost_reopened_and_closed(tmp_path, world, unroutable):
    pool = ExecutorPool(connect_timeout=5)
    a, b = (pool.get(host) for host in hosts_behind(world, tmp_path))
    try:
        errors: list = []
        threads = [threading.Thread(target=lambda e=e: errors.append(e.run("echo hi").stdout)) for e in (a, b)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == ["hi\n", "hi\n"]
        assert pool.gateways.opened == 1, "both hosts ride one jump connection"
        jump_transport = a._via[0]
        for executor in (a, b):
            sock = executor._connection.transport.sock
            assert sock.get_transport() is jump_transport, "the connection runs in a channel of the jump connection"
            assert [hop.label for hop in executor.route] == [f"jump host 127.0.0.1:{world.jump.port}"]

        # The jump host drops its connection while a script runs behind it.
        running = a.start("echo started; sleep 30")
        assert running.read_until(["started"], deadline=time.monotonic() + 10) == "started"
        sessions = sshd_sessions(world.jump)
        assert sessions
        for pid in sessions:
            os.kill(pid, signal.SIGKILL)
        with pytest.raises(HostUnreachable, match=f"lost: jump host 127.0.0.1:{world.jump.port} lost"):
            running.wait(deadline=time.monotonic() + 20)
        deadline = time.monotonic() + 10
        while (jump_transport.is_active() or b._connection.transport.is_active()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not b._connection.transport.is_active(), "the hosts behind a lost jump host lose their channels"

        # The next use reconnects, through one new jump connection.
        assert a.run("echo again").stdout == "again\n"
        assert b.run("echo again").stdout == "again\n"
        assert pool.gateways.opened == 2
        assert a._via[0] is b._via[0] is not jump_transport
        new_jump = a._via[0]
    finally:
        pool.close()
    assert not new_jump.is_active(), "closing the pool closes the jump connection"
    assert a._connection is None and b._connection is None


def test_a_jump_host_that_never_answers_costs_one_timeout_for_all_hosts_behind_it(tmp_path, world, unroutable):
    """Three hosts behind a bastion that accepts and then says nothing: one attempt, one timeout, three errors."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list = []

    def accept() -> None:
        while True:
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    port = listener.getsockname()[1]
    pool = ExecutorPool(connect_timeout=1.5)
    executors = [pool.get(host) for host in hosts_behind(world, tmp_path, ("a", "b", "c"), port=port)]
    errors: list = []

    def connect(executor) -> None:
        try:
            executor.connect()
        except HostUnreachable as exc:
            errors.append(str(exc))

    started = time.monotonic()
    threads = [threading.Thread(target=connect, args=(e,)) for e in executors]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        took = time.monotonic() - started
        assert len(errors) == 3, errors
        assert all(f"jump host 127.0.0.1:{port} did not answer as an SSH server within 1.5s" in e for e in errors)
        # One attempt for all (a second would have been accepted too), so one timeout, not three in a row.
        assert len(accepted) == 1, "one attempt for every host that waited on it"
        assert took < 10, f"{took:.1f}s"
    finally:
        pool.close()
        listener.close()
        for conn in accepted:
            conn.close()


def test_the_jump_host_refusing_to_forward_names_it(tmp_path, world, unroutable):
    """The jump host is reached but cannot open the way to the host (nothing listens there)."""
    port = free_port()
    host = HostConfig("a", str(tmp_path / "a"), address="127.0.0.1", port=port, user=world.user,
                      key_file=world.client_key, known_hosts=world.dir / "known_hosts",
                      jump=JumpHost("127.0.0.1", port=world.jump.port))
    pool = ExecutorPool(connect_timeout=5)
    try:
        with pytest.raises(HostUnreachable, match=f"jump host 127.0.0.1:{world.jump.port} cannot reach "
                                                  f"127.0.0.1:{port}: Connect failed"):
            pool.get(host).connect()
    finally:
        pool.close()


def test_a_jump_host_key_refusal_is_a_host_key_refusal(tmp_path, world, unroutable):
    (host,) = hosts_behind(world, tmp_path, ("a",), known_hosts=world.known_hosts("empty", ""))
    pool = ExecutorPool(connect_timeout=5)
    try:
        with pytest.raises(HostKeyRefused, match="jump host"):
            pool.get(host).connect()
    finally:
        pool.close()


def test_two_hops_from_proxy_jump_ride_one_inside_the_other(tmp_path, world, unroutable, monkeypatch):
    """``ProxyJump bastion,bastion2``: the target's connection runs in a channel of bastion2's, which runs in a
    channel of bastion's (both aliases of the jump sshd)."""
    home = ssh_config_home(tmp_path, world, "bastion,bastion2")
    monkeypatch.setenv("HOME", str(home))
    host = HostConfig("a", str(tmp_path / "a"), address="app", known_hosts=world.dir / "known_hosts")
    pool = ExecutorPool(connect_timeout=5)
    try:
        executor = pool.get(host)
        assert executor.run("echo hi").stdout == "hi\n"
        assert [hop.name for hop in executor.route] == ["bastion", "bastion2"]
        assert pool.gateways.opened == 2
        first, second = executor._via
        assert executor._connection.transport.sock.get_transport() is second
        assert second.sock.get_transport() is first
    finally:
        pool.close()
    assert not first.is_active() and not second.is_active()
