"""Opening one SSH connection the way every executor does: the host key checked against known_hosts (never
trusted on first use), ~/.ssh/config honoured, TCP_NODELAY set (a round trip: 47 ms without, 3.5 ms with).

paramiko directly (no Fabric: its Connection built an Invoke config and parsed the ssh config files again for
every host, and importing Fabric and Invoke cost more than paramiko itself). What Fabric took from the ssh config
is taken here the same way: HostName, User, Port, IdentityFile (``~/.ssh/config``, then ``/etc/ssh/ssh_config``).
"""

from __future__ import annotations

import os
import re
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Union

from ..models import HostKeyRefused, HostUnreachable
from . import preconnect

_MATCH_EXEC = re.compile(rb"^[ \t]*match\b[^\n]*\bexec\b", re.IGNORECASE | re.MULTILINE)
_IMPORT_LOCK = threading.Lock()
_SSH_CONFIGS: dict = {}
_KNOWN_HOSTS: dict = {}
_KNOWN_HOSTS_LOCK = threading.Lock()
_CLIENT_KEYS: dict = {}
# Ciphers offered first (paramiko's own order otherwise): AES-GCM authenticates each packet inside the
# cipher (one call into OpenSSL), where aes-ctr + hmac-sha2 has paramiko compare every packet's MAC byte by
# byte in Python (util.constant_time_bytes_eq, cProfile's top entry in a fleet deploy).
# Only the order changes: a server without GCM still gets paramiko's usual ciphers and MACs.
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


@dataclass(frozen=True)
class Hop:
    """One jump host on the way to a host, resolved from hosts.yml and the ssh config.

    ``name`` is what was written (an ssh config alias or an address) and what the connection is given (so the alias's
    HostName applies); ``hostname``/``port`` are where it is, the name its key is looked up under in known_hosts.
    """

    name: str
    hostname: str
    port: int
    user: Optional[str]
    key_files: tuple[Path, ...]
    known_hosts: Path

    @property
    def label(self) -> str:
        """``jump host NAME (HOSTNAME:PORT)`` for messages."""
        where = f"{self.hostname}:{self.port}"
        return f"jump host {self.name} ({where})" if self.name != self.hostname else f"jump host {where}"


def _config_files() -> list[tuple[str, bytes]]:
    """``(path, text)`` of each ssh config file there is, the user's first."""
    found = []
    for name in preconnect.SSH_CONFIG_FILES:
        path = os.path.expanduser(name)
        try:
            with open(path, "rb") as handle:
                found.append((path, handle.read()))
        except OSError:
            continue
    return found


def load_paramiko(version_stand_in: bool = False):
    """``paramiko``, imported once (under a lock: executors connect from many threads at once).

    paramiko's ``config`` module imports Invoke when it is installed, only to run ``Match exec`` lines: ~40 ms
    (Invoke pulls in asyncio and unittest.mock) on every CLI start. When no ssh config file has such a line,
    Invoke is kept out of that import (and importable as usual afterwards).  ``version_stand_in``: see
    :class:`_VersionOnly`; only where no other thread may import meanwhile (the CLI's main thread, at its start).
    """
    with _IMPORT_LOCK:
        if "paramiko" in sys.modules:
            return sys.modules["paramiko"]
        block = "invoke" not in sys.modules and not any(_MATCH_EXEC.search(text) for _, text in _config_files())
        if block:
            sys.modules["invoke"] = None  # type: ignore[assignment]  # `import invoke` raises ImportError
        versions = _VersionOnly.install() if version_stand_in else None
        try:
            import paramiko
            from . import base  # noqa: F401  (it keeps paramiko's logging off the user's terminal)
        finally:
            if block and sys.modules.get("invoke", False) is None:
                del sys.modules["invoke"]
            if versions is not None:
                versions.remove()
        return paramiko


class _VersionOnly:
    """Stands in for ``importlib.metadata`` while paramiko is imported: its ``__init__`` asks that module for its own
    version, and importing it (with ``email``, ``zipfile``, ``csv``...) and scanning ``sys.path`` cost ~9 ms of every
    CLI start.  The version is read from the ``paramiko-X.Y.Z.dist-info`` folder beside the package instead; anything
    else asked of it, or no such folder, goes to the real module."""

    @classmethod
    def install(cls) -> Optional["_VersionOnly"]:
        """Put the stand-in in place, unless the real module is already imported (then it costs nothing)."""
        if "importlib.metadata" in sys.modules:
            return None
        import types
        stand_in = cls()
        module = types.ModuleType("importlib.metadata")
        module.version = stand_in.version  # type: ignore[attr-defined]
        module.__getattr__ = stand_in.real_attribute  # type: ignore[attr-defined]  # PEP 562: the rest is real
        stand_in.module = module
        sys.modules["importlib.metadata"] = module
        return stand_in

    def remove(self) -> None:
        """Take the stand-in away: a later ``import importlib.metadata`` imports the real one."""
        if sys.modules.get("importlib.metadata") is self.module:
            del sys.modules["importlib.metadata"]

    def real(self):
        """The real ``importlib.metadata``."""
        self.remove()
        import importlib.metadata
        return importlib.metadata

    def real_attribute(self, name: str):
        """Any other name, from the real module."""
        return getattr(self.real(), name)

    def version(self, name: str) -> str:
        """``name``'s version from its dist-info folder on ``sys.path``, else the real module's answer."""
        prefix = name.replace("-", "_") + "-"
        for entry in sys.path:
            if not os.path.isdir(os.path.join(entry or ".", name)):
                continue
            for found in os.listdir(entry or "."):
                if found.startswith(prefix) and found.endswith(".dist-info"):
                    return found[len(prefix):-len(".dist-info")]
        return self.real().version(name)


def cheap_ciphers_first(transport) -> None:
    """Offer :data:`PREFERRED_CIPHERS` (those this paramiko knows) ahead of paramiko's usual order, on a
    transport not yet started; every cipher it offered before is still offered, in its order."""
    options = transport.get_security_options()
    known = [name for name in PREFERRED_CIPHERS if name in options.ciphers]
    options.ciphers = tuple(known) + tuple(name for name in options.ciphers if name not in known)


def _transport(sock, **kwargs):
    """paramiko's Transport for ``SSHClient.connect``, offering :data:`PREFERRED_CIPHERS` first."""
    transport = load_paramiko().Transport(sock, **kwargs)
    cheap_ciphers_first(transport)
    return transport


def ssh_config_lookup(name: str) -> dict:
    """The ssh config's options for ``name`` (lower-case keys; ``hostname`` always set), as paramiko reads them.

    The files are parsed once per version of them, not once per host.
    """
    paramiko = load_paramiko()
    files = _config_files()
    key = tuple(files)
    with _KNOWN_HOSTS_LOCK:
        config = _SSH_CONFIGS.get(key)
    if config is None:
        config = paramiko.SSHConfig()
        for path, text in files:
            try:
                config.parse(text.decode("utf-8", "replace").splitlines(keepends=True))
            except Exception as exc:  # paramiko.ConfigParseError and whatever a malformed line raises
                raise HostUnreachable(f"cannot read the ssh config {path}: {exc}") from None
        with _KNOWN_HOSTS_LOCK:
            _SSH_CONFIGS.clear()  # only the files' current version is ever used again
            _SSH_CONFIGS[key] = config
    try:
        return config.lookup(name)
    except Exception as exc:  # a failing Match exec, CanonicalizeHostname that finds nothing...
        raise HostUnreachable(f"cannot use the ssh config for {name}: {exc}") from None


def _known_host_keys(path: Path):
    """The parsed known_hosts file, shared by every connection while the file is unchanged.

    paramiko would parse the whole file again for each host: with N hosts and an N-line file an
    operation costs N x N (0.44 s of CPU at 100 hosts, 2.3 s at 200). Connections only read it
    (RejectPolicy never adds a key), so one parsed copy serves them all.
    """
    paramiko = load_paramiko()
    try:
        info = path.stat()
    except OSError as exc:
        raise HostUnreachable(f"cannot read known_hosts {path}: {exc.strerror or exc}") from None
    key = (str(path), info.st_mtime_ns, info.st_size)
    with _KNOWN_HOSTS_LOCK:
        keys = _KNOWN_HOSTS.get(key)
        if keys is None:
            keys = paramiko.HostKeys()
            try:
                keys.load(str(path))
            except (OSError, paramiko.SSHException, ValueError) as exc:
                raise HostUnreachable(f"cannot read known_hosts {path}: {exc}") from None
            if len(_KNOWN_HOSTS) > 16:  # old versions of edited files
                _KNOWN_HOSTS.clear()
            _KNOWN_HOSTS[key] = keys
        return keys


def _client_key(path: str):
    """The unencrypted private key at ``path``, parsed once per version of the file and shared by every connection.

    paramiko would read and parse the file for each connection, trying each key type in turn (an ed25519 key
    failed as RSA, then as ECDSA, first): three reads and parses per host. None when paramiko had better try
    the file itself, as it did before (missing, encrypted, a certificate beside it, a type it cannot load).
    """
    paramiko = load_paramiko()
    try:
        info = os.stat(os.path.expanduser(path))
        if path.endswith("-cert.pub") or os.path.exists(os.path.expanduser(path) + "-cert.pub"):
            return None
    except OSError:
        return None
    key = (path, info.st_mtime_ns, info.st_size, info.st_ino)
    with _KNOWN_HOSTS_LOCK:
        found = _CLIENT_KEYS.get(key)
    if found is None:
        try:
            found = paramiko.PKey.from_path(path)
        except Exception:  # encrypted (no passphrase here), unknown type, unreadable: paramiko's own way decides
            return None
        with _KNOWN_HOSTS_LOCK:
            if len(_CLIENT_KEYS) > 16:  # old versions of edited files
                _CLIENT_KEYS.clear()
            _CLIENT_KEYS[key] = found
    return found


DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"


class SSHTarget:
    """One SSH connection to ``address``, its ssh config applied; :func:`open_ssh` opens it.

    ``host``/``port``/``user`` are where and as whom (HostName, Port, User from the ssh config when hosts.yml
    does not say); ``ssh_config`` is the config's entry for ``address``; ``client``/``transport`` are
    paramiko's once open.
    """

    def __init__(self, address: str, user: Optional[str], port: Optional[int], key_files: list[Path],
                 timeout: float):
        import getpass

        paramiko = load_paramiko()
        self.ssh_config = ssh_config_lookup(address)
        self.host = self.ssh_config.get("hostname") or address
        try:
            self.port = port or int(self.ssh_config.get("port", 22))
        except ValueError:
            raise HostUnreachable(f"cannot use the ssh config for {address}: Port "
                                  f"{self.ssh_config.get('port')!r} is not a number") from None
        self.user = user or self.ssh_config.get("user") or getpass.getuser()
        keys = [str(path) for path in key_files] + list(self.ssh_config.get("identityfile") or ())
        self.connect_kwargs: dict = {"key_filename": keys} if keys else {}
        self.timeout = timeout
        self.client = paramiko.SSHClient()
        self.transport = None

    @property
    def is_connected(self) -> bool:
        """Open and not lost."""
        return self.transport is not None and self.transport.is_active()

    def open(self) -> None:
        """Connect and authenticate (keys given, then ~/.ssh/id_* and the agent, as ssh does)."""
        kwargs = dict(self.connect_kwargs)
        files = kwargs.get("key_filename") or []
        key = _client_key(files[0]) if files else None
        if key is not None:  # tried first, as its file was; the other files, the agent and ~/.ssh/id_* after it
            kwargs["pkey"], kwargs["key_filename"] = key, files[1:]
        self.client.connect(hostname=self.host, port=self.port, username=self.user, timeout=self.timeout,
                            transport_factory=_transport, **kwargs)
        self.transport = self.client.get_transport()

    def close(self) -> None:
        """Close the connection (and every channel on it)."""
        self.client.close()
        self.transport = None


def ssh_connection(address: str, user: Optional[str], port: Optional[int],
                   key_files: Union[Path, Iterable[Path], None], timeout: float, label: Optional[str] = None):
    """An :class:`SSHTarget` for ``address``, not opened yet, the ssh config applied (HostName, User, Port,
    IdentityFile). No ProxyJump is followed here: jump hosts are opened by :class:`GatewayPool`, their keys
    checked like any host's."""
    files = [key_files] if isinstance(key_files, Path) else list(key_files or ())
    for key_file in files:
        if not key_file.is_file():
            raise HostUnreachable(f"key file {key_file}{' for ' + label if label else ''} not found")
    return SSHTarget(address, user, port, files, timeout)


def open_ssh(conn: SSHTarget, known_hosts: Path, timeout: float, sock=None, behind: Optional["Hop"] = None,
             label: Optional[str] = None) -> SSHTarget:
    """Open ``conn`` (from :func:`ssh_connection`), its host key checked against ``known_hosts``; returns it.

    ``sock`` is an already-open channel to the host through ``behind`` (its last jump host); without one a TCP
    socket with TCP_NODELAY is opened here (paramiko never sets it: each round trip would wait on Nagle, ~47 ms
    vs ~3.5 ms). ``label`` names the host in messages (default ``address:port``).
    """
    paramiko = load_paramiko()
    where = f"{conn.host}:{conn.port}"
    label = label or where
    through = f" through {behind.label}" if behind is not None else ""
    client = conn.client
    # paramiko's default policy would refuse too; say so explicitly: an unknown key is never trusted.
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    if known_hosts.is_file():
        client._host_keys = _known_host_keys(known_hosts)  # parsed once per file version, not once per host
    if sock is None:
        try:  # opened while the CLI was importing, if it was; else now
            sock = preconnect.take(conn.host, conn.port, timeout) or \
                socket.create_connection((conn.host, conn.port), timeout=timeout)
        except OSError as exc:
            raise HostUnreachable(f"cannot connect to {label}: {exc.strerror or exc}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.connect_kwargs["sock"] = sock
    # paramiko waits 15 s for the server's banner whatever the timeout: a host (or jump host) that accepts the
    # connection and then says nothing would hold every host behind it that long.
    conn.connect_kwargs.setdefault("banner_timeout", timeout)
    try:
        conn.open()
    except paramiko.BadHostKeyException as exc:
        sock.close()
        raise HostKeyRefused(
            f"host key for {label} CHANGED (got {exc.key.get_name()} "
            f"{exc.key.fingerprint}); refusing to connect. Check {known_hosts}.") from None
    except paramiko.SSHException as exc:
        sock.close()
        message = str(exc)
        if "not found in known_hosts" in message:
            scan = f"ssh-keyscan -p {conn.port} {conn.host}"
            hint = (f"{scan}, run on {behind.hostname}," if behind is not None else scan)
            raise HostKeyRefused(
                f"host key for {label}{through} is not in {known_hosts}; refusing to connect "
                f"(add it with: {hint} >> {known_hosts}, after checking it)") from None
        if message.startswith(("No existing session", "Error reading SSH protocol banner")):
            raise HostUnreachable(f"{label}{through} did not answer as an SSH server within {timeout:g}s "
                                  f"({message})") from None
        if isinstance(exc, paramiko.AuthenticationException):
            raise HostUnreachable(f"authentication failed for {conn.user}@{label}{through}: {message}") from None
        raise HostUnreachable(f"SSH error with {label}{through}: {message}") from None
    except (OSError, EOFError) as exc:
        sock.close()
        raise HostUnreachable(f"cannot connect to {label}{through}: {str(exc) or type(exc).__name__}") from None
    conn.transport.set_keepalive(30)  # the TUI keeps it open for hours: keep NAT and firewalls from dropping it
    return conn


def open_connection(address: str, user: Optional[str], port: Optional[int],
                    key_file: Union[Path, Iterable[Path], None], known_hosts: Path, timeout: float, sock=None,
                    label: Optional[str] = None, behind: Optional["Hop"] = None):
    """A connected, authenticated :class:`SSHTarget` whose host key was checked against ``known_hosts``.

    (:func:`ssh_connection` then :func:`open_ssh`.) No ProxyJump is followed here: see :class:`SSHExecutor`.
    """
    conn = ssh_connection(address, user, port, key_file, timeout, label)
    return open_ssh(conn, known_hosts, timeout, sock, behind=behind, label=label)
