#!/usr/bin/env python3
"""Benchmark releasetui on the example stack: real supervisord + uwsgi + Flask behind a loopback sshd.

For each restart mode (the example's own: a graceful reload through uwsgi's master
FIFO; a chain reload through it; supervisorctl's graceful ``signal HUP``; the seed's plain
``supervisorctl restart uwsgi``) it prints the same figures as
bench/bench.py -- median deploy (requirements unchanged), rollback and builds
times, SSH round trips per host per operation -- plus:

* deploy started -> the new build answers HTTP (first 200 from the new build);
* rollback started -> the target build answers HTTP;
* a request loop (GET / every 20 ms during all of it): requests and failures.

    python bench/bench_stack.py [--runs 5] [--restart fifo,chain,hup,plain]

Needs the ``stack`` extra (uwsgi, supervisord next to this interpreter) and
a wheelhouse with Flask (``pip wheel -w .wheelhouse -r examples/flask-app/requirements.txt``).
Every operation uses a fresh connection, like one CLI run.  Logs in as ``--user`` (default: the current
user; the tests' ``releasetui-sh``, a uid-0 alias whose shell is /bin/sh, keeps root's pyenv start-up out of
every round trip).
Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import getpass
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from releasetui.config import load_config  # noqa: E402

LOGIN_USER = [getpass.getuser()]  # set from --user in main()
from releasetui.operations import Operations  # noqa: E402
from tests.support.helpers import HOST_PYTHON  # noqa: E402
from tests.support.sshd import free_port, start_sshd  # noqa: E402
from tests.support.stackkit import (RESTARTS, RequestLoop, Stack, find_wheelhouse, get,  # noqa: E402
                                    missing_stack_tools, served_build)

LABELS = {"fifo": "fifo (the example's): graceful reload (r) through uwsgi's master FIFO, all workers at once",
          "chain": "chain: chain reload (c) through the master FIFO, one worker at a time, waiting for the last",
          "hup": "hup: supervisorctl signal HUP uwsgi (graceful, a Python start per call)",
          "plain": "plain (seed): supervisorctl restart uwsgi"}


class FirstAnswer:
    """Poll / every 10 ms from ``start()`` until a build other than ``old`` (or exactly ``want``) answers."""

    def __init__(self, url: str, old: str | None, want: str | None = None):
        self.url, self.old, self.want = url, old, want
        self.elapsed: float | None = None
        self.build: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set() and time.monotonic() - started < 120:
            status, body = get(self.url, timeout=10)
            build = served_build(body) if status == 200 else None
            if build and ((self.want and build == self.want) or (not self.want and build != self.old)):
                self.elapsed, self.build = time.monotonic() - started, build
                return
            time.sleep(0.01)

    def start(self) -> "FirstAnswer":
        """Start the clock and the polling."""
        self._thread.start()
        return self

    def wait(self, timeout: float = 60) -> "FirstAnswer":
        """Wait for the answer (or give up)."""
        self._thread.join(timeout)
        self._stop.set()
        return self


def ms(values: list[float]) -> str:
    """``median (min-max) ms``."""
    if not values:
        return "n/a"
    return f"median {statistics.median(values) * 1000:7.1f} ms  (min {min(values) * 1000:7.1f}, max {max(values) * 1000:7.1f})"


def trips_text(trips: list[int]) -> str:
    """Round trips per host: the remote scripts each run made (``3`` or ``3/4`` when runs differ)."""
    return "/".join(map(str, sorted(set(trips))))


def bench_mode(mode: str, runs: int, base: Path, server, key: Path, known: Path) -> dict:
    """Run the operations ``runs`` times on a fresh stack with restart ``mode``; return the figures."""
    stack = Stack(base / mode, free_port())
    stack.base.mkdir(parents=True)
    stack.write({"address": "127.0.0.1", "port": server.port, "user": LOGIN_USER[0], "key_file": str(key),
                 "known_hosts": str(known)}, python=HOST_PYTHON, wheelhouse=find_wheelhouse(),
                restart=mode, health_timeout=30)
    config = load_config(stack.config)
    host = config.hosts[0]
    stack.start()
    figures: dict = {"deploy": [], "deploy_trips": [], "deploy_http": [], "rollback": [], "rollback_trips": [],
                     "rollback_http": [], "builds": [], "builds_trips": []}
    try:
        ops = Operations(config)
        first = ops.deploy([host])
        ops.close()
        assert first.ok, first.to_dict()
        current = first.build_id
        assert stack.wait_for_build(current) == current, stack.log("uwsgi.log")
        loop = RequestLoop(stack.url, interval=0.02, max_seconds=900).start()
        for _ in range(runs):
            (stack.source / "version.txt").write_text(f"{time.time()}\n")  # new code, same requirements
            watch = FirstAnswer(stack.url, old=current).start()
            t0 = time.monotonic()
            ops = Operations(config)
            result = ops.deploy([host])
            figures["deploy"].append(time.monotonic() - t0)
            figures["deploy_trips"].append(ops.round_trips(host))
            ops.close()
            assert result.ok, result.to_dict()
            watch.wait()
            if watch.build == result.build_id:
                figures["deploy_http"].append(watch.elapsed)
            previous, current = current, result.build_id

            watch = FirstAnswer(stack.url, old=current, want=previous).start()
            t0 = time.monotonic()
            ops = Operations(config)
            result = ops.rollback([host], previous)  # the build the deploy replaced
            figures["rollback"].append(time.monotonic() - t0)
            figures["rollback_trips"].append(ops.round_trips(host))
            ops.close()
            assert result.ok and result.outcomes[host.name].current == previous, result.to_dict()
            watch.wait()
            if watch.elapsed is not None:
                figures["rollback_http"].append(watch.elapsed)
            current = previous

            t0 = time.monotonic()
            ops = Operations(config)
            states = ops.states([host])
            figures["builds"].append(time.monotonic() - t0)
            figures["builds_trips"].append(ops.round_trips(host))
            ops.close()
            assert states[host.name].current == current
        time.sleep(0.5)
        loop.stop()
        figures["requests"] = loop.total
        figures["failed"] = len(loop.failures)
        # "0 URLError: <urlopen error [Errno 111] Connection refused>" -> "URLError: ... Connection refused"
        kinds: dict[str, int] = {}
        for _, text in loop.failures:
            status, _, detail = text.partition(" ")
            kind = (f"HTTP {status}" if status != "0" else detail.split(":")[0] + ": " + detail.rsplit("]", 1)[-1].strip(" >"))[:70]
            kinds[kind] = kinds.get(kind, 0) + 1
        figures["failure_kinds"] = [f"{n} x {k}" for k, n in sorted(kinds.items())]
    finally:
        stack.shutdown()
    return figures


def main() -> int:
    """Set up sshd, run the modes asked for, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--restart", default="fifo,chain,hup,plain", help="the modes to "
                        "measure, comma separated (default: fifo,chain,hup,plain)")
    parser.add_argument("--user", default=getpass.getuser(), help="who the host logs in as (default: you)")
    args = parser.parse_args()
    LOGIN_USER[0] = args.user
    missing = missing_stack_tools()
    if missing:
        print("bench_stack: needs " + "; ".join(missing), file=sys.stderr)
        return 2
    base = Path(tempfile.mkdtemp(prefix="releasetui-bench-stack-"))
    key = base / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    server = start_sshd(base, 0, (base / "id_ed25519.pub").read_text())
    known = base / "known_hosts"
    known.write_text(server.known_hosts_line + "\n")
    modes = [mode for mode in args.restart.split(",") if mode]
    unknown = [mode for mode in modes if mode not in RESTARTS]
    if unknown:
        parser.error(f"unknown restart mode {unknown[0]!r}: choose from {', '.join(RESTARTS)}")
    print(f"example stack (supervisord + uwsgi 2 workers + Flask), 1 host over loopback sshd, {args.runs} runs, "
          f"user {LOGIN_USER[0]}, {os.cpu_count()} cores")
    try:
        for mode in modes:
            try:
                f = bench_mode(mode, args.runs, base, server, key, known)
            except AssertionError as exc:  # a restart mode that fails is a finding, not the end of the bench
                print(f"\n{LABELS[mode]}\n  FAILED: {str(exc)[:400]}")
                continue
            print(f"\n{LABELS[mode]}")
            print(f"  deploy (requirements unchanged)  {ms(f['deploy'])}  round trips/host: {trips_text(f['deploy_trips'])}")
            print(f"  deploy started -> new build HTTP {ms(f['deploy_http'])}")
            print(f"  rollback                         {ms(f['rollback'])}  round trips/host: {trips_text(f['rollback_trips'])}")
            print(f"  rollback started -> target HTTP  {ms(f['rollback_http'])}")
            print(f"  builds                           {ms(f['builds'])}  round trips/host: {trips_text(f['builds_trips'])}")
            print(f"  request loop (GET / every 20 ms): {f['requests']} requests, {f['failed']} failed"
                  + (f"  ({'; '.join(f['failure_kinds'])})" if f["failure_kinds"] else ""))
    finally:
        server.process.terminate()
        server.process.wait(timeout=10)
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
