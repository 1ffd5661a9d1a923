"""The TUI's own widgets: the tables (hosts, builds, and the row-cursor base they share), the output pane and the
log it is made of, and the footer fitted to the screen's width.  Screens compose them; none of them knows
about operations."""

from .builds import BuildsTable
from .footer import FittedFooter
from .hosts import HostsTable
from .output import Labelled, OutputPane, WrapLog
from .tables import MatrixTable, RowTable, selected_key

__all__ = ["BuildsTable", "FittedFooter", "HostsTable", "Labelled", "MatrixTable", "OutputPane", "RowTable",
           "WrapLog", "selected_key"]
