"""The validated configuration: :class:`Config` and the pieces it is made of, and where a config is found.

These are what the rest of releasetui reads; nothing here parses YAML."""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Union


from ..models import MIN_KEEP_BUILDS  # noqa: F401  (config's name for it: keep_builds checks it)
from ..secrets import EnvSpec
from .errors import ConfigError, listing, show, suggest


CONFIG_ENV_VAR = "RELEASETUI_CONFIG"
DEFAULT_CONFIG_NAME = "hosts.yml"
TRANSPORTS = ("ssh", "local")
INSTALLERS = ("auto", "uv", "pip")
# `wheels:`: each host runs `pip wheel` itself (host), or this machine builds the wheelhouse once and ships it (ship).
WHEELS_MODES = ("host", "ship")
HOST_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
PROJECT_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
ROLE_NAME_PATTERN = HOST_NAME_PATTERN
USER_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")

HOOK_NAMES_REMOTE = ("before_activate", "after_activate", "after_rollback")
HOOK_NAMES_LOCAL = ("local_before", "local_after", "local_failed")
HOOK_NAMES = HOOK_NAMES_REMOTE + HOOK_NAMES_LOCAL

# Bounds on what a config file may be.  A real hosts.yml is a few kB; these are far above any
# honest file and far below what hurts (a 514-byte "billion laughs" once grew to 6 GB).
MAX_CONFIG_BYTES = 1024 * 1024
MAX_DEPTH = 50            # lists/mappings inside each other, aliases expanded
MAX_ALIASES = 500         # `*name` uses in one file
MAX_NODES = 100_000       # values in the file once every alias is expanded

# Names of files releasetui itself keeps in a build: a shared link there would clobber them.
_RESERVED_IN_BUILD = ("env", ".releasetui-build.json")


@dataclass(frozen=True)
class HealthCheck:
    """How to decide that a freshly switched build is serving: a URL or a command, polled until ``timeout``."""

    url: Optional[str] = None
    command: Optional[str] = None
    expect: Union[str, int, None] = None
    timeout: float = 30.0
    interval: float = 0.5


@dataclass(frozen=True)
class Hook:
    """One hook: a shell command run at a named point of an operation, bounded by a timeout."""

    name: str                    # one of HOOK_NAMES_REMOTE + HOOK_NAMES_LOCAL
    command: str
    timeout: float = 300.0       # seconds, 0 < t <= 86400
    once: bool = False           # before_activate only: run on ONE host (migrations)
    host: Optional[str] = None   # before_activate + once only: the host that runs it (a configured host)


@dataclass(frozen=True)
class Shared:
    """Files and folders that live under ROOT/shared/ and are symlinked into every build."""

    files: tuple[str, ...] = ()
    dirs: tuple[str, ...] = ()   # relative paths, no leading '/', no '..', no duplicates, no overlap files/dirs


@dataclass(frozen=True)
class Rollout:
    """Canary and batches for the activation phase."""

    canary: Union[int, tuple[str, ...]] = 0   # a count (>= 0) or a list of configured host names
    batch: Union[int, str, None] = None       # hosts per wave after the canary: N >= 1, or "P%" (1..100); None = all at once
    pause: float = 0.0                        # seconds between waves, 0..3600


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
    """One target host, with every setting already resolved (host > its roles > top level > default)."""

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
    installer: str = "auto"                 # auto | uv | pip: what fills a new venv (auto: uv when the host has it)
    uv: Optional[str] = None                # the uv executable on the host (None: uv on PATH, ~/.local/bin, ~/.cargo/bin)
    restart: Optional[str] = None
    restart_timeout: float = 60.0
    healthcheck: Optional[HealthCheck] = None
    logs: tuple[str, ...] = ()
    hooks: tuple[Hook, ...] = ()            # the REMOTE hooks this host runs, in HOOK_NAMES_REMOTE order
    jump: Optional[JumpHost] = None
    wheels: str = "host"                    # WHEELS_MODES: where the venv's wheels are built (host, or ship them)
    # Where each resolved setting came from: ("root", "hosts.web1"), ("python", "roles.web"), ("logs", "default").
    origins: tuple[tuple[str, str], ...] = field(default=(), compare=False, repr=False)

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
    """The whole validated ``hosts.yml``.

    ``python``, ``restart``, ``restart_timeout``, ``logs`` and ``healthcheck``
    here are the top-level values; what a host uses is on its
    :class:`HostConfig`, resolved over its roles.
    """

    path: Path
    project: str
    source: Path
    requirements: Optional[str]             # a path inside source; None: detected (releasetui.requirements.detect)
    python: str
    keep_builds: int
    hosts: tuple[HostConfig, ...]
    excludes_file: Optional[Path] = None
    include: tuple[str, ...] = ()           # paths/globs under source that ship though git ignores them or they
                                            # look like secrets (releasetui.shipping)
    pip_args: tuple[str, ...] = ()
    requirements_extras: tuple[str, ...] = ()   # optional-dependency groups of pyproject.toml / uv.lock / poetry.lock
    installer: str = "auto"                 # the top-level value; hosts carry the resolved one
    restart: Optional[str] = None
    logs: tuple[str, ...] = ()
    healthcheck: Optional[HealthCheck] = None
    extra: dict = field(default_factory=dict)
    roles: tuple[str, ...] = ()             # names defined under `roles:` (in file order)
    hooks: tuple[Hook, ...] = ()            # LOCAL hooks (top level only), in HOOK_NAMES_LOCAL order
    shared: Shared = Shared()
    rollout: Optional[Rollout] = None
    parallel: int = 25                      # 1..1000: hosts connected / shipped / installed at once
    lock_wait: float = 0.0                  # seconds to wait for another operation's lock (0..86400)
    connect_timeout: float = 15.0           # seconds (0 < t <= 600)
    script_timeout: float = 120.0           # seconds for short remote scripts (0 < t <= 86400)
    install_timeout: float = 1800.0         # seconds for shipping + venv + pip on a host (0 < t <= 86400)
    require_clean: bool = False             # refuse to deploy a dirty git working tree
    restart_timeout: float = 60.0           # the top-level value; hosts carry the resolved one
    stage: Optional[str] = None             # the stage loaded (hosts.STAGE.yml merged over this file), if any
    stages: tuple[str, ...] = ()            # the stages this file declares
    require_stage: bool = False             # refuse to load without a stage
    confirm: bool = False                   # changing operations need --yes (or a yes on a terminal)
    env: Optional[EnvSpec] = None           # the app's environment file, written on every host (names only here)

    def host(self, name: str) -> HostConfig:
        """The host called ``name``; KeyError when there is none."""
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    def without_hooks(self) -> "Config":
        """This config with no hook anywhere (``--skip-hooks``, for emergencies)."""
        import dataclasses
        return dataclasses.replace(self, hooks=(), hosts=tuple(dataclasses.replace(h, hooks=()) for h in self.hosts))

    def hook_names(self) -> list[str]:
        """The names of every hook configured anywhere, in order, once each."""
        return list(dict.fromkeys(h.name for h in self.hooks + tuple(x for host in self.hosts for x in host.hooks)))

    def select(self, names: Optional[list[str]], roles: Optional[list[str]] = None) -> tuple[HostConfig, ...]:
        """The hosts named OR in one of ``roles`` (union, config order, no duplicates); all when both are empty.

        An unknown host name is a ConfigError on ``--host``, an unknown role one on ``--role``.
        """
        if not names and not roles:
            return self.hosts
        all_names = [h.name for h in self.hosts]
        wanted_names = set()
        for name in names or ():
            matched = _matching(name, all_names)
            if not matched:
                what = "matches" if _is_glob(name) else "named"
                raise ConfigError(self.path, None, "--host",
                                  f"no host {what} {show(name)}{suggest(name, all_names)} (known: "
                                  f"{listing(all_names)})")
            wanted_names.update(matched)
        wanted_roles = set()
        for role in roles or ():
            matched = _matching(role, self.roles)
            if not matched:
                known = f"known: {listing(self.roles)}" if self.roles else "no roles are defined under roles:"
                what = "matches" if _is_glob(role) else "named"
                raise ConfigError(self.path, None, "--role", f"no role {what} {show(role)}{suggest(role, self.roles)} ({known})")
            wanted_roles.update(matched)
        return tuple(h for h in self.hosts if h.name in wanted_names or wanted_roles.intersection(h.roles))


def _is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


def _matching(pattern: str, names: Iterable[str]) -> list[str]:
    """The names ``pattern`` selects: itself when it is a name, else every name the glob (``web1*``) matches."""
    names = list(names)
    if not _is_glob(pattern):
        return [pattern] if pattern in names else []
    return [n for n in names if fnmatch.fnmatchcase(n, pattern)]


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
