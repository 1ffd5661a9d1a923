#!/usr/bin/env python3
"""The CLI's start: time from exec to its first connect, and what it imports on the way.

    python bench/startup.py                    # rollback and deploy, 15 runs each
    python bench/startup.py --runs 30 --importtime

Both as a checkout installed with ``pip install -e`` runs and as a wheel
installs it (a copy in a venv's site-packages: no editable finder at start).

No sshd, no strace: a plain TCP listener on 127.0.0.1 stands in for the host.
Each run spawns ``python -m releasetui --headless ACTION --json`` against a
hosts.yml naming that listener, and takes the time from just before the spawn
to the moment the listener accepts the connection (the client's SYN has then
arrived and been answered by the kernel: the first connect).  The listener then
closes the connection, the CLI exits "unreachable", and the next run starts.
Nothing leaves 127.0.0.1.

Also shown: the same for ``python -c pass`` (the interpreter's own start, the
floor), and with ``--importtime`` the heaviest imports of one run
(``python -X importtime``, cumulative microseconds).  The machine is shared:
run it quiet, and read medians.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ACTIONS = ("rollback", "deploy")
TICK = os.sysconf("SC_CLK_TCK")


def write_config(directory: Path, port: int) -> Path:
    """A one-host hosts.yml pointing at the listener (the key and known_hosts are never read: no SSH happens)."""
    app = directory / "app"
    app.mkdir(exist_ok=True)
    (app / "app.py").write_text("VERSION = 1\n")
    (app / "requirements.txt").write_text("")
    path = directory / "hosts.yml"
    path.write_text("project: startup\n"
                    f"source: {app}\n"
                    "restart: 'true'\n"
                    f"ssh: {{user: nobody, key_file: {directory / 'id_ed25519'}, known_hosts: {directory / 'kh'}}}\n"
                    "hosts:\n"
                    f"  web1: {{address: 127.0.0.1, port: {port}, root: /nonexistent/startup}}\n")
    (directory / "id_ed25519").write_text("")
    (directory / "kh").write_text("")
    return path


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def installed_python(directory: Path) -> Path:
    """A venv where releasetui is installed as pip installs a wheel (a copy in site-packages, with its bytecode),
    its dependencies found through a ``.pth`` line naming this interpreter's site-packages.  A checkout installed
    with ``pip install -e`` pays ~15 ms more at every start: ``site`` imports the editable install's finder."""
    import shutil
    import sysconfig
    venv = directory / "installed"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    shutil.copytree(REPO / "releasetui", purelib / "releasetui", ignore=shutil.ignore_patterns("__pycache__"))
    (purelib / "releasetui-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(python), "-m", "compileall", "-q", str(purelib / "releasetui")], check=True,
                   stdout=subprocess.DEVNULL)
    return python


def time_to_connect(argv: list[str], listener: socket.socket, env: dict, cwd: Path = REPO) -> tuple[float, float]:
    """(seconds from spawning ``argv`` to the listener accepting its first connection, its CPU seconds by then).

    The CPU figure is what the machine being busy does not inflate much: read it when the wall time is noisy.
    """
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env, cwd=cwd)
    listener.settimeout(30)
    try:
        conn, _ = listener.accept()
    except socket.timeout:
        proc.kill()
        proc.wait()
        raise SystemExit(f"{' '.join(argv)}: no connection within 30 s")
    took = time.perf_counter() - started
    cpu = cpu_of(proc.pid)
    conn.close()
    proc.wait(timeout=60)
    return took, cpu


def time_to_exit(argv: list[str], env: dict) -> float:
    """Seconds from spawning ``argv`` to its exit (for the interpreter's floor, ``python -c pass``)."""
    started = time.perf_counter()
    subprocess.run(argv, stdin=subprocess.DEVNULL, env=env, check=True)
    return time.perf_counter() - started


def importtime(argv: list[str], env: dict, listener: socket.socket, top: int) -> list[tuple[int, str]]:
    """The ``top`` heaviest imports (cumulative us, module) of one run of ``argv`` under ``-X importtime``."""
    proc = subprocess.Popen([argv[0], "-X", "importtime", *argv[1:]], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    conn, _ = listener.accept()
    conn.close()
    _, err = proc.communicate(timeout=60)
    rows = []
    for line in err.splitlines():
        if line.startswith("import time:") and "|" in line and "cumulative" not in line:
            _, cumulative, name = line.split("|", 2)
            rows.append((int(cumulative), name.rstrip()))
    return sorted(rows, reverse=True)[:top], sum(int(line.split("|")[0].split(":")[1]) for line in err.splitlines()
                                                if line.startswith("import time:") and "self" not in line)


def summary(name: str, times: list[float]) -> str:
    """One line: median / min / max in milliseconds."""
    return (f"  {name:<34} median {statistics.median(times) * 1000:6.1f} ms   min {min(times) * 1000:6.1f}   "
            f"max {max(times) * 1000:6.1f}")


def main() -> int:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--importtime", action="store_true", help="also list the heaviest imports of one run")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    env.pop("RELEASETUI_CONFIG", None)
    # An installed package has its bytecode (pip compiles it); a shell with PYTHONDONTWRITEBYTECODE=1 would make
    # every run compile releasetui from source (~60 ms more), which no user pays.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "releasetui")], env=env,
                   stdout=subprocess.DEVNULL, check=True)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    with tempfile.TemporaryDirectory(prefix="releasetui-startup-") as tmp:
        config = write_config(Path(tmp), listener.getsockname()[1])
        floor = [time_to_exit([sys.executable, "-c", "pass"], env) for _ in range(args.runs)]
        print(f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, {args.runs} runs each; "
              f"load average {os.getloadavg()[0]:.2f}")
        print(summary("python -c pass (the floor)", floor))
        installed = installed_python(Path(tmp))
        bare = {key: value for key, value in env.items() if key != "PYTHONPATH"}
        for label, python, run_env, cwd in (("checkout (pip install -e)", Path(sys.executable), env, REPO),
                                            ("installed (as from a wheel)", installed, bare, Path(tmp))):
            print(f"{label}:")
            for action in ACTIONS:
                argv = [str(python), "-m", "releasetui", "--config", str(config), "--headless", action, "--json"]
                runs = [time_to_connect(argv, listener, run_env, cwd) for _ in range(args.runs)]
                print(summary(f"{action}: exec -> first connect", [wall for wall, _ in runs]))
                print(summary(f"{action}: its CPU by then", [cpu for _, cpu in runs]))
        if args.importtime:
            argv = [sys.executable, "-m", "releasetui", "--config", str(config), "--headless", "rollback", "--json"]
            rows, total = importtime(argv, env, listener, args.top)
            print(f"\nrollback's imports (python -X importtime): {total / 1000:.1f} ms in all (self times summed); "
                  "heaviest, cumulative:")
            for cumulative, name in rows:
                print(f"  {cumulative / 1000:7.1f} ms  {name}")
    listener.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
