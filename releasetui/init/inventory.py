"""Reading an Ansible inventory (INI or YAML): its groups, hosts and variables, host ranges expanded, every
mistake one line naming the file and line."""

from __future__ import annotations

import itertools
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from ..config import (ConfigError, Reader,
                      clip, compose_yaml, read_config_text, show)

MAX_RANGE_HOSTS = 10_000  # `web[0:99999999]` is a typo or an attack, not a fleet


# --- Ansible inventories ----------------------------------------------------------------------

@dataclass
class Group:
    """One inventory group: its own hosts, child groups and variables (name -> (value, line))."""

    name: str
    hosts: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    vars: dict[str, tuple[Any, Optional[int]]] = field(default_factory=dict)


@dataclass
class Inventory:
    """A parsed inventory: groups in file order, and each host's own variables."""

    path: Path
    groups: dict[str, Group] = field(default_factory=dict)
    host_vars: dict[str, dict[str, tuple[Any, Optional[int]]]] = field(default_factory=dict)
    host_lines: dict[str, int] = field(default_factory=dict)  # where each host first appears

    def group(self, name: str) -> Group:
        """The group called ``name``, created on first mention."""
        if name not in self.groups:
            self.groups[name] = Group(name)
        return self.groups[name]

    def add_host(self, group: str, host: str, variables: dict[str, tuple[Any, Optional[int]]], line: int) -> None:
        """``host`` (first seen on ``line``) is in ``group``, in file order, with these host variables."""
        members = self.group(group).hosts
        if host not in members:
            members.append(host)
        self.host_vars.setdefault(host, {}).update(variables)
        self.host_lines.setdefault(host, line)


def parse_inventory(path: Path) -> Inventory:
    """Read an INI or YAML inventory (chosen by extension, else by the look of the first line)."""
    text = read_config_text(path)  # the same bounds as a config: size, UTF-8
    first = next((line.strip() for line in text.splitlines() if line.strip() and line.strip()[0] not in "#;"), "")
    is_yaml = path.suffix.lower() in (".yml", ".yaml", ".json") or first.startswith(("{", "---")) or \
        (first.endswith(":") and not first.startswith("["))
    inventory = _parse_yaml_inventory(text, path) if is_yaml else _parse_ini_inventory(text, path)
    if "all" in inventory.groups:
        all_group = inventory.groups["all"]
    else:
        all_group = inventory.group("all")
    # Top-level groups are children of `all`, as in Ansible; so are hosts in no group (via `ungrouped`).
    parents = {child for g in inventory.groups.values() for child in g.children}
    for name in list(inventory.groups):
        if name != "all" and name not in parents and name not in all_group.children:
            all_group.children.append(name)
    _check_cycles(inventory)
    return inventory


def _check_cycles(inventory: Inventory) -> None:
    """A group that is its own descendant would loop for ever: refuse it."""
    state: dict[str, int] = {}
    for start in inventory.groups:
        if state.get(start):
            continue
        stack = [(start, iter(inventory.groups[start].children))]
        state[start] = 1
        while stack:
            name, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[name] = 2
                stack.pop()
            elif state.get(child) == 1:
                raise ConfigError(inventory.path, None, f"[{child}]", f"group {show(child)} is its own descendant "
                                                                      f"(through {show(name)})")
            elif not state.get(child):
                state[child] = 1
                stack.append((child, iter(inventory.group(child).children)))


def expand_hosts(pattern: str, path: Path, line: Optional[int]) -> list[str]:
    """``web[01:03].example.com`` -> web01, web02, web03 (numeric with padding, or letters, optional step)."""
    parts = re.split(r"\[([^\]]*)\]", pattern)
    if len(parts) == 1:
        return [pattern]
    choices: list[list[str]] = []
    total = 1
    for i, part in enumerate(parts):
        if i % 2 == 0:
            choices.append([part])
            continue
        match = re.fullmatch(r"([0-9]+|[a-zA-Z]):([0-9]+|[a-zA-Z])(?::([0-9]+))?", part)
        if not match:
            raise ConfigError(path, line, None, f"host range [{clip(part, 40)}] is not [START:END] or [START:END:STEP]")
        start, end, step = match.group(1), match.group(2), int(match.group(3) or 1)
        if step < 1 or start.isdigit() != end.isdigit():
            raise ConfigError(path, line, None, f"host range [{clip(part, 40)}] is not a range")
        if start.isdigit():
            width = len(start) if start.startswith("0") and len(start) > 1 else 0
            if int(end) < int(start):
                raise ConfigError(path, line, None, f"host range [{part}] ends before it starts")
            count = (int(end) - int(start)) // step + 1
            total *= count
            if total > MAX_RANGE_HOSTS:
                break
            choices.append([str(n).zfill(width) for n in range(int(start), int(end) + 1, step)])
        else:
            if ord(end) < ord(start):
                raise ConfigError(path, line, None, f"host range [{part}] ends before it starts")
            letters = [chr(c) for c in range(ord(start), ord(end) + 1, step)]
            total *= len(letters)
            choices.append(letters)
        if total > MAX_RANGE_HOSTS:
            break
    if total > MAX_RANGE_HOSTS:
        raise ConfigError(path, line, None, f"host pattern {show(pattern)} expands to more than {MAX_RANGE_HOSTS} hosts")
    return ["".join(combo) for combo in itertools.product(*choices)]


def _ini_value(raw: str) -> str:
    """An INI value: quotes removed when it is one quoted word, a trailing ` # comment` dropped."""
    try:
        words = shlex.split(raw, comments=True)
    except ValueError:
        return raw.strip()
    return words[0] if len(words) == 1 else raw.split(" #", 1)[0].strip()


def _parse_ini_inventory(text: str, path: Path) -> Inventory:
    inventory = Inventory(path)
    section, kind = "ungrouped", "hosts"
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        header = re.fullmatch(r"\[([^\]:\s]+)(?::([A-Za-z]+))?\]\s*(?:[#;].*)?", line)
        if header:
            section, kind = header.group(1), header.group(2) or "hosts"
            if header.group(2) is not None and kind not in ("vars", "children"):
                raise ConfigError(path, number, f"[{clip(section, 40)}:{clip(kind, 20)}]",
                                  "unknown section kind (expected :vars or :children)")
            inventory.group(section)
            continue
        if line.startswith("["):
            raise ConfigError(path, number, None, f"not a section header: {show(line)}")
        if kind == "children":
            child = _ini_value(line)
            if child not in inventory.group(section).children:
                inventory.group(section).children.append(child)
            inventory.group(child)
        elif kind == "vars":
            if "=" not in line:
                raise ConfigError(path, number, f"[{clip(section, 40)}:vars]", f"expected name=value, got {show(line)}")
            name, value = line.split("=", 1)
            inventory.group(section).vars[name.strip()] = (_ini_value(value), number)
        else:
            try:
                words = shlex.split(line, comments=True)
            except ValueError as exc:
                raise ConfigError(path, number, None, f"cannot split the host line: {exc}") from None
            if not words:
                continue
            pattern, port = words[0], None
            hostport = re.fullmatch(r"([^:]+):([0-9]+)", pattern)
            if hostport:  # `web1.example.com:2222` gives the port, as in Ansible
                pattern, port = hostport.group(1), int(hostport.group(2))
            variables: dict[str, tuple[Any, Optional[int]]] = {}
            for word in words[1:]:
                if "=" not in word:
                    raise ConfigError(path, number, None, f"expected name=value after the host, got {show(word)}")
                name, value = word.split("=", 1)
                variables[name] = (value, number)
            if port is not None:
                variables.setdefault("ansible_port", (port, number))
            for host in expand_hosts(pattern, path, number):
                inventory.add_host(section, host, dict(variables), number)
    return inventory


def _python_value(reader: Reader, node: yaml.Node, key: str) -> Any:
    """A plain Python value from a (bounded) node: scalars, lists, mappings with text keys."""
    if isinstance(node, yaml.SequenceNode):
        return [_python_value(reader, item, key) for item in node.value]
    if isinstance(node, yaml.MappingNode):
        return {name: _python_value(reader, value, f"{key}.{name}") for name, (_, value) in reader.mapping(node, key).items()}
    return reader.value(node, key)


def _parse_yaml_inventory(text: str, path: Path) -> Inventory:
    inventory = Inventory(path)
    reader = Reader(path)
    root = compose_yaml(text, path)
    if root is None:
        raise ConfigError(path, None, None, "the inventory is empty")
    top = reader.mapping(root, "")

    def group(name: str, node: yaml.Node, key_node: yaml.Node, where: str) -> None:
        inventory.group(name)
        if reader.is_null(node):
            return
        items = reader.mapping(node, where)
        reader.check_keys(items, ("hosts", "children", "vars"), where, "an inventory group")
        if "hosts" in items and not reader.is_null(items["hosts"][1]):
            for pattern, (host_key, host_node) in reader.mapping(items["hosts"][1], f"{where}.hosts").items():
                variables: dict[str, tuple[Any, Optional[int]]] = {}
                if not reader.is_null(host_node):
                    for var, (var_key, var_node) in reader.mapping(host_node, f"{where}.hosts.{pattern}").items():
                        variables[var] = (_python_value(reader, var_node, var), var_key.start_mark.line + 1)
                for host in expand_hosts(pattern, path, host_key.start_mark.line + 1):
                    inventory.add_host(name, host, dict(variables), host_key.start_mark.line + 1)
        if "vars" in items and not reader.is_null(items["vars"][1]):
            for var, (var_key, var_node) in reader.mapping(items["vars"][1], f"{where}.vars").items():
                inventory.group(name).vars[var] = (_python_value(reader, var_node, var), var_key.start_mark.line + 1)
        if "children" in items and not reader.is_null(items["children"][1]):
            for child, (child_key, child_node) in reader.mapping(items["children"][1], f"{where}.children").items():
                if child not in inventory.group(name).children:
                    inventory.group(name).children.append(child)
                group(child, child_node, child_key, f"{where}.children.{child}")

    for name, (key_node, node) in top.items():
        group(name, node, key_node, name)
    return inventory
