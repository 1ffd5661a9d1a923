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

# Every name is imported from its module on first use: importing one light module of this package (preconnect, say)
# does not load paramiko's executors, the pool and the dry run.
_HOMES = {
    "HostKeyRefused": "..models", "HostUnreachable": "..models", "ScriptTimeout": "..models",
    "CommandResult": ".base", "Executor": ".base", "LineHandler": ".base", "RemoteProcess": ".base", "Stdin": ".base",
    "DEFAULT_KNOWN_HOSTS": ".connect", "open_connection": ".connect", "open_ssh": ".connect",
    "ssh_connection": ".connect", "RecordedCommand": ".dryrun", "RecordingExecutor": ".dryrun",
    "LocalExecutor": ".local", "ExecutorPool": ".pool", "make_executor": ".pool", "SSHExecutor": ".ssh",
    "GatewayPool": ".jump", "Hop": ".jump", "jump_route": ".jump", "parse_proxy_jump": ".jump",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str):
    """Each name from its module, imported on first use (a plain deploy never loads :mod:`.jump`)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value
