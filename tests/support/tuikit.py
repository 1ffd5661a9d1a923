"""Shared fakes for the TUI's tests: fixed host states and history from a fake core, a fixed clock.

The snapshot, layout, views and dialog tests run the app on these (no disk, no hosts, no sleeps), so what they
check is what the TUI draws; the waits and the helpers of the TUI tests on real hosts (test_tui_keys.py,
test_tui_confirmations.py, test_tui_quit.py) are here too, and bench/tui_dialogs.py uses the fakes.  Never import
one test module from another: what two of them share lives here.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Optional

from releasetui.config import Config, HostConfig
from releasetui.diffing import Commit, DiffReport, DiffSide, build_diff
from releasetui.history import HistoryEntry
from releasetui.models import BuildInfo, HostOutcome, HostState, LockInfo, OperationResult
from releasetui.runner import Interrupts
from releasetui.tui.app import ReleaseApp

from .helpers import plant_lock

NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=timezone.utc)
SHA_A = "8b8e9b800d" + "0" * 54
SHA_B = "7f04e92879" + "1" * 54


def sample_builds(current: str, failed: tuple[str, ...] = (), pinned: tuple[str, ...] = (),
                  incomplete: bool = True) -> list[BuildInfo]:
    """Four complete builds (the third changes the requirements, the fourth a dirty tree), then an incomplete one."""
    rows = [
        ("20261125093000", "2026-11-25T09:30:00Z", SHA_A, "3f2c1ab9e1", False),
        ("20261127160512", "2026-11-27T16:05:12Z", SHA_A, "9d81e0c4aa", False),
        ("20261128081500", "2026-11-28T08:15:00Z", SHA_B, "c0ffee1234", False),
        ("20261128094210", "2026-11-28T09:42:10Z", SHA_B, "c0ffee1234", True),
    ]
    builds = [BuildInfo(id=i, complete=True, created_at=c, requirements_sha256=s, git_commit=g, git_dirty=d,
                        deployed_by="alice@laptop", current=(i == current), failed=i in failed, pinned=i in pinned,
                        git_subject=None)
              for i, c, s, g, d in rows]
    if incomplete:
        builds.append(BuildInfo(id="20261128114001", complete=False, created_at="2026-11-28T11:40:01Z",
                                requirements_sha256=SHA_B, deployed_by="ci (CircleCI build 812)"))
    return builds


# What each sample build holds, for the fake diff: its files (path -> content hash) and requirements; "source" is
# what a deploy would ship now.  The git history below runs oldest first through the builds' commits.
SAMPLE_FILES = {
    "20261125093000": {"app.py": "a1", "templates/index.html": "t1", "requirements.txt": "r1",
                       "static/old-logo.png": "o1"},
    "20261127160512": {"app.py": "a2", "templates/index.html": "t1", "requirements.txt": "r1",
                       "static/site.css": "c1"},
    "20261128081500": {"app.py": "a3", "templates/index.html": "t2", "requirements.txt": "r2",
                       "static/site.css": "c1", "migrations/0002_email.sql": "m1"},
    "20261128094210": {"app.py": "a4", "templates/index.html": "t2", "requirements.txt": "r2",
                       "static/site.css": "c2", "migrations/0002_email.sql": "m1"},
    "source": {"app.py": "a5", "templates/index.html": "t2", "requirements.txt": "r3", "static/site.css": "c2",
               "migrations/0002_email.sql": "m1", "migrations/0003_tags.sql": "m2"},
}
SAMPLE_REQUIREMENTS = {
    "20261125093000": "flask==3.0.0\ngunicorn==21.2.0\n",
    "20261127160512": "flask==3.0.0\ngunicorn==21.2.0\n",
    "20261128081500": "flask==3.0.0\ngunicorn==21.2.0\nredis==5.0.1\n",
    "20261128094210": "flask==3.0.0\ngunicorn==21.2.0\nredis==5.0.1\n",
    "source": "flask==3.0.3\ngunicorn==21.2.0\nredis==5.0.1\n",
}
SAMPLE_HISTORY = [("3f2c1ab9e1", "First notes page"), ("5e6f7a8b9c", "Add the site stylesheet"),
                  ("9d81e0c4aa", "Notes get a created date"), ("1a2b3c4d5e", "Cache the notes list in redis"),
                  ("c0ffee1234", "Email on new notes"), ("f00dfeed77", "Tag notes")]


def sample_side(label: str, state: Optional[HostState] = None) -> DiffSide:
    """One end of the fake diff: a sample build (as on ``state``), or the source."""
    build = state.build(label) if state is not None else None
    files = SAMPLE_FILES.get(label)
    return DiffSide(label, build.id if build else None,
                    None if files is None else {p: ["f", 0o644, sha, 1] for p, sha in files.items()},
                    SAMPLE_REQUIREMENTS.get(label), build.git_commit if build else "f00dfeed77",
                    build.git_subject if build else "Tag notes", build.git_dirty if build else False,
                    current=bool(build and build.current))


def sample_commits(old: Optional[str], new: Optional[str]) -> Optional[list]:
    """The commits between two of SAMPLE_HISTORY's: ``+`` forward, ``-`` undone (newest first, as git log);
    None when one is not in it."""
    ids = [c for c, _ in SAMPLE_HISTORY]
    if old not in ids or new not in ids:
        return None
    a, b = ids.index(old), ids.index(new)
    side, span = ("+", SAMPLE_HISTORY[a + 1:b + 1]) if a <= b else ("-", SAMPLE_HISTORY[b + 1:a + 1])
    return [Commit(c * 4, subject, side) for c, subject in reversed(span)]


CONFIG = Config(
    path=Path("/srv/demo/hosts.yml"), project="demo", source=Path("/srv/demo/app"), requirements="requirements.txt",
    python="python3", keep_builds=5, restart="supervisorctl restart uwsgi", logs=("/var/log/uwsgi/demo.log",),
    hosts=(HostConfig("web1", "/var/www/demo", address="web1.example.com", user="deploy"),
           HostConfig("web2", "/var/www/demo", address="10.0.0.12", user="deploy", port=2222),
           HostConfig("web3", "/var/www/demo", address="web3.example.com", user="deploy")),
)


def sample_history() -> list[HistoryEntry]:
    """A fleet's history, oldest first, as :func:`releasetui.history.merge` returns it."""
    def at(hours: float) -> datetime:
        return NOW - timedelta(hours=hours)

    return [
        HistoryEntry("deploy", at(74.5), "alice@laptop", "laptop", "a1", at(74.52), None, None,
                     {"web1": "ok", "web2": "ok", "web3": "ok"},
                     {h: (None, "20261125093000") for h in ("web1", "web2", "web3")}),
        HistoryEntry("deploy", at(19.9), "ci", "runner-3", "a2", at(19.91),
                     "https://app.circleci.com/pipelines/gh/acme/demo/812/workflows/1/jobs/812", None,
                     {"web1": "ok", "web2": "ok", "web3": "ok"},
                     {h: ("20261125093000", "20261127160512") for h in ("web1", "web2", "web3")}),
        HistoryEntry("pin", at(19.0), "alice@laptop", "laptop", "a3", at(19.0), None, None,
                     {"web1": "ok", "web2": "ok", "web3": "ok"}, {},
                     {h: "20261125093000" for h in ("web1", "web2", "web3")}),
        HistoryEntry("deploy", at(3.75), "alice@laptop", "laptop", "a4", at(3.76), None, "new checkout",
                     {"web1": "ok", "web2": "ok"}, {h: ("20261127160512", "20261128081500") for h in ("web1", "web2")}),
        HistoryEntry("deploy", at(2.3), "alice@laptop", "laptop", "a5", at(2.31), None, None,
                     {"web1": "failed", "web2": "switched-back"},
                     {h: ("20261128081500", "20261128094210") for h in ("web1", "web2")}),
        HistoryEntry("deploy", at(2.25), "alice@laptop", "laptop", "a6", at(2.26), None, "hotfix",
                     {"web1": "ok"}, {"web1": ("20261128081500", "20261128094210")}),
        HistoryEntry("unlock", at(0.05), "bob@desk", "desk", "a7", at(0.05), None, None, {"web2": "ok"}, {},
                     {"web2": "removed the lock of deploy by bob@ci since 2026-11-28T11:58:00Z"}),
        HistoryEntry("prune", at(0.02), "bob@desk", "desk", "a8", at(0.021), None, None,
                     {"web1": "ok", "web2": "ok"}, {},
                     {"web1": "removed 20261120000000", "web2": "removed 20261120000000"}),
    ]


class FakeCore:
    """What every fake core shares: the operations record their calls in ``calls`` and succeed at once."""

    def __init__(self, config, report, pool, calls: Optional[list] = None):
        self.config = config
        self.report = report
        self.calls = calls if calls is not None else []

    def interrupt(self, by: str = "Ctrl-C") -> int:
        return 1

    def _done(self, name: str, hosts, current: Optional[str] = None, build_id: Optional[str] = None):
        hosts = list(hosts)
        return OperationResult(name, {h.name: HostOutcome(h.name, "ok", "", current=current) for h in hosts},
                               build_id=build_id, duration=0.4)

    def rollback(self, hosts, build_id=None, **kwargs):
        self.calls.append(("rollback", [h.name for h in hosts], build_id))
        return self._done("rollback", hosts, build_id, build_id)

    def pin(self, hosts, build_id, pinned=True):
        self.calls.append(("pin" if pinned else "unpin", [h.name for h in hosts], build_id))
        return self._done("pin" if pinned else "unpin", hosts, build_id=build_id)

    def deploy(self, hosts, *args, **kwargs):
        self.calls.append(("deploy", [h.name for h in hosts], None))
        return self._done("deploy", hosts, "20261128120000", "20261128120000")

    def history(self, hosts):
        return sample_history(), {}

    def diff(self, hosts, from_id=None, to_id=None, source=None, ref=None) -> DiffReport:
        """The core's diff over the sample builds: each host's current (or ``from_id``) → ``to_id`` (or the
        source); an unreachable host and a build missing on a host are errors, as the core says them."""
        diffs, errors, unreachable = {}, {}, []
        states = self.states(hosts)
        for name in (h.name for h in hosts):
            state = states.get(name)
            if not isinstance(state, HostState):
                errors[name], unreachable = f"unreachable: {state}", unreachable + [name]
                continue
            ends = [from_id or state.current, to_id or "source"]
            missing = [e for e in ends if e != "source" and state.build(e) is None]
            if missing:
                errors[name] = f"build {missing[0]} does not exist there"
                continue
            old, new = (sample_side(e, state) for e in ends)
            commits = sample_commits(old.commit, new.commit)
            diffs[name] = build_diff(old, new, commits, None if commits is not None else "unknown: not in git")
        return DiffReport.grouped(from_id or "current", to_id or "source", diffs, errors, unreachable)


def recording(core: type, calls: list) -> Callable:
    """An operations factory for ReleaseApp whose fakes append every operation they are asked for to ``calls``."""
    return lambda config, report, pool: core(config, report, pool, calls)


class FakeOperations(FakeCore):
    """Three hosts: web1 and web2 disagree, web2 is locked, web3 is unreachable.

    web1 serves a build that failed its health check (``current, failed``); the oldest build is pinned.
    """

    def states(self, hosts):
        web2 = HostState("web2", current="20261128081500",
                         builds=sample_builds("20261128081500", pinned=("20261125093000",)),
                         lock=LockInfo(who="bob@ci", where="runner-3", since="2026-11-28T11:58:00Z",
                                       operation="deploy", build_id="20261128115800"))
        return {
            "web1": HostState("web1", current="20261128094210",
                              builds=sample_builds("20261128094210", failed=("20261128094210",),
                                                   pinned=("20261125093000",))),
            "web2": web2,
            "web3": OSError("connection refused (web3.example.com:22)"),
        }

    def history(self, hosts):
        return sample_history(), {"web3": "unreachable: connection refused (web3.example.com:22)"}


def visible_footer_keys(screen) -> dict:
    """The footer's keys by action, as laid out (a key pushed out of the footer is left out)."""
    footer = screen.query_one("Footer")
    keys = {}
    for key in footer.query("FooterKey"):
        region = key.region
        if region.width and footer.region.contains_region(region):
            keys[key.action] = key
    return keys


async def until(pilot, condition, timeout: float = 60, what: str = "condition") -> None:
    """Let the app run until ``condition()`` holds (AssertionError naming ``what`` after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


async def loaded(pilot):
    """The fake core's states are shown (every worker has finished); the main screen."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    return pilot.app.main


async def confirmation(pilot, timeout: float = 60, what: str = "the confirmation"):
    """Wait for a confirmation as read from the hosts (d and r open theirs from the screen at once, then redraw it
    when the fresh read and the diff beside it land); the dialog."""
    from releasetui.tui.actions import DIFF_PENDING
    from releasetui.tui.dialogs import ConfirmScreen
    await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen)
                and DIFF_PENDING not in str(pilot.app.screen.body), timeout, what)
    return pilot.app.screen


def make_app(config: Config = CONFIG, operations: Callable = FakeOperations) -> ReleaseApp:
    """The app on a fake core, with the fixed clock and UTC."""
    return ReleaseApp(config, operations_factory=operations, now=lambda: NOW, tz=timezone.utc, refresh_interval=None)


# --- fleets ---------------------------------------------------------------------------------------

def fleet_config(count: int) -> Config:
    """``count`` hosts web01.., in two roles: the last four are workers."""
    hosts = tuple(HostConfig(f"web{i:02d}", "/var/www/demo", address=f"10.0.1.{i}", user="deploy",
                             roles=("web",) if i <= count - 4 else ("worker",)) for i in range(1, count + 1))
    return Config(path=Path("/srv/demo/hosts.yml"), project="demo", source=Path("/srv/demo/app"),
                  requirements="requirements.txt", python="python3", keep_builds=5,
                  restart="supervisorctl restart uwsgi", hosts=hosts, roles=("web", "worker"))


FLEET6 = fleet_config(6)
FLEET50 = fleet_config(50)
# Off the majority (20261128094210): web04 everywhere, and at fifty hosts web07 and web33 as well.
DRIFTED = {"web04": "20261128081500", "web07": "20261128081500", "web33": "20261127160512"}
FAILED_BUILD = "20261128110000"  # deployed to web02 (and web12) only, and failed its health check there


class FleetOperations(FakeCore):
    """A fleet on the newest build but for the DRIFTED hosts; its last host unreachable; the oldest build pinned
    everywhere; a failed build on web02 and web12; an incomplete one on web05; web03 pruned 20261127160512."""

    def states(self, hosts):
        hosts = list(hosts)
        states: dict[str, object] = {}
        for host in hosts:
            if host is hosts[-1] and len(hosts) > 1:
                states[host.name] = OSError(f"timed out ({host.address}:22)")
                continue
            current = DRIFTED.get(host.name, "20261128094210")
            builds = sample_builds(current, pinned=("20261125093000",), incomplete=host.name == "web05")
            if host.name in ("web02", "web12"):
                builds.append(BuildInfo(id=FAILED_BUILD, complete=True, failed=True,
                                        created_at="2026-11-28T11:00:00Z", requirements_sha256=SHA_B,
                                        deployed_by="alice@laptop", git_commit="deadbeef00"))
            if host.name == "web03":
                builds = [b for b in builds if b.id != "20261127160512"]
            states[host.name] = HostState(host.name, current=current, builds=builds)
        return states


class Gates:
    """What a gated fake deploy waits for (the test opens them), and the Interrupts it ran under."""

    def __init__(self):
        self.switch = threading.Event()  # opened: the deploy goes from preparing into its switch (one wave)
        self.finish = threading.Event()  # opened: the switch ends (ok) and the deploy returns
        self.interrupts: Optional[Interrupts] = None


def gated(gates: Gates) -> Callable:
    """An operations factory whose deploy waits at the gates, with the core's own Interrupts: a stop before the
    switch aborts it (as the core does), one during the switch lets it finish."""

    class Gated(FakeCore):
        def __init__(self, config, report, pool, calls=None):
            super().__init__(config, report, pool, calls)
            self.interrupts = Interrupts()

        def states(self, hosts):
            """Every host reachable, unlocked, on the same build: nothing refuses a deploy."""
            return {h.name: HostState(h.name, current="20261128094210", builds=sample_builds("20261128094210"),
                                      python_version="3.11")
                    for h in hosts}

        def interrupt(self, by: str = "Ctrl-C") -> int:
            return self.interrupts.press(by)

        def deploy(self, hosts, *args, **kwargs):
            gates.interrupts = self.interrupts
            hosts = list(hosts)
            while not gates.switch.wait(0.02):
                if self.interrupts.pressed:
                    break
            if not self.interrupts.enter_activation():
                return OperationResult("deploy", {h.name: HostOutcome(h.name, "interrupted", "nothing switched",
                                                                      current="20261128094210") for h in hosts},
                                       duration=0.2)
            self.interrupts.begin_wave(1, 1)
            gates.finish.wait(30)
            return self._done("deploy", hosts, "20261128120000", "20261128120000")

    return Gated


class Reads:
    """The remote reads of a :func:`steady_fleet` core: counted, and held at ``gate`` while it is closed (a read that
    has started but not returned is what a dialog must not wait for); ``delay`` seconds each (bench/)."""

    def __init__(self, delay: float = 0.0):
        self.gate = threading.Event()
        self.gate.set()
        self.delay = delay
        self.started = 0
        self.done = 0
        self.lock = threading.Lock()

    def read(self, answer: Callable):
        """Count one read, wait at the gate (and ``delay``), then return ``answer()``."""
        with self.lock:
            self.started += 1
        self.gate.wait(60)
        if self.delay:
            time.sleep(self.delay)  # what a read of the hosts costs over the network (bench/ sets it)
        try:
            return answer()
        finally:
            with self.lock:
                self.done += 1


def steady_fleet(reads: Reads) -> Callable:
    """An operations factory over hosts that are all reachable, unlocked and on the same build (nothing refuses a
    deploy or a rollback), whose ``states`` and ``diff`` go through ``reads``."""

    class Steady(FakeCore):
        def states(self, hosts):
            return reads.read(lambda: self.steady(hosts))

        @staticmethod
        def steady(hosts):
            return {h.name: HostState(h.name, current="20261128094210", builds=sample_builds("20261128094210"),
                                      python_version="3.11") for h in hosts}

        def diff(self, hosts, from_id=None, to_id=None, source=None, ref=None) -> DiffReport:
            self.states = lambda hosts: self.steady(hosts)  # the diff's own read is this one
            return reads.read(lambda: FakeCore.diff(self, hosts, from_id, to_id, source, ref))

    return Steady


# --- the app on real hosts ------------------------------------------------------------------------

def app_for(project, **kwargs) -> ReleaseApp:
    """The app on a test project's config; no periodic re-read unless a test asks for one (it would race the
    assertions)."""
    from releasetui.config import load_config
    kwargs.setdefault("refresh_interval", None)
    return ReleaseApp(load_config(project.config), **kwargs)


async def idle(pilot, timeout: float = 120):
    """Wait until no operation runs and the hosts have been (re)read; the main screen."""
    main = pilot.app.main
    await until(pilot, lambda: main.busy is None and not any(
        w.is_running for w in pilot.app.workers if w.group in ("operation", "refresh")) and pilot.app.states,
        timeout, "the app to be idle")
    await pilot.pause()
    return main


def builds_table(app):
    """The main screen's builds table."""
    return app.main.builds_table()


async def cursor_to(pilot, build_id: str) -> None:
    """Move the builds cursor onto ``build_id`` with the arrow keys, as a user would."""
    table = builds_table(pilot.app)
    table.focus()
    await pilot.press("home")
    target = table.get_row_index(build_id)
    for _ in range(target):
        await pilot.press("down")
    assert pilot.app.main.selected_build() == build_id


def make_incomplete(root: Path, build_id: str) -> None:
    """A build directory a killed deploy left behind (metadata says incomplete)."""
    build = root / "builds" / build_id
    build.mkdir(parents=True)
    (build / ".releasetui-build.json").write_text(json.dumps({"id": build_id, "complete": False}))


def hold_lock(root: Path, **info) -> None:
    """A deploy lock as another operation (carol@ci on runner-9) leaves it in the host's root."""
    plant_lock(root, **{"who": "carol@ci", "where": "runner-9", "since": "2026-01-01T00:00:00Z",
                        "operation": "deploy", **info})
