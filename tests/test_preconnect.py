"""A headless run opens its hosts' TCP connections while it imports (the handshake overlaps paramiko's import),
and only where the destination is certain without paramiko's reading of the ssh config."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from releasetui.config import HostConfig, JumpHost
from releasetui.executors import preconnect
from tests.support.helpers import REPO, TEST_CLOCK, make_project

# Runs the CLI with an audit hook that notes, in order, each TCP connect and the first import of paramiko.
TRACED = ("import json, sys\n"
          "seen = []\n"
          "def hook(event, args):\n"
          "    if event == 'socket.connect' and isinstance(args[1], tuple):\n"
          "        seen.append(['connect', args[1][1]])\n"
          "    elif event == 'import' and args[0] == 'paramiko':\n"
          "        seen.append(['import', 'paramiko'])\n"
          "sys.addaudithook(hook)\n"
          "from releasetui.cli import main\n"
          "rc = main(sys.argv[2:])\n"
          "open(sys.argv[1], 'w').write(json.dumps(seen))\n"
          "sys.exit(rc)\n")


def traced_run(project, home, *args) -> tuple[subprocess.CompletedProcess, list]:
    """Run the CLI with HOME=``home`` (its ~/.ssh/config is the user's ssh config); what it connected and imported."""
    trace = project.dir / "trace.json"
    env = {**os.environ, **TEST_CLOCK.env(), "PYTHONPATH": str(REPO), "HOME": str(home)}
    env.pop("RELEASETUI_CONFIG", None)
    proc = subprocess.run([sys.executable, "-c", TRACED, str(trace), "--config", str(project.config), *args],
                          capture_output=True, text=True, timeout=180, env=env, stdin=subprocess.DEVNULL)
    return proc, json.loads(trace.read_text()) if trace.exists() else []


def test_each_host_is_connected_before_paramiko_is_imported_and_that_socket_is_the_one_used(ssh_project, ssh_env,
                                                                                           tmp_path):
    ports = [server.port for server in ssh_env.servers]
    proc, seen = traced_run(ssh_project, tmp_path, "--headless", "deploy", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    paramiko_at = seen.index(["import", "paramiko"])
    for port in ports:
        connects = [i for i, event in enumerate(seen) if event == ["connect", port]]
        assert len(connects) == 1, seen          # the early socket carried the SSH connection: no second connect
        assert connects[0] < paramiko_at, seen


def test_an_ssh_config_that_may_send_the_connection_elsewhere_waits_for_paramiko(ssh_project, tmp_path):
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "config").write_text("Host elsewhere\n    Port 2222\n")
    proc, seen = traced_run(ssh_project, tmp_path, "--headless", "builds", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    paramiko_at = seen.index(["import", "paramiko"])
    connects = [i for i, event in enumerate(seen) if event[0] == "connect"]
    assert len(connects) == 2 and min(connects) > paramiko_at, seen


def test_a_host_that_refuses_is_tried_once_and_gets_the_usual_message(tmp_path, wheelhouse, ssh_env):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    project = make_project(tmp_path / "p", wheelhouse, {"dead": {"address": "127.0.0.1", "port": port}}, ssh_env=ssh_env)
    proc, seen = traced_run(project, tmp_path, "--headless", "builds")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert f"cannot connect to 127.0.0.1:{port}: Connection refused" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert seen.count(["connect", port]) == 1, seen  # the early attempt's error is the answer: not tried twice


def test_only_plain_ssh_hosts_are_opened_early(tmp_path, monkeypatch):
    monkeypatch.setattr(preconnect, "SSH_CONFIG_FILES", (str(tmp_path / "config"),))
    hosts = [HostConfig("a", "/srv/a", address="10.0.0.1"), HostConfig("b", "/srv/b", address="10.0.0.2", port=2222),
             HostConfig("c", "/srv/c", transport="local"),
             HostConfig("d", "/srv/d", address="10.0.0.4", jump=JumpHost("bastion")),
             HostConfig("e", "/srv/e", address="10.0.0.1")]
    assert preconnect.destinations(hosts) == [("10.0.0.1", 22), ("10.0.0.2", 2222)]
    for line in ("Host x\n  HostName y\n", "  port 2200\n", "ProxyJump j\n", "Match host a\n", "ProxyCommand nc %h %p\n",
                 "CanonicalizeHostname yes\n"):
        (tmp_path / "config").write_text("Host *\n  ServerAliveInterval 5\n" + line)
        assert preconnect.destinations(hosts) == [], line
    (tmp_path / "config").write_text("Host *\n  ServerAliveInterval 5\n  # Port 2222 is commented out\n")
    assert preconnect.destinations(hosts) == [("10.0.0.1", 22), ("10.0.0.2", 2222)]


def test_a_socket_is_handed_out_once_and_unclaimed_ones_are_closed(tmp_path, monkeypatch):
    monkeypatch.setattr(preconnect, "SSH_CONFIG_FILES", ())
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert preconnect.start([HostConfig("a", "/srv/a", address="127.0.0.1", port=port)], 5, limit=10) == 1
        sock = preconnect.take("127.0.0.1", port, 5)
        assert sock is not None and sock.getpeername()[1] == port
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert preconnect.take("127.0.0.1", port, 5) is None
        sock.close()
        preconnect.start([HostConfig("a", "/srv/a", address="127.0.0.1", port=port)], 5, limit=10)
        preconnect.discard()
        assert preconnect.take("127.0.0.1", port, 5) is None


def test_an_early_socket_gone_stale_is_closed_and_not_used(monkeypatch):
    monkeypatch.setattr(preconnect, "SSH_CONFIG_FILES", ())
    monkeypatch.setattr(preconnect, "FRESH_SECONDS", 0.0)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        preconnect.start([HostConfig("a", "/srv/a", address="127.0.0.1", port=port)], 5, limit=10)
        accepted, _ = server.accept()
        assert preconnect.take("127.0.0.1", port, 5) is None   # the connect proper opens a new one
        accepted.settimeout(5)
        assert accepted.recv(1) == b""                          # and the stale one was closed
        accepted.close()

