"""The releasetui TUI: hosts, their builds, and every operation two keystrokes away.

This module is the app (the config it runs on, the connections it keeps open, the quit keys) and
``run_app``; the main screen is :mod:`.main`, its widgets :mod:`.widgets`, the dialogs :mod:`.dialogs`.
"""

from __future__ import annotations

import argparse
from datetime import datetime, tzinfo
from typing import Callable, Optional

from textual.app import App
from textual.binding import Binding

from ..config import Config, HostConfig, find_config, load_config
from ..stages import stage_from
from ..executors import ExecutorPool
from .. import clock
from ..models import Event, ExitCode
from ..operations import Operations
from .dialogs import ConfirmScreen, HelpScreen, QuitNowScreen, QuitWhileBusyScreen, binding_rows
from .diffview import DiffScreen
from .fleet import FleetScreen
from .historyview import HistoryScreen
from .main import MainScreen
from .screens import LogScreen, NoConfigScreen
from .widgets import RowTable

OperationsFactory = Callable[[Config, Callable[[Event], None], ExecutorPool], Operations]


class ReleaseApp(App[int]):
    """The TUI over one config.  With no config it shows where it looked and how to start."""

    CSS_PATH = "app.tcss"
    TITLE = "releasetui"
    BINDINGS = [
        Binding("q", "quit_app", "Quit", tooltip="Quit; while an operation runs it asks first, then stops it and "
                                                  "quits once the hosts are cleaned up (lock released, partial "
                                                  "build removed)"),
        # Textual's own ctrl+q quits at once and its ctrl+c only says how to quit: both go through q's path,
        # so a quit during a deploy always asks and then waits for the cleanup.
        Binding("ctrl+q", "quit_app", "Quit", show=False, priority=True),
        Binding("ctrl+c", "quit_app", "Quit", show=False),
        Binding("question_mark", "help", "Help", tooltip="This help"),
    ]

    def __init__(self, config: Optional[Config] = None, hosts: Optional[tuple[HostConfig, ...]] = None,
                 looked: tuple[str, ...] | list[str] = (), operations_factory: Optional[OperationsFactory] = None,
                 now: Optional[Callable[[], datetime]] = None, tz: Optional[tzinfo] = None, read_on_start: bool = True,
                 refresh_interval: Optional[float] = 30):
        """``now``/``tz`` pin the clock and zone (snapshots); ``operations_factory`` swaps the core (tests).

        ``refresh_interval``: seconds between re-reads of the hosts while idle; None or 0 turns them off.
        """
        super().__init__()
        self.config = config
        self.hosts = tuple(hosts if hosts is not None else (config.hosts if config else ()))
        self.looked = list(looked)
        self.operations_factory = operations_factory
        self._now = now
        self.tz = tz
        self.read_on_start = read_on_start
        self.refresh_interval = refresh_interval
        self.pool = ExecutorPool(connect_timeout=config.connect_timeout if config else 15.0)  # kept open for the app's lifetime
        self.exit_report: list[str] = []  # printed on the terminal after the app exits
        self.next_stage: Optional[str] = None  # S picked another stage: run_app opens the app again on it
        self.states: dict[str, object] = {}
        self.main: Optional[MainScreen] = None
        if config is not None:
            stage = f" · stage {config.stage}" if config.stage else ""
            self.sub_title = f"{config.project}{stage} · {config.path}"

    def now(self) -> datetime:
        """The time ages are measured from."""
        return self._now() if self._now else clock.now()

    def make_operations(self, report: Callable[[Event], None]) -> Operations:
        """A fresh Operations (its own stop event) on the shared pool."""
        if self.operations_factory is not None:
            return self.operations_factory(self.config, report, self.pool)
        return Operations(self.config, report=report, pool=self.pool)

    def on_mount(self) -> None:
        if self.config is None:
            self.push_screen(NoConfigScreen(self.looked))
        else:
            self.main = MainScreen()
            self.push_screen(self.main)

    def action_help(self) -> None:
        """?: the help screen (once)."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(help_sections()))

    def action_quit_app(self) -> None:
        """q / ctrl+q / ctrl+c: quit; while an operation runs, ask first, then stop it and quit once it cleaned up."""
        main = self.main
        if main is None or not main.busy:
            self.exit(0)
            return
        if isinstance(self.screen, ConfirmScreen) and self.screen.quit_question:
            return  # already asking
        if main.quitting:
            self.push_screen(QuitNowScreen(main.busy), lambda ok: ok and self.quit_now(main.busy))
            return
        # The dialog follows the operation: its words are what confirming does at the moment y is pressed.
        self.push_screen(QuitWhileBusyScreen(main.quit_promise), lambda ok: ok and main.stop_then_quit())

    def quit_now(self, operation: Optional[str]) -> None:
        """Quit without waiting for a stopped operation's cleanup: exit 130, and say what may be left."""
        self.exit_report.append(f"releasetui: {operation or 'the operation'} interrupted: quit without waiting for "
                                "its cleanup; a lock or a partial build may be left (exit 130)")
        self.exit(return_code=int(ExitCode.INTERRUPTED))

    async def action_quit(self) -> None:
        """Textual's quit (command palette, ctrl+q): the same path as q."""
        self.action_quit_app()

    def on_unmount(self) -> None:
        # Normally nothing runs by now (a quit waits for the operation); if something still does (the
        # "quit without waiting" answer, a crash), stop it, once.
        if self.main is not None and self.main.busy:
            self.main.interrupt()
        self.pool.close()


# Keys Textual itself provides on the main screen (not in our BINDINGS), for the help.
BUILTIN_MAIN_KEYS: list[tuple[str, str]] = [
    ("tab / shift+tab", "Move between the hosts table, the builds table and the output pane"),
    ("↑ ↓ / enter", "Move the cursor; enter on a host shows its builds"),
]


# The tables' own keys in the fleet and history views (Textual's DataTable bindings), for the help.
FLEET_BUILTIN_KEYS: list[tuple[str, str]] = [
    ("↑ ↓ ← →", "Move the cursor up and down; scroll the columns sideways"),
]


# The diff view scrolls with its scroll container's own keys.
DIFF_BUILTIN_KEYS: list[tuple[str, str]] = [
    ("↑ ↓ pgup pgdn", "Scroll the diff (home / end: to the top / bottom)"),
]


def help_sections() -> list[tuple[str, list[tuple[str, str]]]]:
    """The help's sections, from the bindings themselves: a key added or changed shows there by itself."""
    main = binding_rows(MainScreen.BINDINGS) + BUILTIN_MAIN_KEYS + binding_rows(RowTable.BINDINGS)
    return [("Main screen", main + binding_rows(ReleaseApp.BINDINGS)),
            ("In a confirmation", binding_rows(ConfirmScreen.BINDINGS)),
            ("In the fleet view (v)", binding_rows(FleetScreen.BINDINGS) + FLEET_BUILTIN_KEYS),
            ("In the history view (h)", binding_rows(HistoryScreen.BINDINGS) + FLEET_BUILTIN_KEYS),
            ("In the diff view (D)", binding_rows(DiffScreen.BINDINGS) + DIFF_BUILTIN_KEYS),
            ("In the log view (l)", binding_rows(LogScreen.BINDINGS))]


def run_app(args: argparse.Namespace) -> int:
    """``releasetui [--config PATH] [--host NAME]... [--role NAME]...``: find and load the config, then run the TUI.

    A missing config opens the "no config" screen; a broken one raises
    ConfigError, which the CLI prints as one line (exit 2).
    """
    path, looked = find_config(getattr(args, "config", None))
    stage = stage_from(getattr(args, "stage", None))
    while True:
        if path is None:
            app = ReleaseApp(None, looked=looked)
        else:
            config = load_config(path, stage)
            # --host and --role choose the hosts the TUI shows, as they do for --headless.
            app = ReleaseApp(config, hosts=config.select(getattr(args, "top_hosts", None) or [],
                                                         getattr(args, "top_roles", None) or []))
        app.run()
        if app.next_stage is None:
            break
        stage = app.next_stage  # S: the same app, opened on another stage
    for line in app.exit_report:
        print(line)
    return int(app.return_code or 0)
