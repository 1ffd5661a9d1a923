"""What the main screen's parts (reads, the worker, the keys) use of the app, and what the fleet view uses of the
main screen.

Protocols, so those modules name the shape they use without importing the module that imports them (no circle);
:class:`releasetui.tui.app.ReleaseApp` and :class:`releasetui.tui.main.MainScreen` are the implementations.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Callable, Optional, Protocol

if TYPE_CHECKING:
    from ..config import Config, HostConfig
    from ..models import Event
    from ..operations import Operations


class ReleaseFace(Protocol):
    """The TUI's session: the config and its hosts, each host's last read state, the clock, how to run operations."""

    config: "Config"
    hosts: tuple["HostConfig", ...]
    states: dict[str, object]
    tz: Optional[tzinfo]
    read_on_start: bool
    refresh_interval: Optional[float]
    exit_report: list[str]
    next_stage: Optional[str]

    def now(self) -> datetime:
        """The time ages are measured from."""

    def make_operations(self, report: Callable[["Event"], None]) -> "Operations":
        """A fresh Operations on the app's kept-open connections."""


class MainFace(Protocol):
    """What the fleet view asks of the main screen: the app, the targets, and the actions it hands back."""

    releasetui: ReleaseFace
    marked: set[str]

    def targets(self) -> list["HostConfig"]:
        """The hosts an operation would target now."""

    def targets_phrase(self, hosts: Optional[list["HostConfig"]] = None) -> str:
        """``all 50 hosts``, ``web1, web2``..."""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> Optional[bool]:
        """Whether a key's action may run now (False: dimmed while an operation runs)."""

    def action_refresh(self) -> None:
        """Read every host again."""

    def rollback_to(self, build_id: str) -> None:
        """Confirm, then roll the targets to ``build_id``."""

    def pin_build(self, build_id: str) -> None:
        """Confirm, then pin or unpin ``build_id`` on the targets."""

    def show_diff(self, build_id: str) -> None:
        """What rolling the targets to ``build_id`` would change."""
