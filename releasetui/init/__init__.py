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

Modules: :mod:`.command` (the command), :mod:`.starter` (the starter and YAML output), :mod:`.inventory`
(reading an inventory), :mod:`.ansible` (an inventory to hosts.yml).
"""

from __future__ import annotations

from importlib import import_module

_HOMES = {"choose_group": "ansible", "config_from_inventory": "ansible", "group_choices": "ansible",
          "SCHEMA_FILE": "command", "add_init_parser": "command", "output_path": "command",
          "project_name": "command", "run_init": "command", "write_new": "command",
          "Inventory": "inventory", "expand_hosts": "inventory", "parse_inventory": "inventory",
          "render": "starter", "starter_text": "starter", "template": "starter", "yaml_scalar": "starter"}

__all__ = sorted(_HOMES)


def __getattr__(name: str):
    """Each name from its module, imported on first use: every CLI run registers init's arguments
    (:mod:`.command`), and only ``init`` itself needs the rest."""
    if name in _HOMES:
        return getattr(import_module(f".{_HOMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
