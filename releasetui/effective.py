"""``releasetui config``: the configuration as operations will use it (stage merged, every host's settings
resolved over its roles and the top level), with where each host setting came from.

Nothing secret is in a :class:`~releasetui.config.Config` (secrets are named, their values are read only when an
operation runs), so nothing here needs redacting beyond what the config holds.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from .config import Config, HostConfig

_CONNECTION = ("transport", "address", "port", "user", "key_file", "known_hosts", "jump", "roles")
_TOP = ("project", "stage", "stages", "require_stage", "confirm", "source", "requirements", "requirements_extras",
        "excludes_file",
        "pip_args", "keep_builds", "parallel", "lock_wait", "connect_timeout", "script_timeout", "install_timeout",
        "require_clean", "shared", "rollout")


def _plain(value: Any) -> Any:
    """A value as JSON can carry it: paths as text, dataclasses as mappings, tuples as lists."""
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def host_settings(host: HostConfig) -> dict[str, dict]:
    """Each resolved setting of one host: ``{"value": ..., "from": "hosts.web1" | "roles.web" | ...}``."""
    origins = dict(host.origins)
    settings = {}
    for key in ("root", "python", "installer", "uv", "restart", "restart_timeout", "healthcheck", "logs"):
        settings[key] = {"value": _plain(getattr(host, key)), "from": origins.get(key, "default")}
    for hook in host.hooks:
        settings.setdefault(f"hooks.{hook.name}", {"value": [], "from": origins.get(hook.name, "default")})
        settings[f"hooks.{hook.name}"]["value"].append(_plain(hook))
    return settings


def effective(config: Config) -> dict:
    """The whole effective configuration as one JSON-ready document."""
    top = {key: _plain(getattr(config, key)) for key in _TOP}
    top["config_file"] = str(config.path)
    top["local_hooks"] = [_plain(h) for h in config.hooks]
    hosts = {h.name: {"connection": {k: _plain(getattr(h, k)) for k in _CONNECTION}, "settings": host_settings(h)}
             for h in config.hosts}
    return {"top": top, "hosts": hosts}


def effective_lines(config: Config) -> list[str]:
    """:func:`effective` for a person: the top level, then each host with ``[where it came from]``."""
    doc = effective(config)
    lines = [f"{key}: {json.dumps(value)}" for key, value in doc["top"].items() if value not in (None, [], {})]
    lines.append("hosts:")
    for name, host in doc["hosts"].items():
        where = ", ".join(f"{k} {json.dumps(v)}" for k, v in host["connection"].items() if v not in (None, [], {}))
        lines.append(f"  {name}: {where}")
        for key, setting in host["settings"].items():
            lines.append(f"    {key}: {json.dumps(setting['value'])}  [{setting['from']}]")
    return lines
