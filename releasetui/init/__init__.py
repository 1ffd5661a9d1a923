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

from .ansible import choose_group, config_from_inventory, group_choices
from .command import SCHEMA_FILE, add_init_parser, output_path, project_name, run_init, write_new
from .inventory import Inventory, expand_hosts, parse_inventory
from .starter import render, starter_text, template, yaml_scalar

__all__ = ["Inventory", "SCHEMA_FILE", "add_init_parser", "choose_group", "config_from_inventory", "expand_hosts",
           "group_choices", "output_path", "parse_inventory", "project_name", "render", "run_init", "starter_text",
           "template", "yaml_scalar"]
