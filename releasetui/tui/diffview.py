"""What a deploy or a rollback would change: the confirmations' one line, and the diff view (``D``).

Both come from the core's :meth:`~releasetui.operations.Operations.diff` (one
read-only round trip per host, none for the local source; files, requirements
and commits, hosts with the same result grouped).  The texts are built by pure
functions here, so tests and snapshots can check them; the screen reads the
diff in a thread worker and only draws it.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Header, Static

from .. import present
from ..diffing import BuildDiff, DiffReport
from ..text import clean_line
from .widgets.footer import FittedFooter

UNAVAILABLE = "diff unavailable"
SUMMARY_GROUPS = 3  # groups of hosts named in the confirmations' one line; the rest are counted


def unavailable(exc: BaseException) -> str:
    """``diff unavailable: <why>`` for a diff that could not be made at all (a bad source, the pool failed)."""
    return f"{UNAVAILABLE}: {clean_line(str(exc) or type(exc).__name__, 300)}"


def group_summary(diff: BuildDiff) -> str:
    """One group's line (the core's summary); a file list that is unknown (a build made before releasetui kept
    one) makes it ``diff unavailable: <why>``, then what is known (requirements, commits)."""
    if diff.added is not None:
        return diff.summary()
    text = diff.summary()
    rest = text[len("files unknown"):].lstrip(", ") if text.startswith("files unknown") else ""
    return f"{UNAVAILABLE}: {diff.files_note}" + (f"; {rest}" if rest else "")


def summary_line(report: DiffReport) -> str:
    """The line the deploy and rollback confirmations show: ``3 files changed (1 added), requirements:
    +redis==5.0.1, 2 commits: …``; each group with its hosts when they differ; ``diff unavailable: <why>`` for
    the hosts it could not be made for (unreachable, a build missing there)."""
    if not report.groups:
        reasons = present.group_hosts(report.errors)
        if not reasons:
            return "nothing to compare"
        if len(reasons) == 1 and report.hosts == 1:
            return f"{UNAVAILABLE}: {reasons[0][0]}"
        return f"{UNAVAILABLE}: " + "; ".join(f"{present.host_list(hosts)}: {why}" for why, hosts in reasons)
    alone = len(report.groups) == 1 and not report.errors
    parts = [group_summary(diff) if alone else f"{present.host_list(hosts)}: {group_summary(diff)}"
             for diff, hosts in report.groups]
    parts += [f"{present.host_list(hosts)}: {UNAVAILABLE}: {why}" for why, hosts in present.group_hosts(report.errors)]
    if len(parts) > SUMMARY_GROUPS:
        more = len(parts) - SUMMARY_GROUPS
        parts = parts[:SUMMARY_GROUPS] + [f"… {more} more group{'s' if more != 1 else ''} of hosts"]
    return "; ".join(parts)


def _line_style(line: str, first: bool) -> str:
    """The style of one line of :meth:`BuildDiff.lines`: the summary bold, ``+`` green, ``-`` red, ``~`` yellow."""
    if first:
        return "bold"
    if not line.startswith("    "):  # a section's heading ("  files:"), or why it is unknown
        return "yellow" if ": unknown" in line or "could not be read" in line else "bold"
    item = line[4:]
    if item.startswith(("+++ ", "--- ")):
        return "bold"
    if item.startswith("@@"):
        return "cyan"
    return {"+": "green", "-": "red", "~": "yellow"}.get(item[:1], "")


# (first-line indent, continuation indent, the line): a long line wraps under its own start, not the margin.
DiffLine = tuple[int, int, Text]


def diff_lines(report: DiffReport) -> list[DiffLine]:
    """The full diff, for the diff view: per group of hosts, from → to, then its files (``+`` added, ``-``
    removed, ``~`` changed), the requirements diff and the commits between; then each host it could not be
    made for, and why."""
    out: list[DiffLine] = []
    blank: DiffLine = (0, 0, Text(""))
    for diff, hosts in report.groups:
        if out:
            out.append(blank)
        who = present.hosts_phrase(hosts, report.hosts) if len(hosts) > 1 else hosts[0]
        head = Text(f"{who}: ", style="bold cyan")
        head.append(f"{diff.old.describe()} → {diff.new.describe()}", style="bold")
        out.append((0, 2, head))
        if diff.new.subject and diff.new.build_id:
            out.append((2, 4, Text(f"{diff.new.label}: {clean_line(diff.new.subject, 200)}", style="italic")))
        for index, line in enumerate(diff.lines()):
            if index == 0 and diff.added is None:
                line = f"  {group_summary(diff)}"
            indent = len(line) - len(line.lstrip(" "))
            # Wrapped two columns in: an item ("    ~ app.py", a commit) under its text, past its mark.
            out.append((indent, indent + 2, Text(line[indent:], style=_line_style(line, index == 0))))
    for why, hosts in present.group_hosts(report.errors):
        if out:
            out.append(blank)
        who = present.hosts_phrase(hosts, report.hosts) if len(hosts) > 1 else hosts[0]
        text = Text(f"{who}: ", style="bold cyan")
        text.append(f"{UNAVAILABLE}: {why}", style="bold red")
        out.append((0, 2, text))
    if not out:
        out.append((0, 0, Text("nothing to compare", style="dim")))
    return out


def diff_text(report: DiffReport) -> str:
    """:func:`diff_lines` as plain text (tests, bug reports)."""
    return "\n".join(" " * indent + text.plain for indent, _, text in diff_lines(report))


class Indented:
    """Lines that each keep their indent when they wrap (a Rich renderable: wrapped at whatever width it gets)."""

    def __init__(self, lines: Sequence[DiffLine]):
        self.lines = list(lines)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        for indent, hang, text in self.lines:
            if not text.plain:
                yield Segment.line()
                continue
            first, rest = min(indent, max(width - 1, 0)), min(hang, max(width - 1, 0))
            # Wrapped at the continuation's room: the first line gives up the (two) columns it could have had.
            wrapped = text.wrap(console, max(width - rest, 1), overflow="fold")
            # Text.render leaves out a Text's own style (only its spans'): it is applied here.
            style = console.get_style(text.style) if text.style else None
            for number, line in enumerate(wrapped):
                yield Segment(" " * (first if number == 0 else rest))
                yield from Segment.apply_style(line.render(console), style)
                yield Segment.line()


class DiffLoaded(Message):
    """The diff the worker read, or why it could not be read."""

    def __init__(self, report: Optional[DiffReport], error: Optional[str] = None):
        super().__init__()
        self.report = report
        self.error = error


class DiffScreen(Screen[None]):
    """The full diff of a build against the target hosts' current build (current → the build); it scrolls."""

    BINDINGS = [
        Binding("f5", "reload", "Reload", tooltip="Read the hosts again and compare again"),
        Binding("escape,q,D", "close", "Back", tooltip="Back to where you were"),
    ]

    def __init__(self, build_id: str, targets: str, hosts: Sequence, read: Callable[[], DiffReport]):
        """``read`` is the core's ``Operations.diff`` for the target ``hosts`` (current → ``build_id``); it runs in
        a thread.  ``targets`` names the hosts in a few words (``all 50 hosts``, ``role web: …``)."""
        super().__init__()
        self.build_id = build_id
        self.targets = targets
        self.hosts = list(hosts)
        self.read = read
        self.report: Optional[DiffReport] = None
        self.error: Optional[str] = None
        self.loading = False
        self.text = ""  # plain text of what is shown, for tests

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static(id="diff-status")
        with VerticalScroll(id="diff") as box:
            box.border_title = "Diff"
            box.border_subtitle = "+ added / shipped · - removed / undone · ~ changed"
            yield Static(id="diff-text")
        yield FittedFooter()

    def on_mount(self) -> None:
        # The scroll keys (↑ ↓ pgup pgdn home end) are the focused scroll container's own.
        self.query_one("#diff", VerticalScroll).focus()
        self.action_reload()

    # --- reading ------------------------------------------------------------------------

    def action_reload(self) -> None:
        """f5: read and compare again (in a worker)."""
        self.loading = True
        self.update_status()
        if self.report is None:
            self.query_one("#diff-text", Static).update(Text("reading…", style="dim"))
        self.load()

    @work(thread=True, exclusive=True, group="diff", exit_on_error=False)
    def load(self) -> None:
        """Worker: the core reads each host's builds (one round trip each) and compares; back as a message."""
        try:
            report = self.read()
        except Exception as exc:  # a bad source, the pool itself failed: say so, keep the screen
            self.post_message(DiffLoaded(None, unavailable(exc)))
            return
        self.post_message(DiffLoaded(report))

    def on_diff_loaded(self, message: DiffLoaded) -> None:
        """Show what was read."""
        self.loading = False
        self.report, self.error = message.report, message.error
        body = self.query_one("#diff-text", Static)
        if message.report is None:
            self.text = message.error or UNAVAILABLE
            body.update(Text(self.text, style="bold red"))
        else:
            lines = diff_lines(message.report)
            self.text = "\n".join(" " * indent + text.plain for indent, _, text in lines)
            body.update(Indented(lines))
        self.update_status()

    def update_status(self) -> None:
        """The line above the diff: which hosts, from → to, whether they differ, reading."""
        text = Text(f"{self.targets}: current → {self.build_id}", style="bold")
        if self.loading:
            text.append(" · reading…", style="dim")
        elif self.report is not None:
            groups = len(self.report.groups)
            if groups > 1:
                text.append(f" · the hosts differ: {groups} groups", style="bold yellow")
            if self.report.errors:
                text.append(f" · {UNAVAILABLE} on {present.host_list(list(self.report.errors))}", style="red")
        text.append("\n↑ ↓ pgup pgdn scroll · f5 reads again · esc goes back", style="dim")
        self.query_one("#diff-status", Static).update(text)

    def action_close(self) -> None:
        """Back to the screen D was pressed on."""
        self.dismiss(None)


__all__ = ["DiffScreen", "Indented", "UNAVAILABLE", "diff_lines", "diff_text", "group_summary", "summary_line",
           "unavailable"]
