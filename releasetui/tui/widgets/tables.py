"""The row-cursor tables every screen uses, and the one way to read the key of the row under the cursor."""

from __future__ import annotations

from typing import Optional

from rich.text import Text
from textual.binding import Binding
from textual.coordinate import Coordinate
from textual.widgets import DataTable


def selected_key(table: DataTable) -> Optional[str]:
    """The key of the row under ``table``'s cursor (a build id, a history index...), or None on an empty table."""
    if table.row_count == 0:
        return None
    try:
        return table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value
    except Exception:  # the cursor sits past the rows while the table is being refilled
        return None


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

    def selected(self) -> Optional[str]:
        """The key of the row under the cursor, or None (see :func:`selected_key`)."""
        return selected_key(self)

    def room(self) -> int:
        """The columns inside the table's round border: the screen's width (the tables span it) minus 2."""
        return (self.screen.size.width or self.app.size.width) - 2


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
        """Right: scroll to the next column edge (a row cursor has no column to move to)."""
        if self.cursor_type != "row":
            return super().action_cursor_right()
        stop = next((s for s in self.column_stops() if s > self.scroll_x), None)
        if stop is not None:
            self.scroll_to(x=min(stop, self.max_scroll_x), animate=False)

    def action_cursor_left(self) -> None:
        """Left: scroll back to the previous column edge."""
        if self.cursor_type != "row":
            return super().action_cursor_left()
        self.scroll_to(x=max([s for s in self.column_stops() if s < self.scroll_x], default=0), animate=False)
