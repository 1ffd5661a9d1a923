"""Jump hosts: the route to a host behind bastions (``jump:``, or ProxyJump in ~/.ssh/config), and one
kept-open connection per jump host whose ``direct-tcpip`` channels carry the hosts behind it."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Callable, Optional

from ..config import HostConfig, JumpHost
from ..models import HostUnreachable
from .connect import DEFAULT_KNOWN_HOSTS, Hop, open_connection


# --- jump hosts ----------------------------------------------------------------------------------

MAX_HOPS = 8
SSHLookup = Callable[[str], dict]


_PROXY_JUMP_HOP = re.compile(r"(?:ssh://)?(?:(?P<user>[^@\s,/]+)@)?(?P<host>\[[0-9A-Fa-f:.]+\]|[^:@\s,/\[\]]+)"
                             r"(?::(?P<port>[0-9]{1,5}))?/?")


def parse_proxy_jump(value: str, owner: str = "") -> list[JumpHost]:
    """A ProxyJump value (``[user@]host[:port]`` or ``ssh://[user@]host[:port]``, comma separated), first hop first."""
    hops = []
    for part in value.split(","):
        match = _PROXY_JUMP_HOP.fullmatch(part.strip())
        port = int(match.group("port")) if match and match.group("port") else None
        if not match or (port is not None and not 0 < port < 65536):
            whose = f" for {owner}" if owner else ""
            raise HostUnreachable(f"cannot read the ssh config's ProxyJump {value!r}{whose}: "
                                  f"expected [user@]host[:port], comma separated")
        hops.append(JumpHost(address=match.group("host").strip("[]"), user=match.group("user"), port=port))
    return hops


def _proxies(options: dict, name: str) -> list[JumpHost]:
    """The jump hosts the ssh config's options for ``name`` give (ProxyJump); a ProxyCommand is refused."""
    jump = options.get("proxyjump")
    if jump and jump.strip().lower() != "none":
        return parse_proxy_jump(jump, name)
    command = options.get("proxycommand")  # None for "ProxyCommand none"
    if command:
        raise HostUnreachable(
            f"the ssh config gives {name} a ProxyCommand ({command}); releasetui does not run ProxyCommand "
            f"(it reaches hosts through jump hosts whose keys it checks itself): use ProxyJump instead, or "
            f"jump: in hosts.yml")
    return []


def _hop(spec: JumpHost, options: dict, host: HostConfig) -> Hop:
    """``spec`` resolved: its own values, else its ssh config entry's, else the host's, else the defaults."""
    try:
        port = spec.port or int(options.get("port", 22))
    except ValueError:
        raise HostUnreachable(f"the ssh config's Port for jump host {spec.address} is not a number: "
                              f"{options.get('port')!r}") from None
    user = spec.user or options.get("user") or host.user
    if spec.key_file is not None:
        key_files: tuple[Path, ...] = (spec.key_file,)
    else:
        # ssh skips an IdentityFile that does not exist; so do we (and fall back to the host's key).
        key_files = tuple(path for path in (Path(p).expanduser() for p in options.get("identityfile") or ())
                          if path.is_file())
        if not key_files and host.key_file is not None:
            key_files = (host.key_file,)
    known_hosts = spec.known_hosts or host.known_hosts or Path(DEFAULT_KNOWN_HOSTS).expanduser()
    return Hop(name=spec.address, hostname=options.get("hostname") or spec.address, port=port, user=user,
               key_files=key_files, known_hosts=known_hosts)


def _resolve(specs: list[JumpHost], host: HostConfig, lookup: SSHLookup, seen: frozenset) -> tuple[Hop, ...]:
    first = specs[0].address
    before: tuple[Hop, ...] = ()
    # The first jump host is reached the way ssh reaches it: through its own ProxyJump, if it has one.
    # One that leads back to a host already on the way (``Host *`` + ``ProxyJump bastion``) is ignored.
    own = _proxies(lookup(first), f"jump host {first}")
    if own and not any(spec.address in seen | {first} for spec in own):
        before = _resolve(own, host, lookup, seen | {first})
    route = before + tuple(_hop(spec, lookup(spec.address), host) for spec in specs)
    if len(route) > MAX_HOPS:
        raise HostUnreachable(f"more than {MAX_HOPS} jump hosts on the way to {host.address} (a ProxyJump loop?)")
    return route


def jump_route(host: HostConfig, options: dict, lookup: SSHLookup) -> tuple[Hop, ...]:
    """The jump hosts ``host`` is reached through, first hop first; empty to connect directly.

    ``jump:`` in hosts.yml wins; otherwise the ProxyJump the ssh config gives the host's address (``options``
    is its ssh config entry; multi-hop ``a,b`` and a jump host's own ProxyJump are followed). A ProxyCommand is
    refused (:class:`HostUnreachable`). Each jump host's user, key and known_hosts: its own (hosts.yml
    ``jump:``, ``user@`` in ProxyJump), else its ssh config entry's (User, IdentityFile), else the host's,
    else the defaults (the local user; ~/.ssh/id_* and the agent; ~/.ssh/known_hosts).
    """
    if host.transport != "ssh":
        return ()
    if host.jump is not None:
        specs = [host.jump]
    else:
        specs = _proxies(options, host.address or host.name)
    if not specs:
        return ()
    return _resolve(specs, host, lookup, frozenset({host.address}))


class _Jump:
    """One kept-open jump connection (and the channels opened through it)."""

    def __init__(self, hop: Hop):
        self.hop = hop
        self.lock = threading.Lock()
        self.conn = None
        self.via = None                     # the transport it was opened through (None: a TCP socket)
        self.channels: list = []            # direct-tcpip channels opened through it
        self.error: Optional[HostUnreachable] = None
        self.failed_at = float("-inf")

    def alive(self, via) -> bool:
        return self.conn is not None and self.conn.is_connected and self.via is via

    def drop(self) -> None:
        """Close it and every channel through it (the hosts behind it then reconnect)."""
        for channel in self.channels:
            try:
                channel.close()
            except Exception:
                pass
        self.channels = []
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
        self.conn, self.via = None, None


class GatewayPool:
    """Jump hosts (bastions), one kept-open connection each, shared by every host behind them.

    Connections are keyed by the route to them, so a jump host reached through another is its own entry,
    and by the user, keys and known_hosts they were checked with (never shared across known_hosts files).
    A jump connection that fails is tried once for all the hosts that were waiting on it (50 hosts behind
    an unreachable bastion wait one connect timeout, not fifty); a later use tries again.
    """

    def __init__(self, connect_timeout: float = 15.0):
        self.connect_timeout = connect_timeout
        self._jumps: dict[tuple[Hop, ...], _Jump] = {}
        self._lock = threading.Lock()
        self.opened = 0  # jump connections opened so far

    def _jump(self, route: tuple[Hop, ...]) -> _Jump:
        with self._lock:
            jump = self._jumps.get(route)
            if jump is None:
                jump = self._jumps[route] = _Jump(route[-1])
            return jump

    def _forward(self, transport, hop_label: str, dest: tuple[str, int], what: Optional[str] = None):
        """A ``direct-tcpip`` channel to ``dest`` (``what``, for messages) through ``transport``, the connection
        to ``hop_label``."""
        import paramiko

        where = f"{what} ({dest[0]}:{dest[1]})" if what else f"{dest[0]}:{dest[1]}"
        try:
            return transport.open_channel("direct-tcpip", dest, ("127.0.0.1", 0), timeout=self.connect_timeout)
        except paramiko.ChannelException as exc:
            raise HostUnreachable(f"{hop_label} cannot reach {where}: {exc.text or 'refused'}") from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            if transport.is_active():
                raise HostUnreachable(f"{hop_label} did not open a channel to {where}: "
                                      f"{str(exc) or type(exc).__name__}") from None
            raise _JumpLost(f"{hop_label} lost: {str(exc) or type(exc).__name__}") from None

    def transports(self, route: tuple[Hop, ...], asked: Optional[float] = None) -> tuple:
        """The transports of the jump connections of ``route``, first hop first, opened or reopened as needed."""
        asked = time.monotonic() if asked is None else asked
        transports: list = []
        for depth in range(1, len(route) + 1):
            hop = route[depth - 1]
            jump = self._jump(route[:depth])
            via = transports[-1] if transports else None
            with jump.lock:
                if not jump.alive(via):
                    jump.drop()
                    if jump.failed_at >= asked and jump.error is not None:
                        # It failed while this caller waited for it: the same answer, not another timeout.
                        raise type(jump.error)(str(jump.error))
                    try:
                        sock = None
                        if via is not None:
                            sock = self._forward(via, route[depth - 2].label, (hop.hostname, hop.port),
                                                 f"jump host {hop.name}")
                        jump.conn = open_connection(hop.name, hop.user, hop.port, hop.key_files, hop.known_hosts,
                                                    self.connect_timeout, sock, label=hop.label,
                                                    behind=route[depth - 2] if via is not None else None)
                    except HostUnreachable as exc:
                        jump.error, jump.failed_at = exc, time.monotonic()
                        raise
                    jump.via, jump.error = via, None
                    with self._lock:
                        self.opened += 1
                transports.append(jump.conn.transport)
        return tuple(transports)

    def open_channel(self, route: tuple[Hop, ...], dest: tuple[str, int]) -> tuple:
        """``(channel, transports)``: a ``direct-tcpip`` channel to ``dest`` through ``route``'s last jump host,
        and the jump connections' transports it depends on. A jump connection found lost is reopened once."""
        asked = time.monotonic()
        for attempt in (1, 2):
            transports = self.transports(route, asked)
            try:
                channel = self._forward(transports[-1], route[-1].label, dest)
            except _JumpLost as exc:
                if attempt == 2:
                    raise HostUnreachable(str(exc)) from None
                asked = time.monotonic()
                continue
            jump = self._jump(route)
            with jump.lock:
                jump.channels = [c for c in jump.channels if not c.closed] + [channel]
            return channel, transports
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Close every jump connection (the deepest first)."""
        with self._lock:
            jumps = sorted(self._jumps.items(), key=lambda item: -len(item[0]))
            self._jumps = {}
        for _, jump in jumps:
            jump.drop()


class _JumpLost(HostUnreachable):
    """A jump connection died between being checked and being used."""
