#!/usr/bin/env python3
"""``wheels: ship`` against ``wheels: host``: a deploy whose requirements changed, to N hosts at a round trip.

Run from the repository root, as root, after ``pip wheel -w .wheelhouse -r examples/flask-app/requirements.txt``
(the wheels the tests' example stack uses):

    python bench/bench_wheels.py                       # --hosts 1,20 --rtt 60 --runs 2
    python bench/bench_wheels.py --hosts 1,20,50 --rtt 60 --runs 1 --json out.json

The world is bench/fleet.py's (one sshd, a latency proxy with a port per host, a 200-file app), with the app's
requirements Flask and its 7 pinned dependencies from ``.wheelhouse`` (``--no-index``: nothing leaves the
machine). Every measured deploy has requirements no host has seen (a comment line changes their digest), so every
host builds a new venv: with ``wheels: host`` each host runs ``pip wheel`` then ``pip install``; with ``ship`` this
machine runs one ``pip wheel`` (its time is in the figure) and each host only ``pip install --no-index`` from
the wheelhouse it was sent. Per mode and N: the wall time, the hosts' CPU (sshd and all it ran) per host, the
client's CPU, and the bound the machine allows (max(one host's wall, all CPU used / cores)). Also, once: what
``python -m venv`` + ``pip install --no-index`` of the same requirements takes on this machine (the reference
of issue 16's goals).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fleet import CORES, Fleet, Runner, float_list, int_list  # noqa: E402
from bench.common import REPO, host_python  # noqa: E402
from tests.support.helpers import find_uv  # noqa: E402
from releasetui.config import load_config  # noqa: E402


def flask_requirements(wheelhouse: Path) -> str:
    """``name==version`` of every wheel in ``wheelhouse`` (Flask and its dependencies), one a line."""
    pins = []
    for wheel in sorted(wheelhouse.glob("*.whl")):
        name, version = wheel.name.split("-")[:2]
        pins.append(f"{name}=={version}")
    return "\n".join(pins) + "\n"


def use_flask(fleet: Fleet, source: Path) -> str:
    """Copy the wheels into the fleet's wheelhouse (the bench user reads it) and return the pinned requirements."""
    for wheel in source.glob("*.whl"):
        shutil.copy(wheel, fleet.wheelhouse / wheel.name)
    return flask_requirements(source)


def uv_path() -> str:
    """The uv the tests use (:func:`tests.support.helpers.find_uv`); the bench stops without one."""
    found = find_uv()
    if not found:
        raise SystemExit("no uv: pip install uv (or leave +uv out of --modes)")
    return found


def with_wheels(config, mode: str):
    """``config`` with ``wheels: host|ship`` at the top level, and ``installer: uv`` for a ``+uv`` mode."""
    wheels, _, installer = mode.partition("+")
    lines = f"wheels: {wheels}\n" + (f"installer: uv\nuv: {uv_path()}\n" if installer == "uv" else "installer: pip\n")
    text = config.path.read_text().replace("hosts:\n", lines + "hosts:\n", 1)
    path = config.path.with_name(config.path.stem + f"-{mode.replace('+', '-')}.yml")
    path.write_text(text)
    return load_config(path)


def reference(requirements: str, wheelhouse: Path, python: str) -> tuple[float, float]:
    """Seconds of ``python -m venv`` + ``pip install --no-index --find-links`` of ``requirements`` here: wall, CPU."""
    with tempfile.TemporaryDirectory() as tmp:
        req = Path(tmp) / "requirements.txt"
        req.write_text(requirements)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run([python, "-m", "venv", f"{tmp}/v"], check=True)
        subprocess.run([f"{tmp}/v/bin/python", "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "--no-index", "--find-links", str(wheelhouse), "-r", str(req)], check=True)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int_list, default=[1, 20], help="fleet sizes (default 1,20)")
    parser.add_argument("--rtt", type=float_list, default=[60.0], help="round trips in ms (default 60)")
    parser.add_argument("--runs", type=int, default=2, help="measured deploys per mode and size (default 2)")
    parser.add_argument("--wheels", type=Path, default=REPO / ".wheelhouse", help="the Flask wheelhouse")
    parser.add_argument("--modes", default="host,ship,host+uv,ship+uv",
                        help="wheels mode, +uv for installer uv (default host,ship,host+uv,ship+uv)")
    parser.add_argument("--json", type=Path, help="write every sample here")
    parser.add_argument("--user", default="releasetui-bench" if os.geteuid() == 0 else os.environ.get("USER", ""))
    args = parser.parse_args()
    if not any(args.wheels.glob("flask-*.whl")):
        print(f"no Flask wheel in {args.wheels}: pip wheel -w {args.wheels} -r examples/flask-app/requirements.txt")
        return 2
    fleet = Fleet(max(args.hosts), args.user, 200)
    os.environ["XDG_CACHE_HOME"] = str(fleet.base / "client-cache")   # this run's wheelhouses only
    rows = []
    try:
        requirements = use_flask(fleet, args.wheels)
        ref, ref_cpu = reference(requirements, fleet.wheelhouse, host_python(args.user))
        print(f"python -m venv + pip install --no-index of {requirements.count(chr(10))} packages: {ref:.2f} s "
              f"({ref_cpu:.2f} s CPU)")
        runner = Runner(fleet)
        serial = 0
        for rtt in args.rtt:
            fleet.use_rtt(rtt, handshake=True)
            for n in args.hosts:
                base = fleet.config(n, f"wheels-{n}-{rtt:g}")
                for mode in args.modes.split(","):
                    config = with_wheels(base, mode)
                    for _ in range(args.runs):
                        serial += 1
                        (fleet.app / "requirements.txt").write_text(requirements + f"# run {serial}\n")
                        _, sample = runner.deploy(config, list(config.hosts))
                        cpu = sample.cpu_self + sample.cpu_children + sample.cpu_server + sample.cpu_proxy
                        rows.append({"mode": mode, "hosts": n, "rtt_ms": rtt, "wall": sample.wall,
                                     "host_cpu_per_host": sample.cpu_server / n, "client_cpu": sample.cpu_self,
                                     "client_children_cpu": sample.cpu_children, "cpu_over_cores": cpu / CORES,
                                     "round_trips": sample.round_trips})
                        print(f"  {mode:4} {n:3} host(s) at {rtt:g} ms: {sample.wall:6.2f} s, hosts' CPU "
                              f"{sample.cpu_server / n:.2f} s/host, client CPU {sample.cpu_self:.2f} s "
                              f"(+{sample.cpu_children:.2f} s in its children), all CPU / cores {cpu / CORES:.2f} s")
        print("\nmedians:")
        for key in sorted({(r["rtt_ms"], r["hosts"], r["mode"]) for r in rows}):
            mine = [r for r in rows if (r["rtt_ms"], r["hosts"], r["mode"]) == key]
            wall = statistics.median(r["wall"] for r in mine)
            cpu = statistics.median(r["host_cpu_per_host"] for r in mine)
            one = [r["wall"] for r in rows if (r["rtt_ms"], r["hosts"], r["mode"]) == (key[0], 1, key[2])]
            bound = max(statistics.median(one) if one else 0.0, statistics.median(r["cpu_over_cores"] for r in mine))
            print(f"  {key[2]:4} {key[1]:3} host(s) at {key[0]:g} ms: {wall:6.2f} s ({wall / ref:.2f} x venv+pip; "
                  f"bound {bound:.2f} s), hosts' CPU {cpu:.2f} s/host ({cpu / ref_cpu:.2f} x venv+pip's CPU)")
        if args.json:
            args.json.write_text(json.dumps({"reference": ref, "reference_cpu": ref_cpu, "rows": rows}, indent=1))
    finally:
        fleet.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
