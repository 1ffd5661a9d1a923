"""The output pane: the log every screen writes to (wrapped at its real width, re-wrapped on a resize), host
labels for the log tail, and the main screen's pane that says what runs in its title."""

from __future__ import annotations

from collections import deque
from typing import Iterable, Optional

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.segment import Segment
from rich.text import Text
from textual import events
from textual.widgets import RichLog

from ... import present


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


class OutputPane(WrapLog):
    """The main screen's output: one line per step an operation finished, its title what runs now.

    ``transcript`` keeps the plain text of every line (for tests and bug reports).
    """

    def __init__(self, *, max_lines: int = 2000, id: Optional[str] = None):
        super().__init__(max_lines=max_lines, id=id)
        self.transcript: list[str] = []

    def say(self, text: str | Text, style: str = "") -> None:
        """One line (WrapLog wraps it at the pane's width, and again after a resize)."""
        line = Text(text, style=style) if isinstance(text, str) else text
        self.transcript.append(line.plain)
        self.write(line)

    def show_running(self, busy: Optional[str], stopping: bool, steps: Iterable[tuple[Optional[str], str]],
                     preparing: Optional[str] = None, reading: int = 0) -> None:
        """The title: the operation ``busy`` and its ``steps`` under way as (host, step), that it is stopping,
        or that ``preparing``'s confirmation waits for a read of ``reading`` hosts."""
        if busy is None:
            hosts = f"{reading} host" + ("" if reading == 1 else "s")
            self.border_title = f"Output · {preparing}: reading {hosts}…" if preparing else "Output"
        elif stopping:
            self.border_title = f"Output · stopping {busy}… (cleaning up)"
        else:
            # Hosts in the same step grouped: fifty "webNN install" would run far past the pane's edge.
            by_step: dict[str, list[str]] = {}
            for host, step in steps:
                by_step.setdefault(step, []).append(host or "*")
            text = ", ".join(f"{step} on " + (present.host_list(names) if len(names) <= 3 else f"{len(names)} hosts")
                             for step, names in by_step.items())
            self.border_title = f"Output · {busy} running…" + (f" {text}" if text else "")
