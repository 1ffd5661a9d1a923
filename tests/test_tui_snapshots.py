"""SVG snapshots of the main screen, the rollback confirmation and the help screen.

Deterministic by construction: fixed host states from a fake core (no disk,
no hosts), a fixed clock and time zone (so "3h ago" never drifts), a fixed
terminal size.  Update with ``pytest tests/test_tui_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from releasetui.config import Config, HostConfig
from releasetui.models import BuildInfo, HostState, LockInfo
from releasetui.tui.app import ReleaseApp

SIZE = (120, 36)
NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=timezone.utc)
SHA_A = "8b8e9b800d" + "0" * 54
SHA_B = "7f04e92879" + "1" * 54


def _builds(current: str) -> list[BuildInfo]:
    rows = [
        ("20261125093000", "2026-11-25T09:30:00Z", SHA_A, "3f2c1ab9e1", False),
        ("20261127160512", "2026-11-27T16:05:12Z", SHA_A, "9d81e0c4aa", False),
        ("20261128081500", "2026-11-28T08:15:00Z", SHA_B, "c0ffee1234", False),
        ("20261128094210", "2026-11-28T09:42:10Z", SHA_B, "c0ffee1234", True),
    ]
    builds = [BuildInfo(id=i, complete=True, created_at=c, requirements_sha256=s, git_commit=g, git_dirty=d,
                        deployed_by="alice@laptop", current=(i == current)) for i, c, s, g, d in rows]
    builds.append(BuildInfo(id="20261128114001", complete=False, created_at="2026-11-28T11:40:01Z",
                            requirements_sha256=SHA_B, deployed_by="ci (CircleCI build 812)"))
    return builds


CONFIG = Config(
    path=Path("/srv/demo/hosts.yml"), project="demo", source=Path("/srv/demo/app"), requirements="requirements.txt",
    python="python3", keep_builds=5, restart="supervisorctl restart uwsgi", logs=("/var/log/uwsgi/demo.log",),
    hosts=(HostConfig("web1", "/var/www/demo", address="web1.example.com", user="deploy"),
           HostConfig("web2", "/var/www/demo", address="10.0.0.12", user="deploy", port=2222),
           HostConfig("web3", "/var/www/demo", address="web3.example.com", user="deploy")),
)


class FakeOperations:
    """The core's read side with fixed answers: two hosts that disagree, one unreachable."""

    def __init__(self, config, report, pool):
        self.config = config

    def states(self, hosts):
        web2 = HostState("web2", current="20261128081500", builds=_builds("20261128081500"),
                         lock=LockInfo(who="bob@ci", where="runner-3", since="2026-11-28T11:58:00Z",
                                       operation="deploy", build_id="20261128115800"))
        return {
            "web1": HostState("web1", current="20261128094210", builds=_builds("20261128094210")),
            "web2": web2,
            "web3": OSError("connection refused (web3.example.com:22)"),
        }


def make_app() -> ReleaseApp:
    return ReleaseApp(CONFIG, operations_factory=FakeOperations, now=lambda: NOW, tz=timezone.utc, refresh_interval=None)


async def _loaded(pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def test_main_screen(snap_compare):
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=_loaded)


def test_rollback_confirmation(snap_compare):
    async def open_rollback(pilot):
        await _loaded(pilot)
        # web1 is the only target; its cursor starts on current: two rows down is an older build.
        await pilot.press("down", "down", "r")
        await _loaded(pilot)  # r re-reads the hosts before it builds the confirmation

    app = make_app()
    app_main_targets = {"web1"}

    async def run_before(pilot):
        pilot.app.main.marked.update(app_main_targets)
        await open_rollback(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_main_screen_80x24(snap_compare):
    """The smallest common terminal: smaller hosts and output panes, shorter build cells, Status still shown."""
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=_loaded)


def test_help_screen(snap_compare):
    async def open_help(pilot):
        await _loaded(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=open_help)
