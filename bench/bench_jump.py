#!/usr/bin/env python3
"""What a jump host costs: deploy, rollback and builds direct and through a jump host, at 0 and at WAN latency.

Two loopback sshd servers (a jump host and a target); the latency-adding proxy (bench/latency_proxy.py) sits
on the client's side of each route: in front of the target for the direct route, in front of the jump host
for the jump route (the jump host reaches the target over loopback, as a bastion in the hosts' own network
would). Each operation runs with a fresh connection (like one CLI run). Prints medians and the round trips
of latency each paid: (time at D ms - time at 0 ms) / D.

    python bench/bench_jump.py [--runs 5] [--hosts 1] [--rtt-ms 60]

Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import getpass
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from latency_proxy import LatencyProxy  # noqa: E402

from releasetui.config import load_config  # noqa: E402
from releasetui.demo import build_wheel  # noqa: E402
from releasetui.executors import ExecutorPool  # noqa: E402
from releasetui.operations import Operations  # noqa: E402
from tests.support.sshd import make_client_key, start_sshd  # noqa: E402

HOST_PYTHON = sys.executable


def write_config(base: Path, name: str, hosts: int, address_port: int, jump_port: int | None, key: Path,
                 known: Path, app: Path, house: Path) -> Path:
    jump = f', jump: "127.0.0.1:{jump_port}"' if jump_port else ""
    lines = ["project: bench", f"source: {app}", f"python: {HOST_PYTHON}",
             f"pip_args: [--no-index, --find-links, {house}]", "keep_builds: 5", "restart: 'true'",
             f"ssh: {{user: {getpass.getuser()}, key_file: {key}, known_hosts: {known}}}", "hosts:"]
    for i in range(hosts):
        lines.append(f"  web{i + 1}: {{address: 127.0.0.1, port: {address_port}, root: {base / name / f'root{i}'}{jump}}}")
    path = base / f"{name}.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


def measure(config_path: Path, app: Path, runs: int) -> dict[str, list[float]]:
    config = load_config(config_path)
    hosts = config.hosts
    first = Operations(config).deploy(hosts)
    assert first.ok, {h: o.message for h, o in first.outcomes.items()}
    figures: dict[str, list[float]] = {"deploy": [], "rollback": [], "builds": [], "trips": []}
    for _ in range(runs):
        time.sleep(max(0.0, 1.05 - (time.time() % 1)))  # one build id per second
        (app / "app.py").write_text(f"VERSION = {time.time()}\n")
        for op in ("deploy", "rollback", "builds"):
            pool = ExecutorPool(connect_timeout=config.connect_timeout)
            ops = Operations(config, pool=pool)
            started = time.perf_counter()
            result = ops.deploy(hosts) if op == "deploy" else ops.rollback(hosts) if op == "rollback" else ops.states(hosts)
            figures[op].append(time.perf_counter() - started)
            if op != "builds":
                assert result.ok, {h: o.message for h, o in result.outcomes.items()}
            if op == "deploy":
                figures["trips"].append(ops.round_trips(hosts[0]))
            ops.close()
            pool.close()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--hosts", type=int, default=1)
    parser.add_argument("--rtt-ms", type=float, default=60.0)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="releasetui-bench-jump-"))
    key = make_client_key(base)
    pub = (base / "id_ed25519.pub").read_text()
    jump, target = start_sshd(base, 0, pub), start_sshd(base, 1, pub)
    delay = args.rtt_ms / 2000
    slow = LatencyProxy([target.port, jump.port], delay).start()
    fast = LatencyProxy([target.port, jump.port], 0.0).start()
    keys = {target.port: target.host_public_key, jump.port: jump.host_public_key}
    known = base / "known_hosts"
    known.write_text("".join(f"[127.0.0.1]:{port} {keys[t]}\n" for proxy in (slow, fast)
                             for port, t in zip(proxy.ports, proxy.targets)) + target.known_hosts_line + "\n")
    house = base / "wheelhouse"
    build_wheel(house, "tinylib", "1.0")
    app = base / "app"
    (app / "static").mkdir(parents=True)
    (app / "requirements.txt").write_text("tinylib==1.0\n")
    for n in range(200):
        (app / "static" / f"file{n}.css").write_text("body { color: red; }\n" * 50)
    (app / "app.py").write_text("VERSION = 0\n")
    try:
        results = {}
        for route in ("direct", "jump"):
            for label, proxy in (("0", fast), (f"{args.rtt_ms:g}", slow)):
                if route == "direct":
                    path = write_config(base, f"{route}{label}", args.hosts, proxy.port_for(target.port), None,
                                        key, known, app, house)
                else:
                    path = write_config(base, f"{route}{label}", args.hosts, target.port, proxy.port_for(jump.port),
                                        key, known, app, house)
                results[route, label] = measure(path, app, args.runs)
        rtt = args.rtt_ms / 1000
        print(f"bench_jump: {args.hosts} host(s), {args.runs} runs, fresh connection per operation, "
              f"{args.rtt_ms:g} ms round trip on the client's leg")
        for op in ("deploy", "rollback", "builds"):
            for route in ("direct", "jump"):
                zero = statistics.median(results[route, "0"][op])
                wan = statistics.median(results[route, f"{args.rtt_ms:g}"][op])
                print(f"  {op:<8} {route:<6} 0 ms: {zero * 1000:7.1f} ms   {args.rtt_ms:g} ms: {wan * 1000:7.1f} ms"
                      f"   round trips of latency: {(wan - zero) / rtt:5.1f}")
        print(f"  scripts per host (deploy): direct {sorted(set(results['direct', '0']['trips']))}, "
              f"jump {sorted(set(results['jump', '0']['trips']))}")
    finally:
        slow.stop()
        fast.stop()
        jump.stop()
        target.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
