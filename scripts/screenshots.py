#!/usr/bin/env python3
"""Make the README's screenshots from the real app against the demo sandbox.

    python scripts/screenshots.py [--dir SANDBOX] [--out screenshots]

Prepares a fresh demo sandbox (real local deploys, no network), then drives
the TUI headlessly with ``app.run_test()`` and saves SVGs of: the main
screen, a deploy in progress, the rollback confirmation (with what the
rollback would change), the diff view (``D``) on that build, a log tail, the
fleet view (after pinning the oldest build and rolling one host back, so it
shows a pin and drift) and the history view.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from releasetui.config import load_config  # noqa: E402
from releasetui.demo import prepare, write_app  # noqa: E402
from releasetui.tui.app import ReleaseApp  # noqa: E402
from releasetui.tui.diffview import DiffScreen  # noqa: E402
from releasetui.tui.fleet import FleetScreen  # noqa: E402
from releasetui.tui.historyview import HistoryScreen  # noqa: E402
from releasetui.tui.actions import DIFF_PENDING  # noqa: E402
from releasetui.tui.dialogs import ConfirmScreen  # noqa: E402
from releasetui.tui.screens import LogScreen  # noqa: E402

SIZE = (120, 36)


async def until(pilot, condition, timeout: float = 120) -> None:
    """Run the app until ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("screenshots: timed out")
        await pilot.pause(0.05)


async def idle(pilot) -> None:
    """Wait for the hosts to be read and no operation to run."""
    app = pilot.app
    await until(pilot, lambda: app.main is not None and app.main.busy is None and app.states and not any(
        w.is_running for w in app.workers if w.group in ("operation", "refresh")))
    await pilot.pause()


async def shoot(config_path: Path, out: Path) -> None:
    """Drive the app through its screens and save one SVG for each."""
    config = load_config(config_path)
    app = ReleaseApp(config, refresh_interval=None)  # no re-read between shots
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        app.save_screenshot(str(out / "main.svg"))
        print(out / "main.svg")

        # Rollback confirmation: two builds down from current (the requirements differ there).
        await pilot.press("down", "down", "down", "r")
        # The dialog opens at once from the screen; wait for the read and the diff beside it to land.
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen) and DIFF_PENDING not in str(app.screen.body))
        await pilot.pause()
        app.save_screenshot(str(out / "rollback-confirm.svg"))
        print(out / "rollback-confirm.svg")
        await pilot.press("n")

        # The full diff of that build against current (D): files, the requirements diff, the commits undone.
        await pilot.press("D")
        await until(pilot, lambda: isinstance(app.screen, DiffScreen) and not app.screen.loading)
        await pilot.pause()
        app.save_screenshot(str(out / "diff.svg"))
        print(out / "diff.svg")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.main)

        # A deploy in progress: new requirements, so the venv step takes a moment; shot mid-way.
        write_app(config.source, "1.4.0-screenshot", "greeting==1.0\nhttpstatus==1.0\n")
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        # The pane prints finished steps only; a running venv build shows in its title (running_steps).
        await until(pilot, lambda: any(step == "venv" for _, step in app.main.running_steps)
                    or app.main.busy is None)
        await pilot.pause()
        app.save_screenshot(str(out / "deploy-progress.svg"))
        print(out / "deploy-progress.svg")
        await idle(pilot)

        # A log tail.
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, LogScreen) and len(app.screen.transcript) >= 20)
        await pilot.pause(0.3)
        app.save_screenshot(str(out / "logs.svg"))
        print(out / "logs.svg")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.main)

        # Pin the oldest build on both hosts, then roll web2 alone back one build: the fleet view then shows a
        # pin and a host off the majority (and the history has both).
        await confirm_key(pilot, "end", "P")
        await idle(pilot)
        app.main.query_one("#hosts").focus()
        await pilot.press("down", "m")  # web2 is the only target
        app.main.query_one("#builds").focus()
        await confirm_key(pilot, "home", "down", "r")
        await idle(pilot)
        await pilot.press("m")  # unmarked again: the fleet view's targets read "all 2 hosts"

        await pilot.press("v")
        await until(pilot, lambda: isinstance(app.screen, FleetScreen))
        await pilot.pause()
        app.save_screenshot(str(out / "fleet.svg"))
        print(out / "fleet.svg")
        await pilot.press("escape")

        await pilot.press("h")
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen) and bool(app.screen.entries))
        await pilot.press("down")  # the pin, under the rollback: the detail below the table says it all
        await pilot.pause()
        app.save_screenshot(str(out / "history.svg"))
        print(out / "history.svg")
        await pilot.press("escape")


async def confirm_key(pilot, *keys: str) -> None:
    """Press ``keys`` (the last one opens a confirmation) and answer yes."""
    await pilot.press(*keys)
    await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen))
    await pilot.press("y")
    await until(pilot, lambda: pilot.app.main.busy is not None or not isinstance(pilot.app.screen, ConfirmScreen))


def main() -> int:
    """Prepare a fresh sandbox and write the SVGs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", help="sandbox directory, recreated (default: $TMPDIR/releasetui-demo)")
    parser.add_argument("--out", default=str(ROOT / "screenshots"), help="where the SVGs go")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # A fixed path, so the path shown in the screenshots does not change from run to run.
    base = Path(args.dir) if args.dir else Path(tempfile.gettempdir()) / "releasetui-demo"
    config_path = prepare(base, fresh=True, say=lambda text: print(f"demo: {text}", file=sys.stderr))
    asyncio.run(shoot(config_path, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
