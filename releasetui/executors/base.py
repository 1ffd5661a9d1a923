"""What every executor is: a script run on a host in one round trip (:class:`RemoteProcess`), its output
as lines, its result (:class:`CommandResult`), and the :class:`Executor` protocol the operations call."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Optional, Protocol, Union

from ..config import HostConfig
from ..models import ScriptTimeout


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
    """Turns chunks of bytes into complete text lines for a handler, keeping all text; or, once :attr:`keep` is
    set, only the lines it says to keep (a wheelhouse streamed to disk is not also held in memory)."""

    def __init__(self, handler: Optional[LineHandler]):
        self.handler = handler
        self.keep: Optional[Callable[[str], bool]] = None
        self.partial = b""
        self.chunks: list[bytes] = []
        self.lines: list[str] = []

    def feed(self, data: bytes) -> None:
        if self.keep is None:
            self.chunks.append(data)
        self.partial += data
        *complete, self.partial = self.partial.split(b"\n")
        for raw in complete:
            self._line(raw.decode("utf-8", "replace"))

    def _line(self, line: str) -> None:
        if self.keep is None or self.keep(line):
            self.lines.append(line)
        if self.handler is not None:
            self.handler(line)

    def finish(self) -> str:
        if self.partial:
            self._line(self.partial.decode("utf-8", "replace"))
            self.partial = b""
        if self.keep is not None:
            return "".join(line + "\n" for line in self.lines)
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

    def keep_only(self, keep: Callable[[str], bool]) -> None:
        """From now on keep only the output lines ``keep`` says to (it sees every line first); before reading."""
        self.out.keep = keep

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
