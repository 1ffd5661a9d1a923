"""The one narrow seam between operations and hosts.

An executor runs a shell script on its host (one round trip), streaming its
stdout lines, optionally feeding it stdin (the build's stream, a verdict).
Three kinds, like SSHKit's backends:

* :class:`SSHExecutor`: Fabric/paramiko, one kept-open connection per host,
  host keys checked against known_hosts (unknown or changed keys refused),
  TCP_NODELAY on the socket, and a session channel opened ahead of time so a
  script costs one round trip, not two.
* :class:`LocalExecutor`: the same scripts through ``sh`` on this machine.
* :class:`RecordingExecutor`: wraps another; read-only scripts run for real,
  anything that would change the host is recorded and not run (``--dry-run``).

Each counts its round trips (``round_trips``: scripts started).
"""

from __future__ import annotations

import logging
import os
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
        self.executor.drop()
        return HostUnreachable(f"connection to {self.executor.where} lost: {exc or type(exc).__name__}")

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
        try:
            if not self.channel.exit_status_ready():
                transport = self.channel.get_transport()
                deadline = time.monotonic() + 10
                while not self.channel.exit_status_ready():
                    if transport is None or not transport.is_active() or time.monotonic() > deadline:
                        raise self._lost(EOFError("no exit status"))
                    time.sleep(0.01)
            status = self.channel.recv_exit_status()
            # paramiko reports a channel closed by a dead connection as "exited -1": that is a lost host, not a
            # script that failed (a script killed by a signal also gives -1, but over a live connection).
            transport = self.channel.get_transport()
            if status == -1 and (transport is None or not transport.is_active()):
                raise self._lost(EOFError("the connection closed before the script ended"))
            return status
        finally:
            self.channel.close()

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
    """Runs the scripts over one kept-open Fabric connection, with strict host-key checking."""

    def __init__(self, host: HostConfig, connect_timeout: float = 15.0, gateways: Optional["GatewayPool"] = None):
        self.host = host
        self.connect_timeout = connect_timeout
        self.gateways = gateways
        self.round_trips = 0
        self._connection = None
        self._lock = threading.Lock()
        self._spare: Optional[Future] = None

    @property
    def where(self) -> str:
        """``address:port`` for messages."""
        return f"{self.host.address}:{self.host.port or 22}"

    @property
    def known_hosts(self) -> Path:
        """The known_hosts file keys are checked against."""
        return self.host.known_hosts or Path("~/.ssh/known_hosts").expanduser()

    def connect(self) -> None:
        """Open (once) the SSH connection; raise :class:`HostUnreachable` or :class:`HostKeyRefused`."""
        with self._lock:
            if self._connection is not None and self._connection.is_connected:
                return
            self._connection = open_connection(self.host.address, self.host.user, self.host.port, self.host.key_file,
                                               self.known_hosts, self.connect_timeout,
                                               self.gateways.socket_for(self.host) if self.gateways else None)
            self._spare = None

    def close(self) -> None:
        """Close the kept-open connection (and its spare channel)."""
        with self._lock:
            self._spare = None
            if self._connection is not None:
                try:
                    self._connection.close()
                except Exception:
                    pass
                self._connection = None

    def drop(self) -> None:
        """Forget a connection that was lost, so the next use reconnects."""
        self.close()

    def _open_channel(self):
        import paramiko
        try:
            return self._connection.transport.open_session(timeout=self.connect_timeout)
        except (paramiko.SSHException, OSError, EOFError, AttributeError) as exc:
            self.drop()
            raise HostUnreachable(f"connection to {self.where} lost: {exc or type(exc).__name__}") from None

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
            self.drop()
            raise HostUnreachable(f"connection to {self.where} lost: {exc or type(exc).__name__}") from None
        return _SSHProcess(self, channel, on_line)


def open_connection(address: str, user: Optional[str], port: Optional[int], key_file: Optional[Path],
                    known_hosts: Path, timeout: float, sock=None):
    """A connected, authenticated Fabric Connection whose host key was checked against ``known_hosts``.

    ``sock`` is an already-open channel to the host (through a jump host); otherwise a TCP socket with
    TCP_NODELAY is opened here (paramiko never sets it: each round trip would wait on Nagle, ~47 ms vs ~3.5 ms).
    """
    import paramiko
    from fabric import Connection

    kwargs: dict = {}
    if key_file:
        if not key_file.is_file():
            raise HostUnreachable(f"key file {key_file} not found")
        kwargs["key_filename"] = [str(key_file)]
    conn = Connection(address, user=user, port=port, connect_timeout=int(timeout), connect_kwargs=kwargs)
    client = conn.client
    # Fabric's default is AutoAddPolicy, which trusts any key: refuse instead.
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    if known_hosts.is_file():
        try:
            client.get_host_keys().load(str(known_hosts))
        except (OSError, paramiko.SSHException) as exc:
            raise HostUnreachable(f"cannot read known_hosts {known_hosts}: {exc}") from None
    if sock is None:
        try:
            sock = socket.create_connection((conn.host, conn.port), timeout=timeout)
        except OSError as exc:
            raise HostUnreachable(f"cannot connect to {conn.host}:{conn.port}: {exc.strerror or exc}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.connect_kwargs["sock"] = sock
    try:
        conn.open()
    except paramiko.BadHostKeyException as exc:
        sock.close()
        raise HostKeyRefused(
            f"host key for {conn.host}:{conn.port} CHANGED (got {exc.key.get_name()} "
            f"{exc.key.fingerprint}); refusing to connect. Check {known_hosts}.") from None
    except paramiko.SSHException as exc:
        sock.close()
        message = str(exc)
        if "not found in known_hosts" in message:
            raise HostKeyRefused(
                f"host key for {conn.host}:{conn.port} is not in {known_hosts}; refusing to connect "
                f"(add it with: ssh-keyscan -p {conn.port} {conn.host} >> {known_hosts}, after checking it)") from None
        if isinstance(exc, paramiko.AuthenticationException):
            raise HostUnreachable(f"authentication failed for {conn.user}@{conn.host}:{conn.port}: {message}") from None
        raise HostUnreachable(f"SSH error with {conn.host}:{conn.port}: {message}") from None
    except (OSError, EOFError) as exc:
        sock.close()
        raise HostUnreachable(f"cannot connect to {conn.host}:{conn.port}: {exc}") from None
    conn.transport.set_keepalive(30)  # the TUI keeps it open for hours: keep NAT and firewalls from dropping it
    return conn


class GatewayPool:
    """Jump hosts (bastions), one kept-open connection each, shared by every host behind them."""

    def __init__(self, connect_timeout: float = 15.0):
        self.connect_timeout = connect_timeout
        self._connections: dict = {}
        self._lock = threading.Lock()

    def socket_for(self, host: HostConfig):
        """A channel to ``host`` through its jump host, or None when it has none."""
        jump: Optional[JumpHost] = getattr(host, "jump", None)
        if jump is None:
            return None
        key = (jump.address, jump.user, jump.port)
        with self._lock:
            conn = self._connections.get(key)
            if conn is None or not conn.is_connected:
                known = jump.known_hosts or host.known_hosts or Path("~/.ssh/known_hosts").expanduser()
                conn = open_connection(jump.address, jump.user, jump.port, jump.key_file or host.key_file, known,
                                       self.connect_timeout)
                self._connections[key] = conn
        try:
            return conn.transport.open_channel("direct-tcpip", (host.address, host.port or 22), ("127.0.0.1", 0),
                                               timeout=self.connect_timeout)
        except Exception as exc:
            raise HostUnreachable(f"cannot reach {host.address}:{host.port or 22} through {jump.address}: {exc}") from None

    def close(self) -> None:
        """Close every jump connection."""
        with self._lock:
            for conn in self._connections.values():
                try:
                    conn.close()
                except Exception:
                    pass
            self._connections.clear()


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
    gateways: GatewayPool = field(default_factory=GatewayPool)

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
