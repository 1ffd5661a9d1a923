#!/usr/bin/env python3
"""How fast the TUI answers its keys with fifty hosts (issue 16, section 5): the time from pressing d or r to the
dialog on screen, and from pressing p to the line that says what it reads.

The app runs headless (Textual's pilot) on a fake core (tests/support/tuikit.py) whose reads of the hosts take
``--read-s`` seconds each (what reading fifty hosts over SSH took when the dialogs waited for it: 1.6-2.0 s).
``from screen``: the dialog opened from the states already shown (what d and r do); ``after a read``: the same
key with no state on screen yet, so it waits for the read as every dialog did before.

    python bench/tui_dialogs.py [--hosts 50] [--runs 5] [--read-s 1.6]

Prints medians and maxima in milliseconds: until the answer is there (the dialog mounted, the line written), and
until the screen has been arranged with it (the next paint, at most 1/60 s later, shows it).  Nothing leaves this process.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from releasetui.tui.dialogs import ConfirmScreen  # noqa: E402
from tests.support.tuikit import Reads, fleet_config, loaded, make_app, steady_fleet  # noqa: E402


async def until(condition) -> None:
    """Return once ``condition()`` holds, looking after every step of the event loop."""
    start = time.perf_counter()
    while not condition():
        await asyncio.sleep(0)
        if time.perf_counter() - start > 30:
            raise RuntimeError("timed out")


async def press(app, key: str, shown, laid_out) -> tuple[float, float]:
    """Press ``key`` as a terminal would; seconds until ``shown()`` holds (the dialog mounted), and until
    ``laid_out()`` does (the screen has been arranged with it: its next paint shows it)."""
    start = time.perf_counter()
    app.simulate_key(key)
    await until(shown)
    answered = time.perf_counter() - start
    await until(laid_out)
    return answered, time.perf_counter() - start


def dialog_open(app) -> bool:
    """A confirmation is the screen, mounted."""
    return isinstance(app.screen, ConfirmScreen) and app.screen.is_mounted


def dialog_laid_out(app) -> bool:
    """The confirmation's text has a place on the screen."""
    return dialog_open(app) and app.screen.query_one("#dialog-text").region.height > 0


async def one_run(config, read_s: float, from_screen: bool) -> dict[str, tuple[float, float]]:
    """One app: d, then r, then p; the seconds each took to show its answer, and to be drawn."""
    reads = Reads()
    app = make_app(config, steady_fleet(reads))
    times = {}
    async with app.run_test(size=(120, 40)) as pilot:
        main = await loaded(pilot)
        reads.delay = read_s
        await pilot.press("down", "down")  # an older build under the cursor, for r
        for key, label in (("d", "deploy dialog"), ("r", "rollback dialog")):
            if not from_screen:
                app.states = {}  # nothing shown yet: the key waits for the read
            times[label] = await press(app, key, lambda: dialog_open(app), lambda: dialog_laid_out(app))
            await pilot.press("n")
            await app.workers.wait_for_complete()
            await pilot.pause()
        reading = lambda: "reading" in str(main.output_pane().border_title)  # noqa: E731
        times["p: says it reads"] = await press(app, "p", reading, reading)
        await app.workers.wait_for_complete()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--read-s", type=float, default=1.6, help="seconds one read of the hosts takes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as source:
        (Path(source) / "requirements.txt").write_text("flask==3.0.3\n")
        config = dataclasses.replace(fleet_config(args.hosts), source=Path(source))
        for from_screen in (True, False):
            runs = [asyncio.run(one_run(config, args.read_s, from_screen)) for _ in range(args.runs)]
            mode = "from screen" if from_screen else "after a read"
            for what in runs[0]:
                shown = [run[what][0] * 1000 for run in runs]
                drawn = [run[what][1] * 1000 for run in runs]
                print(f"{args.hosts} hosts, {mode:12}  {what:18} shown: median {statistics.median(shown):6.0f} ms,"
                      f" max {max(shown):6.0f} · laid out: median {statistics.median(drawn):6.0f} ms,"
                      f" max {max(drawn):6.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
