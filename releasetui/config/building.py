"""Building a :class:`~releasetui.config.model.Config` from ``hosts.yml`` (and a stage's file merged over it):
reading the file, then one :class:`_Builder` pass that checks every section and resolves each host's settings
(host > its roles > the top level > the default), recording where each came from."""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any, Callable, Optional, Union

import yaml

from ..requirements import KINDS_HINT, kind_of
from ..stages import STAGE_ENV_VAR, STAGE_NAME_PATTERN, declared_stages, mark_source, merge_nodes, stage_path
from .errors import ConfigError, listing, show, suggest
from .model import (Config, HOOK_NAMES_LOCAL, HOOK_NAMES_REMOTE, HOST_NAME_PATTERN, Hook, HostConfig, JumpHost,
                    MAX_CONFIG_BYTES, MIN_KEEP_BUILDS, PROJECT_NAME_PATTERN, ROLE_NAME_PATTERN,
                    INSTALLERS, Shared, TRANSPORTS, WHEELS_MODES)
from .sections import Sections
from .yaml_reader import compose_yaml
from .validation import (HOST_KEYS, ROLE_KEYS, Reader, SETTING_KEYS, SSH_KEYS, TOP_KEYS, _DEFAULTS, _check_address,
                         _check_command, _check_root, _join, _kind, _local_path)


def _check_requirements(value: str) -> Optional[str]:
    """Why ``requirements:`` is not a source releasetui reads (None when it is)."""
    if value.startswith("/") or ".." in value.split("/"):
        return "must be a path inside source"
    return None if kind_of(value) else f"must be {KINDS_HINT}"


def read_config_text(path: Union[str, Path]) -> str:
    """The text of the file at ``path``, refusing what is not a config: too large, not UTF-8, unreadable.

    Reads at most one byte past the limit, so ``--config /dev/zero`` ends at once.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(path, None, None, "file not found") from None
    except IsADirectoryError:
        raise ConfigError(path, None, None, "is a directory, not a file") from None
    except OSError as exc:
        raise ConfigError(path, None, None, f"cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(path, None, None, f"larger than {MAX_CONFIG_BYTES // 1024} kB: not a config file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(path, line, None, f"not UTF-8 text (byte 0x{data[exc.start]:02x})") from None


def load_config(path: Union[str, Path], stage: Optional[str] = None) -> Config:
    """Read, parse and validate the config at ``path`` (with ``hosts.STAGE.yml`` merged over it when ``stage``
    is given); raise :class:`ConfigError` on any mistake."""
    path = Path(path)
    config = _load(path, stage)
    if stage is not None:
        _check_stage_roots(config)
    return config


def _load(path: Path, stage: Optional[str]) -> Config:
    root_node = compose_yaml(read_config_text(path), path)
    if root_node is None:
        raise ConfigError(path, None, None, "the file is empty (`releasetui init` writes a starter)")
    if stage is not None:
        root_node = _with_stage(root_node, path, stage)
    return _Builder(Reader(path), path, stage).build(root_node)


def _with_stage(root_node: yaml.Node, path: Path, stage: str) -> yaml.Node:
    """The main file's nodes with the stage file's merged over them."""
    if not STAGE_NAME_PATTERN.fullmatch(stage):
        raise ConfigError(path, None, "--stage", f"{show(stage)} is not a stage name (letters, digits, '_' and '-')")
    declared = declared_stages(root_node)
    known = f"stages: {listing(declared)}" if declared else "this file declares no stages:"
    if declared and stage not in declared:
        raise ConfigError(path, None, "--stage", f"no stage named {show(stage)}{suggest(stage, declared)} ({known})")
    overlay_path = stage_path(path, stage)
    if not overlay_path.is_file():
        raise ConfigError(overlay_path, None, "--stage", f"stage {stage}'s file is missing ({known})")
    overlay = compose_yaml(read_config_text(overlay_path), overlay_path)
    if overlay is None:
        return root_node
    mark_source(overlay, overlay_path)
    return merge_nodes(root_node, overlay)


def _host_place(host: HostConfig) -> tuple:
    return ("local",) if host.transport == "local" else (host.address, host.port or 22)


def _check_stage_roots(config: Config) -> None:
    """Two stages never share a root on one machine (they would share its lock, builds and history)."""
    mine = {(_host_place(h), h.root): h for h in config.hosts}
    for other in config.stages:
        if other == config.stage or not stage_path(config.path, other).is_file():
            continue
        for host in _load(config.path, other).hosts:
            clash = mine.get((_host_place(host), host.root))
            if clash is not None:
                where = "this machine" if clash.transport == "local" else clash.address
                raise ConfigError(stage_path(config.path, config.stage or ""), None, f"hosts.{clash.name}.root",
                                  f"{clash.root} on {where} is also stage {other}'s (host {host.name}): each stage "
                                  "needs roots of its own, or the two would share one lock and one set of builds")


def load_config_text(text: str, path: Union[str, Path]) -> Config:
    """Validate ``text`` as the config file at ``path`` (local paths in it are relative to ``path``'s folder)."""
    path = Path(path)
    root_node = compose_yaml(text, path)
    if root_node is None:
        raise ConfigError(path, None, None, "the file is empty (`releasetui init` writes a starter)")
    return _Builder(Reader(path), path).build(root_node)


class _Top:
    """The top-level mapping of hosts.yml: a key's node, and whether it is given (present and not null)."""

    def __init__(self, reader: Reader, items: dict):
        self.r = reader
        self.items = items

    def get(self, name: str) -> Optional[yaml.Node]:
        """The value node of ``name`` (None when absent)."""
        pair = self.items.get(name)
        return pair[1] if pair else None

    def given(self, name: str) -> bool:
        """``name`` is present and not null."""
        return not self.r.is_null(self.get(name))


class _Builder(Sections):
    """Builds a :class:`Config` from the top node: one instance per load (each section read by :class:`Sections`)."""

    def __init__(self, reader: Reader, path: Path, stage: Optional[str] = None):
        self.r = reader
        self.path = path
        self.stage = stage
        self.base = path.resolve().parent
        self.once_hosts: list[tuple[Hook, yaml.Node, str]] = []  # once-hooks naming a host, checked at the end

    def build(self, root_node: yaml.Node) -> Config:
        """The whole config, validated."""
        r = self.r
        if not isinstance(root_node, yaml.MappingNode):
            hint = " (missing space after ':'?)" if isinstance(root_node, yaml.ScalarNode) and ":" in str(root_node.value) else ""
            raise r.error(root_node, None, f"the file must be a mapping of key: value, not {_kind(root_node)}{hint}")
        top = _Top(r, r.mapping(root_node, ""))
        r.check_keys(top.items, TOP_KEYS, "", "the top level")
        stage_fields = self.stage_settings(top.get)  # first: without its stage, this file may lack hosts
        if "project" not in top.items:
            raise ConfigError(self.path, None, "project", "is required (the name of the app)")
        source_fields = self.source_fields(top)
        top_settings = self.settings(top.items, "", "top")
        ssh_defaults, default_jump = self.ssh_defaults(top)
        role_names, role_settings = self.roles(top.get("roles"))
        hosts = self.hosts(top.get("hosts"), top.items.get("hosts"), ssh_defaults, default_jump, top_settings,
                           role_names, role_settings)
        host_names = [h.name for h in hosts]
        self.check_once_hosts(hosts)
        shared = self.shared(top.get("shared")) if top.given("shared") else Shared()
        local_hooks = tuple(hook for name in HOOK_NAMES_LOCAL for hook in top_settings.get("hooks", {}).get(name, ()))
        return Config(
            path=self.path, hosts=tuple(hosts), **source_fields,
            python=top_settings.get("python", _DEFAULTS["python"]), restart=top_settings.get("restart"),
            installer=top_settings.get("installer", _DEFAULTS["installer"]),
            logs=top_settings.get("logs", ()), healthcheck=top_settings.get("healthcheck"),
            restart_timeout=top_settings.get("restart_timeout", _DEFAULTS["restart_timeout"]),
            roles=tuple(role_names), hooks=local_hooks, shared=shared,
            env=self.env(top.get("env"), shared) if top.given("env") else None,
            rollout=self.rollout(top.get("rollout"), host_names) if top.given("rollout") else None,
            **self.limits(top), **stage_fields,
        )

    def source_fields(self, top: "_Top") -> dict[str, Any]:
        """What ships and how its venvs are made: project, source, requirements (and extras), excludes, include,
        pip_args, keep_builds."""
        r, get, given = self.r, top.get, top.given
        project = r.text(get("project"), "project",
                         lambda v: None if PROJECT_NAME_PATTERN.fullmatch(v) else "letters, digits, '.', '_' and '-' only")
        source = _local_path(self.base, r.text(get("source"), "source")) if given("source") else self.base
        requirements = None   # detected in the source at deploy time (releasetui.requirements.detect)
        if given("requirements"):
            requirements = r.text(get("requirements"), "requirements", _check_requirements)
        extras = tuple(r.string_list(get("requirements_extras"), "requirements_extras")) \
            if given("requirements_extras") else ()
        for extra in extras:
            if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?", extra):
                raise r.error(get("requirements_extras"), "requirements_extras", f"{show(extra)} is not an extra's name")
        excludes_file = None
        if given("excludes_file"):
            # Its existence is checked by deploy, the only operation that reads it.
            excludes_file = _local_path(self.base, r.text(get("excludes_file"), "excludes_file"))
        keep_builds = 5
        if given("keep_builds"):
            keep_builds = r.integer(get("keep_builds"), "keep_builds",
                                    lambda v: None if v >= MIN_KEEP_BUILDS else
                                    f"must be at least {MIN_KEEP_BUILDS} (the live build and one to roll back to)")
        return dict(project=project, source=source, requirements=requirements, requirements_extras=extras,
                    excludes_file=excludes_file, include=self.include(get("include")) if given("include") else (),
                    pip_args=r.string_list(get("pip_args"), "pip_args"), keep_builds=keep_builds)

    def ssh_defaults(self, top: "_Top") -> tuple[dict[str, Any], Optional[JumpHost]]:
        """The top-level ``ssh:`` settings every host starts from, and its default jump host."""
        if not top.given("ssh"):
            return {}, None
        ssh_items = self.r.mapping(top.get("ssh"), "ssh")
        self.r.check_keys(ssh_items, SSH_KEYS, "ssh", "ssh:")
        jump = None
        if "jump" in ssh_items and not self.r.is_null(ssh_items["jump"][1]):
            jump = self.jump(ssh_items["jump"][1], "ssh.jump")
        return self.ssh_settings(ssh_items, "ssh"), jump

    def limits(self, top: "_Top") -> dict[str, Any]:
        """How wide and how long: parallel, lock_wait, the timeouts, require_clean (each with its default)."""
        r, get, given = self.r, top.get, top.given

        def seconds(key: str, high: float, default: float, low_inclusive: bool = False) -> float:
            return r.number(get(key), key, 0, high, low_inclusive=low_inclusive) if given(key) else default

        return dict(
            parallel=r.integer(get("parallel"), "parallel",
                               lambda v: None if 1 <= v <= 1000 else f"must be between 1 and 1000, got {v}")
            if given("parallel") else 25,
            lock_wait=seconds("lock_wait", 86400, 0.0, low_inclusive=True),
            connect_timeout=seconds("connect_timeout", 600, 15.0),
            script_timeout=seconds("script_timeout", 86400, 120.0),
            install_timeout=seconds("install_timeout", 86400, 1800.0),
            require_clean=r.boolean(get("require_clean"), "require_clean") if given("require_clean") else False)

    def stage_settings(self, get: Callable[[str], Optional[yaml.Node]]) -> dict[str, Any]:
        """``stages``, ``require_stage`` and ``confirm``, checked against the stage asked for."""
        r = self.r
        stages_node, require_node = get("stages"), get("require_stage")
        stages = tuple(r.string_list(stages_node, "stages")) if not r.is_null(stages_node) else ()
        for name in stages:
            if not STAGE_NAME_PATTERN.fullmatch(name):
                raise r.error(stages_node, "stages", f"{show(name)} is not a stage name (letters, digits, '_', '-')")
        require = r.boolean(require_node, "require_stage") if not r.is_null(require_node) else False
        if require and self.stage is None:
            listed = f" (stages: {listing(stages)})" if stages else ""
            raise r.error(require_node, "require_stage", f"is true: name a stage with --stage NAME or "
                                                         f"${STAGE_ENV_VAR}{listed}")
        confirm = r.boolean(get("confirm"), "confirm") if not r.is_null(get("confirm")) else False
        return {"stage": self.stage, "stages": stages, "require_stage": require, "confirm": confirm}

    # -- per-level settings: top, roles.NAME, hosts.NAME --

    def settings(self, items: dict, where: str, level: str) -> dict[str, Any]:
        """The settings (root, python, restart, ...) that ``items`` sets; absent keys are absent from the result.

        ``restart``, ``healthcheck`` and ``logs`` may be null: that SETS them
        to none (a role with ``healthcheck: null`` turns the check off).
        ``hooks`` maps each hook name it sets to its hooks.
        """
        r = self.r
        result: dict[str, Any] = {}
        for key in SETTING_KEYS:
            if key not in items:
                continue
            node, full = items[key][1], _join(where, key)
            if key == "root":
                result[key] = posixpath.normpath(r.text(node, full, _check_root))
            elif key == "python":
                result[key] = r.text(node, full, lambda v: None if v.strip() and v.isprintable() else
                                     "must name an interpreter on the host, e.g. python3")
            elif key == "installer":
                result[key] = r.text(node, full, lambda v: None if v in INSTALLERS else
                                     f"must be one of: {', '.join(INSTALLERS)}, got {show(v)}")
            elif key == "uv":
                result[key] = None if r.is_null(node) else r.text(node, full, lambda v: None if v.strip() and v.isprintable()
                                                                   else "must name the uv executable on the host")
            elif key == "restart":
                result[key] = None if r.is_null(node) else r.text(node, full, _check_command)
            elif key == "restart_timeout":
                result[key] = r.number(node, full, 0, 86400)
            elif key == "healthcheck":
                result[key] = None if r.is_null(node) else self.healthcheck(node, full)
            elif key == "logs":
                result[key] = r.string_list(node, full)
            elif key == "hooks":
                result[key] = self.hooks(node, full, level)
            elif key == "wheels":
                result[key] = r.text(node, full, lambda v: None if v in WHEELS_MODES else
                                     f"must be one of {', '.join(WHEELS_MODES)}, got {show(v)}")
        return result

    # -- ssh, jump hosts, roles, hosts --

    def roles(self, node: Optional[yaml.Node]) -> tuple[list[str], dict[str, dict[str, Any]]]:
        """The ``roles:`` mapping: names in file order, and the settings each sets."""
        r = self.r
        if r.is_null(node):
            return [], {}
        items = r.mapping(node, "roles")
        names, settings = [], {}
        for name, (key_node, value_node) in items.items():
            where = _join("roles", name)
            if not ROLE_NAME_PATTERN.fullmatch(name):
                raise r.error(key_node, where, "role names may use letters, digits, '.', '_' and '-' only")
            role_items = {} if r.is_null(value_node) else r.mapping(value_node, where)
            r.check_keys(role_items, ROLE_KEYS, where, "roles.NAME")
            names.append(name)
            settings[name] = self.settings(role_items, where, "role")
        return names, settings

    def hosts(self, node: Optional[yaml.Node], pair: Optional[tuple], ssh_defaults: dict, default_jump: Optional[JumpHost],
              top_settings: dict, role_names: list[str], role_settings: dict) -> list[HostConfig]:
        """Every host, with its settings resolved over its roles and the top level."""
        r = self.r
        if node is None:
            raise ConfigError(self.path, None, "hosts", "is required (name: {address: ...} for each host)")
        if r.is_null(node):
            raise r.error(pair[0], "hosts", "needs at least one host")
        host_items = r.mapping(node, "hosts")
        if not host_items:
            raise r.error(node, "hosts", "needs at least one host")
        hosts = []
        for name, (key_node, value_node) in host_items.items():
            where = _join("hosts", name)
            if not HOST_NAME_PATTERN.fullmatch(name):
                raise r.error(key_node, where, "host names may use letters, digits, '.', '_' and '-' only")
            items = {} if r.is_null(value_node) else r.mapping(value_node, where)
            r.check_keys(items, HOST_KEYS, where, "hosts.NAME")
            ssh = dict(ssh_defaults)
            ssh.update(self.ssh_settings(items, where))
            transport = "ssh"
            if "transport" in items:
                transport = r.text(items["transport"][1], f"{where}.transport",
                                   lambda v: None if v in TRANSPORTS else
                                   f"must be one of: {', '.join(TRANSPORTS)}, got {show(v)}")
            address = None
            if "address" in items and not r.is_null(items["address"][1]):
                address = r.text(items["address"][1], f"{where}.address", _check_address)
            if transport == "ssh" and not address:
                raise r.error(key_node, f"{where}.address", "is required for an ssh host")
            jump = default_jump if transport == "ssh" else None
            if "jump" in items:
                if transport != "ssh" and not r.is_null(items["jump"][1]):
                    raise r.error(items["jump"][0], f"{where}.jump", "a local host is not reached over SSH")
                jump = None if r.is_null(items["jump"][1]) else self.jump(items["jump"][1], f"{where}.jump")
            roles = self.host_roles(items, where, role_names)
            own = self.settings(items, where, "host")
            resolved = self.resolve(name, key_node, where, own, roles, role_settings, top_settings)
            if resolved.get("root") is None:
                raise r.error(key_node, f"{where}.root", "no project root: set 'root' at the top, on a role or on this host")
            hosts.append(HostConfig(name=name, transport=transport, address=address, roles=roles, jump=jump,
                                    **ssh, **resolved))
        return hosts

    def host_roles(self, items: dict, where: str, role_names: list[str]) -> tuple[str, ...]:
        """A host's ``roles:``: a list (or one name) of roles defined under the top-level ``roles:``."""
        r = self.r
        if "roles" not in items or r.is_null(items["roles"][1]):
            return ()
        node = items["roles"][1]
        members = [node] if isinstance(node, yaml.ScalarNode) else None
        if members is None:
            if not isinstance(node, yaml.SequenceNode):
                raise r.error(node, f"{where}.roles", f"expected a list of role names, e.g. [web], not {_kind(node)}")
            members = node.value
        roles: list[str] = []
        for i, member in enumerate(members):
            key = f"{where}.roles" if member is node else f"{where}.roles[{i}]"
            role = r.text(member, key)
            if role not in role_names:
                known = f"defined: {listing(role_names)}" if role_names else "there is no roles: section"
                raise r.error(member, key, f"no role {show(role)} under roles:{suggest(role, role_names)} ({known}; a "
                                           "role used only as a label needs an empty entry, e.g. roles: {web: {}})")
            if role in roles:
                raise r.error(member, key, f"role {show(role)} is listed twice")
            roles.append(role)
        return tuple(roles)

    def resolve(self, name: str, key_node: yaml.Node, where: str, own: dict, roles: tuple[str, ...],
                role_settings: dict, top_settings: dict) -> dict[str, Any]:
        """Each setting for one host: the host's own, else its roles' (which must agree), else the top level's."""
        resolved: dict[str, Any] = {}

        origins: dict[str, str] = {}

        def pick(key: str, values: dict, role_values: list[tuple[str, Any]], top_values: dict, default: Any,
                 key_path: str) -> Any:
            if key in values:
                origins[key] = where
                return values[key]
            if role_values:
                first_role, first = role_values[0]
                for other_role, other in role_values[1:]:
                    if other != first:
                        raise self.r.error(key_node, key_path, f"its roles {first_role!r} and {other_role!r} set "
                                                               "different values: set it on the host")
                origins[key] = f"roles.{first_role}"
                return first
            origins[key] = "top level" if key in top_values else "default"
            return top_values.get(key, default)

        for key in SETTING_KEYS:
            if key == "hooks":
                continue
            role_values = [(role, role_settings[role][key]) for role in roles if key in role_settings[role]]
            resolved[key] = pick(key, own, role_values, top_settings, _DEFAULTS.get(key), _join(where, key))
        own_hooks, top_hooks = own.get("hooks", {}), top_settings.get("hooks", {})
        hooks: list[Hook] = []
        for hook_name in HOOK_NAMES_REMOTE:
            role_values = [(role, role_settings[role]["hooks"][hook_name]) for role in roles
                           if hook_name in role_settings[role].get("hooks", {})]
            hooks.extend(pick(hook_name, own_hooks, role_values, top_hooks, (), f"{where}.hooks.{hook_name}"))
        resolved["hooks"] = tuple(hooks)
        resolved["origins"] = tuple(sorted(origins.items()))
        return resolved

    # -- include, shared, rollout --
