"""The local executor: the same scripts through ``sh`` on this machine (``transport: local``)."""

from __future__ import annotations

import os
import select
import subprocess
import threading
from typing import Optional

from ..config import HostConfig
from .base import LineHandler, RemoteProcess, _ExecutorBase


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
