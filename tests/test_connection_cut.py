"""A connection lost in the middle of an operation: exit 3, no library noise on stderr, and the summary says
per host what was left behind and the command that clears it (human and JSON)."""

from __future__ import annotations

import json
import time

import pytest

from .support.helpers import gated_python, make_project, summary, wait_for
from .support.netcut import CuttableForwarder

pytestmark = pytest.mark.ssh


@pytest.fixture
def cut_project(tmp_path, wheelhouse, ssh_env):
    """web1 behind a cuttable proxy, web2 direct; the install waits on a gate so the cut lands mid-operation."""
    proxy = CuttableForwarder(ssh_env.servers[0].port)
    known = tmp_path / "known_hosts_proxy"
    known.write_text(ssh_env.known_hosts.read_text()
                     + f"[127.0.0.1]:{proxy.port} {ssh_env.servers[0].host_public_key}\n")
    hosts = {"web1": {"address": "127.0.0.1", "port": proxy.port},
             "web2": {"address": "127.0.0.1", "port": ssh_env.servers[1].port}}
    project = make_project(tmp_path, wheelhouse, hosts, ssh_env=ssh_env)
    project.config.write_text(project.config.read_text().replace(f"known_hosts: {ssh_env.known_hosts}",
                                                                 f"known_hosts: {known}"))
    yield project, proxy
    proxy.cut()


def deploy_with_a_cut(project, proxy, *args):
    marker, gate = project.dir / "installing", project.dir / "gate"
    for path in (marker, gate):
        path.unlink(missing_ok=True)
    gated_python(project, "pip", marker, gate)
    proc = project.popen("--headless", "deploy", *args)
    try:
        wait_for(marker.exists, 90, "the install to start")
        time.sleep(0.3)
        proxy.cut()
        time.sleep(0.5)
    finally:
        gate.touch()
    out, err = proc.communicate(timeout=180)
    return proc.returncode, out, err


def test_a_connection_cut_while_preparing_exits_3_says_what_was_left_and_how_to_clear_it(cut_project):
    project, proxy = cut_project
    code, out, err = deploy_with_a_cut(project, proxy)
    assert code == 3, out + err
    assert err == "", "no paramiko 'Socket exception', no traceback, nothing said twice: " + err
    lines = out.splitlines()
    web1 = [line for line in lines if line.startswith("deploy web1: unreachable")]
    assert len(web1) == 1, out
    assert "left on the host: the deploy lock" in web1[0] and "the partial build" in web1[0], out
    assert web1[0].endswith("; clear with: releasetui --headless unlock --host web1 && releasetui --headless prune "
                            "--host web1"), web1[0]
    assert any(line.startswith("deploy web2: aborted") for line in lines), out
    assert lines[-2].startswith("deploy unreachable in ") and lines[-2].endswith("(exit 3)")
    assert lines[-1] == "live now: nothing on web2; unknown on web1 (unreachable)"
    # web2 was cleaned up; web1 kept what the summary said it kept.
    assert not (project.roots["web2"] / "deploy.lock").exists() and project.builds("web2") == []
    assert (project.roots["web1"] / "deploy.lock").exists()
    # The host is back: the command the summary gave clears it.
    proxy.resume()
    wait_for(lambda: not any("pip" in p for p in _processes(project.roots["web1"])), 30, "the cut install to end")
    unlock = project.cli("--headless", "unlock", "--host", "web1")
    assert unlock.returncode == 0, unlock.stdout + unlock.stderr
    prune = project.cli("--headless", "prune", "--host", "web1")
    assert prune.returncode == 0, prune.stdout + prune.stderr
    assert not (project.roots["web1"] / "deploy.lock").exists() and project.builds("web1") == []


def test_the_json_summary_lists_what_was_left_per_host(cut_project):
    project, proxy = cut_project
    code, out, err = deploy_with_a_cut(project, proxy, "--json")
    assert code == 3, out + err
    assert err == "", err
    doc = summary(type("P", (), {"stdout": out, "stderr": err})())
    assert doc["exit_code"] == 3 and doc["status"] == "unreachable"
    hosts = {h["host"]: h for h in doc["hosts"]}
    assert hosts["web1"]["status"] == "unreachable"
    assert hosts["web1"]["left"][0].startswith("the deploy lock (token ")
    assert hosts["web1"]["left"][1].startswith("the partial build ")
    assert hosts["web2"]["left"] == []
    for line in out.splitlines():
        json.loads(line)


def _processes(root) -> list[str]:
    """Command lines of processes that mention ``root``."""
    import os
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    text = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(root) in text:
                found.append(text)
    return found


def test_a_connection_cut_during_activation_leaves_every_host_on_the_build_it_had(tmp_path, wheelhouse, ssh_env):
    """The cut lands while web1 restarts after its switch; web2 is healthy and waits for the verdict.

    web2 is told to go back.  web1's script has lost the connection that was
    to bring its verdict: it must not die of it (SIGPIPE at its next line of
    output) with the new build live and the lock held; it reads no verdict,
    switches back itself and releases the lock.  The fleet ends on v1.
    """
    proxy = CuttableForwarder(ssh_env.servers[0].port)
    known = tmp_path / "known_hosts_proxy"
    known.write_text(ssh_env.known_hosts.read_text()
                     + f"[127.0.0.1]:{proxy.port} {ssh_env.servers[0].host_public_key}\n")
    arm, marker, gate = tmp_path / "arm", tmp_path / "restarting", tmp_path / "gate"
    restart = f"if [ -e {arm} ]; then touch {marker}; until [ -e {gate} ]; do sleep 0.05; done; fi"
    hosts = {"web1": {"address": "127.0.0.1", "port": proxy.port, "restart": json.dumps(restart)},
             "web2": {"address": "127.0.0.1", "port": ssh_env.servers[1].port}}
    project = make_project(tmp_path, wheelhouse, hosts, ssh_env=ssh_env)
    project.config.write_text(project.config.read_text().replace(f"known_hosts: {ssh_env.known_hosts}",
                                                                 f"known_hosts: {known}"))
    try:
        first = project.cli("--headless", "deploy", "--json")
        assert first.returncode == 0, first.stdout + first.stderr
        v1 = summary(first)["build_id"]
        project.write_app("v2")
        arm.touch()
        proc = project.popen("--headless", "deploy")
        try:
            wait_for(marker.exists, 90, "web1's restart to start")
            assert project.current("web1") != v1, "the cut must land after web1's switch"
            proxy.cut()
            time.sleep(0.5)
        finally:
            gate.touch()
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 3, out + err
        assert err == "", err
        web1 = [line for line in out.splitlines() if line.startswith("deploy web1: unreachable")]
        assert len(web1) == 1 and f"gets no verdict, so it goes back to {v1}" in web1[0], out
        assert web1[0].endswith("see what it serves with: releasetui --headless builds --host web1"), web1[0]
        assert project.current("web2") == v1, "web2 was told to go back"
        # web1 heals itself: no verdict came, so its script switched back and released the lock.
        wait_for(lambda: not (project.roots["web1"] / "deploy.lock").exists(), 30, "web1's script to finish")
        assert project.current("web1") == v1
        assert [r["outcome"] for r in project.history("web1") if r.get("event") == "deploy"][-1] == "switched-back"
        proxy.resume()
        builds = project.cli("--headless", "builds", "--json")
        assert builds.returncode == 0, builds.stdout + builds.stderr
    finally:
        proxy.cut()
