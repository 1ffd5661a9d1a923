"""``releasetui init``: write a commented ``hosts.yml`` starter, or one made from an Ansible inventory.

The starter is package data (``releasetui/templates/hosts.starter.yml``): an
installed package has no ``hosts.example.yml`` to copy.  Whatever ``init``
writes is loaded with :func:`~releasetui.config.load_config_text` before it is
written, so the file is valid as written, and an existing file is never
overwritten.

``--from-ansible INVENTORY`` reads an INI or YAML Ansible inventory: each host
keeps its connection settings (``ansible_host``, ``ansible_port``,
``ansible_user``, ``ansible_ssh_private_key_file``, ...), each group becomes a
role, and every variable with no releasetui equivalent is listed, on stderr
and as comments in the written file, never silently dropped.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, TextIO

import yaml

from .config import (
    DEFAULT_CONFIG_NAME,
    HOST_NAME_PATTERN,
    PROJECT_NAME_PATTERN,
    ROLE_NAME_PATTERN,
    ConfigError,
    _check_address,
    Reader,
    clip,
    listing,
    suggest,
    compose_yaml,
    load_config_text,
    read_config_text,
    show,
)
from .text import clean_line

TEMPLATE = "hosts.starter.yml"
MAX_RANGE_HOSTS = 10_000  # `web[0:99999999]` is a typo or an attack, not a fleet

DEFAULT_PYTHON = "python: python3"
DEFAULT_SSH = """\
ssh:
  # user: deploy
  # port: 22
  # key_file: ~/.ssh/id_ed25519
  # known_hosts: ~/.ssh/known_hosts
  # jump: ops@bastion.example.com:22   # a bastion every host is reached through: "[user@]host[:port]" or
  #                                    # {address, user, port, key_file, known_hosts}; a host's `jump: null` skips it"""
ROLES_HEADER = """\
# Roles: groups of hosts that share settings (root, python, restart, restart_timeout, healthcheck, logs, hooks).
# Every role a host names must be listed here; `web: {}` is a role used only as a label. `--role NAME` targets one."""
HOSTS_HEADER = """\
# The hosts: NAME: {address, user, port, key_file, known_hosts, jump, transport (ssh | local), roles, and the
# per-role settings above}."""
DEFAULT_ROLES_AND_HOSTS = f"""\
{ROLES_HEADER}
roles:
  web: {{}}
  # worker: {{restart: supervisorctl restart celery, healthcheck: null}}

{HOSTS_HEADER} Replace the placeholder below with your own.
hosts:
  web1: {{address: web1.example.com, roles: [web]}}
  # web2: {{address: 10.0.0.12, port: 2222, roles: [web]}}
  # box: {{transport: local, root: /srv/@PROJECT@}}     # this machine, no SSH"""


def add_init_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``init`` on the command line's subcommands."""
    p = sub.add_parser("init", help="write a commented hosts.yml starter (refuses to overwrite)",
                       description="Write a commented hosts.yml starter in the current directory, or one made "
                                   "from an Ansible inventory. An existing file is never overwritten.")
    p.add_argument("--output", "-o", metavar="PATH", help=f"file to write (default: ./{DEFAULT_CONFIG_NAME}; "
                                                          "a directory gets hosts.yml inside it)")
    p.add_argument("--from-ansible", dest="inventory", metavar="INVENTORY",
                   help="an INI or YAML Ansible inventory: hosts and their connection variables; groups become roles")
    p.add_argument("--group", metavar="NAME", help="with --from-ansible: only this group's hosts (children "
                   "included; `all`: every host); needed when the inventory's hosts are in several groups")


def run_init(args: argparse.Namespace, out: Optional[TextIO] = None, err: Optional[TextIO] = None,
             ask: Optional[Callable[[str], str]] = None) -> int:
    """``releasetui init``: write the file and say what to do next; a ConfigError becomes exit 2 in the CLI.

    ``ask`` (a question -> the answer) chooses the group when the inventory has several and ``--group`` is
    not given; by default it asks on a terminal, and without one the choice is required.
    """
    out, err = out or sys.stdout, err or sys.stderr
    if getattr(args, "group", None) and not getattr(args, "inventory", None):
        raise ConfigError("releasetui init", None, "--group", "only makes sense with --from-ansible INVENTORY")
    target = output_path(getattr(args, "output", None))
    if target.exists() or target.is_symlink():
        raise ConfigError(target, None, None, "already exists: not overwritten (remove it, or choose another file "
                                              "with --output PATH)")
    project = project_name(target.parent)
    if getattr(args, "inventory", None):
        inventory = parse_inventory(Path(args.inventory))
        group = args.group or choose_group(inventory, ask if ask is not None else _terminal_question(err))
        text, summary, unmapped = config_from_inventory(inventory, group, project)
    else:
        text, summary, unmapped = starter_text(project), None, []
    try:
        load_config_text(text, target)
    except ConfigError as exc:  # a bug here, never the user's: say so in one line rather than write a broken file
        raise ConfigError(target, exc.line, exc.key, f"releasetui init made a file that does not load: {exc.message}") \
            from None
    schema_file = target.with_name(SCHEMA_FILE)
    write_new(target, f"# yaml-language-server: $schema={SCHEMA_FILE}\n" + text)
    if not schema_file.exists() and not schema_file.is_symlink():
        from .schema import schema_text
        write_new(schema_file, schema_text())
    for line in unmapped:
        err.write(f"releasetui: {line}\n")
    if summary:
        out.write(f"wrote {target}: {summary}; set `root`, then check with: releasetui --headless builds\n")
    else:
        out.write(f"wrote {target}: set `root` and your hosts, then check with: releasetui --headless builds\n")
    return 0


# Written beside hosts.yml by init and named on its first line, so an editor with the YAML language server
# validates the file as it is typed; `releasetui schema > hosts.schema.json` refreshes it after an upgrade.
SCHEMA_FILE = "hosts.schema.json"


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


def _terminal_question(err: TextIO) -> Optional[Callable[[str], str]]:
    """Ask on the terminal (question on ``err``, answer from stdin) when stdin is one; else None."""
    try:
        if not sys.stdin.isatty():
            return None
    except (AttributeError, ValueError, OSError):
        return None

    def ask(question: str) -> str:
        err.write(question)
        err.flush()
        return sys.stdin.readline()
    return ask


def output_path(given: Optional[str]) -> Path:
    """Where ``init`` writes: ``--output`` (a directory gets ``hosts.yml`` inside), else ``./hosts.yml``."""
    if not given:
        return Path.cwd() / DEFAULT_CONFIG_NAME
    path = Path(given).expanduser()
    if path.is_dir():
        path = path / DEFAULT_CONFIG_NAME
    if not path.parent.is_dir():
        raise ConfigError(path, None, "--output", f"no such directory: {clip(str(path.parent), 120)}")
    return path


def project_name(directory: Path) -> str:
    """A valid project name from the directory's name (``My App`` -> ``My-App``), else ``myapp``."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", directory.resolve().name).lstrip("._-")[:63].rstrip("-")
    return name if PROJECT_NAME_PATTERN.fullmatch(name) else "myapp"


def write_new(path: Path, text: str) -> None:
    """Create ``path`` with ``text``; refuse (ConfigError) if it exists, even if it appeared a moment ago."""
    try:
        with open(path, "x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        raise ConfigError(path, None, None, "already exists: not overwritten (remove it, or choose another file "
                                            "with --output PATH)") from None
    except OSError as exc:
        raise ConfigError(path, None, None, f"cannot write: {exc.strerror or exc}") from None


def template() -> str:
    """The starter template shipped in the package."""
    from importlib import resources  # only init needs it: keep the other commands' start-up light

    return resources.files("releasetui").joinpath("templates", TEMPLATE).read_text(encoding="utf-8")


def render(project: str, python: str = DEFAULT_PYTHON, ssh: str = DEFAULT_SSH,
           roles_and_hosts: str = DEFAULT_ROLES_AND_HOSTS) -> str:
    """The template with its four blocks filled in."""
    text = template()
    for marker, value in (("@PYTHON@", python), ("@SSH@", ssh), ("@ROLES_AND_HOSTS@", roles_and_hosts)):
        text = text.replace(marker, value)
    return text.replace("@PROJECT@", project)


def starter_text(project: str = "myapp") -> str:
    """The plain starter: every key commented, one placeholder host, valid as written."""
    return render(project)


# --- YAML output ------------------------------------------------------------------------------

_PLAIN = re.compile(r"[A-Za-z0-9_./~][A-Za-z0-9_./~@+-]*")


def yaml_scalar(value: Any) -> str:
    """``value`` written as a YAML scalar that reads back as exactly that value."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, float)):
        return json.dumps(value)
    text = str(value)
    if _PLAIN.fullmatch(text) and yaml.safe_load(text) == text:
        return text
    return json.dumps(text)  # a JSON string is a YAML double-quoted scalar; control characters are escaped


def _comment(text: str, limit: int = 100) -> str:
    """Inventory text made safe for a comment: one line (a newline would end the comment), cut."""
    return clip(text, limit)


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
