"""The seed's real stack end to end, on TWO hosts: a real supervisord running a real uwsgi serving examples/flask-app
on each of two loopback sshd "hosts", deployed with the example's own hosts.yml: its restart (a graceful reload
through uwsgi's master FIFO), health check, shared .env and instance/, and the schema migration run by a
before_activate hook with ``once: true``.

While deploys (one with a schema change, one failing its health check, one failing its migration) and rollbacks
run, a request loop hits each host every 20 ms; with that restart not one request may fail.  The two
hosts share one SQLite database (web2's .env points at web1's instance/app.db, as a real fleet's .env points at
its database server), so the migration must run exactly once per deploy.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time

import pytest

from .support.helpers import HOST_PYTHON, ON_CI
from .support.sshd import free_port
from .support.stackkit import RequestLoop, Stack, find_wheelhouse, get, missing_stack_tools, write_fleet

pytestmark = [pytest.mark.ssh, pytest.mark.stack]


@pytest.fixture
def fleet(tmp_path, ssh_env):
    """The example stack on both loopback sshd "hosts"; supervisord started like on a server, shut down after."""
    missing = missing_stack_tools()
    if missing:
        message = "the example stack needs " + "; ".join(missing)
        if ON_CI:
            pytest.fail(message + " (under CI=true this is an error, not a skip)")
        pytest.skip(message)
    stacks = [Stack(tmp_path, free_port(), name) for name in ("web1", "web2")]
    hosts = {stack.name: {"address": "127.0.0.1", "port": server.port, "user": ssh_env.user,
                          "key_file": str(ssh_env.client_key), "known_hosts": str(ssh_env.known_hosts)}
             for stack, server in zip(stacks, ssh_env.servers)}
    # 10 s: a slow CI machine's reload still passes; the failed-health deploy waits all of it.
    write_fleet(stacks, hosts, python=HOST_PYTHON, wheelhouse=find_wheelhouse(), health_timeout=10)
    web1, web2 = stacks
    # Each host's own settings; web2 uses web1's database (its "database server").
    (web1.shared / ".env").write_text("GREETING=hello from web1\nSECRET_KEY=one\n")
    (web2.shared / ".env").write_text(f"GREETING=hello from web2\nSECRET_KEY=two\n"
                                      f"DATABASE={web1.shared}/instance/app.db\n")
    # What a developer has locally: it must never reach a host.
    (web1.source / ".env").write_text("GREETING=from the laptop\nDATABASE=/dev/null\n")
    (web1.source / "instance").mkdir()
    (web1.source / "instance" / "app.db").write_text("the laptop's database\n")
    started = []
    try:
        for stack in stacks:
            stack.start()
            started.append(stack)
        yield stacks
    finally:
        for stack in started:
            stack.shutdown()


def cli(stack: Stack, *args: str) -> subprocess.CompletedProcess:
    """``releasetui --config hosts.yml --headless ARGS`` in a subprocess, as CircleCI runs it."""
    return subprocess.run([sys.executable, "-m", "releasetui", "--config", str(stack.config), "--headless", *args],
                          capture_output=True, text=True, timeout=180)


def deploy(stack: Stack) -> tuple[subprocess.CompletedProcess, dict, list]:
    """Deploy the fleet's source; returns the process, the summary and the step events."""
    proc = cli(stack, "deploy", "--json")
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines and lines[-1]["event"] == "summary", proc.stdout + proc.stderr + stack.log("uwsgi.log")
    return proc, lines[-1], lines[:-1]


def migration_hosts(steps: list) -> list:
    """The hosts whose migration hook finished (ok or failed) in a deploy's events."""
    return [e["host"] for e in steps if e.get("step") == "before_activate" and e["status"] in ("ok", "failed")]


def page(stack: Stack) -> dict:
    """The app's / answer as a dict: build, pid, schema, notes, greeting."""
    status, body = get(stack.url)
    assert status == 200, body
    head, _, greeting = body.strip().partition(" greeting=")
    return {**dict(word.split("=", 1) for word in head.split()), "greeting": greeting}


def test_two_hosts_migrate_once_keep_shared_files_and_drop_no_request(fleet):
    web1, web2 = fleet
    second_migration = web1.source / "migrations" / "002_notes_author.sql"
    held_back = second_migration.read_text()
    second_migration.unlink()  # the first release knows only 001
    for stack in fleet:  # before the first deploy there is nothing to serve: uwsgi cannot start under supervisord
        assert get(stack.url, timeout=2)[0] == 0

    first, result, steps = deploy(web1)
    assert first.returncode == 0, first.stdout + first.stderr + web1.log("uwsgi.log")
    v1 = result["build_id"]
    assert migration_hosts(steps) == ["web1"]
    for stack in fleet:
        assert stack.wait_for_build(v1) == v1, stack.log("uwsgi.log")
        shown = page(stack)
        assert (shown["schema"], shown["notes"], shown["greeting"]) == ("1", "0", f"hello from {stack.name}")
    # The app's data lives in the shared instance/ (through web1's link), written while v1 serves.
    db = web1.shared / "instance" / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO notes (body) VALUES ('written under v1')")
    (web2.shared / "instance" / "uploaded.txt").write_text("a file web2's users uploaded\n")
    envs = {stack.name: (stack.shared / ".env").read_text() for stack in fleet}

    loops = [RequestLoop(stack.url, interval=0.02).start() for stack in fleet]
    deploys = {}
    try:
        # A real schema change, applied once, before any host serves the code that needs it.
        second_migration.write_text(held_back)
        second, result, steps = deploy(web1)
        assert second.returncode == 0, second.stdout + second.stderr
        v2 = result["build_id"]
        deploys["v2"] = migration_hosts(steps)
        assert ("web1", "applying 002_notes_author.sql") in [(e["host"], e["message"]) for e in steps
                                                             if e["status"] == "output"]
        for stack in fleet:  # the health check passed only once v2 itself answered: v2 serves now
            assert page(stack)["build"] == v2 and page(stack)["schema"] == "2"

        back = cli(web1, "rollback", v1)
        assert back.returncode == 0, back.stdout + back.stderr
        assert back.stdout.splitlines()[-1] == f"live now: {v1} on web1, web2"
        for stack in fleet:  # the old code runs on the new schema: the migration kept it working
            assert page(stack)["build"] == v1 and page(stack)["schema"] == "2" and page(stack)["notes"] == "1"

        web1.set_healthy(False)
        bad, result, steps = deploy(web1)
        assert bad.returncode == 1, bad.stdout + bad.stderr
        v3 = result["build_id"]
        deploys["v3"] = migration_hosts(steps)
        assert f"build {v3}: unhealthy after" in {h["host"]: h for h in result["hosts"]}["web1"]["message"]
        for stack in fleet:
            assert page(stack)["build"] == v1
        web1.set_healthy(True)

        # A migration that fails: rolled back in the database, and nothing switches anywhere.
        broken = web1.source / "migrations" / "003_broken.sql"
        broken.write_text("ALTER TABLE notes ADD COLUMN;\n")
        failed, result, steps = deploy(web1)
        assert failed.returncode == 1, failed.stdout + failed.stderr
        deploys["broken"] = migration_hosts(steps)
        messages = {h["host"]: h for h in result["hosts"]}
        assert messages["web1"]["status"] == "failed" and messages["web2"]["status"] == "aborted"
        assert "before_activate 'python migrate.py' failed: exit 1: 003_broken.sql failed: near \";\": syntax " \
               "error; rolled back, the schema is still 2" in messages["web1"]["message"]
        assert not any(e["step"] == "switch" for e in steps), "nothing switched"
        for stack in fleet:
            assert sorted(os.listdir(stack.root / "builds")) == sorted([v1, v2, v3]), "its partial build is gone"
            assert page(stack)["build"] == v1 and page(stack)["schema"] == "2"
        broken.unlink()

        # The default rollback target is the build live before the current one: from v4 it goes back to v1,
        # never to v3 (failed) nor to v2 (the fleet was rolled back away from it).
        fourth, result, steps = deploy(web1)
        assert fourth.returncode == 0, fourth.stdout + fourth.stderr
        v4 = result["build_id"]
        deploys["v4"] = migration_hosts(steps)
        default = cli(web1, "rollback")
        assert default.returncode == 0, default.stdout + default.stderr
        for stack in fleet:
            assert stack.wait_for_build(v1) == v1
        time.sleep(0.3)  # a few more loop requests after the last reload
    finally:
        for loop in loops:
            loop.stop()

    for stack, loop in zip(fleet, loops):
        assert loop.failures == [], f"{stack.name}: {len(loop.failures)} of {loop.total} failed: {loop.failures[:5]}"
        assert loop.total > 100
        # Every build that went live was served to the loop, in order; v3 served / while it was checked.
        live = [b for b in loop.builds if b != v3]
        assert [b for i, b in enumerate(live) if i == 0 or live[i - 1] != b] == [v1, v2, v1, v4, v1], loop.builds
        print(f"\n{stack.name}: {loop.total} requests, {len(loop.failures)} failed; served in order: {loop.builds}")
        # Every switch (v2, back to v1, v3 and back, v4, back to v1) restarted with the example's restart: a graceful
        # reload through uwsgi's master FIFO (the master re-executes itself), no supervisorctl started.
        log = (stack.root / "uwsgi.log").read_text()
        assert log.count("binary reloading uWSGI") >= 6, stack.log("uwsgi.log")
        history = [(r["event"], r["outcome"]) for r in map(json.loads, (stack.root / "history.jsonl").read_text()
                                                                       .splitlines())]
        # The broken migration failed on web1 (its own words are in its record); web2 was aborted because of it.
        broken_outcome = "failed" if stack.name == "web1" else "aborted"
        assert history == [("deploy", "ok"), ("deploy", "ok"), ("rollback", "ok"), ("deploy", "failed"),
                           ("deploy", broken_outcome), ("deploy", "ok"), ("rollback", "ok")], history

    # The migration ran once per deploy, always on web1; each schema change was applied exactly once.
    assert deploys == {"v2": ["web1"], "v3": ["web1"], "broken": ["web1"], "v4": ["web1"]}
    with sqlite3.connect(db) as conn:
        applied = conn.execute("SELECT version, name, applied_by FROM schema_migrations ORDER BY version").fetchall()
        assert applied == [(1, "001_notes.sql", "web1"), (2, "002_notes_author.sql", "web1")]
        assert conn.execute("SELECT body, author FROM notes").fetchall() == [("written under v1", "unknown")]
    # .env and instance/ survived every deploy and rollback, and the laptop's never shipped.
    for stack in fleet:
        assert (stack.shared / ".env").read_text() == envs[stack.name]
        assert os.readlink(stack.root / "current" / ".env") == "../../shared/.env"
        assert os.readlink(stack.root / "current" / "instance") == "../../shared/instance"
        assert page(stack)["greeting"] == f"hello from {stack.name}" and page(stack)["notes"] == "1"
    assert (web2.root / "current" / "instance" / "uploaded.txt").read_text() == "a file web2's users uploaded\n"
    assert not (web1.shared / "instance" / "app.db").read_bytes().startswith(b"the laptop")


def test_the_example_restart_never_creates_the_fifo_it_writes_to(tmp_path):
    # uwsgi removes its master FIFO while a reload re-executes the master; a `dd of=` that created a plain file in
    # its place made the new master's mkfifo fail ("File exists"): uwsgi exited and the host refused requests for
    # a second while supervisord started it again.
    import yaml
    from .support.stackkit import EXAMPLE, EXAMPLE_ROOT
    restart = yaml.safe_load((EXAMPLE / "hosts.yml").read_text())["restart"]
    send = next(line for line in restart.splitlines() if line.lstrip().startswith("send()"))
    script = f"root={tmp_path}\n{send}\nsend P; send r; echo sent\n".replace(EXAMPLE_ROOT, str(tmp_path))
    proc = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30)
    assert proc.stdout == "sent\n" and not (tmp_path / "uwsgi.fifo").exists(), proc.stderr
