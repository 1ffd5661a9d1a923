"""``--dry-run``: an executor that runs read-only scripts for real and records, without running, anything that
would change the host."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from .base import Executor, LineHandler, RemoteProcess, _ExecutorBase


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
