"""Screens besides the main one: confirmations, help, the log tail, and "no config found"."""

from __future__ import annotations

import threading
from collections import deque
from typing import Callable, Iterable, Optional

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.segment import Segment
from rich.table import Table
from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Footer, Header, OptionList, RichLog, Static
from textual.widgets.option_list import Option
from textual.widgets._footer import FooterKey  # what Footer.compose yields, one per key
from textual.keys import format_key

from .. import present
from ..models import Event
from .fmt import event_line

# Keys Textual itself provides on the main screen (not in our BINDINGS), for the help.
BUILTIN_MAIN_KEYS: list[tuple[str, str]] = [
    ("tab / shift+tab", "Move between the hosts table, the builds table and the output pane"),
    ("↑ ↓ / enter", "Move the cursor; enter on a host shows its builds"),
]


def key_label(key: str) -> str:
    """How the help writes a bound key: ``d``, ``f5``, ``ctrl+r``, ``space``, ``/``, ``?``, ``esc``, ``pgdn``."""
    *modifiers, name = key.strip().split("+")
    return "+".join([*modifiers, format_key(name)])


def binding_rows(bindings: Iterable[Binding]) -> list[tuple[str, str]]:
    """One help row per action, in binding order: every key bound to it (``q / ctrl+q / ctrl+c``) and what it
    does (the first of its bindings with a tooltip, else its description)."""
    by_action: dict[str, tuple[list[str], list[str]]] = {}
    for binding in bindings:
        keys, texts = by_action.setdefault(binding.action, ([], []))
        keys.extend(key_label(key) for key in binding.key.split(","))
        texts.append(binding.tooltip or binding.description)
    # Actions that say the same thing share a row (home and end: "First / last row of the table").
    by_text: dict[str, list[str]] = {}
    for keys, texts in by_action.values():
        by_text.setdefault(next(t for t in texts if t), []).extend(keys)
    return [(" / ".join(dict.fromkeys(keys)), text) for text, keys in by_text.items()]


class RowTable(DataTable):
    """A row-cursor table whose home/end move the cursor to the first/last row (DataTable's scroll sideways)."""

    BINDINGS = [
        Binding("home", "scroll_top", "First row", show=False, tooltip="First / last row of the table"),
        Binding("end", "scroll_bottom", "Last row", show=False, tooltip="First / last row of the table"),
    ]

    def refill(self, columns: list[tuple[str, str]], rows: list[tuple[str, list]]) -> None:
        """Clear the table and fill it again: ``columns`` as (key, label), ``rows`` as (key, cells).

        Every column gets its width now, as wide as its label and its widest cell.  Left to DataTable, the
        widths are measured only when the table next goes idle, and a paint before that (a screen coming back,
        a dialog closing) caches the rows at the labels' widths: a build id cut to ``2026120`` until the next
        redraw.  Text cells are drawn as given (a string is not read as markup: a git subject is not markup).
        """
        rows = [(key, [Text(cell) if isinstance(cell, str) else cell for cell in cells]) for key, cells in rows]
        self.clear(columns=True)
        for index, (key, label) in enumerate(columns):
            width = max([Text(label).cell_len, *(cells[index].cell_len for _, cells in rows)])
            self.add_column(label, key=key, width=width)
        for key, cells in rows:
            self.add_row(*cells, key=key)


class MatrixTable(RowTable):
    """A row-cursor table wider than the screen: left/right scroll by whole columns, past the fixed ones.

    DataTable scrolls one character at a time, which leaves a column cut in half beside the fixed columns
    (``4 15 16`` for ``14 15 16``); this one stops at column edges.
    """

    def column_stops(self) -> list[int]:
        """The scroll offsets at which a non-fixed column starts right after the fixed ones."""
        stops, x = [0], 0
        for column in self.ordered_columns[self.fixed_columns:]:
            x += column.get_render_width(self)
            stops.append(x)
        return stops

    def action_cursor_right(self) -> None:
        if self.cursor_type != "row":
            return super().action_cursor_right()
        stop = next((s for s in self.column_stops() if s > self.scroll_x), None)
        if stop is not None:
            self.scroll_to(x=min(stop, self.max_scroll_x), animate=False)

    def action_cursor_left(self) -> None:
        if self.cursor_type != "row":
            return super().action_cursor_left()
        self.scroll_to(x=max([s for s in self.column_stops() if s < self.scroll_x], default=0), animate=False)


class WrapLog(RichLog):
    """A RichLog that wraps every line at the pane's real width, and again whenever that width changes.

    RichLog renders a line once, when it is written: before the pane is laid out it renders at its
    ``min_width`` (78, wider than an 80-column pane's inside: the end of the line is cut off), and a resize
    never re-wraps (narrower: the ends are cut; wider: the lines stay short).  This one keeps what it was
    given (the last ``max_lines`` writes), renders nothing until its width is known and renders everything
    again when the width changes.  (RichLog always shows its vertical scrollbar, so the width does not
    change when the lines start to scroll.)  ``write`` takes any Rich renderable; ``width``/``expand``/
    ``shrink`` are ignored: the pane's width always wins.
    """

    DEFAULT_CSS = """
    WrapLog {
        overflow-x: hidden;
    }
    """

    def __init__(self, *, max_lines: int = 2000, auto_scroll: bool = True, id: Optional[str] = None):
        super().__init__(max_lines=max_lines, min_width=1, wrap=True, highlight=False, markup=False,
                         auto_scroll=auto_scroll, id=id)
        self.entries: deque[RenderableType] = deque(maxlen=max_lines)
        self.wrap_width = 0  # the width the lines are rendered at; 0 until the pane has been laid out

    def write(self, content: RenderableType, width: Optional[int] = None, expand: bool = False,
              shrink: bool = True, scroll_end: Optional[bool] = None, animate: bool = False) -> "WrapLog":
        """Keep ``content`` and draw it at the pane's width (at once, or when the width becomes known)."""
        if isinstance(content, Text):
            content = content.copy()  # the caller may go on changing it
        self.entries.append(content)
        if self.wrap_width:
            super().write(content, width=self.wrap_width, scroll_end=scroll_end, animate=animate)
        return self

    def clear(self) -> "WrapLog":
        """Forget every line."""
        self.entries.clear()
        super().clear()
        return self

    def on_resize(self, event: events.Resize) -> None:
        # RichLog's own handler (Textual calls it after this one) is what lets it render: run it first.
        super().on_resize(event)
        width = self.scrollable_content_region.width
        if width > 0 and width != self.wrap_width:
            self.rewrap(width)

    def rewrap(self, width: int) -> None:
        """Render every kept line again at ``width``, staying at the end (following) or near where it was."""
        follow = self.auto_scroll or self.is_vertical_scroll_end
        where = self.scroll_y / self.max_scroll_y if self.max_scroll_y else 1.0
        self.wrap_width = width
        RichLog.clear(self)
        for entry in self.entries:
            RichLog.write(self, entry, width=width, scroll_end=False)
        if follow:
            self.scroll_end(animate=False, immediate=False, x_axis=False)
        else:
            self.scroll_to(y=round(where * self.max_scroll_y), animate=False, immediate=False)


class FittedFooter(Footer):
    """The footer, fitted to the screen's width, so the keys at its end (q Quit, ? Help) are never pushed off.

    Textual's footer lays its keys out in one row, cuts what does not fit, and docks the command palette's
    key over the last ones.  This one takes the first layout that fits: every key in the standard style
    with the palette key; else the compact style (less padding) with the ``short`` descriptions and without
    the palette key (ctrl+p still opens it); else the same, leaving out the ``optional`` actions one by one,
    first named first.  A key left out still works, and the help (?) lists it.
    """

    def __init__(self, optional: Iterable[str] = (), short: Optional[dict[str, str]] = None):
        super().__init__()
        self.optional = tuple(optional)
        self.short = dict(short or {})
        self.layout_level = -1  # what compose chose: 0 standard, 1 compact, 1 + n: n optional keys left out

    def shown_bindings(self) -> list[tuple[str, Binding]]:
        """(key display, binding) of each key the footer shows, one per action, in the footer's order."""
        seen: dict[str, tuple[str, Binding]] = {}
        for _, binding, _, _ in self.screen.active_bindings.values():
            if binding.show and binding.action not in seen:
                seen[binding.action] = (self.app.get_key_display(binding), binding)
        return list(seen.values())

    def fit(self, width: int) -> int:
        """The first layout level whose keys fit in ``width`` columns (the last one when none does)."""
        keys = self.shown_bindings()
        # The widths FooterKey's CSS gives: " k desc " in the standard style, "k desc" + a 1-column margin
        # in the compact one; the palette key adds its own padding and a 1-column border.
        standard = sum(len(display) + len(binding.description) + 3 for display, binding in keys)
        palette = self.screen.active_bindings.get(self.app.COMMAND_PALETTE_BINDING)
        if palette is not None and self.app.ENABLE_COMMAND_PALETTE:
            standard += len(self.app.get_key_display(palette.binding)) + len(palette.binding.description) + 5
        if standard <= width:
            return 0
        widths = {binding.action: len(display) + len(self.short.get(binding.action, binding.description)) + 2
                  for display, binding in keys}
        total = sum(widths.values())
        level = 1
        for action in self.optional:
            if total <= width:
                break
            total -= widths.get(action, 0)
            level += 1
        return level

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        self.layout_level = level = self.fit(self.size.width or self.app.size.width)
        self.compact = level > 0
        self.show_command_palette = level == 0
        left_out = set(self.optional[:level - 1]) if level > 1 else set()
        for widget in super().compose():
            if isinstance(widget, FooterKey):
                if widget.action in left_out:
                    continue
                if self.compact and widget.action in self.short:
                    widget.description = self.short[widget.action]
            yield widget

    def on_resize(self, event: events.Resize) -> None:
        if self._bindings_ready and self.fit(event.size.width) != self.layout_level:
            self.call_after_refresh(self.recompose)

    def set_optional(self, optional: Iterable[str]) -> None:
        """Change which keys may be left out (and in which order), laying the footer out again if it changed."""
        optional = tuple(optional)
        if optional != self.optional:
            self.optional = optional
            if self._bindings_ready:
                self.refresh(recompose=True)  # on the footer's own message queue (its compose binds to it)


class Labelled:
    """A log line under its host: the label in its own column, the text wrapping to the right of it.

    A continuation row starts under the text, not under the label, so the hosts stay readable down the
    left.  (A ``Table.grid`` draws the same but is 5x slower, which counts when a resize re-wraps a
    5000-line log.)
    """

    def __init__(self, label: str, text: str, label_width: int, label_style: str = "bold cyan"):
        self.label = Text(label[:label_width].ljust(label_width) + " ", style=label_style)
        self.indent = Text(" " * (label_width + 1))
        self.text = Text(text)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        room = max(options.max_width - self.label.cell_len, 1)
        # Text.render leaves out a Text's own style (it renders only the spans): the label's is applied here.
        label_style = console.get_style(self.label.style) if self.label.style else None
        for number, line in enumerate(self.text.wrap(console, room, overflow="fold")):
            if number == 0:
                yield from Segment.apply_style(self.label.render(console), label_style)
            else:
                yield from self.indent.render(console)
            yield from line.render(console)
            yield Segment.line()


class ConfirmScreen(ModalScreen[bool]):
    """Ask before changing anything: a title, what exactly will happen, confirm or cancel."""

    quit_question = False  # the quit confirmations set it: a second quit key does not stack another

    BINDINGS = [
        Binding("y", "answer(True)", "Confirm", tooltip="Confirm: do what the dialog lists (enter on the focused "
                                                         "button does the same)"),
        Binding("n,escape", "answer(False)", "Cancel", tooltip="Cancel: nothing changes"),
    ]

    def __init__(self, title: str, body: Text | str, confirm_label: str = "Confirm", danger: bool = False):
        super().__init__()
        self.title_text = title
        self.body = body
        self.confirm_label = confirm_label
        self.danger = danger

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.title_text, id="dialog-title")
            with VerticalScroll(id="dialog-body"):
                yield Static(self.body, id="dialog-text")
            with Horizontal(id="dialog-buttons"):
                yield Button(f"{self.confirm_label} (y)", id="confirm", variant="error" if self.danger else "primary")
                yield Button("Cancel (n)", id="cancel")

    def on_mount(self) -> None:
        # Enter on the focused button confirms: with the key that opened it, a two-keystroke action.
        self.query_one("#confirm", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Buttons answer like the keys do."""
        self.dismiss(event.button.id == "confirm")

    def action_answer(self, answer: bool) -> None:
        """Close with the answer."""
        self.dismiss(answer)


class StagePickerScreen(ModalScreen[Optional[str]]):
    """Pick a stage (``stages:`` in the config): the app opens again on it.  Answers the stage, or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", tooltip="Close the list; stay on this stage")]

    def __init__(self, stages: tuple[str, ...], current: Optional[str]):
        """``stages``: the config's; ``current``: the one loaded now (None: the file without a stage)."""
        super().__init__()
        self.stages = stages
        self.current = current

    def compose(self) -> ComposeResult:
        options = []
        for stage in self.stages:
            label = Text(f"{stage:<16}", style="bold magenta")
            if stage == self.current:
                label.append("(open now)", style="cyan")
            options.append(Option(label, id=stage))
        with Vertical(id="stages-dialog"):
            yield Static("Open another stage", id="dialog-title")
            yield OptionList(*options, id="stages")
            yield Static("enter opens it (its hosts, read afresh) · esc stays here", id="stages-hint")

    def on_mount(self) -> None:
        options = self.query_one("#stages", OptionList)
        options.focus()
        if self.current in self.stages:
            options.highlighted = self.stages.index(self.current)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        """Enter (or a click) on a stage answers it."""
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        """Close and stay on this stage."""
        self.dismiss(None)


class RolePickerScreen(ModalScreen[Optional[str]]):
    """Pick a role: its hosts become the targets.  Answers the role's name, ``"*"`` for all hosts, or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", tooltip="Close the list; the targets stay as they were")]

    def __init__(self, roles: list[tuple[str, list[str]]], total: int, highlight: Optional[str] = None,
                 marked: Optional[str] = None):
        """``roles``: (name, its hosts); ``highlight``: the role the cursor starts on; ``marked``: the one marked
        now."""
        super().__init__()
        self.roles = roles
        self.total = total
        self.highlight = highlight
        self.marked = marked

    def compose(self) -> ComposeResult:
        options = []
        for role, names in self.roles:
            label = Text(f"{role:<12}", style="bold magenta")
            label.append(present.hosts_phrase(names, self.total))
            if role == self.marked:
                label.append("  (marked now)", style="cyan")
            options.append(Option(label, id=role))
        options.append(Option(Text("all hosts (no host marked)", style="italic"), id="*"))
        with Vertical(id="roles-dialog"):
            yield Static("Mark the hosts of a role as the targets", id="dialog-title")
            yield OptionList(*options, id="roles")
            yield Static("enter marks them · esc leaves the targets as they were", id="roles-hint")

    def on_mount(self) -> None:
        options = self.query_one("#roles", OptionList)
        options.focus()
        if self.highlight is not None:
            options.highlighted = options.get_option_index(self.highlight)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        """Enter (or a click) on a role answers it."""
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        """Close without changing the targets."""
        self.dismiss(None)


class HelpScreen(ModalScreen[None]):
    """Every key, what it does, and how to read the tables; it scrolls when it does not fit (80x24).

    ``sections`` are (title, rows) with rows of (keys, what they do): the app builds them from the
    bindings themselves (see :func:`binding_rows`), so the help cannot drift from the keys.
    """

    BINDINGS = [Binding("escape,q,question_mark", "close", "Close", tooltip="Close the help")]

    def __init__(self, sections: list[tuple[str, list[tuple[str, str]]]]):
        super().__init__()
        # The scroll keys are the focused body's (VerticalScroll's own bindings).
        own = [("↑ ↓ pgup pgdn", "Scroll the help (home / end: to the top / bottom)")] + binding_rows(self.BINDINGS)
        self.sections = list(sections) + [("In this help", own)]
        self.rows = [row for _, rows in self.sections for row in rows]  # for tests

    def compose(self) -> ComposeResult:
        # The box itself scrolls (its height is its content's, up to the screen's); the title and the
        # hint are in its border, so they stay put.
        with VerticalScroll(id="help") as box:
            box.border_title = "releasetui keys"
            box.border_subtitle = "↑ ↓ pgup pgdn scroll · esc closes"
            # A Rich table in a Static wraps long lines, which a DataTable would cut off.
            table = Table(show_header=False, box=None, padding=(0, 2, 0, 0), expand=True)
            table.add_column("key", style="bold cyan", no_wrap=True)
            table.add_column("what it does", ratio=1)
            for number, (title, rows) in enumerate(self.sections):
                table.add_row(Text(title, style="bold"), "")
                for keys, text in rows:
                    table.add_row(keys, text)
                if number < len(self.sections) - 1:
                    table.add_row("", "")
            yield Static(table, id="help-keys")
            yield Static(
                "Hosts: ≠ marks a current build that differs between hosts; ✓ marks a target host.\n"
                "Builds: * after the requirements hash marks a change from the build before "
                "(a new virtualenv); + after the commit means the source tree was dirty.\n"
                "Fleet view: ▶ live (on yellow: the host serves another build than most hosts), ● complete, "
                "✗ failed, ◌ incomplete, ! damaged, p pinned, · absent, ? host not read.", id="help-legend")

    def on_mount(self) -> None:
        # The scroll keys (↑ ↓ pgup pgdn home end) are the focused scroll container's own bindings.
        self.query_one("#help", VerticalScroll).focus()

    def action_close(self) -> None:
        """Back to where you were."""
        self.dismiss(None)


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


class QuitWhileBusyScreen(ConfirmScreen):
    """Quitting during an operation: say what confirming does, and keep saying it as the operation moves on.

    ``promise`` is asked again a few times a second (and by :meth:`follow` when the operation ends): the
    dialog's words are always what ``y`` does now (abort before the switch, let the switch finish during it,
    just quit once it has ended).  A ``y`` that lands just after the promise changed does not act on the old
    words: the dialog shows the new ones and asks again.
    """

    quit_question = True
    POLL = 0.2  # seconds between looks at the operation (its phase changes on a worker thread)

    def __init__(self, promise: Callable[[], object]):
        self.promise = promise
        first = promise()
        super().__init__(first.title, first.body, confirm_label=first.label, danger=first.danger)
        self.shown = first

    def on_mount(self) -> None:
        super().on_mount()
        self.set_interval(self.POLL, self.follow)

    @staticmethod
    def _words(promise) -> tuple[str, str, str]:
        return promise.title, promise.body.plain, promise.label

    def follow(self) -> None:
        """Redraw when what quitting does has changed since it was shown."""
        now = self.promise()
        if self._words(now) == self._words(self.shown):
            return
        self.shown, self.title_text, self.body, self.danger = now, now.title, now.body, now.danger
        self.query_one("#dialog-title", Static).update(now.title)
        self.query_one("#dialog-text", Static).update(now.body)
        button = self.query_one("#confirm", Button)
        button.label = f"{now.label} (y)"
        button.variant = "error" if now.danger else "primary"

    def confirm_now(self) -> bool:
        """Whether ``y`` may act: the words shown are still true (else they are redrawn and it asks again)."""
        if self._words(self.promise()) == self._words(self.shown):
            return True
        self.follow()
        self.notify("The operation moved on while you read: the dialog says what quitting does now.",
                    title="Quit", severity="warning", timeout=4)
        return False

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id != "confirm" or self.confirm_now():
            super().on_button_pressed(event)

    def action_answer(self, answer: bool) -> None:
        if not answer or self.confirm_now():
            super().action_answer(answer)


class QuitNowScreen(ConfirmScreen):
    """A quit key pressed again while the interrupted operation cleans up: the way out if a host hangs."""

    quit_question = True

    def __init__(self, operation: str):
        super().__init__("Quit without waiting for the cleanup?",
                         Text(f"{operation} is being stopped and is still cleaning up on the hosts. Quitting now "
                              "cuts that short: a deploy lock or a partial build may stay behind (remove them "
                              "later with u and p).\n"),
                         confirm_label="Quit now", danger=True)
