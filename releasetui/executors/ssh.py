"""The SSH executor: paramiko, one kept-open connection per host, host keys checked against
known_hosts (unknown or changed keys refused), TCP_NODELAY, and a session channel opened ahead of time so a
script costs one round trip, not two."""

from __future__ import annotations

import select
import shlex
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Union

from ..config import HostConfig
from ..models import HostUnreachable
from .base import LineHandler, RemoteProcess, _ExecutorBase
from .connect import DEFAULT_KNOWN_HOSTS, load_paramiko, open_ssh, ssh_config_lookup, ssh_connection

if TYPE_CHECKING:  # jump hosts' code is imported only for a host that has one
    from .jump import GatewayPool, Hop

GatewaySource = Union["GatewayPool", Callable[[], "GatewayPool"], None]


def _needs_route(host: HostConfig, options: dict) -> bool:
    """Whether ``host`` may be behind a jump host (``jump:``, or a ProxyJump/ProxyCommand in its ssh config)."""
    return host.transport == "ssh" and (host.jump is not None or bool(options.get("proxyjump"))
                                        or bool(options.get("proxycommand")))


# --- ssh ---------------------------------------------------------------------------------------

class _SSHProcess(RemoteProcess):
    def __init__(self, executor: "SSHExecutor", channel, on_line: Optional[LineHandler]):
        super().__init__(on_line)
        self.executor = executor
        self.channel = channel
        self._stdin_lock = threading.Lock()

    def _lost(self, exc: BaseException) -> HostUnreachable:
        return self.executor.lost(exc)

    def _poll(self, wait: float) -> bool:
        channel = self.channel
        try:
            select.select([channel], [], [], wait)
            while channel.recv_stderr_ready():
                self.err.append(channel.recv_stderr(65536))
            got = False
            while channel.recv_ready():
                data = channel.recv(65536)
                if not data:
                    break
                self.out.feed(data)
                got = True
            if got:
                return False
            if channel.exit_status_ready() or channel.closed or channel.eof_received:
                # The last chunks may arrive with EOF, after recv_ready() was checked.
                while channel.recv_ready():
                    self.out.feed(channel.recv(65536))
                while channel.recv_stderr_ready():
                    self.err.append(channel.recv_stderr(65536))
                if channel.eof_received or channel.closed:
                    return True
            transport = channel.get_transport()
            if transport is None or not transport.is_active():
                raise self._lost(EOFError("the connection closed"))
            return False
        except HostUnreachable:
            raise
        except (OSError, EOFError) as exc:
            raise self._lost(exc) from None

    def _exit_code(self) -> int:
        channel = self.channel
        try:
            transport = channel.get_transport()
            deadline = time.monotonic() + 10
            while not channel.exit_status_ready():
                if transport is None or not transport.is_active() or time.monotonic() > deadline:
                    raise self._lost(EOFError("no exit status"))
                time.sleep(0.01)
            if channel.exit_status == -1:
                # Closed without an exit status: the connection was lost (paramiko closes the channels a moment
                # before it marks the transport inactive: give it that moment), or the script died of a signal.
                settle = time.monotonic() + 0.5
                while transport is not None and transport.is_active() and time.monotonic() < settle:
                    time.sleep(0.01)
                if transport is None or not transport.is_active():
                    raise self._lost(EOFError("the connection closed"))
            return channel.recv_exit_status()
        finally:
            channel.close()

    def _write(self, data: bytes) -> None:
        with self._stdin_lock:
            try:
                self.channel.sendall(data)
            except (OSError, EOFError) as exc:
                raise self._lost(exc) from None

    def _close_stdin(self) -> None:
        with self._stdin_lock:
            try:
                self.channel.shutdown_write()
            except (OSError, EOFError):
                pass

    def _kill(self) -> None:
        try:
            self.channel.close()
        except (OSError, EOFError):
            pass


class SSHExecutor(_ExecutorBase):
    """Runs the scripts over one kept-open SSH connection, with strict host-key checking.

    A host behind jump hosts (``jump:`` in hosts.yml, else ProxyJump in the ssh config) is reached
    through a ``direct-tcpip`` channel of the :class:`GatewayPool`'s kept-open jump connection.
    ``gateways`` is that pool, or what makes it when first needed (the pool's, shared by its hosts).
    """

    def __init__(self, host: HostConfig, connect_timeout: float = 15.0, gateways: GatewaySource = None):
        self.host = host
        self.connect_timeout = connect_timeout
        self._gateways_from = gateways if callable(gateways) else None
        self.gateways = None if callable(gateways) else gateways
        self._own_gateways = False
        self.round_trips = 0
        self._connection = None
        self._route: tuple[Hop, ...] = ()
        self._via: tuple = ()  # the jump connections' transports the connection rides on, first hop first
        self._lock = threading.Lock()
        self._spare: Optional[Future] = None

    @property
    def where(self) -> str:
        """``address:port`` for messages."""
        return f"{self.host.address}:{self.host.port or 22}"

    @property
    def known_hosts(self) -> Path:
        """The known_hosts file keys are checked against."""
        return self.host.known_hosts or Path(DEFAULT_KNOWN_HOSTS).expanduser()

    @property
    def route(self) -> tuple["Hop", ...]:
        """The jump hosts of the current connection, first hop first (empty: direct)."""
        return self._route

    def _alive(self) -> bool:
        return (self._connection is not None and self._connection.is_connected
                and all(transport.is_active() for transport in self._via))

    def connect(self) -> None:
        """Open (once) the SSH connection; raise :class:`HostUnreachable` or :class:`HostKeyRefused`.

        A connection whose jump host was lost is dropped and opened again (through a new jump connection).
        """
        with self._lock:
            if self._alive():
                return
            self._close_connection()
            conn = ssh_connection(self.host.address, self.host.user, self.host.port, self.host.key_file,
                                  self.connect_timeout)
            route: tuple = ()
            if _needs_route(self.host, conn.ssh_config):
                from .jump import jump_route
                route = jump_route(self.host, conn.ssh_config, ssh_config_lookup)
            sock, via = None, ()
            if route:
                if self.gateways is None and self._gateways_from is not None:
                    self.gateways = self._gateways_from()
                if self.gateways is None:
                    from .jump import GatewayPool
                    self.gateways, self._own_gateways = GatewayPool(self.connect_timeout), True
                sock, via = self.gateways.open_channel(route, (conn.host, conn.port))
            self._connection = open_ssh(conn, self.known_hosts, self.connect_timeout, sock,
                                        behind=route[-1] if route else None)
            self._route, self._via = route, via
            # The first script's channel opens now, while the caller still plans (or waits for the fleet's gate):
            # that script then costs one round trip, not two.
            self._prime()

    def _close_connection(self) -> None:
        self._spare = None
        if self._connection is not None:
            try:
                self._connection.close()
            except Exception:
                pass
            self._connection = None
        self._via = ()

    def close(self) -> None:
        """Close the kept-open connection (and its spare channel; and the jump hosts if this executor owns them)."""
        with self._lock:
            self._close_connection()
            if self._own_gateways and self.gateways is not None:
                self.gateways.close()

    def drop(self) -> None:
        """Forget a connection that was lost, so the next use reconnects."""
        with self._lock:
            self._close_connection()

    def lost(self, exc: BaseException) -> HostUnreachable:
        """Forget the lost connection; the error to raise, naming the jump host when that is what was lost."""
        why = str(exc) or type(exc).__name__
        for hop, transport in zip(self._route, self._via):
            if not transport.is_active():
                why = f"{hop.label} lost"
                break
        self.drop()
        return HostUnreachable(f"connection to {self.where} lost: {why}")

    def _open_channel(self):
        paramiko = load_paramiko()
        try:
            return self._connection.transport.open_session(timeout=self.connect_timeout)
        except (paramiko.SSHException, OSError, EOFError, AttributeError) as exc:
            raise self.lost(exc) from None

    def _prime(self) -> None:
        """Open the next session channel in the background: the next script then costs one round trip, not two."""
        future: Future = Future()
        self._spare = future

        def open_spare() -> None:
            try:
                future.set_result(self._open_channel())
            except BaseException as exc:
                future.set_exception(exc)

        threading.Thread(target=open_spare, name="releasetui-spare-channel", daemon=True).start()

    def _channel(self):
        self.connect()
        with self._lock:
            spare, self._spare = self._spare, None
        channel = None
        if spare is not None:
            try:
                channel = spare.result(timeout=self.connect_timeout)
            except BaseException:
                channel = None
            if channel is not None and (channel.closed or not channel.active):
                channel = None
        if channel is None:
            channel = self._open_channel()
        with self._lock:
            if self._connection is not None:
                self._prime()
        return channel

    def start(self, script: str, *, on_line: Optional[LineHandler] = None, mutating: bool = True) -> RemoteProcess:
        """Run ``script`` as ``sh -c`` on a session channel of the kept-open connection."""
        paramiko = load_paramiko()

        channel = self._channel()
        self.round_trips += 1
        try:
            channel.exec_command("sh -c " + shlex.quote(script))
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise self.lost(exc) from None
        return _SSHProcess(self, channel, on_line)
