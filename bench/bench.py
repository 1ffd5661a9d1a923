#!/usr/bin/env python3
"""Benchmark the release engine against real sshd servers on loopback.

Prints, per operation (deploy with unchanged requirements, rollback, builds):
the median / min / max wall time and the SSH round trips per host (remote
scripts), both with a fresh connection per operation
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
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (ensure_user, host_python, make_app, make_wheelhouse, session_env,  # noqa: E402
                          use_this_checkout, write_config)

use_this_checkout()

from releasetui.config import load_config  # noqa: E402
from releasetui.executors import ExecutorPool  # noqa: E402
from releasetui.operations import Operations  # noqa: E402
from tests.support.sshd import make_client_key, start_sshd  # noqa: E402


def median_line(name: str, times: list[float], trips: list[int]) -> str:
    """One result line: median, min, max and the remote scripts each host paid."""
    trip_text = "/".join(map(str, sorted(set(trips))))
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
    key = make_client_key(base)
    env = session_env(base)
    servers = [start_sshd(base, i, (base / "id_ed25519.pub").read_text(), env) for i in range(args.hosts)]
    known = base / "known_hosts"
    known.write_text("".join(s.known_hosts_line + "\n" for s in servers))
    try:
        house = make_wheelhouse(base / "wheelhouse")
        app = make_app(base / "app")
        host_entries = []
        for i, server in enumerate(servers):
            root = base / f"root{i}"
            root.mkdir()
            os.chown(root, user.pw_uid, user.pw_gid)
            host_entries.append((f"web{i + 1}", server.port, root))
        config_path = write_config(base / "hosts.yml", app=app, python=host_python(user.pw_name), wheelhouse=house,
                                   user=user.pw_name, key=key, known_hosts=known, hosts=host_entries)
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
                    trips.append(ops.round_trips(h) - before[h.name])
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
            server.stop()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
