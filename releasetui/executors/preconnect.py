"""TCP connections opened while the CLI is still importing: the handshake overlaps paramiko's import.

A headless run knows its hosts once hosts.yml is read, ~0.1 s before paramiko,
the operation's modules and the executors are imported (~0.08 s).  Opening each
host's TCP connection then, in a thread, puts the handshake (1.5 round trips
before a server sees the connection) in that time instead of after it.
:func:`take` hands the open socket to :func:`releasetui.executors.connect.open_ssh`,
which checks the host key and authenticates on it exactly as on a socket it
opened itself.

Only where the destination is certain without paramiko: an SSH host with no
jump host, and no ssh config file that could send its connection elsewhere
(any ``HostName``, ``Port``, ``Proxy*``, ``Match`` or ``Canonical*`` line,
anywhere, turns it off).  Anything else connects as
before.  This module imports only the standard library's socket and threading.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from typing import Iterable, Optional

# A line of an ssh config that can change where a connection goes: with any, the connect waits for paramiko's parse.
# Include is not among them: paramiko's parser (which the connect proper uses) does not follow it either.
_REDIRECTS = rb"^[ \t]*(hostname|port|proxy\w*|match|canonical\w*)\b"
SSH_CONFIG_FILES = ("~/.ssh/config", "/etc/ssh/ssh_config")  # the user's first, as ssh (and Fabric) read them

# An early socket older than this is not used: sshd closes a connection that has not authenticated within its
# LoginGraceTime (120 s by default, 20-60 s on hardened hosts), and a deploy may spend that long before connecting
# (a secrets_command, a large source to hash).  The connect proper then opens a new one.
FRESH_SECONDS = 10.0

_LOCK = threading.Lock()
_PENDING: dict = {}   # (address, port) -> _Attempt


def _ip_family(address: str) -> Optional[int]:
    """AF_INET or AF_INET6 when ``address`` is an IP literal (no name to resolve), else None."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, address)
            return family
        except OSError:
            continue
    return None


class _Attempt:
    """One connect: its SYN sent at once (an IP literal) or from a thread that resolves the name first; its
    socket once open, else the error it met."""

    def __init__(self, address: str, port: int, timeout: float):
        self.done = threading.Event()
        self.started = time.monotonic()
        self.sock: Optional[socket.socket] = None
        self.error: Optional[OSError] = None
        family, sent = _ip_family(address), None
        if family is not None:
            sent = socket.socket(family, socket.SOCK_STREAM)
            sent.setblocking(False)
            try:
                sent.connect_ex((address, port))  # the SYN leaves now; the thread waits for the answer
            except OSError as exc:  # refused before a packet left (a firewall rule, a guard): that is the answer
                sent.close()
                self.error = exc
                self.done.set()
                return
        self.thread = threading.Thread(target=self._connect, args=(address, port, timeout, sent),
                                       name=f"releasetui-preconnect-{address}", daemon=True)
        self.thread.start()

    def _connect(self, address: str, port: int, timeout: float, sent: Optional[socket.socket]) -> None:
        try:
            if sent is None:
                sock = socket.create_connection((address, port), timeout=timeout)
            else:
                sock = _answered(sent, timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock = sock
        except OSError as exc:
            self.error = exc  # the connect proper says it, in its own words (not tried again: a timeout twice)
        finally:
            self.done.set()


def _answered(sock: socket.socket, timeout: float) -> socket.socket:
    """``sock``, whose non-blocking connect was started, once connected (blocking again); the OSError it met."""
    import select
    try:
        _, writable, _ = select.select([], [sock], [], timeout)
        if not writable:
            raise socket.timeout("timed out")
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            raise OSError(code, os.strerror(code))
    except BaseException:
        sock.close()
        raise
    sock.setblocking(True)
    sock.settimeout(timeout)
    return sock


def redirecting_ssh_config(files: Optional[Iterable[str]] = None) -> bool:
    """Whether an ssh config file (``files``: default, the user's and the system's) may send a connection somewhere
    other than hosts.yml's address and port."""
    for name in SSH_CONFIG_FILES if files is None else files:
        try:
            with open(os.path.expanduser(name), "rb") as handle:
                if re.search(_REDIRECTS, handle.read(), re.IGNORECASE | re.MULTILINE):  # compiled only when a file is there
                    return True
        except OSError:
            continue
    return False


def destinations(hosts: Iterable) -> list[tuple[str, int]]:
    """``(address, port)`` of each host (HostConfig) whose connection can be opened before paramiko is imported."""
    hosts = [h for h in hosts if h.transport == "ssh" and h.address and h.jump is None]
    if not hosts or redirecting_ssh_config():
        return []
    return list(dict.fromkeys((h.address, h.port or 22) for h in hosts))


def start(hosts: Iterable, timeout: float, limit: int) -> int:
    """Open, in threads, the TCP connection of up to ``limit`` of ``hosts`` that can be; how many were started."""
    started = 0
    with _LOCK:
        for address, port in destinations(hosts)[:max(limit, 0)]:
            if (address, port) not in _PENDING:
                _PENDING[(address, port)] = _Attempt(address, port, timeout)
                started += 1
    return started


def take(address: str, port: int, timeout: float) -> Optional[socket.socket]:
    """The open socket to ``address:port`` started by :func:`start` (waiting for it, at most ``timeout``), once;
    None when none was started, it is still trying or it is older than :data:`FRESH_SECONDS`; the OSError it met,
    raised, when it could not connect."""
    with _LOCK:
        attempt = _PENDING.pop((address, port), None)
    if attempt is None or not attempt.done.wait(timeout):
        return None
    if time.monotonic() - attempt.started > FRESH_SECONDS:  # maybe closed by now, or the network has changed
        if attempt.sock is not None:
            attempt.sock.close()
        return None
    if attempt.error is not None:
        raise attempt.error
    attempt.sock.settimeout(timeout)
    return attempt.sock


def discard() -> None:
    """Close every socket started and never taken (the operation ended before it needed them)."""
    with _LOCK:
        attempts = list(_PENDING.values())
        _PENDING.clear()
    for attempt in attempts:
        if attempt.done.wait(0.05) and attempt.sock is not None:
            attempt.sock.close()


__all__ = ["destinations", "discard", "redirecting_ssh_config", "start", "take"]
