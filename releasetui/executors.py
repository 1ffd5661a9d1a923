"""The one narrow seam between operations and hosts.

An executor runs a shell script on its host (one round trip), streaming its
stdout lines, optionally feeding it stdin (the build's stream, a verdict).
Three kinds, like SSHKit's backends:

* :class:`SSHExecutor`: Fabric/paramiko, one kept-open connection per host,
  host keys checked against known_hosts (unknown or changed keys refused),
  TCP_NODELAY on the socket, and a session channel opened ahead of time so a
  script costs one round trip, not two. Hosts behind jump hosts (``jump:``, or
  ProxyJump in ~/.ssh/config) ride a ``direct-tcpip`` channel of one kept-open
  connection per jump host (:class:`GatewayPool`), its key checked the same way.
* :class:`LocalExecutor`: the same scripts through ``sh`` on this machine.
* :class:`RecordingExecutor`: wraps another; read-only scripts run for real,
  anything that would change the host is recorded and not run (``--dry-run``).

Each counts its round trips (``round_trips``: scripts started).
"""

from __future__ import annotations

import logging
import os
import re
import select
import shlex
import socket
import subprocess
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional, Protocol, Union

from .config import HostConfig, JumpHost
from .models import HostKeyRefused, HostUnreachable, ScriptTimeout  # noqa: F401 - re-exported

LineHandler = Callable[[str], None]
Stdin = Union[bytes, Iterable[bytes], None]

# paramiko logs connection noise ("Socket exception: Bad file descriptor") through the logging module's
# last-resort handler, i.e. onto the user's terminal; every error that matters is raised and reported by us.
logging.getLogger("paramiko").addHandler(logging.NullHandler())
logging.getLogger("paramiko").propagate = False


@dataclass
class CommandResult:
    """What one remote script did: exit code, output, and how long it took."""

    exit_code: int
    stdout: str = ""
    stderr: str = ""
    duration: float = 0.0
    stopped: bool = False

    @property
    def ok(self) -> bool:
        """Whether it exited 0."""
        return self.exit_code == 0

    def error_text(self, limit: int = 5) -> str:
        """The last lines of stderr (or stdout, without its ``@@step`` lines), for a one-line message."""
        text = [line for line in (self.stderr or self.stdout).strip().splitlines() if not line.startswith("@@step\t")]
        return " | ".join(text[-limit:])[-1000:] if text else f"exit code {self.exit_code}"


class _Lines:
    """Turns chunks of bytes into complete text lines for a handler, keeping all text."""

    def __init__(self, handler: Optional[LineHandler]):
        self.handler = handler
        self.partial = b""
        self.chunks: list[bytes] = []
        self.lines: list[str] = []

    def feed(self, data: bytes) -> None:
        self.chunks.append(data)
        self.partial += data
        *complete, self.partial = self.partial.split(b"\n")
        for raw in complete:
            line = raw.decode("utf-8", "replace")
            self.lines.append(line)
            if self.handler is not None:
                self.handler(line)

    def finish(self) -> str:
        if self.partial:
            line = self.partial.decode("utf-8", "replace")
            self.lines.append(line)
            if self.handler is not None:
                self.handler(line)
            self.partial = b""
        return b"".join(self.chunks).decode("utf-8", "replace")


class RemoteProcess:
    """A script running on a host: feed its stdin, read its lines as they come, wait for its end.

    Subclasses provide ``_poll`` (read what is there, within a short wait),
    ``_exit_code``, ``_write``, ``_close_stdin`` and ``_kill``.
    """

    def __init__(self, on_line: Optional[LineHandler]):
        self.out = _Lines(on_line)
        self.err: list[bytes] = []
        self.started = time.monotonic()
        self.ended = False
        self.stopped = False
        self._seen = 0
        self._writer: Optional[threading.Thread] = None
        self.write_error: Optional[BaseException] = None

    # -- to implement --
    def _poll(self, wait: float) -> bool:  # pragma: no cover - abstract
        """Read what is available (waiting up to ``wait``); True once the process has ended and all is read."""
        raise NotImplementedError

    def _exit_code(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def _write(self, data: bytes) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _close_stdin(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _kill(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- the API --
    def send(self, data: bytes) -> None:
        """Write to the script's stdin (a verdict, say)."""
        self._write(data)

    def close_stdin(self) -> None:
        """Send EOF to the script's stdin."""
        self._close_stdin()

    def feed(self, stdin: Stdin, close: bool = True) -> None:
        """Stream ``stdin`` to the script from a helper thread (so its output is read meanwhile), then EOF."""
        if stdin is None:
            if close:
                self._close_stdin()
            return
        chunks = [stdin] if isinstance(stdin, (bytes, bytearray)) else stdin

        def write_all() -> None:
            try:
                for chunk in chunks:
                    self._write(chunk)
                if close:
                    self._close_stdin()
            except BaseException as exc:  # the script died or the channel closed: its end says why
                self.write_error = exc

        self._writer = threading.Thread(target=write_all, name="releasetui-stdin", daemon=True)
        self._writer.start()

    def read_until(self, tags: Iterable[str], stop: Optional[threading.Event] = None,
                   deadline: Optional[float] = None) -> Optional[str]:
        """Read until a line starting with one of ``tags`` arrives; that line, or None when the script ended.

        Raises :class:`ScriptTimeout` after ``deadline`` (time.monotonic()); returns None when ``stop`` is set.
        """
        tags = tuple(tags)
        while True:
            while self._seen < len(self.out.lines):
                line = self.out.lines[self._seen]
                self._seen += 1
                if line.split("\t", 1)[0] in tags:
                    return line
            if self.ended:
                return None
            if stop is not None and stop.is_set():
                return None
            if deadline is not None and time.monotonic() > deadline:
                raise ScriptTimeout(f"no answer within {deadline - self.started:.0f}s")
            self.ended = self._poll(0.2)

    def wait(self, stop: Optional[threading.Event] = None, deadline: Optional[float] = None) -> CommandResult:
        """Read to the end; ``stop`` abandons the script (``stopped``), ``deadline`` raises :class:`ScriptTimeout`."""
        while not self.ended:
            if stop is not None and stop.is_set():
                self.stopped = True
                self._kill()
                break
            if deadline is not None and time.monotonic() > deadline:
                self._kill()
                raise ScriptTimeout(f"stopped after {deadline - self.started:.0f}s")
            self.ended = self._poll(0.2)
        if self._writer is not None:
            self._writer.join(timeout=5)
        stdout = self.out.finish()
        code = -1 if self.stopped else self._exit_code()
        return CommandResult(code, stdout, b"".join(self.err).decode("utf-8", "replace"),
                             time.monotonic() - self.started, self.stopped)

    def abandon(self) -> None:
        """Stop reading and close the connection to the script (on the host it may go on: see STOP_WORKER)."""
        self.stopped = True
        self._kill()


class Executor(Protocol):
    """Runs scripts on one host; see the module docstring."""

    host: HostConfig
    round_trips: int

    def connect(self) -> None:
        """Open the connection now (raises :class:`HostUnreachable`)."""

    def close(self) -> None:
        """Close the connection, if any."""

    def start(self, script: str, *, on_line: Optional[LineHandler] = None, mutating: bool = True) -> RemoteProcess:
        """Start ``script`` with ``sh`` on the host; it runs until it ends or is abandoned."""

    def run(self, script: str, *, on_line: Optional[LineHandler] = None, stdin: Stdin = None, mutating: bool = True,
            stop: Optional[threading.Event] = None, timeout: Optional[float] = None,
            keep_stdin: bool = False) -> CommandResult:
        """Run ``script`` to its end in one round trip, feeding it ``stdin``."""


class _ExecutorBase:
    """``run`` in terms of ``start``."""

    round_trips: int

    def start(self, script: str, *, on_line: Optional[LineHandler] = None, mutating: bool = True) -> RemoteProcess:
        raise NotImplementedError  # pragma: no cover

    def run(self, script: str, *, on_line: Optional[LineHandler] = None, stdin: Stdin = None, mutating: bool = True,
            stop: Optional[threading.Event] = None, timeout: Optional[float] = None,
            keep_stdin: bool = False) -> CommandResult:
        """Run ``script`` to its end; with ``keep_stdin`` its stdin stays open until ``stop`` (a followed tail)."""
        process = self.start(script, on_line=on_line, mutating=mutating)
        if not keep_stdin:
            process.feed(stdin)
        deadline = time.monotonic() + timeout if timeout else None
        return process.wait(stop=stop, deadline=deadline)


# --- local --------------------------------------------------------------------------------------

class _LocalProcess(RemoteProcess):
    def __init__(self, script: str, on_line: Optional[LineHandler]):
        super().__init__(on_line)
        self.proc = subprocess.Popen(["sh", "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
        self.streams = {self.proc.stdout.fileno(): "out", self.proc.stderr.fileno(): "err"}
        self._stdin_lock = threading.Lock()

    def _poll(self, wait: float) -> bool:
        if not self.streams:
            return True
        ready, _, _ = select.select(list(self.streams), [], [], wait)
        for fd in ready:
            data = os.read(fd, 65536)
            if not data:
                del self.streams[fd]
            elif self.streams[fd] == "out":
                self.out.feed(data)
            else:
                self.err.append(data)
        return not self.streams

    def _exit_code(self) -> int:
        code = self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                stream.close()
            except (OSError, ValueError):
                pass
        return code

    def _write(self, data: bytes) -> None:
        with self._stdin_lock:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()

    def _close_stdin(self) -> None:
        with self._stdin_lock:
            try:
                self.proc.stdin.close()
            except (OSError, ValueError):
                pass

    def _kill(self) -> None:
        self._close_stdin()
        try:
            os.killpg(self.proc.pid, 15)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.proc.pid, 9)
            except (ProcessLookupError, PermissionError):
                pass


class LocalExecutor(_ExecutorBase):
    """Runs the scripts on this machine through ``sh`` (the ``local`` transport)."""

    def __init__(self, host: HostConfig, connect_timeout: float = 15.0):
        self.host = host
        self.round_trips = 0

    def connect(self) -> None:
        """Nothing to open; always reachable."""

    def close(self) -> None:
        """Nothing to close."""

    def start(self, script: str, *, on_line: Optional[LineHandler] = None, mutating: bool = True) -> RemoteProcess:
        """Start ``sh -c script`` in its own session (so a stop kills everything it started)."""
        self.round_trips += 1
        return _LocalProcess(script, on_line)


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
    """Runs the scripts over one kept-open Fabric connection, with strict host-key checking.

    A host behind jump hosts (``jump:`` in hosts.yml, else ProxyJump in the ssh config) is reached
    through a ``direct-tcpip`` channel of the :class:`GatewayPool`'s kept-open jump connection.
    """

    def __init__(self, host: HostConfig, connect_timeout: float = 15.0, gateways: Optional["GatewayPool"] = None):
        self.host = host
        self.connect_timeout = connect_timeout
        self.gateways = gateways
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
            route = jump_route(self.host, conn.ssh_config, _lookup_in(conn))
            sock, via = None, ()
            if route:
                if self.gateways is None:
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
        import paramiko
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
        import paramiko

        channel = self._channel()
        self.round_trips += 1
        try:
            channel.exec_command("sh -c " + shlex.quote(script))
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise self.lost(exc) from None
        return _SSHProcess(self, channel, on_line)


_KNOWN_HOSTS: dict = {}
_KNOWN_HOSTS_LOCK = threading.Lock()


def _known_host_keys(path: Path):
    """The parsed known_hosts file, shared by every connection while the file is unchanged.

    paramiko would parse the whole file again for each host: with N hosts and an N-line file an
    operation costs N x N (0.44 s of CPU at 100 hosts, 2.3 s at 200). Connections only read it
    (RejectPolicy never adds a key), so one parsed copy serves them all.
    """
    import paramiko

    try:
        info = path.stat()
    except OSError as exc:
        raise HostUnreachable(f"cannot read known_hosts {path}: {exc.strerror or exc}") from None
    key = (str(path), info.st_mtime_ns, info.st_size)
    with _KNOWN_HOSTS_LOCK:
        keys = _KNOWN_HOSTS.get(key)
        if keys is None:
            keys = paramiko.HostKeys()
            try:
                keys.load(str(path))
            except (OSError, paramiko.SSHException, ValueError) as exc:
                raise HostUnreachable(f"cannot read known_hosts {path}: {exc}") from None
            if len(_KNOWN_HOSTS) > 16:  # old versions of edited files
                _KNOWN_HOSTS.clear()
            _KNOWN_HOSTS[key] = keys
        return keys


DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"


def ssh_connection(address: str, user: Optional[str], port: Optional[int],
                   key_files: Union[Path, Iterable[Path], None], timeout: float, label: Optional[str] = None):
    """A Fabric Connection to ``address``, not opened yet, the ssh config applied (HostName, User, Port, IdentityFile).

    Fabric's own gateway handling is off (``gateway=False``): its ProxyJump connections would trust any host key
    (AutoAddPolicy); jump hosts are opened by :class:`GatewayPool`, their keys checked like any host's.
    """
    from fabric import Connection

    files = [key_files] if isinstance(key_files, Path) else list(key_files or ())
    kwargs: dict = {}
    for key_file in files:
        if not key_file.is_file():
            raise HostUnreachable(f"key file {key_file}{' for ' + label if label else ''} not found")
    if files:
        kwargs["key_filename"] = [str(key_file) for key_file in files]
    try:
        return Connection(address, user=user, port=port, connect_timeout=timeout, connect_kwargs=kwargs, gateway=False)
    except (ValueError, KeyError) as exc:  # a Port that is not a number in the ssh config, say
        raise HostUnreachable(f"cannot use the ssh config for {address}: {exc}") from None


def open_ssh(conn, known_hosts: Path, timeout: float, sock=None, behind: Optional["Hop"] = None,
             label: Optional[str] = None):
    """Open ``conn`` (from :func:`ssh_connection`), its host key checked against ``known_hosts``; returns it.

    ``sock`` is an already-open channel to the host through ``behind`` (its last jump host); without one a TCP
    socket with TCP_NODELAY is opened here (paramiko never sets it: each round trip would wait on Nagle, ~47 ms
    vs ~3.5 ms). ``label`` names the host in messages (default ``address:port``).
    """
    import paramiko

    where = f"{conn.host}:{conn.port}"
    label = label or where
    through = f" through {behind.label}" if behind is not None else ""
    client = conn.client
    # Fabric's default is AutoAddPolicy, which trusts any key: refuse instead.
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    if known_hosts.is_file():
        client._host_keys = _known_host_keys(known_hosts)  # parsed once per file version, not once per host
    if sock is None:
        try:
            sock = socket.create_connection((conn.host, conn.port), timeout=timeout)
        except OSError as exc:
            raise HostUnreachable(f"cannot connect to {label}: {exc.strerror or exc}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.connect_kwargs["sock"] = sock
    # paramiko waits 15 s for the server's banner whatever the timeout: a host (or jump host) that accepts the
    # connection and then says nothing would hold every host behind it that long.
    conn.connect_kwargs.setdefault("banner_timeout", timeout)
    try:
        conn.open()
    except paramiko.BadHostKeyException as exc:
        sock.close()
        raise HostKeyRefused(
            f"host key for {label} CHANGED (got {exc.key.get_name()} "
            f"{exc.key.fingerprint}); refusing to connect. Check {known_hosts}.") from None
    except paramiko.SSHException as exc:
        sock.close()
        message = str(exc)
        if "not found in known_hosts" in message:
            scan = f"ssh-keyscan -p {conn.port} {conn.host}"
            hint = (f"{scan}, run on {behind.hostname}," if behind is not None else scan)
            raise HostKeyRefused(
                f"host key for {label}{through} is not in {known_hosts}; refusing to connect "
                f"(add it with: {hint} >> {known_hosts}, after checking it)") from None
        if message.startswith(("No existing session", "Error reading SSH protocol banner")):
            raise HostUnreachable(f"{label}{through} did not answer as an SSH server within {timeout:g}s "
                                  f"({message})") from None
        if isinstance(exc, paramiko.AuthenticationException):
            raise HostUnreachable(f"authentication failed for {conn.user}@{label}{through}: {message}") from None
        raise HostUnreachable(f"SSH error with {label}{through}: {message}") from None
    except (OSError, EOFError) as exc:
        sock.close()
        raise HostUnreachable(f"cannot connect to {label}{through}: {exc or type(exc).__name__}") from None
    conn.transport.set_keepalive(30)  # the TUI keeps it open for hours: keep NAT and firewalls from dropping it
    return conn


def open_connection(address: str, user: Optional[str], port: Optional[int],
                    key_file: Union[Path, Iterable[Path], None], known_hosts: Path, timeout: float, sock=None,
                    label: Optional[str] = None, behind: Optional["Hop"] = None):
    """A connected, authenticated Fabric Connection whose host key was checked against ``known_hosts``.

    (:func:`ssh_connection` then :func:`open_ssh`.) No ProxyJump is followed here: see :class:`SSHExecutor`.
    """
    conn = ssh_connection(address, user, port, key_file, timeout, label)
    return open_ssh(conn, known_hosts, timeout, sock, behind=behind, label=label)


# --- jump hosts ----------------------------------------------------------------------------------

MAX_HOPS = 8
SSHLookup = Callable[[str], dict]


@dataclass(frozen=True)
class Hop:
    """One jump host on the way to a host, resolved from hosts.yml and the ssh config.

    ``name`` is what was written (an ssh config alias or an address) and what Fabric is given (so the alias's
    HostName applies); ``hostname``/``port`` are where it is, the name its key is looked up under in known_hosts.
    """

    name: str
    hostname: str
    port: int
    user: Optional[str]
    key_files: tuple[Path, ...]
    known_hosts: Path

    @property
    def label(self) -> str:
        """``jump host NAME (HOSTNAME:PORT)`` for messages."""
        where = f"{self.hostname}:{self.port}"
        return f"jump host {self.name} ({where})" if self.name != self.hostname else f"jump host {where}"


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


def _lookup_in(conn) -> SSHLookup:
    """``name -> options`` from the ssh config Fabric loaded for ``conn``."""
    config = conn.config.base_ssh_config

    def lookup(name: str) -> dict:
        try:
            return config.lookup(name)
        except Exception as exc:  # a failing Match exec, CanonicalizeHostname that finds nothing...
            raise HostUnreachable(f"cannot use the ssh config for {name}: {exc}") from None
    return lookup


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
                                      f"{exc or type(exc).__name__}") from None
            raise _JumpLost(f"{hop_label} lost: {exc or type(exc).__name__}") from None

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


# --- dry run -------------------------------------------------------------------------------------

@dataclass
class RecordedCommand:
    """A script a dry run would have run, on which host (``kind``: its phase)."""

    host: str
    kind: str
    text: str


class RecordingExecutor(_ExecutorBase):
    """Dry-run backend: read-only scripts run for real, everything else is recorded, not run."""

    def __init__(self, inner: Executor, on_record: Optional[Callable[[RecordedCommand], None]] = None):
        self.inner = inner
        self.host = inner.host
        self.recorded: list[RecordedCommand] = []
        self.on_record = on_record

    @property
    def round_trips(self) -> int:
        """Round trips actually made (read-only ones)."""
        return self.inner.round_trips

    def connect(self) -> None:
        """Connect the wrapped executor (a dry run still reads the hosts' state)."""
        self.inner.connect()

    def close(self) -> None:
        """Close the wrapped executor."""
        self.inner.close()

    def record(self, kind: str, text: str) -> None:
        """Note a command that would have run."""
        command = RecordedCommand(self.host.name, kind, text)
        self.recorded.append(command)
        if self.on_record:
            self.on_record(command)

    def start(self, script: str, *, on_line: Optional[LineHandler] = None, mutating: bool = True) -> RemoteProcess:
        """Read-only scripts only: a dry run never starts one that changes the host."""
        if mutating:
            raise RuntimeError("a dry run must not start a script that changes the host")
        return self.inner.start(script, on_line=on_line, mutating=False)


def make_executor(host: HostConfig, connect_timeout: float = 15.0, gateways: Optional[GatewayPool] = None) -> Executor:
    """The executor for a host's transport."""
    if host.transport == "local":
        return LocalExecutor(host, connect_timeout)
    return SSHExecutor(host, connect_timeout, gateways)


@dataclass
class ExecutorPool:
    """Kept-open executors, one per host, reused across operations (the TUI keeps one for its lifetime)."""

    executors: dict = field(default_factory=dict)
    connect_timeout: float = 15.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    gateways: Optional[GatewayPool] = None

    def __post_init__(self) -> None:
        if self.gateways is None:  # the jump hosts get the same connect timeout as the hosts
            self.gateways = GatewayPool(self.connect_timeout)

    def get(self, host: HostConfig) -> Executor:
        """The executor for ``host``, made on first use."""
        with self._lock:
            executor = self.executors.get(host.name)
            if executor is None or executor.host != host:
                executor = make_executor(host, self.connect_timeout, self.gateways)
                self.executors[host.name] = executor
            return executor

    def close(self) -> None:
        """Close every connection."""
        with self._lock:
            for executor in self.executors.values():
                try:
                    executor.close()
                except Exception:
                    pass
            self.executors.clear()
        self.gateways.close()
