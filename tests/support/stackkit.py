"""The example stack (supervisord + uwsgi + the Flask app of examples/flask-app) on loopback, for tests and bench.

No pytest here, so ``bench/bench_stack.py`` can use it too.  Everything listens
on 127.0.0.1 only; Flask comes from a local wheelhouse, never a package index.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import yaml

REPO = Path(__file__).resolve().parent.parent.parent
EXAMPLE = REPO / "examples" / "flask-app"
EXAMPLE_ROOT = "/var/www/flask-app"  # the project root the example hosts.yml names
EXAMPLE_PORT = "127.0.0.1:8000"
HEALTHY = "    return problems\n"
UNHEALTHY = '    return problems + ["database unreachable"]\n'
# The restarts the stack can be deployed with: the example's own (its hosts.yml: uwsgi's master FIFO, a chain
# reload), supervisorctl's graceful HUP (a Python start per call), and the seed's plain restart (drops requests).
RESTARTS = {
    "fifo": None,  # the example's own: a graceful reload (r) through uwsgi's master FIFO, all workers at once
    "hup": "{ctl}-c {root}/supervisord.conf signal HUP uwsgi || {ctl}-c {root}/supervisord.conf restart uwsgi",
    # A chain reload (c) through the FIFO: workers replaced one at a time, so old and new builds answer side by side
    # until it ends; it waits for every old worker to go (P wakes the master, which moves a chain on once a second;
    # uwsgi ignores c while an earlier chain finishes, so it asks again).
    "chain": """send() {{ printf "$1" | dd of={root}/uwsgi.fifo oflag=nonblock conv=nocreat status=none 2>/dev/null; }}
if test -p {root}/uwsgi.fifo && workers=$(pgrep -P "$(cat {root}/uwsgi.pid 2>/dev/null)" 2>/dev/null) && send c; then
  n=0
  while [ $n -lt 1200 ]; do
    sleep 0.05; n=$((n + 1)); alive=; gone=
    for w in $workers; do if kill -0 $w 2>/dev/null; then alive=1; else gone=1; fi; done
    test -z "$alive" && exit 0
    if [ -z "$gone" ] && [ $((n % 10)) = 0 ]; then send c; else send P; fi
  done; exit 1
fi
{ctl}-c {root}/supervisord.conf start uwsgi""",
    "plain": "{ctl}-c {root}/supervisord.conf restart uwsgi",
}
MAKE_WHEELHOUSE = f"pip wheel -w {REPO}/.wheelhouse -r examples/flask-app/requirements.txt"


def find_wheelhouse() -> Optional[Path]:
    """``$RELEASETUI_WHEELHOUSE`` or ``<repo>/.wheelhouse``, if it holds a Flask wheel."""
    house = Path(os.environ.get("RELEASETUI_WHEELHOUSE") or REPO / ".wheelhouse")
    return house if house.is_dir() and any(house.glob("[Ff]lask-*.whl")) else None


def stack_bin(name: str) -> Path:
    """Where ``uwsgi``/``supervisord``/``supervisorctl`` are: next to the running interpreter (the ``stack`` extra)."""
    return Path(sys.executable).parent / name


def missing_stack_tools() -> list[str]:
    """What the stack needs and is not there (empty when it can run)."""
    missing = [f"{name} (pip install -e '.[stack]')" for name in ("uwsgi", "supervisord", "supervisorctl")
               if not os.access(stack_bin(name), os.X_OK)]
    if find_wheelhouse() is None:
        missing.append(f"a wheelhouse with Flask (make it with: {MAKE_WHEELHOUSE})")
    return missing


def get(url: str, timeout: float = 10.0) -> tuple[int, str]:
    """(status, body) of a GET; status 0 and the error text when no HTTP answer came."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
    except (OSError, urllib.error.URLError) as exc:
        return 0, f"{type(exc).__name__}: {exc}"


def served_build(body: str) -> Optional[str]:
    """The build id in the app's ``build=<id> pid=<pid>`` answer."""
    for word in body.split():
        if word.startswith("build="):
            return word[len("build="):]
    return None


class RequestLoop:
    """GET ``url`` every ``interval`` seconds in a thread; count answers and failures, note which build served.

    A failure is no HTTP answer at all (refused, reset, timeout) or a status
    other than 200.  Bounded: it stops by itself after ``max_seconds``.
    """

    def __init__(self, url: str, interval: float = 0.02, max_seconds: float = 300.0):
        self.url = url
        self.interval = interval
        self.max_seconds = max_seconds
        self.ok = 0
        self.failures: list[tuple[float, str]] = []
        self.builds: list[str] = []  # builds seen, in order, consecutive repeats collapsed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="request-loop", daemon=True)
        self.started = 0.0

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            status, body = get(self.url)
            if status == 200:
                self.ok += 1
                build = served_build(body)
                if build and (not self.builds or self.builds[-1] != build):
                    self.builds.append(build)
            else:
                self.failures.append((time.monotonic() - self.started, f"{status} {body.strip()[:120]}"))
            self._stop.wait(self.interval)

    def start(self) -> "RequestLoop":
        """Start polling."""
        self.started = time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> "RequestLoop":
        """Stop polling and wait for the thread."""
        self._stop.set()
        self._thread.join(timeout=30)
        return self

    @property
    def total(self) -> int:
        """Requests made."""
        return self.ok + len(self.failures)


@dataclass
class Stack:
    """One "host" of the example stack: a project root with supervisord running in it, uwsgi on ``port``.

    Several stacks with the same ``base`` share one source and one hosts.yml (:func:`write_fleet`).
    """

    base: Path
    port: int
    name: str = "web1"
    source: Path = field(init=False)
    root: Path = field(init=False)
    config: Path = field(init=False)
    supervisord: Optional[subprocess.Popen] = None

    def __post_init__(self):
        self.source = self.base / "flask-app"
        self.root = self.base / f"root-{self.name}"
        self.config = self.base / "hosts.yml"

    @property
    def url(self) -> str:
        """The app's address."""
        return f"http://127.0.0.1:{self.port}/"

    @property
    def shared(self) -> Path:
        """The host's shared folder (``.env``, ``instance/``)."""
        return self.root / "shared"

    def ctl(self) -> list[str]:
        """The supervisorctl argv for this stack."""
        return [str(stack_bin("supervisorctl")), "-c", str(self.root / "supervisord.conf")]

    def write(self, host: dict, python: str, wheelhouse: Path, restart: str = "fifo",
              health_timeout: float = 8.0) -> None:
        """This stack alone: see :func:`write_fleet`."""
        write_fleet([self], {self.name: host}, python, wheelhouse, restart, health_timeout)

    def set_healthy(self, healthy: bool) -> None:
        """Make the next build pass or fail its /health (the page / keeps answering either way)."""
        app = self.source / "app.py"
        text = app.read_text()
        app.write_text(text.replace(UNHEALTHY, HEALTHY) if healthy else text.replace(HEALTHY, UNHEALTHY))

    def start(self) -> None:
        """Start supervisord in the project root, as on a server before its first deploy (uwsgi cannot start yet)."""
        env = {**os.environ, "PATH": f"{stack_bin('uwsgi').parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        self.supervisord = subprocess.Popen(
            [str(stack_bin("supervisord")), "-n", "-c", str(self.root / "supervisord.conf")],
            cwd=self.root, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.supervisord.poll() is not None:
                raise RuntimeError(f"supervisord exited: {self.log('supervisord.log')}")
            if subprocess.run(self.ctl() + ["pid"], capture_output=True, text=True).stdout.strip().isdigit():
                return
            time.sleep(0.1)
        raise RuntimeError("supervisord did not answer on its unix socket")

    def shutdown(self) -> None:
        """Stop uwsgi and supervisord; kill the whole process group if they do not go."""
        if self.supervisord is None:
            return
        subprocess.run(self.ctl() + ["shutdown"], capture_output=True, timeout=60)
        try:
            self.supervisord.wait(timeout=40)
        except subprocess.TimeoutExpired:
            pass
        try:  # uwsgi workers share supervisord's session (start_new_session): take them all
            os.killpg(self.supervisord.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.supervisord.poll() is None:
            self.supervisord.wait(timeout=10)
        self.supervisord = None

    def log(self, name: str) -> str:
        """The tail of a log file in the project root (for failure messages)."""
        path = self.root / name
        return path.read_text()[-3000:] if path.exists() else f"(no {name})"

    def wait_for_build(self, build_id: str, timeout: float = 30.0) -> Optional[str]:
        """Poll / until ``build_id`` answers (or ``timeout``); return the build that answered last."""
        deadline = time.monotonic() + timeout
        seen = None
        while time.monotonic() < deadline:
            status, body = get(self.url, timeout=5)
            seen = served_build(body) if status == 200 else None
            if seen == build_id:
                break
            time.sleep(0.05)
        return seen


def write_fleet(stacks: list[Stack], hosts: dict, python: str, wheelhouse: Path, restart: str = "fifo",
                health_timeout: float = 8.0) -> None:
    """Copy the example app (once), set up each stack's project root as on a server, and write ONE hosts.yml.

    Each root gets the example's supervisord.conf (with ``APP_PORT`` set to the stack's port, which the shipped
    uwsgi.ini reads) and a ``shared/.env`` (``GREETING=hello from <name>``) unless one is there.  The restart
    line, health check, shared paths and hooks come from the example's own hosts.yml, with only its paths and
    port replaced per host; ``restart`` names another of :data:`RESTARTS` (``hup``, ``plain``) to use instead.
    """
    first = stacks[0]
    if not first.source.exists():
        shutil.copytree(EXAMPLE, first.source, ignore=shutil.ignore_patterns("hosts.yml", "__pycache__"))
    example = yaml.safe_load((EXAMPLE / "hosts.yml").read_text())
    ctl = f"{stack_bin('supervisorctl')} "
    entries = {}
    for stack in stacks:
        stack.root.mkdir(parents=True, exist_ok=True)
        conf = (EXAMPLE / "supervisord.conf").read_text()
        assert 'environment=APP_ROOT="%(here)s"\n' in conf
        (stack.root / "supervisord.conf").write_text(conf.replace(
            'environment=APP_ROOT="%(here)s"\n', f'environment=APP_ROOT="%(here)s",APP_PORT="{stack.port}"\n'))
        stack.shared.mkdir(exist_ok=True)
        if not (stack.shared / ".env").exists():
            (stack.shared / ".env").write_text(f"GREETING=hello from {stack.name}\n")

        def local(text: str, stack: Stack = stack) -> str:
            return (text.replace(EXAMPLE_ROOT, str(stack.root)).replace("supervisorctl ", ctl)
                    .replace(EXAMPLE_PORT, f"127.0.0.1:{stack.port}"))

        command = (local(example["restart"]) if RESTARTS[restart] is None
                   else RESTARTS[restart].format(ctl=ctl, root=stack.root))
        health = dict(example["healthcheck"], url=local(example["healthcheck"]["url"]), timeout=health_timeout,
                      interval=0.2)
        entries[stack.name] = {**hosts[stack.name], "root": str(stack.root), "restart": command, "healthcheck": health}
    config = {
        "project": example["project"],
        "source": str(first.source),
        "requirements": example["requirements"],
        "excludes_file": str(first.source / example["excludes_file"]),
        "include": example["include"],
        "python": python,
        "pip_args": ["--no-index", "--find-links", str(wheelhouse)],
        "keep_builds": 10,
        "logs": example["logs"],
        "shared": example["shared"],
        "hooks": example["hooks"],
        "hosts": entries,
    }
    first.config.write_text(yaml.safe_dump(config, sort_keys=False))
