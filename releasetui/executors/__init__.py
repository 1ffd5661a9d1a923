"""The one narrow seam between operations and hosts.

An executor runs a shell script on its host (one round trip), streaming its
stdout lines, optionally feeding it stdin (the build's stream, a verdict).
Three kinds, like SSHKit's backends, one module each:

* :class:`SSHExecutor` (:mod:`.ssh`, connecting in :mod:`.connect`): paramiko, one kept-open connection
  per host, host keys checked against known_hosts (unknown or changed keys refused), TCP_NODELAY on the socket,
  and a session channel opened ahead of time so a script costs one round trip, not two. Hosts behind jump hosts
  (``jump:``, or ProxyJump in ~/.ssh/config) ride a ``direct-tcpip`` channel of one kept-open connection per
  jump host (:class:`GatewayPool`, :mod:`.jump`), its key checked the same way.
* :class:`LocalExecutor` (:mod:`.local`): the same scripts through ``sh`` on this machine.
* :class:`RecordingExecutor` (:mod:`.dryrun`): wraps another; read-only scripts run for real, anything that
  would change the host is recorded and not run (``--dry-run``).

What they share is :mod:`.base`; :class:`ExecutorPool` (:mod:`.pool`) makes and keeps them.  Each counts its
round trips (``round_trips``: scripts started).
"""

from __future__ import annotations

from ..models import HostKeyRefused, HostUnreachable, ScriptTimeout
from .base import CommandResult, Executor, LineHandler, RemoteProcess, Stdin
from .connect import DEFAULT_KNOWN_HOSTS, open_connection, open_ssh, ssh_connection
from .dryrun import RecordedCommand, RecordingExecutor
from .local import LocalExecutor
from .pool import ExecutorPool, make_executor
from .ssh import SSHExecutor

__all__ = ["CommandResult", "DEFAULT_KNOWN_HOSTS", "Executor", "ExecutorPool", "GatewayPool", "Hop", "HostKeyRefused",
           "HostUnreachable", "LineHandler", "LocalExecutor", "RecordedCommand", "RecordingExecutor", "RemoteProcess",
           "SSHExecutor", "ScriptTimeout", "Stdin", "jump_route", "make_executor", "open_connection", "open_ssh",
           "parse_proxy_jump", "ssh_connection"]


_JUMP_NAMES = ("GatewayPool", "Hop", "jump_route", "parse_proxy_jump")


def __getattr__(name: str):
    """The jump-host names, imported from :mod:`.jump` on first use (a plain deploy never loads it)."""
    if name in _JUMP_NAMES:
        from . import jump
        return getattr(jump, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
