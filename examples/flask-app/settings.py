"""Where the example app finds its settings and its database (shared by app.py and migrate.py).

Per-host settings and secrets live in ``.env``, which never ships: releasetui
links ``shared/.env`` into every build (``shared: {files: [.env]}`` in
hosts.yml).  The SQLite database lives in ``instance/``, a shared folder, so it
outlives every build and every rollback.
"""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path
from typing import Optional

# The build directory (resolved: under releasetui, builds/<id>/, whatever `current` points at later).
HERE = Path(__file__).resolve().parent
MIGRATIONS = HERE / "migrations"
_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


def load_env(path: Path = HERE / ".env") -> dict:
    """``KEY=value`` lines of ``.env`` (comments, blank lines and surrounding quotes dropped); {} when absent.

    Real environment variables win over the file, as with python-dotenv.
    """
    values = {}
    try:
        lines = path.read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        match = _LINE.match(line)
        if match and not line.lstrip().startswith("#"):
            value = match.group(2)
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            values[match.group(1)] = value
    return {**values, **{k: v for k, v in os.environ.items() if k in values}}


ENV = load_env()


def database_path() -> Path:
    """``DATABASE`` from .env (relative paths are inside the build, i.e. the shared instance/), else instance/app.db."""
    path = Path(ENV.get("DATABASE") or "instance/app.db")
    return path if path.is_absolute() else HERE / path


def required_schema() -> int:
    """The schema this build's code expects: the number of its newest migration (``migrations/NNN_name.sql``)."""
    numbers = [int(p.name.split("_", 1)[0]) for p in MIGRATIONS.glob("[0-9][0-9][0-9]_*.sql")]
    return max(numbers, default=0)


def connect(create: bool = False) -> sqlite3.Connection:
    """A connection to the database; without ``create`` a missing database is an error, never a new empty file."""
    path = database_path()
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
        return sqlite3.connect(str(path), timeout=30, isolation_level=None)
    return sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=10, isolation_level=None)


def schema_version(conn: sqlite3.Connection) -> Optional[int]:
    """The newest migration applied (None when the database has no migrations table yet)."""
    try:
        return conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0] or 0
    except sqlite3.OperationalError:
        return None
