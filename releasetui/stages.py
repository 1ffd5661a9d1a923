"""Stages (staging, production...): ``hosts.yml`` with ``hosts.STAGE.yml`` deep-merged over it.

Mappings merge key by key, lists and single values replace, and a key set to
null in the stage file removes it.  The merge works on YAML nodes, before
validation, and every node of the stage file remembers that file, so an error
names the file and line the value came from.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Optional

import yaml

STAGE_ENV_VAR = "RELEASETUI_STAGE"
STAGE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
_NULL = "tag:yaml.org,2002:null"


def stage_from(option: Optional[str], environ: Optional[dict] = None) -> Optional[str]:
    """The stage asked for: ``--stage``, else ``$RELEASETUI_STAGE``, else None."""
    if option:
        return option
    return (os.environ if environ is None else environ).get(STAGE_ENV_VAR) or None


def stage_path(config_path: Path, stage: str) -> Path:
    """``hosts.yml`` + ``production`` -> ``hosts.production.yml`` beside it."""
    return config_path.with_name(f"{config_path.stem}.{stage}{config_path.suffix}")


def source_of(node: Optional[yaml.Node], default: Path) -> Path:
    """The file ``node`` was read from (a stage file's nodes carry it; the main file's do not)."""
    return getattr(node, "source_path", None) or default


def mark_source(node: yaml.Node, path: Path) -> None:
    """Tag ``node`` and everything under it as read from ``path`` (aliases are visited once)."""
    seen: set[int] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        current.source_path = path
        if isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                stack += [key, value]
        elif isinstance(current, yaml.SequenceNode):
            stack += current.value


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _NULL


def _key_text(node: yaml.Node) -> Optional[str]:
    return node.value if isinstance(node, yaml.ScalarNode) and node.tag != "tag:yaml.org,2002:merge" else None


def merge_nodes(base: yaml.Node, overlay: yaml.Node) -> yaml.Node:
    """``overlay`` deep-merged over ``base`` (new nodes; neither input is changed)."""
    if not (isinstance(base, yaml.MappingNode) and isinstance(overlay, yaml.MappingNode)):
        return overlay
    pairs = list(base.value)
    index = {_key_text(k): i for i, (k, _) in enumerate(pairs) if _key_text(k) is not None}
    removed: set[int] = set()
    for key, value in overlay.value:
        name = _key_text(key)
        if name is None or name not in index:
            if not _is_null(value) or name is None:
                pairs.append((key, value))
            continue
        at = index[name]
        if _is_null(value):
            removed.add(at)
        else:
            pairs[at] = (key, merge_nodes(pairs[at][1], value))
    merged = yaml.MappingNode(base.tag, [p for i, p in enumerate(pairs) if i not in removed],
                              base.start_mark, base.end_mark, flow_style=base.flow_style)
    if hasattr(base, "source_path"):
        merged.source_path = base.source_path
    return merged


def declared_stages(root: yaml.Node) -> list[str]:
    """The names under the main file's ``stages:`` (read raw, only to word an error about a missing stage file)."""
    if not isinstance(root, yaml.MappingNode):
        return []
    for key, value in root.value:
        if _key_text(key) == "stages" and isinstance(value, yaml.SequenceNode):
            return [v.value for v in value.value if isinstance(v, yaml.ScalarNode)]
    return []
