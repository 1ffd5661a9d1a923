"""Reading the hosts' states for the main screen: in a worker, ordered (an older read landing late never
overwrites a newer one), now and then while idle, and before a confirmation that needs fresh states."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Callable, Optional

from textual import work
from textual.message import Message

from ..diffing import DiffReport
from ..operations import Operations
from .diffview import summary_line, unavailable
from .fleet import FleetScreen
from .fmt import served_lines

if TYPE_CHECKING:
    from .face import ReleaseFace

# What runs once the states are shown (a confirmation built from them), given the diff's one line when one was
# asked for.
Then = Callable[[Optional[str]], None]
# A diff to make beside the read (deploy: current -> the source; rollback: current -> the build).
DiffRead = Callable[[Operations], DiffReport]


class StatesLoaded(Message):
    """Fresh host states (``HostState`` or the exception reading it raised), by host name.

    ``seq`` orders the reads (an older read landing late must not overwrite a newer one); ``then``
    runs once the states are shown (a confirmation built from them), given ``changes``: the one line of the
    diff read beside them (None when none was asked for).
    """

    def __init__(self, states: dict[str, object], seq: int, then: Optional[Then] = None,
                 changes: Optional[str] = None):
        super().__init__()
        self.states = states
        self.seq = seq
        self.then = then
        self.changes = changes


class HostReads:
    """The main screen's reads of the hosts (a mixin of :class:`~releasetui.tui.main.MainScreen`)."""

    releasetui: "ReleaseFace"
    refreshing: bool
    served_changed: bool

    def init_reads(self) -> None:
        """The read counters: each read gets the next number; only the newest one started clears "refreshing"."""
        self._read_seq = itertools.count(1)
        self._last_seq = 0  # the newest read started
        self._applied_seq = 0  # the newest read shown
        self._errors_shown: dict[str, str] = {}
        self.refreshing = False  # a read of the hosts is under way (the newest one started)

    def action_refresh(self) -> None:
        """Read every host's state again (one round trip per host, in a worker)."""
        self.start_read()

    def start_read(self, then: Optional[Then] = None, diff: Optional[DiffRead] = None) -> None:
        """Read the states in a worker; ``then`` runs on the UI thread once they are shown, given the one line of
        ``diff`` (made in the same worker, beside the read), or None."""
        self._last_seq = next(self._read_seq)
        self.refreshing = True
        self.fill_hosts_summary()
        self.read_states(self._last_seq, then, diff)

    def refresh_when_idle(self) -> None:
        """The periodic re-read: skipped while an operation, a confirmation or another read is under way."""
        app = self.releasetui
        # The fleet view shows these states too: it is kept fresh like this screen.
        if self.busy or self.preparing or self.quitting or (app.screen is not self
                                                              and not isinstance(app.screen, FleetScreen)):
            return
        if any(w.is_running for w in app.workers if w.group == "refresh"):
            return
        self.start_read()

    @work(thread=True, group="refresh", exit_on_error=False)
    def read_states(self, seq: int, then: Optional[Then] = None, diff: Optional[DiffRead] = None) -> None:
        """Worker: read the states, and make ``diff`` meanwhile (its own round trip per host, in parallel with
        the read: the dialog waits for the slower of the two, not both); the result comes back as
        :class:`StatesLoaded`."""
        app = self.releasetui
        ops = app.make_operations(lambda event: None)
        changes = None
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="releasetui-diff") as beside:
            pending = beside.submit(self.diff_line, diff) if diff is not None else None
            try:
                states = ops.states(app.hosts)
            except Exception as exc:  # the pool itself failed: every host is unknown
                states = {h.name: exc for h in app.hosts}
            if pending is not None:
                changes = pending.result()
        self.post_message(StatesLoaded(states, seq, then, changes))

    def diff_line(self, diff: DiffRead) -> str:
        """(In a worker thread.) The diff's one line for a confirmation; never raises: a diff that could not be
        made says ``diff unavailable: <why>``, and the dialog opens all the same."""
        try:
            return summary_line(diff(self.releasetui.make_operations(lambda event: None)))
        except Exception as exc:
            return unavailable(exc)

    def on_states_loaded(self, message: StatesLoaded) -> None:
        """Redraw with fresh states; report a host that became unreachable once, not on every refresh."""
        if message.seq > self._applied_seq:  # an older read landing after a newer one is dropped
            self._applied_seq = message.seq
            self.show_states(message.states)
        if message.seq == self._last_seq:
            self.refreshing = False
            self.fill_hosts_summary()
        if message.then is not None:
            message.then(message.changes)

    def show_states(self, states: dict[str, object]) -> None:
        """Make ``states`` the ones shown, here and in the fleet view."""
        app = self.releasetui
        app.states = dict(states)
        for name, state in states.items():
            text = str(state) if isinstance(state, Exception) else ""
            if text and self._errors_shown.get(name) != text:
                self.say(f"{name}: unreachable: {text}", "red")
            self._errors_shown[name] = text
        self.fill_hosts()
        self.fill_builds()
        for screen in app.screen_stack:
            if isinstance(screen, FleetScreen):
                screen.fill()
        if self.served_changed:
            # After a deploy or rollback, what the hosts serve as read now is what the exit report says.
            app.exit_report = served_lines(app.states)
