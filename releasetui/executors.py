"""The one narrow seam between operations and hosts.

An executor runs a shell script on its host (one round trip), streaming its
stdout lines, and runs rsync towards it.  Three kinds, like SSHKit's backends:

* :class:`SSHExecutor`: Fabric/paramiko, one kept-open connection per host,
  host keys checked against known_hosts (unknown or changed keys refused),
  TCP_NODELAY on the socket, no stdin for remote commands.
* :class:`LocalExecutor`: the same scripts through ``sh`` on this machine.
* :class:`RecordingExecutor`: wraps another; read-only scripts run for real,
  anything that would change the host is recorded and not run (``--dry-run``).

Each counts its round trips (``round_trips``: remote scripts;
``rsync_connections``: rsync transfers, each a channel on the kept-open connection).
"""

from __future__ import annotations

import os
import select
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Protocol

from .commands import rsync_argv
from .config import HostConfig

LineHandler = Callable[[str], None]


class HostUnreachable(Exception):
    """The host could not be reached, authenticated, or its host key was refused."""


class HostKeyRefused(HostUnreachable):
    """The host's key is unknown or differs from the one in known_hosts."""


@dataclass
class CommandResult:
    """What one remote script (or rsync) did: exit code, output, and how long it took."""

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
        """The last lines of stderr (or stdout, without its ``@@step`` protocol lines), for a one-line message."""
        text = [line for line in (self.stderr or self.stdout).strip().splitlines() if not line.startswith("@@step\t")]
        return " | ".join(text[-limit:]) if text else f"exit code {self.exit_code}"


class Executor(Protocol):
    """Runs scripts on one host; see the module docstring."""

    host: HostConfig
    round_trips: int
    rsync_connections: int

    def run(self, script: str, *, on_line: Optional[LineHandler] = None, mutating: bool = True,
            stop: Optional[threading.Event] = None, keep_stdin: bool = False) -> CommandResult:
        """Run ``script`` with ``sh`` on the host in one round trip."""

    def rsync(self, source: Path, build_id: str, link_dest: Optional[str], excludes_file: Optional[Path]) -> CommandResult:
        """Copy ``source`` into ``builds/<build_id>/`` on the host."""

    def connect(self) -> None:
        """Open the connection now (raises :class:`HostUnreachable`)."""

    def close(self) -> None:
        """Close the connection, if any."""


class _LineSplitter:
    """Turns chunks of bytes into complete text lines for a handler, keeping all text."""

    def __init__(self, handler: Optional[LineHandler]):
        self.handler = handler
        self.partial = b""
        self.chunks: list[bytes] = []

    def feed(self, data: bytes) -> None:
        self.chunks.append(data)
        if self.handler is None:
            return
        self.partial += data
        *lines, self.partial = self.partial.split(b"\n")
        for line in lines:
            self.handler(line.decode("utf-8", "replace"))

    def finish(self) -> str:
        if self.handler is not None and self.partial:
            self.handler(self.partial.decode("utf-8", "replace"))
            self.partial = b""
        return b"".join(self.chunks).decode("utf-8", "replace")


def _run_rsync(argv: list[str]) -> CommandResult:
    started = time.monotonic()
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    return CommandResult(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


class LocalExecutor:
    """Runs the scripts on this machine through ``sh`` (the ``local`` transport)."""

    def __init__(self, host: HostConfig):
        self.host = host
        self.round_trips = 0
        self.rsync_connections = 0

    def connect(self) -> None:
        """Nothing to open; always reachable."""

    def close(self) -> None:
        """Nothing to close."""

    def run(self, script: str, *, on_line: Optional[LineHandler] = None, mutating: bool = True,
            stop: Optional[threading.Event] = None, keep_stdin: bool = False) -> CommandResult:
        """Run ``script`` with ``sh -c``, stdin closed, stdout streamed line by line."""
        self.round_trips += 1
        started = time.monotonic()
        # keep_stdin: an open pipe the script may wait on (a follow tail stops when it closes); else no stdin.
        proc = subprocess.Popen(["sh", "-c", script], stdin=subprocess.PIPE if keep_stdin else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        out = _LineSplitter(on_line)
        err_chunks: list[bytes] = []
        stopped = False
        streams = {proc.stdout.fileno(): "out", proc.stderr.fileno(): "err"}
        while streams:
            if stop is not None and stop.is_set():
                stopped = True
                if proc.stdin:
                    proc.stdin.close()
                _kill_group(proc)
                break
            ready, _, _ = select.select(list(streams), [], [], 0.2)
            for fd in ready:
                data = os.read(fd, 65536)
                if not data:
                    del streams[fd]
                elif streams[fd] == "out":
                    out.feed(data)
                else:
                    err_chunks.append(data)
        code = proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream:
                stream.close()
        return CommandResult(code, out.finish(), b"".join(err_chunks).decode("utf-8", "replace"),
                             time.monotonic() - started, stopped)

    def rsync(self, source: Path, build_id: str, link_dest: Optional[str], excludes_file: Optional[Path]) -> CommandResult:
        """Copy ``source`` into the build directory with a local rsync."""
        return _run_rsync(rsync_argv(self.host, source, build_id, link_dest, excludes_file))


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, 15)
    except (ProcessLookupError, PermissionError):
        pass


class SSHExecutor:
    """Runs the scripts over one kept-open Fabric connection, with strict host-key checking."""

    def __init__(self, host: HostConfig, connect_timeout: float = 10.0):
        self.host = host
        self.connect_timeout = connect_timeout
        self.round_trips = 0
        self.rsync_connections = 0
        self._connection = None
        self._lock = threading.Lock()

    @property
    def known_hosts(self) -> Path:
        """The known_hosts file keys are checked against."""
        return self.host.known_hosts or Path("~/.ssh/known_hosts").expanduser()

    def connect(self) -> None:
        """Open (once) the SSH connection; raise :class:`HostUnreachable` or :class:`HostKeyRefused`."""
        with self._lock:
            if self._connection is not None and self._connection.is_connected:
                return
            self._connection = self._open()

    def _open(self):
        import paramiko
        from fabric import Connection

        kwargs: dict = {}
        if self.host.key_file:
            if not self.host.key_file.is_file():
                raise HostUnreachable(f"key file {self.host.key_file} not found")
            kwargs["key_filename"] = [str(self.host.key_file)]
        conn = Connection(self.host.address, user=self.host.user, port=self.host.port,
                          connect_timeout=int(self.connect_timeout), connect_kwargs=kwargs)
        client = conn.client
        # Fabric's default is AutoAddPolicy, which trusts any key: refuse instead.
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        known = self.known_hosts
        if known.is_file():
            try:
                client.get_host_keys().load(str(known))
            except (OSError, paramiko.SSHException) as exc:
                raise HostUnreachable(f"cannot read known_hosts {known}: {exc}") from None
        try:
            sock = socket.create_connection((conn.host, conn.port), timeout=self.connect_timeout)
        except OSError as exc:
            raise HostUnreachable(f"cannot connect to {conn.host}:{conn.port}: {exc.strerror or exc}") from None
        # paramiko never sets TCP_NODELAY; without it each round trip waits on Nagle (~47 ms vs ~15 ms).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.connect_kwargs["sock"] = sock
        try:
            conn.open()
        except paramiko.BadHostKeyException as exc:
            sock.close()
            raise HostKeyRefused(
                f"host key for {conn.host}:{conn.port} CHANGED (got {exc.key.get_name()} "
                f"{exc.key.fingerprint}); refusing to connect. Check {known}.") from None
        except paramiko.SSHException as exc:
            sock.close()
            message = str(exc)
            if "not found in known_hosts" in message:
                raise HostKeyRefused(
                    f"host key for {conn.host}:{conn.port} is not in {known}; refusing to connect "
                    f"(add it with: ssh-keyscan -p {conn.port} {conn.host} >> {known}, after checking it)") from None
            if isinstance(exc, paramiko.AuthenticationException):
                raise HostUnreachable(f"authentication failed for {conn.user}@{conn.host}:{conn.port}: {message}") from None
            raise HostUnreachable(f"SSH error with {conn.host}:{conn.port}: {message}") from None
        except OSError as exc:
            sock.close()
            raise HostUnreachable(f"cannot connect to {conn.host}:{conn.port}: {exc}") from None
        conn.transport.set_keepalive(30)  # the TUI keeps it open for hours: keep NAT and firewalls from dropping it
        return conn

    def close(self) -> None:
        """Close the kept-open connection."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def run(self, script: str, *, on_line: Optional[LineHandler] = None, mutating: bool = True,
            stop: Optional[threading.Event] = None, keep_stdin: bool = False) -> CommandResult:
        """Run ``script`` as ``sh -c`` on a new channel of the kept-open connection, with stdin at EOF."""
        import paramiko

        self.connect()
        self.round_trips += 1
        started = time.monotonic()
        try:
            channel = self._connection.transport.open_session()
            channel.exec_command("sh -c " + shlex.quote(script))
            if not keep_stdin:
                channel.shutdown_write()  # the remote command reads EOF, never our terminal
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self.close()
            raise HostUnreachable(f"connection to {self.host.address} lost: {exc}") from None
        out = _LineSplitter(on_line)
        err_chunks: list[bytes] = []
        stopped = False
        while True:
            if stop is not None and stop.is_set():
                stopped = True
                channel.close()
                break
            select.select([channel], [], [], 0.2)
            while channel.recv_stderr_ready():
                err_chunks.append(channel.recv_stderr(65536))
            if channel.recv_ready():
                data = channel.recv(65536)
                if data:
                    out.feed(data)
                    continue
                break
            if channel.eof_received or channel.closed:
                break
        # The last chunk may have arrived together with EOF, after recv_ready() was checked.
        while not stopped and channel.recv_ready():
            out.feed(channel.recv(65536))
        while channel.recv_stderr_ready():
            err_chunks.append(channel.recv_stderr(65536))
        code = -1 if stopped else channel.recv_exit_status()
        channel.close()
        return CommandResult(code, out.finish(), b"".join(err_chunks).decode("utf-8", "replace"),
                             time.monotonic() - started, stopped)

    def rsync(self, source: Path, build_id: str, link_dest: Optional[str], excludes_file: Optional[Path]) -> CommandResult:
        """rsync through the kept-open connection: its remote shell is :mod:`releasetui.rsync_relay`.

        One more channel on the checked connection instead of a second SSH handshake (~240 ms here) and a
        second host-key check; counted in ``rsync_connections``.
        """
        self.connect()
        self.rsync_connections += 1
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="releasetui-rsync-") as directory:  # 0700: only we can connect
            path = os.path.join(directory, "relay.sock")
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(path)
            listener.listen(1)
            listener.settimeout(0.2)
            relay = [sys.executable, "-m", "releasetui.rsync_relay", path]
            argv = rsync_argv(self.host, source, build_id, link_dest, excludes_file, relay)
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            outputs: dict[str, bytes] = {}
            readers = [threading.Thread(target=lambda n=n, f=f: outputs.__setitem__(n, f.read()), daemon=True)
                       for n, f in (("out", proc.stdout), ("err", proc.stderr))]
            for reader in readers:
                reader.start()
            try:
                while True:
                    try:
                        conn, _ = listener.accept()
                        break
                    except socket.timeout:
                        if proc.poll() is not None:  # rsync gave up before it needed the host
                            conn = None
                            break
                if conn is not None:
                    with conn:
                        self._relay(conn)
            finally:
                listener.close()
                code = proc.wait()
                for reader in readers:
                    reader.join()
        return CommandResult(code, outputs.get("out", b"").decode("utf-8", "replace"),
                             outputs.get("err", b"").decode("utf-8", "replace"), time.monotonic() - started)

    def _relay(self, conn: socket.socket) -> None:
        """Run the relay's command on a new channel and carry bytes both ways until it exits."""
        import struct

        from .rsync_relay import EXIT, STDERR, STDOUT, send_frame

        conn.settimeout(None)
        header = b""
        while not header.endswith(b"\n"):
            chunk = conn.recv(1)
            if not chunk:
                return
            header += chunk
        channel = self._connection.transport.open_session()
        channel.exec_command(header.decode().rstrip("\n"))

        def upload() -> None:
            try:
                while True:
                    data = conn.recv(65536)
                    if not data:
                        break
                    channel.sendall(data)
                channel.shutdown_write()
            except OSError:
                pass

        uploader = threading.Thread(target=upload, daemon=True)
        uploader.start()
        try:
            while True:
                select.select([channel], [], [], 0.2)
                while channel.recv_stderr_ready():
                    send_frame(conn, STDERR, channel.recv_stderr(65536))
                if channel.recv_ready():
                    data = channel.recv(65536)
                    if not data:
                        break
                    send_frame(conn, STDOUT, data)
                    continue
                if channel.eof_received or channel.closed:
                    break
            while channel.recv_ready():
                send_frame(conn, STDOUT, channel.recv(65536))
            while channel.recv_stderr_ready():
                send_frame(conn, STDERR, channel.recv_stderr(65536))
            send_frame(conn, EXIT, struct.pack("!i", channel.recv_exit_status()))
        except OSError:
            pass
        finally:
            channel.close()


@dataclass
class RecordedCommand:
    """A script or rsync a dry run would have run, on which host."""

    host: str
    kind: str
    text: str


class RecordingExecutor:
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

    @property
    def rsync_connections(self) -> int:
        """Always 0: a dry run copies nothing."""
        return 0

    def connect(self) -> None:
        """Connect the wrapped executor (a dry run still reads the hosts' state)."""
        self.inner.connect()

    def close(self) -> None:
        """Close the wrapped executor."""
        self.inner.close()

    def _record(self, kind: str, text: str) -> None:
        command = RecordedCommand(self.host.name, kind, text)
        self.recorded.append(command)
        if self.on_record:
            self.on_record(command)

    def run(self, script: str, *, on_line: Optional[LineHandler] = None, mutating: bool = True,
            stop: Optional[threading.Event] = None, keep_stdin: bool = False) -> CommandResult:
        """Run read-only scripts; record mutating ones and pretend they succeeded."""
        if not mutating:
            return self.inner.run(script, on_line=on_line, mutating=False, stop=stop, keep_stdin=keep_stdin)
        self._record("script", script)
        return CommandResult(0, "", "", 0.0)

    def rsync(self, source: Path, build_id: str, link_dest: Optional[str], excludes_file: Optional[Path]) -> CommandResult:
        """Record the rsync command line instead of running it."""
        relay = [sys.executable, "-m", "releasetui.rsync_relay", "RELAY_SOCKET"] if self.host.transport == "ssh" else None
        argv = rsync_argv(self.host, source, build_id, link_dest, excludes_file, relay)
        self._record("rsync", " ".join(shlex.quote(a) for a in argv))
        return CommandResult(0, "", "", 0.0)


def make_executor(host: HostConfig) -> Executor:
    """The executor for a host's transport."""
    if host.transport == "local":
        return LocalExecutor(host)
    return SSHExecutor(host)


@dataclass
class ExecutorPool:
    """Kept-open executors, one per host, reused across operations (the TUI keeps one for its lifetime)."""

    executors: dict = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, host: HostConfig) -> Executor:
        """The executor for ``host``, made on first use."""
        with self._lock:
            executor = self.executors.get(host.name)
            if executor is None or executor.host != host:
                executor = make_executor(host)
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
