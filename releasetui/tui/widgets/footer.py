"""The footer, fitted to the screen's width so that q Quit and ? Help are never pushed off."""

from __future__ import annotations

from typing import Iterable, Optional

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer


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
            # Footer yields one key widget per binding (no binding here is in a group); a key has an action.
            action = getattr(widget, "action", None)
            if action is not None:
                if action in left_out:
                    continue
                if self.compact and action in self.short:
                    widget.description = self.short[action]
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
