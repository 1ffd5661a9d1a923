"""Load and validate ``hosts.yml``.

Every mistake becomes one :class:`ConfigError` that names the file, the line
and the key, so the CLI can print a single line and exit 2 instead of a
traceback.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

import yaml

CONFIG_ENV_VAR = "RELEASETUI_CONFIG"
DEFAULT_CONFIG_NAME = "hosts.yml"
TRANSPORTS = ("ssh", "local")
HOST_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
PROJECT_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class ConfigError(Exception):
    """A problem with the configuration file, located by file, line and key."""

    def __init__(self, path: Union[str, Path, None], line: Optional[int], key: Optional[str], message: str):
        self.path = str(path) if path is not None else "<config>"
        self.line = line
        self.key = key
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


@dataclass(frozen=True)
class HealthCheck:
    """How to decide that a freshly switched build is serving: a URL or a command, polled until ``timeout``."""

    url: Optional[str] = None
    command: Optional[str] = None
    expect: Union[str, int, None] = None
    timeout: float = 30.0
    interval: float = 0.5


HOOK_NAMES_REMOTE = ("before_activate", "after_activate", "after_rollback")
HOOK_NAMES_LOCAL = ("local_before", "local_after", "local_failed")
MIN_KEEP_BUILDS = 2  # keep_builds and `prune --keep` share it: the live build and one to roll back to


@dataclass(frozen=True)
class Hook:
    """One hook: a shell command run at a named point of an operation, bounded by a timeout."""

    name: str
    command: str
    timeout: float = 300.0
    once: bool = False
    host: Optional[str] = None


@dataclass(frozen=True)
class Shared:
    """Files and folders that live under ROOT/shared/ and are symlinked into every build."""

    files: tuple[str, ...] = ()
    dirs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rollout:
    """Canary and batches for the activation phase."""

    canary: Union[int, tuple[str, ...]] = 0
    batch: Union[int, str, None] = None
    pause: float = 0.0


@dataclass(frozen=True)
class JumpHost:
    """A bastion the host is reached through (its key is checked like any host's)."""

    address: str
    user: Optional[str] = None
    port: Optional[int] = None
    key_file: Optional[Path] = None
    known_hosts: Optional[Path] = None


@dataclass(frozen=True)
class HostConfig:
    """One target host, with every setting already resolved from the defaults (top level, roles, host)."""

    name: str
    root: str
    transport: str = "ssh"
    address: Optional[str] = None
    user: Optional[str] = None
    port: Optional[int] = None
    key_file: Optional[Path] = None
    known_hosts: Optional[Path] = None
    roles: tuple[str, ...] = ()
    python: str = "python3"
    restart: Optional[str] = None
    restart_timeout: float = 60.0
    healthcheck: Optional["HealthCheck"] = None
    logs: tuple[str, ...] = ()
    hooks: tuple[Hook, ...] = ()
    jump: Optional[JumpHost] = None

    @property
    def label(self) -> str:
        """Where the host is, for humans: ``user@address:port`` or ``local``."""
        if self.transport == "local":
            return "local"
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"{user}{self.address}{port}"


@dataclass(frozen=True)
class Config:
    """The whole validated ``hosts.yml``."""

    path: Path
    project: str
    source: Path
    requirements: str
    python: str
    keep_builds: int
    hosts: tuple[HostConfig, ...]
    excludes_file: Optional[Path] = None
    pip_args: tuple[str, ...] = ()
    restart: Optional[str] = None
    logs: tuple[str, ...] = ()
    healthcheck: Optional[HealthCheck] = None
    extra: dict = field(default_factory=dict)
    roles: tuple[str, ...] = ()
    hooks: tuple[Hook, ...] = ()
    shared: Shared = Shared()
    rollout: Optional[Rollout] = None
    parallel: int = 25
    lock_wait: float = 0.0
    connect_timeout: float = 15.0
    script_timeout: float = 120.0
    install_timeout: float = 1800.0
    require_clean: bool = False

    def host(self, name: str) -> HostConfig:
        """The host called ``name``; KeyError when there is none."""
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    def select(self, names: Optional[list[str]], roles: Optional[list[str]] = None) -> tuple[HostConfig, ...]:
        """The hosts named or in one of the roles (all of them when both are empty), refusing unknown names."""
        if not names and not roles:
            return self.hosts
        wanted = set()
        for name in names or []:
            try:
                wanted.add(self.host(name).name)
            except KeyError:
                known = ", ".join(h.name for h in self.hosts)
                raise ConfigError(self.path, None, "--host", f"no host named {name!r} (known: {known})") from None
        known_roles = {r for h in self.hosts for r in h.roles}
        for role in roles or []:
            if role not in known_roles:
                raise ConfigError(self.path, None, "--role", f"no role named {role!r} (known: "
                                  f"{', '.join(sorted(known_roles)) or 'none'})")
            wanted.update(h.name for h in self.hosts if role in h.roles)
        return tuple(h for h in self.hosts if h.name in wanted)


def find_config(explicit: Optional[str] = None, cwd: Optional[Path] = None) -> tuple[Optional[Path], list[str]]:
    """Locate the config: ``--config``, else ``$RELEASETUI_CONFIG``, else ``./hosts.yml``.

    Returns the path found (or None) and the places looked at, in order, so a
    caller can tell the user exactly where it searched.
    """
    looked: list[str] = []
    if explicit:
        return Path(explicit), [f"--config {explicit}"]
    env_value = os.environ.get(CONFIG_ENV_VAR)
    if env_value:
        return Path(env_value), [f"${CONFIG_ENV_VAR}={env_value}"]
    looked.append(f"${CONFIG_ENV_VAR} (not set)")
    candidate = (cwd or Path.cwd()) / DEFAULT_CONFIG_NAME
    looked.append(str(candidate))
    if candidate.exists():
        return candidate, looked
    return None, looked


# --- YAML with line numbers -------------------------------------------------

class _Loc:
    """Carries the config path so node errors can name it."""

    def __init__(self, path: Path):
        self.path = path

    def error(self, node: Optional[yaml.Node], key: str, message: str) -> ConfigError:
        line = node.start_mark.line + 1 if node is not None else None
        return ConfigError(self.path, line, key, message)


def _scalar(loc: _Loc, node: yaml.Node, key: str) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise loc.error(node, key, "expected a single value, not a list or mapping")
    return _construct(node)


def _construct(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def _mapping(loc: _Loc, node: yaml.Node, key: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    if not isinstance(node, yaml.MappingNode):
        raise loc.error(node, key, "expected a mapping of key: value")
    result: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key_node, value_node in node.value:
        name = _construct(key_node)
        if not isinstance(name, str):
            raise loc.error(key_node, key, f"keys must be text, not {name!r}")
        if name in result:
            raise loc.error(key_node, f"{key}.{name}" if key else name, "appears twice")
        result[name] = (key_node, value_node)
    return result


def _check_keys(loc: _Loc, items: dict, allowed: set[str], where: str) -> None:
    for name, (key_node, _) in items.items():
        if name not in allowed:
            full = f"{where}.{name}" if where else name
            raise loc.error(key_node, full, f"unknown key (expected one of: {', '.join(sorted(allowed))})")


def _typed(loc: _Loc, node: yaml.Node, key: str, kind: type, check: Optional[Callable[[Any], Optional[str]]] = None) -> Any:
    value = _scalar(loc, node, key)
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise loc.error(node, key, f"expected a whole number, got {value!r}")
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise loc.error(node, key, f"expected a number, got {value!r}")
        value = float(value)
    if kind is str and not isinstance(value, str):
        raise loc.error(node, key, f"expected text, got {value!r}")
    if check:
        problem = check(value)
        if problem:
            raise loc.error(node, key, problem)
    return value


def _string_list(loc: _Loc, node: yaml.Node, key: str) -> tuple[str, ...]:
    if isinstance(node, yaml.ScalarNode) and _construct(node) is None:
        return ()
    if not isinstance(node, yaml.SequenceNode):
        raise loc.error(node, key, "expected a list of text values")
    values = []
    for item in node.value:
        values.append(_typed(loc, item, key, str))
    return tuple(values)


def _local_path(base: Path, value: str) -> Path:
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else (base / path)


def _check_root(value: str) -> Optional[str]:
    if not value.startswith("/"):
        return "must be an absolute path on the host (e.g. /var/www/myapp)"
    normal = posixpath.normpath(value)
    if normal == "/" or ".." in value.split("/"):
        return "must be a dedicated directory, not / and without '..'"
    if any(ch in value for ch in "\n\r\t"):
        return "must not contain control characters"
    return None


def _check_port(value: int) -> Optional[str]:
    return None if 0 < value < 65536 else "must be between 1 and 65535"


TOP_KEYS = {
    "project", "source", "requirements", "excludes_file", "python", "pip_args", "keep_builds",
    "restart", "logs", "root", "ssh", "hosts", "healthcheck",
}
SSH_KEYS = {"user", "port", "key_file", "known_hosts"}
HOST_KEYS = {"address", "user", "port", "key_file", "known_hosts", "root", "transport", "python", "restart"}
HEALTH_KEYS = {"url", "command", "expect", "timeout", "interval"}


def load_config(path: Union[str, Path]) -> Config:
    """Read, parse and validate the config at ``path``; raise :class:`ConfigError` on any mistake."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, None, None, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, None, None, f"cannot read: {exc}") from None
    try:
        root_node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigError(path, line, None, f"YAML syntax: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, None, None, f"YAML syntax: {exc}") from None
    loc = _Loc(path)
    if root_node is None:
        raise ConfigError(path, None, None, "the file is empty")
    top = _mapping(loc, root_node, "")
    _check_keys(loc, top, TOP_KEYS, "")
    base = path.resolve().parent

    def get(name: str) -> Optional[yaml.Node]:
        pair = top.get(name)
        return pair[1] if pair else None

    def required(name: str) -> yaml.Node:
        node = get(name)
        if node is None:
            raise ConfigError(path, None, name, "is required")
        return node

    project = _typed(loc, required("project"), "project", str,
                     lambda v: None if PROJECT_NAME_PATTERN.fullmatch(v) else "letters, digits, '.', '_' and '-' only")
    source_value = _typed(loc, get("source"), "source", str) if get("source") is not None else "."
    source = _local_path(base, source_value)
    requirements = "requirements.txt"
    if get("requirements") is not None:
        requirements = _typed(loc, get("requirements"), "requirements", str,
                              lambda v: "must be a path inside source" if v.startswith("/") or ".." in v.split("/") else None)
    excludes_file = None
    if get("excludes_file") is not None and _construct(get("excludes_file")) is not None:
        # Its existence is checked by deploy, the only operation that reads it.
        excludes_file = _local_path(base, _typed(loc, get("excludes_file"), "excludes_file", str))
    python = _typed(loc, get("python"), "python", str) if get("python") is not None else "python3"
    pip_args = _string_list(loc, get("pip_args"), "pip_args") if get("pip_args") is not None else ()
    keep_builds = 5
    if get("keep_builds") is not None:
        keep_builds = _typed(loc, get("keep_builds"), "keep_builds", int,
                             lambda v: None if v >= 2 else "must be at least 2 (the live build and one to roll back to)")
    restart = None
    if get("restart") is not None and _construct(get("restart")) is not None:
        restart = _typed(loc, get("restart"), "restart", str)
    logs = _string_list(loc, get("logs"), "logs") if get("logs") is not None else ()
    default_root = None
    if get("root") is not None:
        default_root = posixpath.normpath(_typed(loc, get("root"), "root", str, _check_root))

    ssh_defaults: dict[str, Any] = {}
    if get("ssh") is not None:
        ssh_items = _mapping(loc, get("ssh"), "ssh")
        _check_keys(loc, ssh_items, SSH_KEYS, "ssh")
        ssh_defaults = _ssh_settings(loc, base, ssh_items, "ssh")

    healthcheck = None
    if get("healthcheck") is not None and _construct(get("healthcheck")) is not None:
        healthcheck = _healthcheck(loc, get("healthcheck"))

    hosts_node = required("hosts")
    host_items = _mapping(loc, hosts_node, "hosts")
    if not host_items:
        raise loc.error(hosts_node, "hosts", "needs at least one host")
    hosts = []
    for name, (key_node, value_node) in host_items.items():
        where = f"hosts.{name}"
        if not HOST_NAME_PATTERN.fullmatch(name):
            raise loc.error(key_node, where, "host names may use letters, digits, '.', '_' and '-' only")
        if isinstance(value_node, yaml.ScalarNode) and _construct(value_node) is None:
            items = {}
        else:
            items = _mapping(loc, value_node, where)
        _check_keys(loc, items, HOST_KEYS, where)
        settings = dict(ssh_defaults)
        settings.update(_ssh_settings(loc, base, items, where))
        transport = "ssh"
        if "transport" in items:
            transport = _typed(loc, items["transport"][1], f"{where}.transport", str,
                               lambda v: None if v in TRANSPORTS else f"must be one of: {', '.join(TRANSPORTS)}")
        address = None
        if "address" in items:
            address = _typed(loc, items["address"][1], f"{where}.address", str,
                             lambda v: None if v and not v.startswith("-") and not any(c.isspace() for c in v)
                             else "must be a host name or IP address")
        if transport == "ssh" and not address:
            raise loc.error(key_node, f"{where}.address", "is required for an ssh host")
        root = default_root
        if "root" in items:
            root = posixpath.normpath(_typed(loc, items["root"][1], f"{where}.root", str, _check_root))
        if root is None:
            raise loc.error(key_node, f"{where}.root", "no project root: set 'root' at the top or on this host")
        host_python = _typed(loc, items["python"][1], f"{where}.python", str) if "python" in items else python
        host_restart = _typed(loc, items["restart"][1], f"{where}.restart", str) if "restart" in items else restart
        hosts.append(HostConfig(name=name, root=root, transport=transport, address=address, python=host_python,
                                restart=host_restart, healthcheck=healthcheck, logs=logs, **settings))
    return Config(
        path=path, project=project, source=source, requirements=requirements, python=python,
        keep_builds=keep_builds, hosts=tuple(hosts), excludes_file=excludes_file, pip_args=pip_args,
        restart=restart, logs=logs, healthcheck=healthcheck,
    )


def _ssh_settings(loc: _Loc, base: Path, items: dict, where: str) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    if "user" in items:
        settings["user"] = _typed(loc, items["user"][1], f"{where}.user", str,
                                  lambda v: None if re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", v) else "not a valid user name")
    if "port" in items:
        settings["port"] = _typed(loc, items["port"][1], f"{where}.port", int, _check_port)
    for key in ("key_file", "known_hosts"):
        if key in items:
            settings[key] = _local_path(base, _typed(loc, items[key][1], f"{where}.{key}", str))
    return settings


def _healthcheck(loc: _Loc, node: yaml.Node) -> HealthCheck:
    items = _mapping(loc, node, "healthcheck")
    _check_keys(loc, items, HEALTH_KEYS, "healthcheck")
    url = _typed(loc, items["url"][1], "healthcheck.url", str,
                 lambda v: None if v.startswith(("http://", "https://")) else "must start with http:// or https://") if "url" in items else None
    command = _typed(loc, items["command"][1], "healthcheck.command", str) if "command" in items else None
    if (url is None) == (command is None):
        raise loc.error(node, "healthcheck", "give exactly one of 'url' or 'command'")
    expect = None
    if "expect" in items:
        expect = _scalar(loc, items["expect"][1], "healthcheck.expect")
        if isinstance(expect, bool) or not isinstance(expect, (str, int)):
            raise loc.error(items["expect"][1], "healthcheck.expect", "expected a status code or text the body must contain")
    timeout = _typed(loc, items["timeout"][1], "healthcheck.timeout", float,
                     lambda v: None if 0 < v <= 3600 else "must be between 0 and 3600 seconds") if "timeout" in items else 30.0
    interval = _typed(loc, items["interval"][1], "healthcheck.interval", float,
                      lambda v: None if 0 < v <= 60 else "must be between 0 and 60 seconds") if "interval" in items else 0.5
    return HealthCheck(url=url, command=command, expect=expect, timeout=timeout, interval=interval)
