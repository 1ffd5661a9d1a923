"""``releasetui init``: its arguments, and writing the file (never over an existing one) with the schema
editors validate it against."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Callable, Optional, TextIO


from ..config import (DEFAULT_CONFIG_NAME, PROJECT_NAME_PATTERN, ConfigError, clip, load_config_text)
# The starter, the inventory reader and the Ansible mapping are imported by run_init: every CLI run registers
# init's arguments, and none but init needs them.


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
    from .ansible import choose_group, config_from_inventory
    from .inventory import parse_inventory
    from .starter import starter_text

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
        from ..schema import schema_text
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
