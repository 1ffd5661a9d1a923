"""Real OpenSSH sshd servers on 127.0.0.1 for the tests and the benchmarks (no pytest here).

Each server gets a free port, its own ed25519 host key and an authorized_keys
file; nothing listens beyond loopback.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional


def find_tool(tool: str) -> Optional[str]:
    """The path of ``tool`` (also looked for in /usr/sbin, where sshd lives), or None."""
    return shutil.which(tool) or (f"/usr/sbin/{tool}" if os.path.exists(f"/usr/sbin/{tool}") else None)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class SSHServer:
    """One running sshd on 127.0.0.1 with its own host key."""

    port: int
    host_public_key: str
    process: subprocess.Popen
    log: Path

    @property
    def known_hosts_line(self) -> str:
        """The known_hosts entry for this server."""
        return f"[127.0.0.1]:{self.port} {self.host_public_key}"

    def stop(self) -> None:
        """Terminate the server (and, with it, the sessions it forked)."""
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()


def make_client_key(directory: Path, name: str = "id_ed25519") -> Path:
    """An unencrypted ed25519 client key pair in ``directory``; returns the private key's path."""
    key = directory / name
    subprocess.run([find_tool("ssh-keygen") or "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                   check=True)
    return key


def start_sshd(base: Path, index: int, client_pub: str, extra_config: str = "") -> SSHServer:
    """Start sshd number ``index`` under ``base`` accepting ``client_pub``; returns once it answers."""
    sshd = find_tool("sshd")
    if sshd is None:
        raise RuntimeError("sshd is not installed (Debian: openssh-server)")
    run_dir = Path("/run/sshd")
    if not run_dir.exists():  # sshd's privilege-separation directory
        run_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    work = base / f"sshd{index}"
    work.mkdir()
    host_key = work / "ssh_host_ed25519_key"
    subprocess.run([find_tool("ssh-keygen") or "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)],
                   check=True)
    authorized = work / "authorized_keys"
    authorized.write_text(client_pub)
    authorized.chmod(0o644)  # readable by a non-root test user too (StrictModes is off)
    port = free_port()
    config = work / "sshd_config"
    config.write_text(textwrap.dedent(f"""\
        ListenAddress 127.0.0.1
        Port {port}
        HostKey {host_key}
        PidFile none
        AuthorizedKeysFile {authorized}
        PasswordAuthentication no
        KbdInteractiveAuthentication no
        PubkeyAuthentication yes
        PermitRootLogin prohibit-password
        UsePAM no
        StrictModes no
        MaxStartups 200
        MaxSessions 100
        LogLevel ERROR
        Subsystem sftp internal-sftp
        """) + extra_config)
    log = work / "sshd.log"
    proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL,
                            stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited: {log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                if sock.recv(4).startswith(b"SSH-"):
                    break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        raise RuntimeError(f"sshd did not start on port {port}: {log.read_text()}")
    public = (work / "ssh_host_ed25519_key.pub").read_text().split()
    return SSHServer(port=port, host_public_key=f"{public[0]} {public[1]}", process=proc, log=log)
