"""The commented starter ``init`` writes (package data: ``releasetui/templates/hosts.starter.yml``), and how a
value is written as YAML that reads back as exactly that value."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from ..config import (clip)


TEMPLATE = "hosts.starter.yml"

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
