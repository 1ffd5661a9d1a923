"""Apply the migrations in migrations/ that the database has not had yet, each in its own transaction.

releasetui runs this as a ``before_activate`` hook with ``once: true`` (see
hosts.yml): inside the NEW build, with its venv first on PATH, on one host
only, after every host has the build and before any host switches to it.
The OLD code keeps serving meanwhile, so a migration must keep the old code
working (add a column or a table; drop things a release later).  A failing
migration is rolled back (SQLite's DDL is transactional) and exits 1: the
deploy stops everywhere and nothing switches.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import sys
from datetime import datetime, timezone

from settings import MIGRATIONS, connect, database_path, schema_version


def statements(sql: str) -> list[str]:
    """The SQL statements of a migration file, one by one (``executescript`` would commit half a migration)."""
    found, buffer = [], ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            found.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        found.append(buffer.strip())  # an unterminated last statement: let SQLite say what is wrong with it
    return found


def main() -> int:
    conn = connect(create=True)
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                 "applied_at TEXT NOT NULL, applied_by TEXT, build TEXT)")
    done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    pending = sorted((int(p.name.split("_", 1)[0]), p) for p in MIGRATIONS.glob("[0-9][0-9][0-9]_*.sql"))
    pending = [(version, path) for version, path in pending if version not in done]
    if not pending:
        print(f"{database_path().resolve()}: schema {schema_version(conn)}, nothing to migrate")
        return 0
    host = os.environ.get("RELEASETUI_HOST") or socket.gethostname()
    for version, path in pending:
        print(f"applying {path.name}")
        try:
            conn.execute("BEGIN IMMEDIATE")
            for statement in statements(path.read_text()):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?, ?, ?, ?)",
                         (version, path.name, datetime.now(timezone.utc).isoformat(timespec="seconds"), host,
                          os.environ.get("RELEASETUI_BUILD_ID")))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            print(f"{path.name} failed: {exc}; rolled back, the schema is still {schema_version(conn)}",
                  file=sys.stderr)
            return 1
    print(f"{database_path().resolve()}: schema {schema_version(conn)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
