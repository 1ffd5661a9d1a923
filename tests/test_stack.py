"""The seed's real stack end to end: a real supervisord running a real uwsgi serving examples/flask-app,
deployed through the loopback sshd, with the example's own graceful restart and health check.

While deploys and rollbacks run, a request loop hits the app every 20 ms; with
the graceful restart not one request may fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from .helpers import HOST_PYTHON, ON_CI
from .sshd import free_port
from .stackkit import RequestLoop, Stack, find_wheelhouse, get, missing_stack_tools, served_build

pytestmark = [pytest.mark.ssh, pytest.mark.stack]


@pytest.fixture
def stack(tmp_path, ssh_env):
    """The example stack on one loopback sshd "host"; supervisord started like on a server, shut down after."""
    missing = missing_stack_tools()
    if missing:
        message = "the example stack needs " + "; ".join(missing)
        if ON_CI:
            pytest.fail(message + " (under CI=true this is an error, not a skip)")
        pytest.skip(message)
    server = ssh_env.servers[0]
    s = Stack(tmp_path, free_port())
    s.write({"address": "127.0.0.1", "port": server.port, "user": ssh_env.user,
             "key_file": str(ssh_env.client_key), "known_hosts": str(ssh_env.known_hosts)},
            # 10 s: a slow CI machine's reload still passes; the failed-health deploy waits all of it.
            python=HOST_PYTHON, wheelhouse=find_wheelhouse(), health_timeout=10)
    s.start()
    try:
        yield s
    finally:
        s.shutdown()


def cli(stack: Stack, *args: str) -> subprocess.CompletedProcess:
    """``releasetui --config hosts.yml --headless ARGS`` in a subprocess, as CircleCI runs it."""
    return subprocess.run([sys.executable, "-m", "releasetui", "--config", str(stack.config), "--headless", *args],
                          capture_output=True, text=True, timeout=180)


def deploy(stack: Stack) -> tuple[subprocess.CompletedProcess, str]:
    """Deploy the stack's source; returns the process and the build id."""
    time.sleep(1.05)  # build ids are per second; a fresh second keeps them plain
    proc = cli(stack, "deploy", "--json")
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines and lines[-1]["event"] == "summary", proc.stdout + proc.stderr + stack.log("uwsgi.log")
    return proc, lines[-1]["build_id"]


def builds(stack: Stack) -> dict:
    """web1's entry of ``builds --json``, builds by id."""
    proc = cli(stack, "builds", "--json")
    assert proc.returncode == 0, proc.stderr
    host = json.loads(proc.stdout)["hosts"][0]
    return {"current": host["current"], **{b["id"]: b for b in host["builds"]}}


def test_deploy_rollback_and_failed_health_with_zero_failed_requests(stack):
    # Before the first deploy there is nothing to serve: uwsgi cannot start under supervisord.
    assert get(stack.url, timeout=2)[0] == 0

    first, v1 = deploy(stack)
    assert first.returncode == 0, first.stdout + first.stderr + stack.log("uwsgi.log")
    assert stack.wait_for_build(v1) == v1
    assert f"ok build={v1}" in get(stack.url + "health")[1]

    loop = RequestLoop(stack.url, interval=0.02).start()
    try:
        second, v2 = deploy(stack)
        assert second.returncode == 0, second.stdout + second.stderr
        # The health check passed only once v2 itself answered, so v2 serves now, old workers gone.
        assert served_build(get(stack.url)[1]) == v2

        back = cli(stack, "rollback", v1)
        assert back.returncode == 0, back.stdout + back.stderr
        assert back.stdout.splitlines()[-1] == f"live now: {v1} on web1"
        assert served_build(get(stack.url)[1]) == v1  # rollback polls the health check too: v1 answers already

        stack.set_healthy(False)
        bad, v3 = deploy(stack)
        assert bad.returncode == 1, bad.stdout + bad.stderr
        assert f"build {v3}: unhealthy after" in bad.stdout and f"switched back to {v1}" in bad.stdout
        assert served_build(get(stack.url)[1]) == v1
        state = builds(stack)
        assert state["current"] == v1
        assert state[v3]["failed"] is True and state[v3]["complete"] is True

        # The failed build is never the default rollback target: from v4 it goes to v2, past v3.
        stack.set_healthy(True)
        fourth, v4 = deploy(stack)
        assert fourth.returncode == 0, fourth.stdout + fourth.stderr
        assert served_build(get(stack.url)[1]) == v4
        default = cli(stack, "rollback")
        assert default.returncode == 0, default.stdout + default.stderr
        assert stack.wait_for_build(v2) == v2
        time.sleep(0.3)  # a few more loop requests after the last reload
    finally:
        loop.stop()

    assert loop.failures == [], f"{len(loop.failures)} of {loop.total} requests failed: {loop.failures[:5]}"
    assert loop.total > 100
    # Every build that went live was served to the loop, in order; v3 served / while it was checked.
    live = [b for b in loop.builds if b != v3]
    assert [b for i, b in enumerate(live) if i == 0 or live[i - 1] != b] == [v1, v2, v1, v4, v2]
    print(f"\nrequest loop: {loop.total} requests, {len(loop.failures)} failed; served in order: {loop.builds}")
    history = [(r["event"], r["outcome"]) for r in map(json.loads, (stack.root / "history.jsonl").read_text().splitlines())]
    assert history == [("deploy", "ok"), ("deploy", "ok"), ("rollback", "ok"), ("deploy", "failed"), ("deploy", "ok"),
                       ("rollback", "ok")]
