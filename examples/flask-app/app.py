"""A small Flask app that says which build is serving it (the releasetui example stack).

It finds its build from where it runs: under releasetui every build lives in
``builds/<id>/`` and carries ``.releasetui-build.json``; uwsgi runs it from
``current``, so the resolved directory of this file is the live build.  Its
settings come from the shared ``.env`` and its data from the SQLite database
in the shared ``instance/`` folder (see settings.py); ``migrate.py`` changes
the schema before a new build serves.
"""

from __future__ import annotations

import json
import os
import sqlite3

from flask import Flask

from settings import ENV, HERE, connect, required_schema, schema_version


def load_build() -> dict:
    """This build's releasetui metadata (id, git commit, who deployed it), or a stub outside releasetui."""
    try:
        meta = json.loads((HERE / ".releasetui-build.json").read_text())
    except (OSError, ValueError):
        meta = {}
    meta.setdefault("id", HERE.name)
    return meta


BUILD = load_build()
app = Flask(__name__, instance_path=str(HERE / "instance"))
app.config["SECRET_KEY"] = ENV.get("SECRET_KEY") or os.urandom(16).hex()


def database() -> tuple[object, object]:
    """(schema version, number of notes), or ("none", "none") while there is no database yet."""
    try:
        conn = connect()
        try:
            return schema_version(conn), conn.execute("SELECT count(*) FROM notes").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return "none", "none"


def health_problems() -> list[str]:
    """What keeps this build from serving properly (empty when healthy).

    A real app checks its database, its settings, its queues here.  This one
    checks that the schema is at least what its code needs: a build whose
    migration did not run never passes its health check.
    """
    problems = []
    schema, _ = database()
    if not isinstance(schema, int) or schema < required_schema():
        problems.append(f"database schema {schema}, this build needs {required_schema()}")
    return problems


@app.route("/")
def index():
    """The page the request loop polls: which build answered, from which process, with which data."""
    schema, notes = database()
    return (f"build={BUILD['id']} pid={os.getpid()} schema={schema} notes={notes} "
            f"greeting={ENV.get('GREETING', 'hello')}\n")


@app.route("/health")
def health():
    """The health check releasetui polls after a switch: ``ok build=<id>`` (200), or 503 and the problems.

    hosts.yml expects ``ok build={build_id}``, so only the NEW build passes.
    """
    problems = health_problems()
    if problems:
        return f"unhealthy build={BUILD['id']}: {'; '.join(problems)}\n", 503
    return f"ok build={BUILD['id']} git={BUILD.get('git_commit') or '-'}\n"
