"""The checked pieces every requirements reader shares: value checks with one-line errors, markers combined along a
lock's dependency paths, and the walk that gives each reachable package the condition it is needed under."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Optional

NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+!_*-]{0,99}$")
URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^\s#'\"\\]+$")
SHA = re.compile(r"^[0-9a-fA-F]{7,64}$")
# The name (and extras) a PEP 508 requirement starts with.
REQ_HEAD = re.compile(r"^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[([^\]]*)\])?")
MAX_PATHS = 64   # marker conjunctions kept per package: far above any real lock, far below what hurts


class RequirementsError(Exception):
    """The requirements source cannot be used: one line naming the file (and the field, where there is one)."""


def normalize(name: str) -> str:
    """A project or extra name as PEP 503 / PEP 685 compare them."""
    return re.sub(r"[-_.]+", "-", name).lower()


# --- checked values ------------------------------------------------------------------------------

def table(value: Any, rel: str, where: str) -> dict:
    """``value`` as a TOML table ({} when absent); else one line naming ``rel`` and ``where``."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RequirementsError(f"{rel}: {where} is not a table")
    return value


def array(value: Any, rel: str, where: str) -> list:
    """``value`` as a TOML array ([] when absent); else one line naming ``rel`` and ``where``."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise RequirementsError(f"{rel}: {where} is not an array")
    return value


def package_name(value: Any, rel: str, where: str) -> str:
    """``value`` when it is a package name (it reaches a requirements line as is)."""
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise RequirementsError(f"{rel}: {where}.name is not a package name: {str(value)[:60]!r}")
    return value


def version_of(value: Any, rel: str, where: str) -> str:
    """``value`` when it is a plain version (it reaches a requirements line as is)."""
    if not isinstance(value, str) or not VERSION.fullmatch(value):
        raise RequirementsError(f"{rel}: {where}.version is not a version: {str(value)[:60]!r}")
    return value


def marker_of(value: Any, rel: str, where: str) -> Optional[str]:
    """``value`` as an environment marker (None when empty): printable, no comment sign, bounded."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.isprintable() or "#" in value or len(value) > 2000:
        raise RequirementsError(f"{rel}: {where} is not an environment marker: {str(value)[:60]!r}")
    return value.strip()


def url_of(value: Any, rel: str, where: str) -> str:
    """``value`` when it is a URL with nothing a requirements line would read otherwise."""
    if not isinstance(value, str) or not URL.fullmatch(value):
        raise RequirementsError(f"{rel}: {where} is not a URL: {str(value)[:80]!r}")
    return value


def line_with(spec: str, markers: frozenset) -> str:
    """``spec`` with the condition ``markers`` (alternatives of conjunctions; :data:`ALWAYS` = none)."""
    rendered = render(markers)
    return spec if rendered is None else f"{spec} ; {rendered}"


# --- markers along dependency paths: sets of alternatives, each a set of markers that must all hold ---------

ALWAYS: frozenset = frozenset({frozenset()})


def render(dnf: frozenset) -> Optional[str]:
    """The marker text of ``dnf`` (alternatives of conjunctions); None when it always holds."""
    if not dnf or frozenset() in dnf:
        return None
    def conj(c: frozenset) -> str:
        parts = sorted(c)
        return parts[0] if len(parts) == 1 else " and ".join(f"({p})" for p in parts)
    alternatives = sorted(conj(c) for c in dnf)
    return alternatives[0] if len(alternatives) == 1 else " or ".join(f"({a})" for a in alternatives)


def and_marker(dnf: frozenset, marker: Optional[str]) -> frozenset:
    """``dnf`` with ``marker`` required in each alternative."""
    return dnf if marker is None else frozenset(c | {marker} for c in dnf)


def or_markers(a: frozenset, b: frozenset) -> frozenset:
    """Either condition, the redundant alternatives dropped."""
    both = a | b
    if frozenset() in both:
        return ALWAYS
    return frozenset(c for c in both if not any(o < c for o in both))   # (x) or (x and y) is (x)


@dataclass
class Edge:
    """A dependency: the node it leads to, under which marker, with which of its extras."""

    target: str
    marker: Optional[str]
    extras: tuple[str, ...] = ()


@dataclass
class Node:
    """A locked package: its requirement line, its dependencies and its extras' dependencies."""

    spec: Optional[str]                     # the line's requirement (None: never installed, e.g. a local project)
    deps: list
    optional: dict


def walk(nodes: dict[str, Node], start: Iterable[Edge], rel: str) -> dict[str, frozenset]:
    """Each node reachable from ``start`` with the condition under which it is needed (markers along the paths)."""
    reach: dict[str, frozenset] = {}
    queue: list[tuple[str, tuple, frozenset]] = [(e.target, e.extras, and_marker(ALWAYS, e.marker)) for e in start]
    seen: dict[tuple, frozenset] = {}
    while queue:
        key, extras, dnf = queue.pop()
        node = nodes[key]
        for part in ("",) + tuple(extras):
            # A node is visited again only with a condition it did not have yet (for itself or an extra of it).
            have = seen.get((key, part), frozenset())
            merged = or_markers(have, dnf)
            if merged == have:
                continue
            if len(merged) > MAX_PATHS:
                raise RequirementsError(f"{rel}: the markers on the paths to {key.split('@')[0]} are too many to "
                                        "combine; export a requirements.txt instead")
            seen[(key, part)] = merged
            if part == "":
                reach[key] = merged
            for edge in (node.deps if part == "" else node.optional.get(part, [])):
                queue.append((edge.target, edge.extras, and_marker(merged, edge.marker)))
    return reach


# A package that comes from this machine's tree (a path, a workspace member): never looked up on an index by name.
LOCAL = "!local "


def subdirectory_of(value: str, rel: str, where: str) -> str:
    """A git dependency's subdirectory, as pip's ``#subdirectory=`` takes it (percent-decoded, checked)."""
    from urllib.parse import unquote
    sub = unquote(value)
    if not re.fullmatch(r"[A-Za-z0-9._/-]{1,200}", sub) or ".." in sub.split("/") or sub.startswith("/"):
        raise RequirementsError(f"{rel}: {where}.source.git: subdirectory {sub[:60]!r} is not a plain relative path")
    return sub


def refuse_local(rel: str, what: str) -> None:
    """Refuse a dependency that comes from a local path: pip on the host would look its name up on the index."""
    raise RequirementsError(
        f"{rel}: {what}: a dependency from a local path (a workspace member or a path/file source); the hosts "
        "install from an index or a wheelhouse, where the same name may be someone else's package: publish it "
        "(or put its wheel in the index/--find-links pip_args name) and lock it from there")


def lines_of(nodes: dict[str, Node], reach: dict[str, frozenset], rel: str) -> list[str]:
    """The requirement line of each reached node under its condition, sorted by name; a local dependency refused."""
    for key in reach:
        spec = nodes[key].spec
        if spec is not None and spec.startswith(LOCAL):
            refuse_local(rel, spec[len(LOCAL):])
    lines = {line_with(nodes[k].spec, dnf) for k, dnf in reach.items() if nodes[k].spec is not None}
    return sorted(lines, key=lambda l: (normalize(REQ_HEAD.match(l).group(1)), l))


