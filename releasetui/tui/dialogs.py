"""The modal dialogs: confirmations (and the quit questions), the role and stage pickers, the help."""

from __future__ import annotations

from typing import Callable, Iterable, Optional

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.keys import format_key
from textual.screen import ModalScreen
from textual.widgets import Button, OptionList, Static
from textual.widgets.option_list import Option

from .. import present


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

    def show(self, title: str, body: Text | str, confirm_label: str, danger: bool) -> None:
        """Say something else: a dialog kept open while what it asks changes (a fresher read, the operation
        moving on) redraws in place."""
        self.title_text, self.body, self.confirm_label, self.danger = title, body, confirm_label, danger
        self.query_one("#dialog-title", Static).update(title)
        self.query_one("#dialog-text", Static).update(body)
        button = self.query_one("#confirm", Button)
        button.label = f"{confirm_label} (y)"
        button.variant = "error" if danger else "primary"

    def on_mount(self) -> None:
        # Enter on the focused button confirms: with the key that opened it, a two-keystroke action.
        self.query_one("#confirm", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Buttons answer like the keys do."""
        self.dismiss(event.button.id == "confirm")

    def action_answer(self, answer: bool) -> None:
        """Close with the answer."""
        self.dismiss(answer)


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
        self.shown = now
        self.show(now.title, now.body, now.label, now.danger)

    def confirm_now(self) -> bool:
        """Whether ``y`` may act: the words shown are still true (else they are redrawn and it asks again)."""
        if self._words(self.promise()) == self._words(self.shown):
            return True
        self.follow()
        self.notify("The operation moved on while you read: the dialog says what quitting does now.",
                    title="Quit", severity="warning", timeout=4)
        return False

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """The confirm button acts only on words still true (as ``y`` does)."""
        if event.button.id != "confirm" or self.confirm_now():
            super().on_button_pressed(event)

    def action_answer(self, answer: bool) -> None:
        """``y`` acts only on words still true; ``n`` always cancels."""
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
