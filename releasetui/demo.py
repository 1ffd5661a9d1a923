"""``releasetui demo``: a self-contained sandbox to try releasetui on, then the TUI on top of it.

The sandbox holds a small Flask-style WSGI app (it needs no Flask: its
requirements are tiny wheels written here with :mod:`zipfile`), a local
wheelhouse, and a ``hosts.yml`` with two ``local``-transport hosts.  It then
deploys a handful of builds, with a requirements change in the middle so the
hashes differ, exactly as a real deploy would (rsync, venvs, pip with
``--no-index``).  No SSH server and no network are needed.

This module must not import Textual: the TUI is imported only when opened.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import sys
import time
import zipfile
from pathlib import Path
from typing import Callable, TextIO

READY_MARKER = ".releasetui-demo-ready"
DEMO_HOSTS = ("web1", "web2")

# (app version, requirements): the third build bumps a requirement, so its hash differs.
DEMO_BUILDS = [
    ("1.0.0", "greeting==1.0\n"),
    ("1.1.0", "greeting==1.0\n"),
    ("1.2.0", "greeting==2.0\nhttpstatus==1.0\n"),
    ("1.2.1", "greeting==2.0\nhttpstatus==1.0\n"),
    ("1.3.0", "greeting==2.0\nhttpstatus==1.0\n"),
]

APP_TEMPLATE = '''"""A Flask-style demo app: a WSGI callable, so uwsgi could serve it as ``app:application``."""

import greeting

VERSION = {version!r}


def application(environ, start_response):
    """Answer every request with a greeting and the version that is live."""
    body = f"{{greeting.hello()}} from demo {{VERSION}}\\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''


def default_sandbox() -> Path:
    """Where the demo lives unless ``--dir`` says otherwise: ``$XDG_CACHE_HOME/releasetui/demo`` or ``~/.cache/...``."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "releasetui" / "demo"


def host_python() -> str:
    """The interpreter the demo "hosts" make venvs with: the base Python behind this one (not a venv's shim)."""
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


def build_wheel(directory: Path, name: str, version: str, body: str = "") -> Path:
    """Write a minimal pure-Python wheel ``name-version`` into ``directory`` (no build tools, no network)."""
    directory.mkdir(parents=True, exist_ok=True)
    dist = f"{name}-{version}"
    path = directory / f"{dist}-py3-none-any.whl"
    files = {
        f"{name}/__init__.py": f"VERSION = {version!r}\n{body}",
        f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: releasetui-demo\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for file_name, content in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(content.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{file_name},sha256={digest},{len(content.encode())}")
    record.append(f"{dist}.dist-info/RECORD,,")
    files[f"{dist}.dist-info/RECORD"] = "\n".join(record) + "\n"
    with zipfile.ZipFile(path, "w") as archive:
        for file_name, content in files.items():
            archive.writestr(file_name, content)
    return path


def _git(source: Path, *args: str) -> bool:
    """Run git in the demo source; False (and no fuss) when git is missing or fails."""
    if shutil.which("git") is None:
        return False
    env = {**os.environ, "GIT_AUTHOR_NAME": "releasetui demo", "GIT_AUTHOR_EMAIL": "demo@example.invalid",
           "GIT_COMMITTER_NAME": "releasetui demo", "GIT_COMMITTER_EMAIL": "demo@example.invalid"}
    from .gitrepo import run_git

    proc = run_git(source, *args, env=env)
    return proc is not None and proc.returncode == 0


def write_app(source: Path, version: str, requirements: str) -> None:
    """Make the demo source look like release ``version`` (and commit it when git is available)."""
    for name, text in (("app.py", APP_TEMPLATE.format(version=version)), ("requirements.txt", requirements)):
        (source / name).write_text(text)
    if (source / ".git").is_dir():
        _git(source, "add", "-A")
        _git(source, "commit", "-q", "-m", f"demo {version}")


def write_sandbox(base: Path) -> Path:
    """Write the app, the wheelhouse, the log file and ``hosts.yml`` under ``base``; return the config path."""
    base.mkdir(parents=True, exist_ok=True)
    house = base / "wheelhouse"
    build_wheel(house, "greeting", "1.0", "def hello():\n    return 'Hello'\n")
    build_wheel(house, "greeting", "2.0", "def hello():\n    return 'Hello, world'\n")
    build_wheel(house, "httpstatus", "1.0", "OK = 200\n")
    source = base / "app"
    (source / "static").mkdir(parents=True, exist_ok=True)
    (source / "static" / "style.css").write_text("body { font-family: sans-serif; }\n")
    (source / "notes.tmp").write_text("scratch notes: excluded by rsync_excludes\n")
    (base / "rsync_excludes").write_text("*.tmp\n.git/\n__pycache__/\n")
    for name in DEMO_HOSTS:
        # Each "host" has its own log under its root, as a real server would (log paths are relative to root).
        log = base / "hosts" / name / "log" / "app.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        if not log.exists():
            log.write_text("".join(f"demo app on {name}: GET / 200 ({i} ms)\n" for i in range(3, 23)))
    if shutil.which("git") and not (source / ".git").exists():
        _git(source, "init", "-q")
    config = base / "hosts.yml"
    q = json.dumps  # a JSON string is a valid YAML scalar: paths with spaces or colons stay intact
    hosts = "\n".join(f"  {name}: {{transport: local, root: {q(str(base / 'hosts' / name))}}}" for name in DEMO_HOSTS)
    # The restart runs in the host's root: it notes which build is now live in that host's log.
    restart = 'echo "$(date -u +%H:%M:%S) demo app: restarted, serving $(readlink current)" >> log/app.log'
    config.write_text(f"""\
# Made by `releasetui demo`: two "hosts" that are directories on this machine (transport: local).
project: demo
source: app
requirements: requirements.txt
excludes_file: rsync_excludes
python: {q(host_python())}
# The demo's wheels are local files: pip never reaches a package index.
pip_args: [--no-index, --find-links, {q(str(house))}]
keep_builds: 5
# A real stack would run `supervisorctl restart uwsgi`; the demo just notes the restart in its log.
restart: {q(restart)}
logs: [log/app.log]            # relative: under each host's root
hosts:
{hosts}
""")
    return config


def prepare(base: Path, fresh: bool = False, say: Callable[[str], None] = lambda text: None) -> Path:
    """Make (or reuse) the sandbox at ``base`` with its builds deployed; return the config path.

    Raises RuntimeError with one line when a demo deploy fails.
    """
    from .config import load_config
    from .operations import Operations

    config_path = base / "hosts.yml"
    if fresh and base.exists():
        say(f"removing the old sandbox {base}")
        shutil.rmtree(base)
    if (base / READY_MARKER).exists() and config_path.exists():
        say(f"reusing the sandbox {base} (--fresh to start over)")
        return config_path
    config_path = write_sandbox(base)
    config = load_config(config_path)
    source = config.source
    ops_report = lambda event: None  # the demo prints one line per deploy, not every step
    for number, (version, requirements) in enumerate(DEMO_BUILDS, 1):
        write_app(source, version, requirements)
        # Deploys take well under a second here: wait for the next one, so the builds get plain ids (a build
        # id is its start second; a second deploy within it would be "<id>-01").
        time.sleep(1 - (time.time() % 1) + 0.01)
        say(f"deploying demo build {number}/{len(DEMO_BUILDS)} (app {version})")
        ops = Operations(config, report=ops_report)
        try:
            result = ops.deploy(config.hosts)
        finally:
            ops.close()
        if not result.ok:
            problems = "; ".join(f"{o.host}: {o.message}" for o in result.outcomes.values() if o.status != "ok")
            raise RuntimeError(f"demo deploy {number} failed: {problems}")
    (base / READY_MARKER).write_text("ok\n")
    return config_path


def run_demo(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """``releasetui demo``: prepare the sandbox, then open the TUI (or, with ``--headless``, print the config path)."""
    base = Path(args.demo_dir).expanduser().resolve() if getattr(args, "demo_dir", None) else default_sandbox()
    if shutil.which("rsync") is None:
        err.write("releasetui demo: rsync is not installed (Debian: apt-get install rsync)\n")
        return 2

    def say(text: str) -> None:
        err.write(f"releasetui demo: {text}\n")
        err.flush()

    say(f"sandbox: {base}")
    try:
        config_path = prepare(base, fresh=getattr(args, "fresh", False), say=say)
    except RuntimeError as exc:
        say(str(exc))
        return 1
    if getattr(args, "demo_headless", False):
        out.write(f"{config_path}\n")
        out.flush()
        say(f"try: releasetui --config {config_path} --headless builds")
        return 0
    from .tui.app import run_app  # only now: the demo's headless path never loads Textual
    return run_app(argparse.Namespace(config=str(config_path), top_hosts=[]))
