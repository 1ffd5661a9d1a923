"""Checking nodes: :class:`Reader` turns YAML nodes into checked values (each error names the file, the
node's line and the key path), the value checks, and the keys each place of the file may hold."""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import yaml

from ..stages import source_of
from .errors import ConfigError, clip, show, suggest, suggest_word
from .model import HOOK_NAMES, USER_NAME_PATTERN
from .yaml_reader import _CONSTRUCTOR, _TAG


# --- validating nodes -------------------------------------------------------------------------

def _keyname(name: str) -> str:
    """A mapping key as it appears in a key path: plain when simple, else quoted and cut."""
    return name if re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name) else repr(clip(name, 40))


def _join(where: str, name: str) -> str:
    return f"{where}.{_keyname(name)}" if where else _keyname(name)


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    return show(node.value)


_SCALAR_BUILDERS: dict[str, Callable[[yaml.ScalarNode], Any]] = {
    _TAG + "null": lambda node: None,
    _TAG + "bool": lambda node: _CONSTRUCTOR.construct_yaml_bool(node),
    _TAG + "int": lambda node: _CONSTRUCTOR.construct_yaml_int(node),
    _TAG + "float": lambda node: _CONSTRUCTOR.construct_yaml_float(node),
    _TAG + "timestamp": lambda node: _CONSTRUCTOR.construct_yaml_timestamp(node),
}
_TYPE_NAMES = {_TAG + "bool": "true/false", _TAG + "int": "whole number", _TAG + "float": "number",
               _TAG + "timestamp": "date"}


class Reader:
    """Turns nodes into checked values; every error names the file, the node's line and the key path."""

    def __init__(self, path: Path):
        self.path = path

    def error(self, node: Optional[yaml.Node], key: Optional[str], message: str) -> ConfigError:
        """A ConfigError at ``node``'s line."""
        line = node.start_mark.line + 1 if node is not None else None
        return ConfigError(source_of(node, self.path), line, key or None, message)

    def value(self, node: yaml.Node, key: str) -> Any:
        """The Python value of a single (scalar) node."""
        if not isinstance(node, yaml.ScalarNode):
            raise self.error(node, key, f"expected a single value, not {_kind(node)}")
        builder = _SCALAR_BUILDERS.get(node.tag)
        if builder is None:  # str, and `=` / `<<` outside a key, which YAML 1.1 gives tags of their own
            return node.value
        try:
            return builder(node)
        except (ValueError, TypeError, AttributeError, KeyError, OverflowError, yaml.YAMLError):
            # e.g. `!!int abc`, `!!bool maybe`, a 5000-digit number
            raise self.error(node, key, f"not a valid {_TYPE_NAMES.get(node.tag, 'value')}: {show(node.value)}") from None

    def is_null(self, node: Optional[yaml.Node]) -> bool:
        """Whether ``node`` is missing or an explicit null (``key:``, ``~``, ``null``)."""
        return node is None or (isinstance(node, yaml.ScalarNode) and node.tag == _TAG + "null")

    def mapping(self, node: yaml.Node, where: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """The text keys of a mapping node, with ``<<: *defaults`` merge keys applied (explicit keys win)."""
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, where or None, f"expected a mapping of key: value, not {_kind(node)}")
        merged: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        explicit: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag == _TAG + "merge":
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                for source in sources:
                    if not isinstance(source, yaml.MappingNode):
                        raise self.error(source, _join(where, "<<"), "merge (<<) takes a mapping or a list of mappings")
                    for name, pair in self.mapping(source, where).items():
                        merged.setdefault(name, pair)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                # Never construct or print a list/mapping key: it may be an alias bomb.
                raise self.error(key_node, where or None, f"keys must be text, not {_kind(key_node)}")
            name = self.value(key_node, where)
            if not isinstance(name, str):
                raise self.error(key_node, where or None, f"keys must be text, not {show(key_node.value)} "
                                                          "(put it in quotes)")
            if name in explicit:
                raise self.error(key_node, _join(where, name), "appears twice")
            explicit[name] = (key_node, value_node)
        merged.update(explicit)
        return merged

    def check_keys(self, items: dict, allowed: Iterable[str], where: str, level: str) -> None:
        """Refuse keys not in ``allowed``, suggesting the near miss or the level the key belongs to."""
        allowed = tuple(allowed)
        for name, (key_node, _) in items.items():
            if name in allowed:
                continue
            hint = suggest(name, allowed)
            if not hint:
                # A key of another level (or a near miss of one): say where it goes.
                elsewhere = {key for home, keys in _KEY_HOMES.items() if home != level for key in keys}
                meant = name if name in elsewhere else suggest_word(name, elsewhere)
                homes = [home for home, keys in _KEY_HOMES.items() if home != level and meant in keys]
                if homes and meant == name:
                    hint = f"; {name!r} belongs under {' or '.join(homes)}"
                elif homes:
                    hint = f"; did you mean {meant!r}? (it belongs under {' or '.join(homes)})"
                elif len(", ".join(allowed)) <= 150:
                    hint = f" (expected one of: {', '.join(sorted(allowed))})"
                else:
                    hint = " (`releasetui init` writes a starter that lists every key)"
            raise self.error(key_node, _join(where, name), f"unknown key{hint}")

    def text(self, node: yaml.Node, key: str, check: Optional[Callable[[str], Optional[str]]] = None) -> str:
        """A text value (a number or date is refused: quote it)."""
        value = self.value(node, key)
        if value is None:
            raise self.error(node, key, "needs a value (it is empty or null)")
        if not isinstance(value, str):
            raise self.error(node, key, f"expected text, got {show(node.value)} (put it in quotes)")
        return self._checked(node, key, value, check)

    def integer(self, node: yaml.Node, key: str, check: Optional[Callable[[int], Optional[str]]] = None) -> int:
        """A whole number."""
        value = self.value(node, key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(node, key, f"expected a whole number, got {show(node.value)}")
        return self._checked(node, key, value, check)

    def number(self, node: yaml.Node, key: str, low: float, high: float, low_inclusive: bool = False) -> float:
        """A number in (low, high] (or [low, high]); NaN and infinities fail the range check."""
        value = self.value(node, key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(node, key, f"expected a number of seconds, got {show(node.value)}")
        value = float(value)
        inside = (low <= value <= high) if low_inclusive else (low < value <= high)
        if not inside:
            span = f"between {low:g} and {high:g}" if low_inclusive else f"more than {low:g} and at most {high:g}"
            raise self.error(node, key, f"must be {span} seconds, got {show(node.value)}")
        return value

    def boolean(self, node: yaml.Node, key: str) -> bool:
        """true or false."""
        value = self.value(node, key)
        if not isinstance(value, bool):
            raise self.error(node, key, f"expected true or false, got {show(node.value)}")
        return value

    def string_list(self, node: yaml.Node, key: str) -> tuple[str, ...]:
        """A list of text values; null is the empty list."""
        if self.is_null(node):
            return ()
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(node, key, f"expected a list of text values, e.g. [a, b], not {_kind(node)}")
        return tuple(self.text(item, f"{key}[{i}]") for i, item in enumerate(node.value))

    def _checked(self, node: yaml.Node, key: str, value: Any, check: Optional[Callable[[Any], Optional[str]]]) -> Any:
        if check:
            problem = check(value)
            if problem:
                raise self.error(node, key, problem)
        return value


def _local_path(base: Path, value: str) -> Path:
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else (base / path)


def _check_root(value: str) -> Optional[str]:
    if not value.startswith("/"):
        return "must be an absolute path on the host (e.g. /var/www/myapp)"
    normal = posixpath.normpath(value)
    if normal == "/" or ".." in value.split("/"):
        return "must be a dedicated directory, not / and without '..'"
    if not value.isprintable():
        return "must not contain control characters"
    return None


def _check_port(value: int) -> Optional[str]:
    return None if 0 < value < 65536 else f"must be between 1 and 65535, got {value}"


def _check_address(value: str) -> Optional[str]:
    if value and not value.startswith("-") and value.isprintable() and not any(c.isspace() for c in value):
        return None
    return "must be a host name or IP address"


def _check_user(value: str) -> Optional[str]:
    return None if USER_NAME_PATTERN.fullmatch(value) else "not a valid user name"


def _check_command(value: str) -> Optional[str]:
    return None if value.strip() else "must not be empty"


TOP_KEYS = (
    "project", "source", "requirements", "requirements_extras", "excludes_file", "include", "python", "installer", "uv",
    "pip_args", "keep_builds",
    "restart", "restart_timeout", "logs", "root", "ssh", "hosts", "healthcheck", "roles", "hooks", "shared",
    "rollout", "parallel", "lock_wait", "connect_timeout", "script_timeout", "install_timeout", "require_clean",
    "stages", "require_stage", "confirm", "env", "wheels",
)
ENV_KEYS = ("file", "clear", "secret", "secrets_command")
SSH_KEYS = ("user", "port", "key_file", "known_hosts", "jump")
SETTING_KEYS = ("root", "python", "installer", "uv", "restart", "restart_timeout", "healthcheck", "logs", "hooks",
                "wheels")
ROLE_KEYS = SETTING_KEYS
HOST_KEYS = ("address", "user", "port", "key_file", "known_hosts", "transport", "roles", "jump") + SETTING_KEYS
HEALTH_KEYS = ("url", "command", "expect", "timeout", "interval")
HOOK_KEYS = ("command", "timeout", "once", "host")
SHARED_KEYS = ("files", "dirs")
ROLLOUT_KEYS = ("canary", "batch", "pause")
JUMP_KEYS = ("address", "user", "port", "key_file", "known_hosts")
# Where each key may appear, for "unknown key; 'user' belongs under ssh: or hosts.NAME".
_KEY_HOMES = {
    "the top level": TOP_KEYS, "ssh:": SSH_KEYS, "hosts.NAME": HOST_KEYS, "roles.NAME": ROLE_KEYS,
    "healthcheck:": HEALTH_KEYS, "a hook": HOOK_KEYS, "shared:": SHARED_KEYS, "rollout:": ROLLOUT_KEYS,
    "jump:": JUMP_KEYS, "hooks:": HOOK_NAMES, "env:": ENV_KEYS,
}

_DEFAULTS = {"python": "python3", "installer": "auto", "uv": None, "restart": None, "restart_timeout": 60.0, "healthcheck": None, "logs": (),
             "wheels": "host"}
