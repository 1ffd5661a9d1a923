"""A small Flask app that says which build it is serving (the releasetui example stack).

It finds its build from where it runs: under releasetui every build lives in
``builds/<id>/`` and carries ``.releasetui-build.json``; uwsgi runs it from
``current``, so the resolved directory of this file is the live build.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from flask import Flask

HERE = Path(__file__).resolve().parent


def load_build() -> dict:
    """This build's releasetui metadata (id, git commit, who deployed it), or a stub outside releasetui."""
    try:
        meta = json.loads((HERE / ".releasetui-build.json").read_text())
    except (OSError, ValueError):
        meta = {}
    meta.setdefault("id", HERE.name)
    return meta


BUILD = load_build()
app = Flask(__name__)


def health_problems() -> list[str]:
    """What keeps this build from serving properly (empty when healthy).

    A real app checks its database, its settings, its queues here.
    """
    return []


@app.route("/")
def index():
    """The page the request loop polls: which build answered, from which process."""
    return f"build={BUILD['id']} pid={os.getpid()}\n"


@app.route("/health")
def health():
    """The health check releasetui polls after a switch: ``ok build=<id>`` (200), or 503 and the problems.

    hosts.yml expects ``ok build={build_id}``, so only the NEW build passes.
    """
    problems = health_problems()
    if problems:
        return f"unhealthy build={BUILD['id']}: {'; '.join(problems)}\n", 503
    return f"ok build={BUILD['id']} git={BUILD.get('git_commit') or '-'}\n"
