"""Readers of each requirements source that is not a plain requirements.txt: pyproject.toml, uv.lock,
poetry.lock and pylock.toml (PEP 751), each to sorted ``name==version ; marker`` lines."""

from __future__ import annotations

import re
from typing import Any, Optional, Sequence

from .checks import (LOCAL, REQ_HEAD, SHA, Edge, Node, RequirementsError, array, lines_of, marker_of,
                     normalize, package_name, refuse_local, subdirectory_of, table, url_of, version_of,
                     walk)

# --- pyproject.toml --------------------------------------------------------------------------------

def from_pyproject(doc: dict, rel: str, extras: Sequence[str]) -> list[str]:
    """``[project] dependencies`` plus each extra's optional-dependencies (an extra naming the project itself,
    ``app[a,b]``, is expanded), one requirement a line, sorted, each once."""
    project = table(doc.get("project"), rel, "[project]")
    if not project:
        poetry = isinstance(doc.get("tool"), dict) and "poetry" in doc["tool"]
        raise RequirementsError(f"{rel}: no [project] table" + (" (a Poetry project: use poetry.lock)" if poetry else
                                                                 " (name a requirements.txt or a lock file)"))
    if "dependencies" in array(project.get("dynamic"), rel, "project.dynamic"):
        raise RequirementsError(f"{rel}: project.dependencies is dynamic (computed by the build backend): name a "
                                "requirements.txt or a lock file")
    own = normalize(project["name"]) if isinstance(project.get("name"), str) else None
    optional = {normalize(k): v for k, v in table(project.get("optional-dependencies"), rel,
                                                    "project.optional-dependencies").items()}
    lines: list[str] = []
    wanted, done = list(extras), set()

    def take(requirements: Any, where: str) -> None:
        for i, req in enumerate(array(requirements, rel, where)):
            if not isinstance(req, str) or not req.strip() or not req.isprintable() or req.lstrip().startswith("-"):
                raise RequirementsError(f"{rel}: {where}[{i}] is not a requirement: {str(req)[:60]!r}")
            head = REQ_HEAD.match(req)
            if head is None:
                raise RequirementsError(f"{rel}: {where}[{i}] is not a requirement: {req[:60]!r}")
            if own and normalize(head.group(1)) == own:   # `app[a,b]`: the project's own extras
                if req[head.end():].strip():
                    raise RequirementsError(f"{rel}: {where}[{i}]: a self-reference with a version or marker "
                                            f"is not supported: {req[:60]!r}")
                wanted.extend(normalize(x) for x in (head.group(2) or "").split(",") if x.strip())
                continue
            lines.append(req.strip())

    take(project.get("dependencies"), "project.dependencies")
    while wanted:
        extra = wanted.pop(0)
        if extra in done:
            continue
        done.add(extra)
        if extra not in optional:
            raise RequirementsError(f"{rel}: requirements_extras: no optional-dependencies {extra!r} "
                                    f"(it has: {', '.join(sorted(optional)) or 'none'})")
        take(optional[extra], f"project.optional-dependencies.{extra}")
    tool = doc.get("tool") if isinstance(doc.get("tool"), dict) else {}
    uv_tool = tool.get("uv") if isinstance(tool.get("uv"), dict) else {}
    sources = {normalize(k): v for k, v in (uv_tool.get("sources") or {}).items()} \
        if isinstance(uv_tool.get("sources"), dict) else {}
    for line in lines:
        name = normalize(REQ_HEAD.match(line).group(1))
        source = sources.get(name)
        if isinstance(source, dict) and not set(source) <= {"index", "marker", "extra", "group"}:
            raise RequirementsError(f"{rel}: tool.uv.sources.{name} takes it from {', '.join(sorted(source))}, "
                                    "which pip on the hosts cannot see from pyproject.toml (it would look the name "
                                    "up on the index): deploy from the uv.lock (requirements: uv.lock)")
    return sorted(dict.fromkeys(lines), key=lambda l: (l.lower(), l))


# --- uv.lock ---------------------------------------------------------------------------------------

def _uv_spec(pkg: dict, rel: str, where: str) -> Optional[str]:
    """What to install for one uv.lock package (None: a local project, never installed)."""
    name = package_name(pkg.get("name"), rel, where)
    source = table(pkg.get("source"), rel, f"{where}.source")
    if source.get("editable") == "." or source.get("virtual") == ".":
        return None   # the project itself: it runs from its build, never installed into the venv
    for kind in ("editable", "virtual", "directory", "path"):
        if kind in source:
            return LOCAL + f"{where}.source.{kind} = {str(source[kind])[:60]!r}"
    if "git" in source:
        base, _, commit = str(source["git"]).partition("#")
        base, _, query = base.partition("?")
        base = url_of(base, rel, f"{where}.source.git")
        if not SHA.fullmatch(commit):
            raise RequirementsError(f"{rel}: {where}.source.git has no commit (#<sha>): {str(source['git'])[:80]!r}")
        sub = [v for k, v in (p.partition("=")[::2] for p in query.split("&")) if k == "subdirectory"]
        return f"{name} @ git+{base}@{commit}" + (f"#subdirectory={subdirectory_of(sub[0], rel, where)}" if sub else "")
    if "url" in source:
        return f"{name} @ {url_of(source['url'], rel, f'{where}.source.url')}"
    return f"{name}=={version_of(pkg.get('version'), rel, where)}"


def from_uv_lock(doc: dict, rel: str, extras: Sequence[str]) -> list[str]:
    """The project's dependencies and the named extras' from a uv.lock, through the lock (not its dev groups)."""
    if doc.get("version") != 1:
        raise RequirementsError(f"{rel}: version = {doc.get('version')!r}: not a uv.lock version releasetui reads (1)")
    nodes: dict[str, Node] = {}
    by_name: dict[str, list[tuple[str, dict]]] = {}
    packages = array(doc.get("package"), rel, "package")
    for i, pkg in enumerate(packages):
        where = f"package[{i}]"
        pkg = table(pkg, rel, where)
        name = normalize(package_name(pkg.get("name"), rel, where))
        key = f"{name}@{pkg.get('version')}@{len(by_name.get(name, []))}"
        by_name.setdefault(name, []).append((key, pkg))
    roots = []
    for name, entries in by_name.items():
        for key, pkg in entries:
            where = f"package {pkg['name']}"
            nodes[key] = Node(_uv_spec(pkg, rel, where), [], {})
            source = pkg.get("source") or {}
            if source.get("editable") == "." or source.get("virtual") == ".":
                roots.append(key)

    def edge(dep: Any, where: str) -> Edge:
        dep = table(dep, rel, where)
        name = normalize(package_name(dep.get("name"), rel, where))
        choices = by_name.get(name, [])
        if "version" in dep:
            choices = [(k, p) for k, p in choices if p.get("version") == dep["version"]]
        if "source" in dep and len(choices) > 1:
            choices = [(k, p) for k, p in choices if p.get("source") == dep["source"]]
        if len(choices) != 1:
            what = "no" if not choices else "more than one"
            raise RequirementsError(f"{rel}: {where} names {dep['name']!r}: {what} such package in the lock")
        extra = tuple(normalize(x) for x in array(dep.get("extra"), rel, f"{where}.extra"))
        return Edge(choices[0][0], marker_of(dep.get("marker"), rel, f"{where}.marker"), extra)

    for entries in by_name.values():
        for key, pkg in entries:
            where = f"package {pkg['name']}"
            nodes[key].deps = [edge(d, f"{where}.dependencies[{j}]")
                               for j, d in enumerate(array(pkg.get("dependencies"), rel, f"{where}.dependencies"))]
            for extra, deps in table(pkg.get("optional-dependencies"), rel, f"{where}.optional-dependencies").items():
                nodes[key].optional[normalize(extra)] = [
                    edge(d, f"{where}.optional-dependencies.{extra}[{j}]")
                    for j, d in enumerate(array(deps, rel, f"{where}.optional-dependencies.{extra}"))]
    if not roots:
        raise RequirementsError(f"{rel}: no entry for the project itself (source = {{ editable = \".\" }} or "
                                "{ virtual = \".\" }): is this the lock of this source?")
    available = {x for r in roots for x in nodes[r].optional}
    for extra in extras:
        if extra not in available:
            raise RequirementsError(f"{rel}: requirements_extras: the project has no extra {extra!r} "
                                    f"(it has: {', '.join(sorted(available)) or 'none'})")
    start = [Edge(root, None, tuple(x for x in extras if x in nodes[root].optional)) for root in roots]
    return lines_of(nodes, walk(nodes, start, rel), rel)


# --- poetry.lock -----------------------------------------------------------------------------------

def _poetry_spec(pkg: dict, rel: str, where: str) -> Optional[str]:
    name = package_name(pkg.get("name"), rel, where)
    source = table(pkg.get("source"), rel, f"{where}.source")
    kind = source.get("type")
    if kind in ("directory", "file"):
        refuse_local(rel, f"{where}.source.type = {kind!r}")
    if kind == "git":
        commit = source.get("resolved_reference") or source.get("reference")
        if not isinstance(commit, str) or not SHA.fullmatch(commit):
            raise RequirementsError(f"{rel}: {where}.source.resolved_reference is not a commit")
        return f"{name} @ git+{url_of(source.get('url'), rel, f'{where}.source.url')}@{commit}"
    if kind == "url":
        return f"{name} @ {url_of(source.get('url'), rel, f'{where}.source.url')}"
    return f"{name}=={version_of(pkg.get('version'), rel, where)}"


def from_poetry_lock(doc: dict, rel: str, extras: Sequence[str]) -> list[str]:
    """The main group of a poetry.lock (lock-version 2.1: each package says its groups and markers), plus the
    packages the named extras need."""
    meta = table(doc.get("metadata"), rel, "[metadata]")
    version = str(meta.get("lock-version", ""))
    if not re.fullmatch(r"2\.[1-9][0-9]*", version):
        raise RequirementsError(f"{rel}: lock-version {version or '?'} does not say which packages the main group "
                                "needs: lock again with Poetry 2 (lock-version 2.1), or export a requirements.txt")
    packages = [table(p, rel, f"package[{i}]") for i, p in enumerate(array(doc.get("package"), rel, "package"))]
    by_name = {normalize(package_name(p.get("name"), rel, f"package[{i}]")): p for i, p in enumerate(packages)}
    lock_extras = {normalize(k): v for k, v in table(doc.get("extras"), rel, "[extras]").items()}
    wanted: list[str] = []
    for extra in extras:
        if extra not in lock_extras:
            raise RequirementsError(f"{rel}: requirements_extras: the lock has no extra {extra!r} "
                                    f"(it has: {', '.join(sorted(lock_extras)) or 'none'})")
        wanted += [normalize(REQ_HEAD.match(str(n)).group(1)) for n in array(lock_extras[extra], rel, f"extras.{extra}")
                   if REQ_HEAD.match(str(n))]
    # What the extras pull in: their packages and (by name, through the lock) everything those depend on.
    chosen: set[str] = set()
    while wanted:
        name = wanted.pop()
        if name in chosen or name not in by_name:
            continue
        chosen.add(name)
        wanted.extend(normalize(d) for d in table(by_name[name].get("dependencies"), rel, f"package {name}.dependencies"))
    lines = set()
    for name, pkg in by_name.items():
        where = f"package {pkg['name']}"
        groups = array(pkg.get("groups"), rel, f"{where}.groups")
        if "main" not in groups or (pkg.get("optional") is True and name not in chosen):
            continue
        markers = pkg.get("markers")
        if isinstance(markers, dict):
            markers = markers.get("main")
        marker = marker_of(markers, rel, f"{where}.markers")
        spec = _poetry_spec(pkg, rel, where)
        if spec is not None:
            lines.add(spec if marker is None else f"{spec} ; {marker}")
    return sorted(lines, key=lambda l: (normalize(REQ_HEAD.match(l).group(1)), l))


# --- pylock.toml (PEP 751) -------------------------------------------------------------------------

_VCS = {"git": "git", "hg": "hg", "bzr": "bzr", "svn": "svn"}


def from_pylock(doc: dict, rel: str) -> list[str]:
    """Every package of a PEP 751 lock with its marker, but local directories (the project itself)."""
    version = str(doc.get("lock-version", ""))
    if not re.fullmatch(r"1(\.[0-9]+)?", version):
        raise RequirementsError(f"{rel}: lock-version {version or '?'} is not a PEP 751 version releasetui reads (1.x)")
    lines = set()
    for i, pkg in enumerate(array(doc.get("packages"), rel, "packages")):
        pkg = table(pkg, rel, f"packages[{i}]")
        name = package_name(pkg.get("name"), rel, f"packages[{i}]")
        where = f"packages[{i}] ({name})"
        marker = marker_of(pkg.get("marker"), rel, f"{where}.marker")
        if marker and re.search(r"\b(extras|dependency_groups)\b", marker):
            raise RequirementsError(f"{rel}: {where}.marker depends on extras or dependency groups, which pip "
                                    "cannot evaluate: export the lock for the extras you deploy")
        if "directory" in pkg:
            path = table(pkg["directory"], rel, f"{where}.directory").get("path")
            if path in (".", "", "./"):
                continue   # the project itself
            refuse_local(rel, f"{where}.directory.path = {str(path)[:60]!r}")
        if isinstance(pkg.get("archive"), dict) and "path" in pkg["archive"]:
            refuse_local(rel, f"{where}.archive.path")
        if "vcs" in pkg:
            vcs = table(pkg["vcs"], rel, f"{where}.vcs")
            commit = vcs.get("commit-id")
            if vcs.get("type") not in _VCS or not isinstance(commit, str) or not re.fullmatch(r"[0-9A-Za-z._-]{1,100}", commit):
                raise RequirementsError(f"{rel}: {where}.vcs needs a type (git, hg, bzr, svn) and a commit-id")
            spec = f"{name} @ {_VCS[vcs['type']]}+{url_of(vcs.get('url'), rel, f'{where}.vcs.url')}@{commit}"
        elif isinstance(pkg.get("archive"), dict) and "url" in pkg["archive"]:
            spec = f"{name} @ {url_of(pkg['archive']['url'], rel, f'{where}.archive.url')}"
        else:
            spec = f"{name}=={version_of(pkg.get('version'), rel, where)}"
        lines.add(spec if marker is None else f"{spec} ; {marker}")
    return sorted(lines, key=lambda l: (normalize(REQ_HEAD.match(l).group(1)), l))


__all__ = ["from_poetry_lock", "from_pylock", "from_pyproject", "from_uv_lock"]
