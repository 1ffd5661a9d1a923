"""Running one piece of work per host, in parallel, at most N at a time; apart from what the work is.

Like SSHKit's runners: the operation says WHAT to do on a host, the runner
says how many hosts at once and what an interrupt means.  Interrupts never
arrive as exceptions in the middle of the work: the CLI's SIGINT handler and
the TUI's quit both call :meth:`Interrupts.press`, and the work looks at the
events it was given (a script in flight is abandoned when ``stop`` is set).
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Callable, Generic, Iterable, Optional, TypeVar

from .config import HostConfig

T = TypeVar("T")


@dataclass
class Interrupts:
    """How many times the person asked to stop, and what that means now.

    * first press: ``stop`` is set. Before activation, work in flight is
      abandoned and the operation aborts (nothing switched). During
      activation, the current wave finishes and no further wave starts.
    * second press: ``hurry`` is set: activation stops waiting and switches
      every switched host back.
    """

    stop: threading.Event = field(default_factory=threading.Event)
    hurry: threading.Event = field(default_factory=threading.Event)
    presses: int = 0
    by: Optional[str] = None     # who asked first: "Ctrl-C", "SIGTERM", "TUI quit" (what history records)
    phase: str = "prepare"
    # The activation wave under way and how many there are (0, 0 before activation): whether a first press
    # lets the fleet stay on the new build (the last wave) or switches every switched host back (waves remain).
    wave: int = 0
    waves: int = 0
    on_press: Optional[Callable[[int], None]] = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def press(self, by: str = "Ctrl-C") -> int:
        """One more Ctrl-C (or quit, or SIGTERM: ``by``); returns how many so far."""
        with self._lock:
            self.presses += 1
            if self.by is None:
                self.by = by
            count = self.presses
            self.stop.set()
            if count >= 2:
                self.hurry.set()
        if self.on_press is not None:
            self.on_press(count)
        return count

    def enter_activation(self) -> bool:
        """Cross into the switch phase, unless a stop came first (then the operation must abort, not switch).

        Atomic with :meth:`press`: a quit pressed a moment before the switch
        aborts; one pressed a moment after lets the wave finish.
        """
        with self._lock:
            if self.stop.is_set():
                return False
            self.phase = "activate"
            return True

    def begin_wave(self, number: int, total: int) -> None:
        """Activation starts wave ``number`` of ``total`` (what a stop means from now on: see :meth:`outlook`)."""
        with self._lock:
            self.wave, self.waves = number, total

    def outlook(self) -> str:
        """What a first press does now: ``abort`` (before activation: nothing switches), ``back`` (a wave with
        waves after it: it finishes, then every switched host goes back), ``finish`` (the last or only wave:
        it finishes, and the fleet stays on the new build if every host is healthy) or ``switch`` (activation
        began but has not said its waves yet: one of the last two)."""
        with self._lock:
            if self.phase != "activate":
                return "abort"
            if not self.waves:
                return "switch"
            return "back" if self.wave < self.waves else "finish"

    @property
    def pressed(self) -> bool:
        """Whether a stop was asked for."""
        return self.stop.is_set()

    @property
    def reason(self) -> str:
        """``interrupted by Ctrl-C``: the words history and the summary use for this stop."""
        return f"interrupted by {self.by or 'Ctrl-C'}"


@dataclass
class Outcome(Generic[T]):
    """What the work returned on one host, or the exception it raised."""

    value: Optional[T] = None
    error: Optional[BaseException] = None

    @property
    def ok(self) -> bool:
        """The work returned (whatever it returned)."""
        return self.error is None


class HostRunner:
    """Runs ``work(host)`` for many hosts on at most ``limit`` threads at once."""

    def __init__(self, limit: int = 25):
        self.limit = max(1, int(limit))

    def map(self, hosts: Iterable[HostConfig], work: Callable[[HostConfig], T],
            limit: Optional[int] = None) -> dict[str, Outcome[T]]:
        """Each host's :class:`Outcome`, in the hosts' order; exceptions are captured, never raised."""
        hosts = list(hosts)
        results: dict[str, Outcome[T]] = {}
        if not hosts:
            return results
        workers = max(1, min(limit or self.limit, len(hosts)))
        if workers == 1 and len(hosts) == 1:  # no thread for a single host: one less hop on the hot path
            host = hosts[0]
            results[host.name] = self._guarded(work, host)
            return results
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="releasetui-host") as pool:
            futures: dict[str, Future] = {h.name: pool.submit(self._guarded, work, h) for h in hosts}
            for name, future in futures.items():
                # A short wait in a loop keeps the main thread able to take a signal (its handler only presses).
                while True:
                    try:
                        results[name] = future.result(timeout=0.25)
                        break
                    except FutureTimeout:
                        continue
        return results

    @staticmethod
    def _guarded(work: Callable[[HostConfig], T], host: HostConfig) -> Outcome[T]:
        try:
            return Outcome(value=work(host))
        except BaseException as exc:  # each host's failure is its own; never kill the others
            return Outcome(error=exc)


def sleep_unless(event: threading.Event, seconds: float) -> bool:
    """Sleep ``seconds`` unless ``event`` is set first; True when it was set."""
    return event.wait(seconds) if seconds > 0 else event.is_set()

