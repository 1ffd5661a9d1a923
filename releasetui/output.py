"""What the headless CLI writes: plain lines for people and CI logs, or JSON lines; never Textual.

stdout is data (one line per finished step per host, the outcomes, what is
live); diagnostics go to stderr.  Colour only on a terminal with ``NO_COLOR``
unset, not ``TERM=dumb``, not in a CI job (``CI=true``).  Every text that came
from a host is cleaned of escape sequences.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from datetime import datetime
from typing import Optional, TextIO

from . import present
from .models import Event, OperationResult
from .text import clean, clean_line


class SafeStream:
    """Wraps stdout so a reader that goes away (``| head``) silences the output instead of failing the operation.

    The operation still runs to its end and the exit code still says how it went.
    """

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.broken = False

    def isatty(self) -> bool:
        """Whether the wrapped stream is a terminal."""
        try:
            return self.stream.isatty()
        except (ValueError, OSError):
            return False

    def write(self, text: str) -> int:
        """Write, or drop the text once the reader is gone."""
        if not self.broken:
            try:
                return self.stream.write(text)
            except (BrokenPipeError, ValueError):
                self._break()
        return len(text)

    def flush(self) -> None:
        """Flush, or do nothing once the reader is gone."""
        if not self.broken:
            try:
                self.stream.flush()
            except (BrokenPipeError, ValueError):
                self._break()

    def _break(self) -> None:
        self.broken = True
        try:  # the interpreter flushes stdout at exit: point it at devnull so that raises nothing either
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
        except (OSError, ValueError, AttributeError):
            pass


def colour_wanted(stream: TextIO, environ=None) -> bool:
    """Colour only on a terminal, and never with ``NO_COLOR`` set, ``TERM=dumb`` or in a CI job."""
    environ = os.environ if environ is None else environ
    return "NO_COLOR" not in environ and not plain_environment(environ) and is_terminal(stream)


def plain_environment(environ) -> bool:
    """A dumb terminal or a CI job (which may fake a tty): plain text only, no colour, no cursor codes."""
    return environ.get("TERM") == "dumb" or environ.get("CI", "").lower() in ("1", "true", "yes")


class HumanPrinter:
    """Plain lines: one per finished step per host, then the outcomes (hosts grouped), then what is live."""

    COLOURS = {"ok": "32", "failed": "31", "skipped": "33", "dry-run": "36", "info": "2", "output": "2"}

    def __init__(self, out: TextIO = sys.stdout, steps: Optional[TextIO] = None):
        self.out = out
        self.steps = steps or out  # `logs` sends its step lines to stderr: stdout carries only the log lines
        self.colour = colour_wanted(out)
        self.lock = threading.Lock()
        # --dry-run's scripts, held until the operation ends so the same script on many hosts prints once.
        self.recorded: list[tuple[Optional[str], str, str]] = []

    def paint(self, text: str, status: str) -> str:
        """Colour ``text`` by status when writing to a terminal."""
        code = self.COLOURS.get(status)
        return f"\033[{code}m{text}\033[0m" if self.colour and code else text

    def event(self, event: Event) -> None:
        """Print one event (``started`` ones are skipped: the finished line carries the duration)."""
        if event.status == "started":
            return
        with self.lock:
            if event.status == "log":
                self.out.write(f"{event.host} | {clean_line(event.message)}\n")
                self.out.flush()
                return
            if event.status == "dry-run":
                self.recorded.append((event.host, event.step, clean(event.message).rstrip("\n")))
            else:
                stamp = datetime.now().strftime("%H:%M:%S")
                host = event.host or "-"
                duration = f"{event.duration:6.2f}s" if event.duration is not None else " " * 7
                message = f"  {clean_line(event.message)}" if event.message else ""
                self.steps.write(f"{stamp} {host:<12} {event.step:<12} {self.paint(f'{event.status:<7}', event.status)} "
                                 f"{duration}{message}\n")
            self.out.flush()
            self.steps.flush()

    def summary(self, result: OperationResult) -> None:
        """The closing lines: the outcomes (hosts grouped), the overall status, then what is live.

        What is live is the LAST line, so a CI log's tail answers "what runs now?".
        """
        with self.lock:
            for status, line in closing_lines(result):
                self.out.write((self.paint(line, "ok" if status == "ok" else "failed") if status else line) + "\n")
            self.out.flush()

    def notice(self, text: str) -> None:
        """A diagnostic (Ctrl-C's words): stderr, at once."""
        write_line(sys.stderr, text)

    def close(self) -> None:
        """Print the dry run's scripts, each distinct one once with the hosts that would run it."""
        with self.lock:
            for header, text in present.dry_run_blocks(self.recorded):
                self.out.write(self.paint(header, "dry-run") + "\n" + text + "\n")
            self.recorded = []
            self.out.flush()


class JsonPrinter:
    """JSON lines: one object per event, then a summary object."""

    def __init__(self, out: TextIO = sys.stdout, stage: Optional[str] = None):
        self.out = out
        self.lock = threading.Lock()
        self.stage = stage  # named in every event, as the fleet is (the summary carries it too)

    def event(self, event: Event) -> None:
        """Print one event as a JSON object on its own line."""
        doc = event.to_dict()
        if self.stage:
            doc["stage"] = self.stage
        with self.lock:
            self.out.write(json.dumps(doc) + "\n")
            self.out.flush()

    def summary(self, result: OperationResult) -> None:
        """Print the final summary object."""
        with self.lock:
            self.out.write(json.dumps(result.to_dict()) + "\n")
            self.out.flush()

    def notice(self, text: str) -> None:
        """A diagnostic (Ctrl-C's words): stderr, at once."""
        write_line(sys.stderr, text)

    def close(self) -> None:
        """Nothing to take down."""


def closing_lines(result: OperationResult) -> list[tuple[str, str]]:
    """``(status, text)``: each group of hosts' outcome, the operation's message, the summary line, what is live.

    The status is the outcome's (``ok``, ``failed``...) for outcome lines and
    ``""`` for the others; the plain and the live printers both end with these.
    """
    lines = [(status, clean_line(line)) for status, line in present.outcome_lines(result)]
    if result.message:
        lines.append(("", clean_line(result.message)))
    lines.append(("", present.summary_line(result)))
    if result.operation in ("deploy", "rollback", "pin", "unpin", "unmark", "prune", "unlock") and result.outcomes:
        unreachable = [o.host for o in result.outcomes.values() if o.status == "unreachable"]
        live = {name: o.current or o.serving for name, o in result.outcomes.items()}
        lines.append(("", present.live_line(live, unreachable)))
    return lines


def live_table_wanted(stream, environ=None) -> bool:
    """Whether ``stream`` gets the live table: a terminal, not a dumb one, not a CI job (which may fake a tty)."""
    environ = os.environ if environ is None else environ
    return not plain_environment(environ) and is_terminal(stream)


def is_terminal(stream) -> bool:
    """Whether ``stream`` is a terminal (a closed or odd stream is not)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def write_line(stream: TextIO, text: str) -> None:
    try:
        stream.write(text if text.endswith("\n") else text + "\n")
        stream.flush()
    except (OSError, ValueError):
        pass
