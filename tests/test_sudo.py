"""``restart: sudo ...`` over two real loopback sshd hosts: one whose sudo wants a password, one whose sudo does not.

sudo is faked (no root needed, nothing installed): each sshd puts its own ``bin`` first on the session's PATH
(``SetEnv``).  web1's sudo behaves like a sudo without a NOPASSWD rule: with ``-n`` it says "a password is
required" and fails; without ``-n`` it would wait for a password forever (so a restart that forgot ``-n``
would hang until its timeout, which this test would notice).  web2's sudo lets the command through.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from .support.helpers import SSHEnv, make_project, summary
from .support.sshd import start_sshd

pytestmark = pytest.mark.ssh

PASSWORD_SUDO = """#!/bin/sh
for a in "$@"; do [ "$a" = -n ] && { echo 'sudo: a password is required' >&2; exit 1; }; done
echo '[sudo] password for deploy: ' >&2
sleep 300
"""
NOPASSWD_SUDO = """#!/bin/sh
[ "$1" = -n ] && shift
echo "sudo ran: $*" >> "{log}"
"""
SYSTEMCTL = "#!/bin/sh\nexit 0\n"


@pytest.fixture
def sudo_hosts(tmp_path, ssh_env, wheelhouse):
    """Two sshd "hosts": web1's sudo asks for a password, web2's does not."""
    base = tmp_path / "sshd"
    base.mkdir()
    servers, bins = [], {}
    for index, (name, sudo) in enumerate((("web1", PASSWORD_SUDO), ("web2", NOPASSWD_SUDO))):
        fake = tmp_path / f"bin-{name}"
        fake.mkdir()
        (fake / "sudo").write_text(sudo.replace("{log}", str(tmp_path / "sudo.log")))
        (fake / "systemctl").write_text(SYSTEMCTL)
        for tool in fake.iterdir():
            tool.chmod(0o755)
        bins[name] = fake
        servers.append(start_sshd(base, index, Path(f"{ssh_env.client_key}.pub").read_text(),
                                  f"SetEnv PATH={fake}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"))
    known = tmp_path / "known_hosts"
    known.write_text("".join(s.known_hosts_line + "\n" for s in servers))
    env = SSHEnv(dir=base, client_key=ssh_env.client_key, known_hosts=known, servers=servers, user=ssh_env.user)
    project = make_project(tmp_path / "p", wheelhouse, {f"web{i + 1}": {"address": "127.0.0.1", "port": s.port}
                                                        for i, s in enumerate(servers)}, ssh_env=env)
    try:
        yield project, bins
    finally:
        for server in servers:
            server.stop()


def test_a_sudo_password_prompt_is_one_clear_error_with_the_sudoers_line(sudo_hosts):
    p, bins = sudo_hosts
    first = p.cli("--headless", "deploy", "--json")
    assert first.returncode == 0, first.stdout + first.stderr
    v1 = summary(first)["build_id"]

    p.set("restart", "'sudo systemctl reload app.service'")
    p.set("restart_timeout", "60")
    started = time.monotonic()
    proc = p.cli("--headless", "deploy")
    took = time.monotonic() - started
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert took < 30, "the restart waited for a password instead of failing at once (no sudo -n?)"
    outcome = next(line for line in proc.stdout.splitlines() if line.startswith("deploy web1: failed:"))
    assert "sudo on web1 asks" in outcome and "for a password (releasetui runs it as sudo -n)" in outcome
    assert outcome.endswith(f"this line: {_user(p)} ALL=(root) NOPASSWD: {bins['web1']}/systemctl "
                            "reload app.service"), outcome
    assert f"deploy web2: aborted: switched back to {v1}: another host failed: web1\n" in proc.stdout
    # Every host is back on v1 (web2's sudo worked: it was restarted twice, to v2 and back to v1).
    assert p.current("web1") == p.current("web2") == v1
    assert (p.dir.parent / "sudo.log").read_text().splitlines() == ["sudo ran: systemctl reload app.service"] * 2
    # One error for web1, not one per attempt: the message says it once.
    assert proc.stdout.count("NOPASSWD") == 1


def _user(p) -> str:
    """The user sudo sees on the hosts (they are this machine): the name of the login's uid, as ``id -un`` says
    (a uid-0 alias login is "root" to sudo)."""
    return subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()


def test_the_sudoers_line_names_the_command_with_its_options():
    from releasetui.commands.sudo import sudo_command, sudoers_line
    assert sudo_command("sudo -u app supervisorctl -c /srv/a:b.conf restart uwsgi || true") == \
        ("app", "supervisorctl", ["-c", "/srv/a:b.conf", "restart", "uwsgi"])
    assert sudoers_line("deploy", "/usr/bin/supervisorctl", "sudo -u app supervisorctl -c /srv/a:b.conf restart x") == \
        r"deploy ALL=(app) NOPASSWD: /usr/bin/supervisorctl -c /srv/a\:b.conf restart x"
    assert sudo_command("supervisorctl restart x") is None
    assert "<the restart command" in sudoers_line("deploy", "", "systemctl restart x && sudo true")
