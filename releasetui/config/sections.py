"""The sections of hosts.yml that stand on their own: ssh and jump hosts, the health check, hooks, include,
shared, env and rollout; each read and checked by one method of :class:`Sections`, which the builder is made of."""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any, Union

import yaml

from .. import shipping
from ..secrets import NAME_PATTERN as SECRET_NAME_PATTERN, EnvSpec
from .errors import show, suggest
from .model import (HOOK_NAMES, HOOK_NAMES_LOCAL, HOOK_NAMES_REMOTE, HealthCheck, Hook, HostConfig, JumpHost, Rollout,
                    Shared, _RESERVED_IN_BUILD)
from .validation import (ENV_KEYS, HEALTH_KEYS, HOOK_KEYS, JUMP_KEYS, ROLLOUT_KEYS, Reader, SHARED_KEYS,
                         _check_address, _check_command, _check_port, _check_user, _join,
                         _kind, _local_path)


class Sections:
    """One method per section; the builder (:class:`releasetui.config.building._Builder`) provides ``r`` (the
    :class:`Reader`), ``path``, ``base`` and ``once_hosts``."""

    r: Reader
    path: Path
    base: Path
    once_hosts: list

    def healthcheck(self, node: yaml.Node, where: str) -> HealthCheck:
        """A ``healthcheck:`` mapping."""
        r = self.r
        items = r.mapping(node, where)
        r.check_keys(items, HEALTH_KEYS, where, "healthcheck:")
        url = command = None
        if "url" in items:
            url = r.text(items["url"][1], f"{where}.url",
                         lambda v: None if v.startswith(("http://", "https://")) and v.isprintable()
                         else "must start with http:// or https://")
        if "command" in items:
            command = r.text(items["command"][1], f"{where}.command", _check_command)
        if (url is None) == (command is None):
            raise r.error(node, where, "give exactly one of 'url' or 'command'")
        expect = None
        if "expect" in items and not r.is_null(items["expect"][1]):
            expect = r.value(items["expect"][1], f"{where}.expect")
            if isinstance(expect, bool) or not isinstance(expect, (str, int)):
                raise r.error(items["expect"][1], f"{where}.expect", "expected a status code or text the body must contain")
        timeout = r.number(items["timeout"][1], f"{where}.timeout", 0, 3600) if "timeout" in items else 30.0
        interval = r.number(items["interval"][1], f"{where}.interval", 0, 60) if "interval" in items else 0.5
        return HealthCheck(url=url, command=command, expect=expect, timeout=timeout, interval=interval)

    def hooks(self, node: yaml.Node, where: str, level: str) -> dict[str, tuple[Hook, ...]]:
        """A ``hooks:`` mapping: hook name -> its hooks (an empty tuple when set to ``[]`` or null)."""
        r = self.r
        if r.is_null(node):
            return {}
        items = r.mapping(node, where)
        allowed = HOOK_NAMES if level == "top" else HOOK_NAMES_REMOTE
        for name, (key_node, _) in items.items():
            if name in HOOK_NAMES_LOCAL and level != "top":
                raise r.error(key_node, _join(where, name), "local hooks run on this machine, once per operation: "
                                                            "set them in the top-level hooks: only")
        r.check_keys(items, allowed, where, "hooks:")
        result = {}
        for name, (_, value_node) in items.items():
            full = _join(where, name)
            if r.is_null(value_node):
                result[name] = ()
            elif isinstance(value_node, yaml.SequenceNode):
                result[name] = tuple(self.hook(name, item, f"{full}[{i}]") for i, item in enumerate(value_node.value))
            else:
                result[name] = (self.hook(name, value_node, full),)
        return result

    def hook(self, name: str, node: yaml.Node, where: str) -> Hook:
        """One hook: a command string, or ``{command, timeout, once, host}``."""
        r = self.r
        if isinstance(node, yaml.ScalarNode):
            return Hook(name=name, command=r.text(node, where, _check_command))
        if not isinstance(node, yaml.MappingNode):
            raise r.error(node, where, "expected a command, or a mapping {command, timeout, once, host}")
        items = r.mapping(node, where)
        r.check_keys(items, HOOK_KEYS, where, "a hook")
        if "command" not in items:
            raise r.error(node, f"{where}.command", "is required")
        command = r.text(items["command"][1], f"{where}.command", _check_command)
        timeout = r.number(items["timeout"][1], f"{where}.timeout", 0, 86400) if "timeout" in items else 300.0
        once = False
        if "once" in items:
            if name != "before_activate":
                raise r.error(items["once"][0], f"{where}.once", "only before_activate hooks can run once")
            once = r.boolean(items["once"][1], f"{where}.once")
        host = None
        if "host" in items:
            if name != "before_activate" or not once:
                raise r.error(items["host"][0], f"{where}.host", "picks the host of a before_activate hook with "
                                                                 "once: true (add once: true)")
            host = r.text(items["host"][1], f"{where}.host")
        hook = Hook(name=name, command=command, timeout=timeout, once=once, host=host)
        if host is not None:
            self.once_hosts.append((hook, items["host"][1], f"{where}.host"))
        return hook

    def check_once_hosts(self, hosts: list[HostConfig]) -> None:
        """A once-hook's ``host:`` must be a configured host that gets that hook."""
        by_name = {h.name: h for h in hosts}
        for hook, node, where in self.once_hosts:
            chosen = by_name.get(hook.host)
            if chosen is None:
                raise self.r.error(node, where, f"no host named {show(hook.host)}{suggest(hook.host, by_name)}")
            if hook not in chosen.hooks:
                raise self.r.error(node, where, f"{hook.host} does not run this hook (its roles or its own hooks: "
                                                "replace it)")

    def ssh_settings(self, items: dict, where: str) -> dict[str, Any]:
        """user, port, key_file, known_hosts as given in ``items``."""
        r = self.r
        settings: dict[str, Any] = {}
        if "user" in items and not r.is_null(items["user"][1]):
            settings["user"] = r.text(items["user"][1], f"{where}.user", _check_user)
        if "port" in items and not r.is_null(items["port"][1]):
            settings["port"] = r.integer(items["port"][1], f"{where}.port", _check_port)
        for key in ("key_file", "known_hosts"):
            if key in items and not r.is_null(items[key][1]):
                settings[key] = _local_path(self.base, r.text(items[key][1], f"{where}.{key}"))
        return settings

    def jump(self, node: yaml.Node, where: str) -> JumpHost:
        """A jump host: ``"[user@]host[:port]"`` or a mapping of address, user, port, key_file, known_hosts."""
        r = self.r
        if isinstance(node, yaml.ScalarNode):
            value = r.text(node, where)
            match = re.fullmatch(r"(?:(?P<user>[^@\s]+)@)?(?P<host>\[[0-9A-Fa-f:.]+\]|[^:@\s\[\]]+)(?::(?P<port>[0-9]{1,5}))?",
                                 value)
            if not match:
                raise r.error(node, where, f"expected [user@]host[:port], got {show(value)}")
            user, address, port = match.group("user"), match.group("host").strip("[]"), match.group("port")
            if user is not None and _check_user(user):
                raise r.error(node, where, f"not a valid user name: {show(user)}")
            if _check_address(address):
                raise r.error(node, where, f"not a host name or IP address: {show(address)}")
            if port is not None and _check_port(int(port)):
                raise r.error(node, where, _check_port(int(port)))
            return JumpHost(address=address, user=user, port=int(port) if port else None)
        items = r.mapping(node, where)
        r.check_keys(items, JUMP_KEYS, where, "jump:")
        if "address" not in items:
            raise r.error(node, f"{where}.address", "is required")
        address = r.text(items["address"][1], f"{where}.address", _check_address)
        return JumpHost(address=address, **self.ssh_settings(items, where))

    def include(self, node: yaml.Node) -> tuple[str, ...]:
        """``include: [.env.example, certs/*.pem]``: paths or globs relative to source (:mod:`releasetui.shipping`)."""
        r = self.r
        if not isinstance(node, yaml.SequenceNode):
            raise r.error(node, "include", f"expected a list of paths or globs relative to source, e.g. "
                                           f"[.env.example], not {_kind(node)}")
        patterns = []
        for i, item in enumerate(node.value):
            value = r.text(item, f"include[{i}]", shipping.pattern_problem)
            patterns.append(value[2:] if value.startswith("./") else value)
        return tuple(patterns)

    def shared(self, node: yaml.Node) -> Shared:
        """``shared: {files, dirs}``: relative paths, each unique and none inside another."""
        r = self.r
        items = r.mapping(node, "shared")
        r.check_keys(items, SHARED_KEYS, "shared", "shared:")
        seen: dict[str, str] = {}
        lists: dict[str, list[str]] = {"files": [], "dirs": []}
        for kind in SHARED_KEYS:
            if kind not in items or r.is_null(items[kind][1]):
                continue
            list_node = items[kind][1]
            if not isinstance(list_node, yaml.SequenceNode):
                raise r.error(list_node, f"shared.{kind}", f"expected a list of paths, e.g. [.env], not {_kind(list_node)}")
            for i, item in enumerate(list_node.value):
                key = f"shared.{kind}[{i}]"
                value = r.text(item, key)
                normal = posixpath.normpath(value) if value else value
                if not value or normal == "." or value.startswith("/") or ".." in value.split("/"):
                    raise r.error(item, key, f"must be a path inside the build, without a leading '/' or '..', got "
                                             f"{show(value)}")
                if not value.isprintable():
                    raise r.error(item, key, "must not contain control characters")
                if normal.split("/")[0] in _RESERVED_IN_BUILD:
                    raise r.error(item, key, f"{show(normal)} is releasetui's own file in each build")
                for other, other_kind in seen.items():
                    if other == normal:
                        raise r.error(item, key, f"{show(normal)} is listed twice (also in shared.{other_kind})"
                                      if other_kind != kind else f"{show(normal)} is listed twice")
                    if normal.startswith(other + "/") or other.startswith(normal + "/"):
                        raise r.error(item, key, f"{show(normal)} overlaps {show(other)} in shared.{other_kind}")
                seen[normal] = kind
                lists[kind].append(normal)
        return Shared(files=tuple(lists["files"]), dirs=tuple(lists["dirs"]))

    def env(self, node: yaml.Node, shared: Shared) -> EnvSpec:
        """``env: {file, clear, secret, secrets_command}``: the app's environment file (:mod:`releasetui.secrets`)."""
        r = self.r
        items = r.mapping(node, "env")
        r.check_keys(items, ENV_KEYS, "env", "env:")
        path = ".env"
        if "file" in items and not r.is_null(items["file"][1]):
            path = r.text(items["file"][1], "env.file")
            normal = posixpath.normpath(path)
            if path.startswith("/") or ".." in path.split("/") or normal == "." or not path.isprintable():
                raise r.error(items["file"][1], "env.file", f"must be a path inside the build, got {show(path)}")
            if normal.split("/")[0] in _RESERVED_IN_BUILD:
                raise r.error(items["file"][1], "env.file", f"{show(normal)} is releasetui's own file in each build")
            path = normal
        if path in shared.files or any(path == d or path.startswith(d + "/") for d in shared.dirs):
            raise r.error(node, "env", f"{show(path)} is also under shared: one file cannot be both (drop it from "
                                       "shared.files: env: writes it on every host)")
        clear: list[tuple[str, str]] = []
        if "clear" in items and not r.is_null(items["clear"][1]):
            for name, (key_node, value_node) in r.mapping(items["clear"][1], "env.clear").items():
                if not SECRET_NAME_PATTERN.fullmatch(name):
                    raise r.error(key_node, f"env.clear.{name}", "not a variable name (letters, digits, '_')")
                value = r.value(value_node, f"env.clear.{name}")
                if isinstance(value, bool):
                    value = "true" if value else "false"
                if value is None or not isinstance(value, (str, int, float)):
                    raise r.error(value_node, f"env.clear.{name}", "expected a single text or number value")
                clear.append((name, str(value)))
        secret = r.string_list(items["secret"][1], "env.secret") if "secret" in items else ()
        for i, name in enumerate(secret):
            if not SECRET_NAME_PATTERN.fullmatch(name):
                raise r.error(items["secret"][1], f"env.secret[{i}]", f"{show(name)} is not a variable name")
            if name in dict(clear):
                raise r.error(items["secret"][1], f"env.secret[{i}]", f"{name} is also under env.clear")
        command = None
        if "secrets_command" in items and not r.is_null(items["secrets_command"][1]):
            command = r.text(items["secrets_command"][1], "env.secrets_command", _check_command)
        return EnvSpec(file=path, clear=tuple(clear), secret=tuple(secret), secrets_command=command)

    def canary(self, node: yaml.Node, host_names: list[str]) -> Union[int, tuple[str, ...]]:
        """``rollout.canary``: a count or host names, checked by the rule ``--canary`` obeys too."""
        from ..rules import canary_problem  # rules imports this module: only at call time
        r = self.r
        if isinstance(node, yaml.SequenceNode):
            names = tuple(r.text(item, f"rollout.canary[{i}]") for i, item in enumerate(node.value))
            canary: Union[int, tuple[str, ...]] = names
        else:
            canary = r.integer(node, "rollout.canary")
        problem = canary_problem(canary, host_names, where="configured")
        if problem is None:
            return canary if canary != () else 0
        if problem.index is None:
            raise r.error(node, "rollout.canary", problem.reason)
        suggestion = suggest(problem.unknown, host_names) if problem.unknown else ""
        raise r.error(node.value[problem.index], f"rollout.canary[{problem.index}]", problem.reason + suggestion)

    def rollout(self, node: yaml.Node, host_names: list[str]) -> Rollout:
        """``rollout: {canary, batch, pause}``."""
        r = self.r
        items = r.mapping(node, "rollout")
        r.check_keys(items, ROLLOUT_KEYS, "rollout", "rollout:")
        canary: Union[int, tuple[str, ...]] = 0
        if "canary" in items and not r.is_null(items["canary"][1]):
            canary = self.canary(items["canary"][1], host_names)
        batch: Union[int, str, None] = None
        if "batch" in items and not r.is_null(items["batch"][1]):
            batch_node = items["batch"][1]
            value = r.value(batch_node, "rollout.batch")
            if isinstance(value, str):
                match = re.fullmatch(r"\s*([0-9]{1,3})\s*%\s*", value)
                if not match or not 1 <= int(match.group(1)) <= 100:
                    raise r.error(batch_node, "rollout.batch", f"expected a number of hosts or a percentage from 1% to "
                                                               f"100%, got {show(value)}")
                batch = f"{int(match.group(1))}%"
            else:
                batch = r.integer(batch_node, "rollout.batch", lambda v: None if v >= 1 else "must be at least 1 host")
        pause = r.number(items["pause"][1], "rollout.pause", 0, 3600, low_inclusive=True) if "pause" in items else 0.0
        return Rollout(canary=canary, batch=batch, pause=pause)
