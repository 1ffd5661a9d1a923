"""Full screens besides the main one: the live log tail, and "no config found"."""

from __future__ import annotations

import threading
from typing import Callable, Iterable

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Header, Static

from .. import present
from ..models import Event
from .fmt import event_line
from .widgets import FittedFooter, Labelled, WrapLog


class NoConfigScreen(Screen[None]):
    """Shown instead of a traceback when no ``hosts.yml`` is found: what was looked for, where, and how to start."""

    BINDINGS = [Binding("q,escape", "app.quit", "Quit")]

    def __init__(self, looked: Iterable[str]):
        super().__init__()
        self.looked = list(looked)

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        text = Text()
        text.append("No configuration found\n\n", style="bold")
        text.append("releasetui looked for a hosts.yml in these places, in order:\n")
        for place in self.looked:
            text.append(f"  • {place}\n")
        # Each command on its own line under what it is for: at 80 columns a command beside its label
        # wrapped back to the left margin, mid-sentence.
        text.append("\nTo start:\n", style="bold")
        text.append("  • try it on a sandbox first:\n")
        text.append("      releasetui demo\n", style="bold cyan")
        text.append("  • or describe your hosts (writes a commented hosts.yml here):\n")
        text.append("      releasetui init", style="bold cyan")
        text.append("   then fill in your hosts and run releasetui again\n")
        text.append("  • or start from an Ansible inventory:\n")
        text.append("      releasetui init --from-ansible INVENTORY\n", style="bold cyan")
        text.append("  • or point at a file:\n")
        text.append("      releasetui --config PATH", style="bold cyan")
        text.append("  or  ")
        text.append("RELEASETUI_CONFIG=PATH\n", style="bold cyan")
        yield Static(text, id="noconfig")
        yield FittedFooter()


class LogScreen(Screen[None]):
    """A live tail of the hosts' log files; it stops (remote tail killed) when you leave."""

    BINDINGS = [
        Binding("f", "toggle_follow", "Follow on/off",
                tooltip="Follow on/off: stay at the newest line, or stay where you scrolled (lines keep coming)"),
        Binding("escape,q,l", "close", "Back", tooltip="Back to the hosts; stops the remote tail"),
    ]

    def __init__(self, hosts: list, start: Callable[[Callable[[Event], None], threading.Event], object]):
        super().__init__()
        self.hosts = hosts
        self.start_tail = start
        self.stop = threading.Event()
        self.follow = True
        self.transcript: list[str] = []  # plain text of what was shown, for tests
        # The host label's column: as wide as the longest name (at least 10, at most 20), the same on every line.
        self.label_width = min(max([10, *(len(h.name) for h in hosts)]), 20)

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static(id="log-status")
        yield WrapLog(id="log", max_lines=5000)
        yield FittedFooter()

    def on_mount(self) -> None:
        self.update_status()
        self.tail()

    def update_status(self) -> None:
        """The line above the log: which hosts, follow or paused."""
        names = present.host_list([h.name for h in self.hosts])
        follow = "follow on" if self.follow else "follow off (paused: new lines are kept, press f)"
        self.query_one("#log-status", Static).update(f"Logs of {names} · {follow} · esc to leave")

    @work(thread=True, exclusive=True, group="logs", exit_on_error=False)
    def tail(self) -> None:
        """Stream log lines until :attr:`stop` is set (leaving the screen sets it)."""
        result = self.start_tail(self.post_event, self.stop)
        failures = [o for o in getattr(result, "outcomes", {}).values() if o.status != "ok"]
        for outcome in failures:
            self.post_event(Event(outcome.host, "logs", "failed", message=outcome.message))

    class Line(Message):
        """One event from the tail threads, delivered on the UI thread."""

        def __init__(self, event: Event):
            super().__init__()
            self.event = event

    def post_event(self, event: Event) -> None:
        """Called from tail threads: post_message is thread-safe and never blocks them."""
        self.post_message(self.Line(event))

    def on_log_screen_line(self, message: "LogScreen.Line") -> None:
        """Append one line: log lines labelled with their host, steps as dim lines."""
        event = message.event
        log = self.query_one("#log", WrapLog)
        if event.status == "log":
            self.transcript.append(f"{event.host:<10} {event.message}")
            log.write(Labelled(event.host or "", event.message, self.label_width), scroll_end=self.follow)
        else:
            line = event_line(event)
            self.transcript.append(line.plain)
            log.write(line, scroll_end=self.follow)

    def action_toggle_follow(self) -> None:
        """Follow on: stay at the newest line; off: stay where you scrolled while lines keep coming."""
        self.follow = not self.follow
        log = self.query_one("#log", WrapLog)
        log.auto_scroll = self.follow
        if self.follow:
            log.scroll_end(animate=False)
        self.update_status()

    def action_close(self) -> None:
        """Stop the remote tail and go back."""
        self.stop.set()
        self.dismiss(None)

    def on_unmount(self) -> None:
        # Whatever way the screen goes (quit included), the tail must not outlive it.
        self.stop.set()
