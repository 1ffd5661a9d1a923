"""The release engine end to end over a real OpenSSH sshd on loopback, with real rsync, venvs and pip."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .support.helpers import HOST_PYTHON, builds_doc, events, summary

pytestmark = pytest.mark.ssh


def start_deploy_stuck_in_install(p) -> tuple[subprocess.Popen, Path]:
    """Start a CLI deploy whose host interpreter hangs while making the venv; return once it hangs there."""
    slow = p.dir / "slow-python"
    marker = p.dir / "installing"
    slow.write_text(f"#!/bin/sh\ncase \"$*\" in *venv*) touch {marker}; sleep 30;; esac\nexec {HOST_PYTHON} \"$@\"\n")
    slow.chmod(0o755)
    p.config.write_text(p.config.read_text().replace(f"python: {HOST_PYTHON}", f"python: {slow}"))
    p.set("installer", "pip")  # the hang is on pip's `-m venv` command line
    p.write_app("v2", "tinylib==2.0")
    proc = p.popen("--headless", "deploy")
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marker.exists(), "the deploy never reached the install phase"
    return proc, slow


def test_deploy_rollback_any_build_on_two_hosts(ssh_project):
    p = ssh_project
    first = p.cli("--headless", "deploy", "--json")
    assert first.returncode == 0, first.stdout + first.stderr
    v1 = summary(first)["build_id"]
    for host in ("web1", "web2"):
        assert p.current(host) == v1
        build = p.roots[host] / "builds" / v1
        assert (build / "app.py").read_text() == "VERSION = 'v1'\n"
        assert not (build / "notes.tmp").exists(), "excludes_file must be honoured"
        out = subprocess.run([str(build / "env" / "bin" / "python"), "-c", "import tinylib; print(tinylib.VERSION)"],
                             capture_output=True, text=True)
        assert out.stdout.strip() == "1.0", out.stderr
    assert (p.dir / "restarts.log").read_text().count("restarted") == 2
    p.write_app("v2", "tinylib==2.0")
    second = p.cli("--headless", "deploy", "--json")
    assert second.returncode == 0, second.stdout + second.stderr
    v2 = summary(second)["build_id"]
    assert v2 > v1
    p.write_app("v3", "tinylib==2.0")
    third = p.cli("--headless", "deploy", "--json")
    assert third.returncode == 0, third.stdout + third.stderr
    v3 = summary(third)["build_id"]
    venv_steps = [e for e in events(third) if e["step"] == "venv" and e["status"] == "ok"]
    assert len(venv_steps) == 2 and all(e["message"].startswith("reused") for e in venv_steps), venv_steps
    # Unchanged files are hard links to the previous build: no copy, no disk.
    for host in ("web1", "web2"):
        big2 = p.roots[host] / "builds" / v2 / "static" / "big.txt"
        big3 = p.roots[host] / "builds" / v3 / "static" / "big.txt"
        assert os.stat(big2).st_ino == os.stat(big3).st_ino

    doc = builds_doc(p)
    assert [h["name"] for h in doc["hosts"]] == ["web1", "web2"]
    for host in doc["hosts"]:
        assert host["current"] == v3 and host["locked_by"] is None
        ids = [b["id"] for b in host["builds"]]
        assert ids == [v1, v2, v3]
        by_id = {b["id"]: b for b in host["builds"]}
        assert by_id[v3]["current"] and not by_id[v2]["current"]
        assert all(b["complete"] for b in host["builds"])
        assert by_id[v1]["requirements_sha256"] != by_id[v2]["requirements_sha256"] == by_id[v3]["requirements_sha256"]
        assert by_id[v1]["python_version"].startswith(f"{sys.version_info[0]}.")
        assert by_id[v1]["deployed_by"] and by_id[v1]["created_at"].endswith("Z")

    # Default rollback: the build before current, by id.
    back = p.cli("--headless", "rollback", "--json")
    assert back.returncode == 0, back.stdout + back.stderr
    assert p.current("web1") == p.current("web2") == v2
    # Any build, by id, including one two steps back.
    oldest = p.cli("--headless", "rollback", v1)
    assert oldest.returncode == 0, oldest.stdout + oldest.stderr
    assert p.current("web1") == p.current("web2") == v1
    assert f"live now: {v1} on web1, web2" in oldest.stdout
    history = p.history("web1")
    assert [h["event"] for h in history] == ["deploy", "deploy", "deploy", "rollback", "rollback"]
    assert all(h["outcome"] == "ok" for h in history)
    assert history[-1]["from"] == v2 and history[-1]["to"] == v1


def test_round_trips_per_operation(ssh_project):
    p = ssh_project
    assert p.cli("--headless", "deploy").returncode == 0
    p.write_app("v2")
    deploy = p.cli("--headless", "deploy", "--json")
    assert deploy.returncode == 0, deploy.stderr
    # read+lock, prepare (ship + venv), activate (switch, restart, commit): three scripts per host.
    assert [h["round_trips"] for h in summary(deploy)["hosts"]] == [3, 3]
    # read+lock (every host is checked before any switches), activate.
    rollback = p.cli("--headless", "rollback", "--json")
    assert [h["round_trips"] for h in summary(rollback)["hosts"]] == [2, 2]
    builds = p.cli("--headless", "builds", "--json")
    assert builds.returncode == 0


def test_connections_use_aes_gcm_and_keep_paramikos_other_ciphers(ssh_project):
    """GCM authenticates packets inside OpenSSL; aes-ctr + hmac made paramiko compare each MAC in Python."""
    from releasetui.config import load_config
    from releasetui.executors import ExecutorPool

    pool = ExecutorPool(connect_timeout=10)
    try:
        executor = pool.get(load_config(ssh_project.config).hosts[0])
        assert executor.run("echo hi", mutating=False).stdout == "hi\n"
        transport = executor._connection.transport
        assert (transport.local_cipher, transport.remote_cipher) == ("aes128-gcm@openssh.com",) * 2
        offered = transport.get_security_options().ciphers
        assert {"aes128-ctr", "aes256-ctr"} <= set(offered), "a server without GCM can still be reached"
    finally:
        pool.close()


def test_the_client_key_is_read_once_for_every_host(ssh_project, ssh_env, monkeypatch):
    """paramiko read and parsed the key file for each connection, as RSA, then ECDSA, then ed25519."""
    import builtins
    import io
    from releasetui.config import load_config
    from releasetui.executors import ExecutorPool

    key = str(ssh_env.client_key)
    reads: list = []
    real_open = builtins.open

    def counting_open(file, *args, **kwargs):
        if str(file) == key:
            reads.append(file)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    monkeypatch.setattr(io, "open", counting_open)
    pool = ExecutorPool(connect_timeout=10)
    try:
        for host in load_config(ssh_project.config).hosts:
            assert pool.get(host).run("echo hi", mutating=False).stdout == "hi\n"
    finally:
        pool.close()
    assert len(reads) <= 1, f"the key file was read {len(reads)} times for two hosts"


def test_unknown_host_key_is_refused(ssh_project, ssh_env):
    p = ssh_project
    empty = p.dir / "empty_known_hosts"
    empty.write_text("")
    text = p.config.read_text().replace(f"known_hosts: {ssh_env.known_hosts}", f"known_hosts: {empty}")
    p.config.write_text(text)
    proc = p.cli("--headless", "deploy", "--host", "web1")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "not in" in proc.stdout and "refusing" in proc.stdout
    assert "Socket exception" not in proc.stderr and proc.stderr == "", proc.stderr
    assert not p.roots["web1"].exists(), "nothing may run on a host whose key is unknown"


def test_changed_host_key_is_refused(ssh_project, ssh_env):
    p = ssh_project
    # web1's entry carries web2's key: exactly what a man in the middle looks like.
    lines = ssh_env.known_hosts.read_text().splitlines()
    wrong = p.dir / "wrong_known_hosts"
    wrong.write_text(f"[127.0.0.1]:{ssh_env.servers[0].port} {ssh_env.servers[1].host_public_key}\n")
    p.config.write_text(p.config.read_text().replace(f"known_hosts: {ssh_env.known_hosts}", f"known_hosts: {wrong}"))
    proc = p.cli("--headless", "builds", "--host", "web1")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "CHANGED" in proc.stdout
    assert proc.stderr == "", "paramiko noise or a doubled message reached the terminal"
    assert lines  # the real file is untouched


def test_failure_on_one_host_switches_no_host(ssh_project):
    p = ssh_project
    assert p.cli("--headless", "deploy").returncode == 0
    v1 = p.current("web1")
    p.write_app("v2", "tinylib==2.0")
    # web2's interpreter cannot make a venv: its install fails after web1's build is already complete.
    broken = p.dir / "no-venv-python"
    broken.write_text(f"#!/bin/sh\ncase \"$*\" in *' venv '*|*'-m venv'*) echo 'no venv here' >&2; exit 1;; esac\nexec {HOST_PYTHON} \"$@\"\n")
    broken.chmod(0o755)
    p.config.write_text(p.config.read_text().replace(f"port: {p.config.read_text().split('port: ')[-1].split('}')[0]}}}",
                                                     f"port: {p.config.read_text().split('port: ')[-1].split('}')[0]}, python: {broken}}}"))
    assert f"python: {broken}" in p.config.read_text()
    p.set("installer", "pip")  # the broken step is pip's `-m venv`
    proc = p.cli("--headless", "deploy", "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    result = summary(proc)
    statuses = {h["host"]: h["status"] for h in result["hosts"]}
    assert statuses == {"web1": "aborted", "web2": "failed"}
    assert p.current("web1") == p.current("web2") == v1
    for host in ("web1", "web2"):
        assert sorted(os.listdir(p.roots[host] / "builds")) == [v1], "the partial build is removed"
        assert not (p.roots[host] / "deploy.lock").exists(), "the lock is released"


def test_lock_is_reported_and_unlock_records_history(ssh_project):
    p = ssh_project
    assert p.cli("--headless", "deploy").returncode == 0
    lock = p.roots["web2"] / "deploy.lock"
    lock.mkdir()
    (lock / "info.json").write_text(json.dumps({"who": "carol@ci", "where": "ci-box", "since": "2026-11-28T10:00:00Z",
                                                "operation": "deploy"}))
    proc = p.cli("--headless", "rollback")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "carol@ci" in proc.stdout and "2026-11-28T10:00:00Z" in proc.stdout
    assert p.current("web1") == p.current("web2"), "the unlocked host was not switched alone"
    doc = builds_doc(p)
    assert doc["hosts"][1]["locked_by"]["who"] == "carol@ci"
    unlock = p.cli("--headless", "unlock", "--host", "web2")
    assert unlock.returncode == 0, unlock.stderr
    assert "carol@ci" in unlock.stdout
    assert not lock.exists()
    last = json.loads((p.roots["web2"] / "history.jsonl").read_text().splitlines()[-1])
    assert last["event"] == "unlock" and last["lock"]["who"] == "carol@ci"


def test_deploy_killed_before_switch_leaves_current_and_candidates(ssh_project):
    p = ssh_project
    assert p.cli("--headless", "deploy").returncode == 0
    v1 = p.current("web1")
    proc, slow = start_deploy_stuck_in_install(p)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    time.sleep(0.5)
    for host in ("web1", "web2"):
        assert p.current(host) == v1
    doc = builds_doc(p)
    for host in doc["hosts"]:
        partial = [b for b in host["builds"] if b["id"] != v1]
        assert len(partial) == 1 and partial[0]["complete"] is False
        assert host["locked_by"] is not None, "a killed deploy leaves its lock for `unlock`"
    partial_id = partial[0]["id"]
    assert p.cli("--headless", "unlock").returncode == 0
    # unlock also stops what the killed deploy left running on the hosts.
    assert subprocess.run(["pgrep", "-f", str(slow)], capture_output=True).returncode == 1
    refused = p.cli("--headless", "rollback", partial_id)
    assert refused.returncode == 1
    assert "incomplete" in refused.stdout and v1 in refused.stdout
    assert p.current("web1") == p.current("web2") == v1
    # Prune removes the incomplete build and keeps current.
    p.config.write_text(p.config.read_text().replace(f"python: {slow}", f"python: {HOST_PYTHON}"))
    pruned = p.cli("--headless", "prune")
    assert pruned.returncode == 0, pruned.stdout + pruned.stderr
    for host in ("web1", "web2"):
        assert sorted(os.listdir(p.roots[host] / "builds")) == [v1]


def test_logs_are_labelled_by_host(ssh_project):
    proc = ssh_project.cli("--headless", "logs", "-n", "3")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert sorted(lines) == sorted([f"{h} | line {i}" for h in ("web1", "web2") for i in (18, 19, 20)])


def test_logs_follow_streams_until_interrupted(ssh_project):
    p = ssh_project
    proc = subprocess.Popen([sys.executable, "-m", "releasetui", "--config", str(p.config), "--headless", "logs",
                             "-n", "1", "-f", "--host", "web1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "web1 | line 20"
        with (p.dir / "app.log").open("a") as log:
            log.write("fresh line\n")
        assert proc.stdout.readline().strip() == "web1 | fresh line"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
    assert proc.returncode == 0, "Ctrl-C is how a tail ends: not an interruption"


def test_deploy_interrupted_before_switch_cleans_up_and_exits_130(ssh_project):
    p = ssh_project
    assert p.cli("--headless", "deploy").returncode == 0
    v1 = p.current("web1")
    proc, slow = start_deploy_stuck_in_install(p)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, out + err
    for host in ("web1", "web2"):
        assert p.current(host) == v1
        assert sorted(os.listdir(p.roots[host] / "builds")) == [v1], "the partial build is removed"
        assert not (p.roots[host] / "deploy.lock").exists(), "the lock is released"
    # Nothing of the interrupted install survives to race the next deploy.
    assert subprocess.run(["pgrep", "-f", str(slow)], capture_output=True).returncode == 1


def test_ssh_config_alias_is_honoured_by_scripts_and_rsync(ssh_project, ssh_env, tmp_path):
    p = ssh_project
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    port = ssh_env.servers[0].port
    (home / ".ssh" / "config").write_text(f"Host web-alias\n  HostName 127.0.0.1\n  Port {port}\n  User {ssh_env.user}\n"
                                          f"  IdentityFile {ssh_env.client_key}\n")
    text = p.config.read_text()
    text = text.replace(f"ssh: {{user: {ssh_env.user}, key_file: {ssh_env.client_key}, known_hosts:",
                        "ssh: {known_hosts:")
    text = text.replace(f"{{root: {p.roots['web1']}, address: 127.0.0.1, port: {port}}}",
                        f"{{root: {p.roots['web1']}, address: web-alias}}")
    assert "web-alias" in text
    p.config.write_text(text)
    proc = p.cli("--headless", "deploy", "--host", "web1", env={"HOME": str(home)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (p.roots["web1"] / "current" / "app.py").read_text() == "VERSION = 'v1'\n"


def test_stopping_a_follow_leaves_no_tail_on_the_host(ssh_project):
    """Closing the channel ends the remote tail -F at once, not when the next log line happens to arrive."""
    import threading

    from releasetui.config import load_config
    from releasetui.operations import Operations

    p = ssh_project
    config = load_config(p.config)
    lines: list[str] = []
    stop = threading.Event()
    ops = Operations(config, report=lambda e: lines.append(e.message) if e.status == "log" else None)
    worker = threading.Thread(target=ops.logs, args=(config.select(["web1"]),), kwargs={"lines": 1, "follow": True, "stop": stop})
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while "line 20" not in lines and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "line 20" in lines
        log = str(p.dir / "app.log")
        assert subprocess.run(["pgrep", "-f", f"tail -q -n 1 -F -- {log}"], capture_output=True).returncode == 0
    finally:
        stop.set()
        worker.join(timeout=10)
        ops.close()
    deadline = time.monotonic() + 10
    while subprocess.run(["pgrep", "-f", f"tail -q -n 1 -F -- {log}"], capture_output=True).returncode == 0:
        assert time.monotonic() < deadline, "the remote tail -F outlived the stop"
        time.sleep(0.1)


def test_a_small_stream_rides_in_the_script_and_a_large_one_on_stdin(ssh_project):
    """The build's files reach the hosts intact both ways they travel.

    A stream too big for a command line (a 300 kB file that does not
    compress) goes on the script's stdin; a small one (one changed file) goes
    inside the script, so no round trip waits for sshd to open the channel's
    window.  ``--dry-run`` shows which, and the deploy then does just that.
    """
    p = ssh_project
    blob = os.urandom(300_000)
    (p.source / "blob.bin").write_bytes(blob)
    plan = p.cli("--headless", "deploy", "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert "RELEASETUI_PAYLOAD_END" not in plan.stdout, "a 300 kB stream must not ride in the script"
    first = p.cli("--headless", "deploy", "--json")
    assert first.returncode == 0, first.stderr
    for host in p.roots:
        assert (p.roots[host] / "current" / "blob.bin").read_bytes() == blob
    p.write_app("v2")
    plan = p.cli("--headless", "deploy", "--dry-run")
    assert "<<'RELEASETUI_PAYLOAD_END'" in plan.stdout and "[the stream of 1 file(s):" in plan.stdout, plan.stdout
    second = p.cli("--headless", "deploy", "--json")
    assert second.returncode == 0, second.stderr
    assert [h["round_trips"] for h in summary(second)["hosts"]] == [3, 3]
    for host, root in p.roots.items():
        now, before = summary(second)["build_id"], summary(first)["build_id"]
        assert p.current(host) == now
        assert (root / "builds" / now / "app.py").read_text() == "VERSION = 'v2'\n"
        assert os.stat(root / "builds" / now / "blob.bin").st_ino == os.stat(root / "builds" / before / "blob.bin").st_ino



def test_a_host_whose_manifest_cannot_be_rebuilt_gets_it_whole(ssh_project):
    """web1's current build has a manifest entry the client cannot use (it drops it when it reads): the delta
    does not rebuild to the intended manifest there, so web1 is sent the manifest whole (one more script) and
    both hosts end on the same, complete build."""
    p = ssh_project
    assert p.cli("--headless", "deploy").returncode == 0
    stored = p.roots["web1"] / "current" / ".releasetui-manifest.json"
    data = json.loads(stored.read_text())
    data["files"]["junk"] = ["f", 1]
    stored.write_text(json.dumps(data))
    p.write_app("v2")
    deploy = p.cli("--headless", "deploy", "--json")
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    assert {h["host"]: h["round_trips"] for h in summary(deploy)["hosts"]} == {"web1": 4, "web2": 3}
    now = summary(deploy)["build_id"]
    for host, root in p.roots.items():
        assert p.current(host) == now
        assert (root / "builds" / now / "app.py").read_text() == "VERSION = 'v2'\n"
        assert "junk" not in json.loads((root / "builds" / now / ".releasetui-manifest.json").read_text())["files"]
