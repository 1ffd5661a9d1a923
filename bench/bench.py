#!/usr/bin/env python3
"""Benchmark the release engine against real sshd servers on loopback.

Prints, per operation (deploy with unchanged requirements, rollback, builds):
the median / min / max wall time and the SSH round trips per host (remote
scripts + rsync connections), both with a fresh connection per operation
(like one CLI run) and over a kept-open connection (like the TUI).

    python bench/bench.py [--runs 7] [--hosts 2] [--user NAME]

As root it also creates a user with /bin/sh as login shell (``--user``,
default ``releasetui-bench``) so root's interactive shell start-up (pyenv in
~/.bashrc here) does not hide the engine's own cost; ``--user root``
measures with it.  Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from releasetui.config import load_config  # noqa: E402
from releasetui.executors import ExecutorPool  # noqa: E402
from releasetui.operations import Operations  # noqa: E402
from releasetui.demo import build_wheel  # noqa: E402
from tests.sshd import start_sshd  # noqa: E402


def ensure_user(name: str) -> pwd.struct_passwd:
    """The bench user, created with /bin/sh as its shell when missing (needs root)."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        # '*' rather than useradd's '!': with UsePAM no, sshd refuses "locked" ('!') accounts even for keys.
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", "--password", "*", name], check=True)
        return pwd.getpwnam(name)


def host_python(user: str) -> str:
    """An interpreter the bench user can run (root's pyenv lives under a 0700 /root)."""
    if user == "root":
        return os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    return shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin") or "python3"


def median_line(name: str, times: list[float], trips: list[tuple[int, int]]) -> str:
    scripts = sorted({t[0] for t in trips})
    rsyncs = sorted({t[1] for t in trips})
    trip_text = "/".join(map(str, scripts)) + (f" + {'/'.join(map(str, rsyncs))} rsync" if any(rsyncs) else "")
    return (f"  {name:<28} median {statistics.median(times) * 1000:7.1f} ms   min {min(times) * 1000:7.1f}   "
            f"max {max(times) * 1000:7.1f}   round trips/host: {trip_text}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--hosts", type=int, default=2)
    parser.add_argument("--user", default="releasetui-bench" if os.geteuid() == 0 else pwd.getpwuid(os.getuid()).pw_name)
    args = parser.parse_args()

    user = ensure_user(args.user) if os.geteuid() == 0 else pwd.getpwnam(args.user)
    base = Path(tempfile.mkdtemp(prefix="releasetui-bench-"))
    os.chmod(base, 0o755)
    key = base / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    servers = [start_sshd(base, i, (base / "id_ed25519.pub").read_text()) for i in range(args.hosts)]
    for authorized in base.glob("sshd*/authorized_keys"):
        authorized.chmod(0o644)  # sshd reads it as the bench user
    known = base / "known_hosts"
    known.write_text("".join(s.known_hosts_line + "\n" for s in servers))
    try:
        house = base / "wheelhouse"
        build_wheel(house, "tinylib", "1.0")
        app = base / "app"
        (app / "static").mkdir(parents=True)
        (app / "app.py").write_text("VERSION = 1\n")
        (app / "requirements.txt").write_text("tinylib==1.0\n")
        for n in range(200):  # a realistic small app: a few hundred files
            (app / "static" / f"file{n}.css").write_text("body { color: red; }\n" * 50)
        roots = []
        host_lines = []
        for i, server in enumerate(servers):
            root = base / f"root{i}"
            root.mkdir()
            os.chown(root, user.pw_uid, user.pw_gid)
            roots.append(root)
            host_lines.append(f"  web{i + 1}: {{address: 127.0.0.1, port: {server.port}, root: {root}}}")
        config_path = base / "hosts.yml"
        config_path.write_text("\n".join([
            "project: bench", f"source: {app}", f"python: {host_python(user.pw_name)}",
            f"pip_args: [--no-index, --find-links, {house}]", "keep_builds: 5", "restart: 'true'",
            f"ssh: {{user: {user.pw_name}, key_file: {key}, known_hosts: {known}}}", "hosts:", *host_lines]) + "\n")
        config = load_config(config_path)
        hosts = config.hosts

        print(f"releasetui bench: {len(hosts)} host(s) on loopback sshd, user {user.pw_name} "
              f"(shell {user.pw_shell}), {args.runs} runs, 200-file app")
        first = Operations(config).deploy(hosts)
        assert first.ok, {h: o.message for h, o in first.outcomes.items()}

        def measure(label: str, op: str, pool: ExecutorPool | None) -> None:
            times, trips = [], []
            for _ in range(args.runs):
                own_pool = pool or ExecutorPool()
                ops = Operations(config, pool=own_pool)
                before = {h.name: ops.round_trips(h) for h in hosts}
                started = time.perf_counter()
                if op == "deploy":
                    time.sleep(1.0)  # one build id per second
                    (app / "app.py").write_text(f"VERSION = {time.time()}\n")
                    started = time.perf_counter()
                    result = ops.deploy(hosts)
                elif op == "rollback":
                    result = ops.rollback(hosts)
                else:
                    result = ops.states(hosts)
                elapsed = time.perf_counter() - started
                for h in hosts:
                    after = ops.round_trips(h)
                    trips.append((after[0] - before[h.name][0], after[1] - before[h.name][1]))
                if op != "builds":
                    assert result.ok, {h: o.message for h, o in result.outcomes.items()}
                    if op == "rollback":  # go forward again so the next rollback has somewhere to go
                        Operations(config, pool=own_pool).rollback(hosts, first_next[0])
                times.append(elapsed)
                if pool is None:
                    own_pool.close()
            print(median_line(label, times, trips))

        first_next = [None]
        for label, pool in (("fresh connection per op (CLI)", None), ("kept-open connection (TUI)", ExecutorPool())):
            print(label)
            measure("deploy (reqs unchanged)", "deploy", pool)
            states = Operations(config).states(hosts)
            first_next[0] = states[hosts[0].name].current
            measure("rollback", "rollback", pool)
            measure("builds", "builds", pool)
            if pool is not None:
                pool.close()

        # One bare round trip, to show what each saved round trip is worth on this machine.
        pool = ExecutorPool()
        executor = pool.get(hosts[0])
        executor.connect()
        samples = []
        for _ in range(20):
            t0 = time.perf_counter()
            executor.run("true", mutating=False)
            samples.append(time.perf_counter() - t0)
        pool.close()
        print(f"one bare round trip ('true'): median {statistics.median(samples) * 1000:.1f} ms")
    finally:
        for server in servers:
            server.process.terminate()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
