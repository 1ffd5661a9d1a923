"""From an Ansible inventory to ``hosts.yml``: connection variables mapped, groups as roles, what has no
equivalent listed (never silently dropped), and which group to import when the hosts are in several."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional


from ..config import (HOST_NAME_PATTERN, ROLE_NAME_PATTERN, ConfigError, _check_address, clip, listing, show, suggest)
from ..text import clean_line
from .starter import DEFAULT_PYTHON, DEFAULT_SSH, HOSTS_HEADER, ROLES_HEADER, _comment, render, yaml_scalar
from .inventory import Inventory


# --- from inventory to hosts.yml ----------------------------------------------------------------

ADDRESS_VARS = ("ansible_host", "ansible_ssh_host")
PORT_VARS = ("ansible_port", "ansible_ssh_port")
USER_VARS = ("ansible_user", "ansible_ssh_user", "ansible_remote_user")
KEY_VARS = ("ansible_ssh_private_key_file", "ansible_private_key_file")
SSH_ARGS_VARS = ("ansible_ssh_common_args", "ansible_ssh_extra_args")
SSH_CONNECTIONS = ("ssh", "paramiko", "smart")
_SECRET = re.compile(r"pass|secret|token|vault|credential|api_?key|private_key(?!_file)", re.IGNORECASE)


@dataclass
class _Host:
    """One host on its way to hosts.yml."""

    inventory_name: str
    name: str
    fields: dict[str, Any] = field(default_factory=dict)
    roles: list[str] = field(default_factory=list)


def _descendants(inventory: Inventory, name: str) -> list[str]:
    """``name`` and every group under it, in inventory order."""
    seen: list[str] = []
    stack = [name]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.append(current)
        stack.extend(reversed(inventory.group(current).children))
    return [g for g in inventory.groups if g in seen]


def _depths(inventory: Inventory) -> dict[str, int]:
    """Each group's depth under ``all`` (the longest path), which orders variable precedence as in Ansible."""
    depth = {"all": 0}
    changed = True
    rounds = 0
    while changed and rounds <= len(inventory.groups):  # no cycles (checked), so this settles
        changed, rounds = False, rounds + 1
        for group in inventory.groups.values():
            if group.name not in depth:
                continue
            for child in group.children:
                if depth.get(child, -1) < depth[group.name] + 1:
                    depth[child] = depth[group.name] + 1
                    changed = True
    return depth


def _value_text(name: str, value: Any) -> str:
    if _SECRET.search(name):
        return "<hidden>"
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return clip(text, 60)


def config_from_inventory(inventory: Inventory, group: Optional[str], project: str) -> tuple[str, str, list[str]]:
    """The hosts.yml text for ``inventory`` (limited to ``group``), a summary, and the unmapped-variable lines."""
    path = inventory.path
    if group is not None and group not in inventory.groups:
        names = [g for g in inventory.groups if g != "all"]
        raise ConfigError(path, None, "--group", f"no group {show(group)} in the inventory{suggest(group, names)} "
                                                 f"(groups: {listing(names)})")
    selected_groups = _descendants(inventory, group or "all")
    members: dict[str, set[str]] = {}  # host -> the groups it is in (directly or through children)
    for name in _descendants(inventory, "all"):
        for host in inventory.group(name).hosts:
            members.setdefault(host, set()).add(name)
    # Propagate membership up: a host in `web` is in every ancestor of `web`.
    parents: dict[str, set[str]] = {}
    for g in inventory.groups.values():
        for child in g.children:
            parents.setdefault(child, set()).add(g.name)
    for groups in members.values():
        todo = list(groups)
        while todo:
            for parent in parents.get(todo.pop(), ()):
                if parent not in groups:
                    groups.add(parent)
                    todo.append(parent)
        groups.add("all")
    host_order = [h for g in selected_groups for h in inventory.group(g).hosts]
    hosts_in_order = list(dict.fromkeys(host_order))
    if not hosts_in_order:
        where = f"group {show(group)}" if group else "the inventory"
        raise ConfigError(path, None, "--group" if group else None, f"{where} has no hosts")

    depth = _depths(inventory)
    role_groups = [g for g in selected_groups if g not in ("all", "ungrouped")]
    role_names = _unique_names(role_groups, ROLE_NAME_PATTERN)
    used_names: dict[str, str] = {}
    hosts: list[_Host] = []
    unmapped: dict[tuple[str, str], list[str]] = {}
    for inventory_name in hosts_in_order:
        groups = sorted(members[inventory_name], key=lambda g: (depth.get(g, 0), g))
        merged: dict[str, tuple[Any, Optional[int]]] = {}
        for g in groups:
            merged.update(inventory.group(g).vars)
        merged.update(inventory.host_vars.get(inventory_name, {}))
        line = inventory.host_lines.get(inventory_name)
        host = _Host(inventory_name, _host_name(inventory_name, used_names))
        host.roles = [role_names[g] for g in role_groups if g in members[inventory_name]]
        for var, (value, var_line) in merged.items():
            if not _map_variable(host, var, value, path, var_line or line):
                unmapped.setdefault((var, _value_text(var, value)), []).append(inventory_name)
        host.fields.setdefault("address", inventory_name)
        if host.fields.get("transport") == "local":  # this machine: no SSH settings apply
            for key in ("address", "user", "port", "key_file", "jump"):
                host.fields.pop(key, None)
        elif _check_address(host.fields["address"]):
            raise ConfigError(path, line, None, f"host {show(inventory_name)} is not a host name or IP address, and "
                                                "it has no ansible_host: set one")
        hosts.append(host)

    python, ssh = _lift_common(hosts)
    text = render(project, python=python, ssh=ssh,
                  roles_and_hosts=_roles_and_hosts(inventory, group, hosts, [role_names[g] for g in role_groups], unmapped))
    source = f"{clip(str(path), 80)}" + (f" (group {group})" if group else "")
    lines = [f"{_comment(str(path), 80)}: not mapped (no releasetui equivalent): {_comment(var, 40)}={_comment(value, 60)}"
             f" on {_host_list(names, len(hosts))}" for (var, value), names in unmapped.items()]
    summary = f"{len(hosts)} host(s) and {len(role_groups)} role(s) from {source}"
    return text, summary, lines


def _host_list(names: list[str], total: int) -> str:
    if len(names) == total and total > 1:
        return f"all {total} hosts"
    return listing(names, 120)


def _unique_names(names: list[str], pattern: re.Pattern) -> dict[str, str]:
    """Inventory names -> names releasetui accepts (invalid characters become '-'), kept unique."""
    used: dict[str, str] = {}
    result = {}
    for name in names:
        result[name] = _valid_name(name, pattern, used)
    return result


def _valid_name(name: str, pattern: re.Pattern, used: dict[str, str]) -> str:
    candidate = name if pattern.fullmatch(name) else \
        (re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-._")[:60] or "host")
    if not candidate[0].isalnum():
        candidate = "h" + candidate
    base, n = candidate, 2
    while candidate in used and used[candidate] != name:
        candidate = f"{base[:58]}-{n}"
        n += 1
    used[candidate] = name
    return candidate


def _host_name(name: str, used: dict[str, str]) -> str:
    return _valid_name(name, HOST_NAME_PATTERN, used)


def _map_variable(host: _Host, var: str, value: Any, path: Path, line: Optional[int]) -> bool:
    """Put one inventory variable onto ``host``; False when releasetui has no equivalent."""
    def bad(message: str) -> ConfigError:
        return ConfigError(path, line, var, message)

    if var in ADDRESS_VARS:
        if not isinstance(value, str) or not value or value.startswith("-") or any(c.isspace() for c in value) \
                or not value.isprintable():
            raise bad(f"not a host name or IP address: {show(value)}")
        host.fields["address"] = value
    elif var in PORT_VARS:
        try:
            port = int(value)
        except (TypeError, ValueError):
            raise bad(f"expected a port number, got {show(value)}") from None
        if isinstance(value, bool) or not 0 < port < 65536:
            raise bad(f"must be between 1 and 65535, got {show(value)}")
        host.fields["port"] = port
    elif var in USER_VARS:
        if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", value):
            return False  # a Jinja template such as "{{ lookup(...) }}": listed, for a person to resolve
        host.fields["user"] = value
    elif var in KEY_VARS:
        if not isinstance(value, str) or not value or "{{" in value or not value.isprintable():
            return False
        host.fields["key_file"] = value
    elif var == "ansible_python_interpreter":
        if not isinstance(value, str) or value.startswith("auto") or "{{" in value or not value.isprintable():
            return False
        host.fields["python"] = value
    elif var == "ansible_connection":
        if value == "local":
            host.fields["transport"] = "local"
        elif value not in SSH_CONNECTIONS:
            return False
    elif var in SSH_ARGS_VARS:
        jump = _proxy_jump(value)
        if jump is None:
            return False
        host.fields["jump"] = jump
    else:
        return False
    return True


def _proxy_jump(value: Any) -> Optional[str]:
    """The jump host of ssh arguments that say only ``-J HOST`` or ``-o ProxyJump=HOST`` (one hop), else None."""
    if not isinstance(value, str):
        return None
    try:
        words = shlex.split(value)
    except ValueError:
        return None
    jump = None
    i = 0
    while i < len(words):
        word = words[i]
        if word == "-J" and i + 1 < len(words):
            jump, i = words[i + 1], i + 2
        elif word.startswith("-J") and len(word) > 2:
            jump, i = word[2:], i + 1
        elif word == "-o" and i + 1 < len(words) and re.match(r"(?i)proxyjump[= ]", words[i + 1]):
            jump, i = re.split(r"[= ]", words[i + 1], maxsplit=1)[1].strip(), i + 2
        elif re.match(r"(?i)-oproxyjump[= ]", word):
            jump, i = re.split(r"[= ]", word, maxsplit=1)[1].strip(), i + 1
        else:
            return None  # anything else in the arguments would be lost: list the variable instead
    if not jump or "," in jump or not re.fullmatch(r"(?:[A-Za-z0-9_][A-Za-z0-9_.-]*@)?[^\s:@,]+(?::[0-9]{1,5})?", jump):
        return None
    return jump


def _lift_common(hosts: list[_Host]) -> tuple[str, str]:
    """Settings every host shares go to the top (``python:``) and ``ssh:``; the rest stay on the hosts."""
    ssh_hosts = [h for h in hosts if h.fields.get("transport") != "local"]
    lifted: dict[str, Any] = {}
    for key in ("user", "port", "key_file", "jump"):
        values = {json.dumps(h.fields.get(key)) for h in ssh_hosts}
        if ssh_hosts and len(values) == 1 and ssh_hosts[0].fields.get(key) is not None:
            lifted[key] = ssh_hosts[0].fields[key]
            for h in ssh_hosts:
                del h.fields[key]
    python = DEFAULT_PYTHON
    pythons = {h.fields.get("python") for h in hosts}
    if len(pythons) == 1 and None not in pythons:
        python = f"python: {yaml_scalar(pythons.pop())}"
        for h in hosts:
            del h.fields["python"]
    if not lifted:
        return python, DEFAULT_SSH
    lines = ["ssh:  # what every host of the inventory shares"]
    for key, line in zip(("user", "port", "key_file", "known_hosts", "jump"), DEFAULT_SSH.splitlines()[1:]):
        lines.append(f"  {key}: {yaml_scalar(lifted[key])}" if key in lifted else line)
    if "jump" not in lifted:
        lines.extend(DEFAULT_SSH.splitlines()[6:])  # the rest of the jump comment
    return python, "\n".join(lines)


def _roles_and_hosts(inventory: Inventory, group: Optional[str], hosts: list[_Host], roles: list[str],
                     unmapped: dict[tuple[str, str], list[str]]) -> str:
    source = _comment(str(inventory.path), 80) + (f", group {_comment(group, 40)}" if group else "")
    lines = [f"# Made from the Ansible inventory {source}: its groups are the roles below."]
    if unmapped:
        lines.append("# Not mapped (releasetui has no equivalent; set what you need by hand, e.g. as a role's hooks):")
        for (var, value), names in unmapped.items():
            pair = f"{_comment(var, 40)}={_comment(value, 60)}"
            lines.append(f"#   {pair:<36} on {_comment(_host_list(names, len(hosts)), 120)}")
    lines.append("")
    lines.append(ROLES_HEADER)
    if roles:
        lines.append("roles:")
        lines.extend(f"  {yaml_scalar(role)}: {{}}" for role in roles)
    else:
        lines.append("# roles: {web: {}}")
    lines.append("")
    lines.append(HOSTS_HEADER)
    lines.append("hosts:")
    for host in hosts:
        parts = [f"{key}: {yaml_scalar(host.fields[key])}" for key in
                 ("address", "user", "port", "key_file", "python", "jump", "transport") if key in host.fields]
        if host.roles:
            parts.append("roles: [" + ", ".join(yaml_scalar(r) for r in host.roles) + "]")
        note = f"   # {_comment(host.inventory_name, 80)}" if host.name != host.inventory_name else ""
        lines.append(f"  {yaml_scalar(host.name)}: {{{', '.join(parts)}}}{note}")
    return "\n".join(lines)


def group_choices(inventory: Inventory) -> dict[str, int]:
    """The groups to choose from (name -> host count, children included), or {} when there is no choice to make.

    Importing every host would make the database server, the bastion and
    ``localhost`` deploy targets as soon as the inventory groups hosts apart:
    there is a choice when some group with hosts does not hold every host.
    """
    everyone = {h for g in _descendants(inventory, "all") for h in inventory.group(g).hosts}
    counts: dict[str, int] = {}
    for name in inventory.groups:
        members = {h for g in _descendants(inventory, name) for h in inventory.group(g).hosts}
        if name != "all" and members:
            counts[name] = len(members)
    if all(count == len(everyone) for count in counts.values()):
        return {}
    return counts


def choose_group(inventory: Inventory, ask: Optional[Callable[[str], str]]) -> Optional[str]:
    """The group to import: None (every host) when there is no choice, else ``ask``'s answer, else refused."""
    choices = group_choices(inventory)
    if not choices:
        return None
    groups = listing([f"{name} ({count} host{'s' if count != 1 else ''})" for name, count in choices.items()], 300)
    what = f"the inventory's hosts are in {len(choices)} groups: {groups}"
    answer = ask(f"releasetui: {clean_line(what)}\nimport which group (`all`: every host)? ").strip() if ask else ""
    if answer:
        return answer  # an unknown name is refused with a suggestion by config_from_inventory
    raise ConfigError(inventory.path, None, "--group", f"{what}; choose one with --group NAME "
                                                      "(--group all imports every host)")
