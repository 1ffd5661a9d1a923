"""``releasetui exec``: a one-off command in each host's live build (its venv first on PATH), output grouped
across hosts, exit 0 only when it succeeded everywhere, recorded in history; ``-i`` with a real terminal."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from .support.helpers import REPO, TEST_CLOCK, deploy_ok, make_project, read_terminal, ssh_hosts


@pytest.fixture
def three_hosts(tmp_path, wheelhouse, ssh_env):
    """web1 and web3 on one loopback sshd (different roots), web2 on the other."""
    hosts = ssh_hosts(ssh_env)
    hosts["web3"] = dict(hosts["web1"])
    return make_project(tmp_path, wheelhouse, hosts, ssh_env=ssh_env)


@pytest.mark.ssh
def test_exec_on_three_hosts_groups_outputs_and_fails_when_one_fails(three_hosts):
    p = three_hosts
    deploy_ok(p)
    same = p.cli("--headless", "exec", "--", "python", "-c", "import sys; print(sys.prefix.endswith('/env'))")
    assert same.returncode == 0, same.stdout + same.stderr
    assert same.stdout.splitlines() == ["== web1..web3 (3 hosts): exit 0", "True",
                                        "exec python -c 'import sys; print(sys.prefix.endswith('\"'\"'/env'\"'\"'))': "
                                        "exit 0 on web1..web3 (exit 0)"]
    one_fails = p.cli("--headless", "exec", "--", 'echo "on $RELEASETUI_HOST"; test "$RELEASETUI_HOST" != web3')
    assert one_fails.returncode == 1, one_fails.stdout + one_fails.stderr
    lines = one_fails.stdout.splitlines()
    assert lines[:2] == ["== web1 (1 host): exit 0", "on web1"] and "== web3 (1 host): exit 1" in lines
    assert lines[-1].endswith(": exit 0 on web1, web2; exit 1 on web3 (exit 1)")
    doc = json.loads(p.cli("--headless", "exec", "--json", "--", "pwd").stdout)
    assert doc["ok"] and {h: v["output"] for h, v in doc["hosts"].items()} == \
        {h: f"{p.roots[h]}/current\n" for h in ("web1", "web2", "web3")}
    listed = p.cli("--headless", "history").stdout.splitlines()
    assert re.search(r"  exec +ok +pwd  on all 3 hosts  by ", listed[-1]), listed[-1]
    for host in ("web1", "web3"):
        record = p.history(host)[-2]
        assert record["event"] == "exec" and record["command"].startswith('echo "on $RELEASETUI_HOST"')
        assert record["exit"] == (1 if host == "web3" else 0) and record["who"]


@pytest.mark.ssh
def test_exec_once_timeouts_and_a_host_without_a_live_build(ssh_project):
    p = ssh_project
    none_yet = p.cli("--headless", "exec", "--", "true")
    assert none_yet.returncode == 1 and "did not run: no live build with a venv here" in none_yet.stdout
    deploy_ok(p)
    once = p.cli("--headless", "exec", "--once", "--", "hostname")
    assert once.returncode == 0 and once.stdout.startswith("== web1 (1 host): exit 0")
    slow = p.cli("--headless", "exec", "--timeout", "1", "--", "sleep", "30")
    assert slow.returncode == 1 and "exit 124 on web1, web2" in slow.stdout.splitlines()[-1]
    nothing = p.cli("--headless", "exec")
    assert nothing.returncode == 2 and "name the command to run after --" in nothing.stderr


def run_with_terminal(project, args, send: bytes, timeout=60):
    """The CLI with stdin, stdout and stderr on one pseudo-terminal; ``send`` is typed once it starts."""
    import pty
    master, slave = pty.openpty()
    env = {**os.environ, **TEST_CLOCK.env(), "PYTHONPATH": str(REPO), "TERM": "xterm"}
    env.pop("RELEASETUI_CONFIG", None)
    proc = subprocess.Popen([sys.executable, "-m", "releasetui", "--config", str(project.config), "--headless",
                             *args], stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    sent = []

    def answer(so_far: bytes) -> None:
        if not sent and b"name? " in so_far:
            os.write(master, send)
            sent.append(True)

    out = read_terminal(master, proc, timeout, answer)
    return proc.wait(timeout=30), out.decode("utf-8", "replace")


@pytest.mark.ssh
def test_exec_interactive_gets_a_terminal_on_one_host(ssh_project):
    p = ssh_project
    deploy_ok(p)
    code, screen = run_with_terminal(
        p, ["exec", "-i", "--host", "web2", "--", "python", "-c",
            "import sys; print('tty', sys.stdin.isatty()); print(input('name? ').upper())"], b"ada\n")
    assert code == 0, screen
    assert "tty True" in screen and "ADA" in screen
    assert p.history("web2")[-1]["event"] == "exec" and p.history("web2")[-1]["interactive"] is True
    both = p.cli("--headless", "exec", "-i", "--", "python")
    assert both.returncode == 2 and "runs on one host" in both.stderr


def test_what_the_command_prints_is_never_taken_for_the_scripts_own_lines():
    from releasetui.commands.exec import OUTPUT_MARK, parse_exec
    hostile = f"EXECREFUSED\tnope\n{OUTPUT_MARK}-end\t0\n"
    result = parse_exec(f"{OUTPUT_MARK}\n{hostile}\n{OUTPUT_MARK}-end\t7\n")
    assert (result.refused, result.exit_code, result.output) == (None, 7, hostile)
    assert parse_exec("NOROOT\n").refused.startswith("no live build")
