"""What a build's venv is made from: the app's requirements source, resolved to pinned lines pip and uv install.

Pure: it reads files under the source directory and nothing else (no network, no subprocess).

Sources, and the order :func:`detect` tries them in when ``requirements:`` is unset (a lock first: it says
exactly what to install, where the others name ranges)::

    pylock.toml      PEP 751: every package listed, each with its marker
    uv.lock          the project's dependencies (plus the extras named), walked through the lock
    poetry.lock      the main group (plus the extras named); lock-version 2.1, what Poetry 2 writes
    requirements.txt as is (the host installs from the build's own copy, so ``-r``/``-c`` includes work)
    pyproject.toml   ``[project] dependencies`` plus the named ``optional-dependencies``

From a lock come ``name==version`` lines (``name @ url`` for a git or URL source) that keep each environment
marker, so the HOST decides what applies to it (pip and uv evaluate them).  The app itself is never in them
(the lock's editable, virtual or directory entries: it changes every build, and runs from its build).

The venv key digests what resolves the environment: a ``.txt`` file's bytes (as releasetui always did), else
the resolved text, so a lock change changes it and an edit of pyproject.toml that leaves its dependencies
alone does not.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

LOCKS = ("pylock.toml", "uv.lock", "poetry.lock")
AUTO_ORDER = LOCKS + ("requirements.txt", "pyproject.toml")
RESOLVED_NAME = ".releasetui-requirements.txt"   # the resolved text on the host, beside the build's metadata
MAX_BYTES = 16 * 1024 * 1024

NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+!_*-]{0,99}$")
URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^\s#'\"\\]+$")
SHA = re.compile(r"^[0-9a-fA-F]{7,64}$")
# The name (and extras) a PEP 508 requirement starts with.
REQ_HEAD = re.compile(r"^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[([^\]]*)\])?")
MAX_PATHS = 64   # marker conjunctions kept per package: far above any real lock, far below what hurts


class RequirementsError(Exception):
    """The requirements source cannot be used: one line naming the file (and the field, where there is one)."""


@dataclass(frozen=True)
class Requirements:
    """The resolved requirements of one source: ``path`` (inside the source), its ``kind``, the ``text`` pip and
    uv install, and ``sha256`` (the venv key's input)."""

    path: str
    kind: str                  # txt | pyproject | uv.lock | poetry.lock | pylock
    text: str
    sha256: str
    extras: tuple[str, ...] = ()

    @property
    def carried(self) -> Optional[str]:
        """The text the host must be given (None for a ``.txt``: the host installs from the build's own copy)."""
        return None if self.kind == "txt" else self.text

    @property
    def label(self) -> str:
        """``uv.lock`` or ``pyproject.toml [web, pg]``, for output lines."""
        return self.path + (f" [{', '.join(self.extras)}]" if self.extras else "")


def normalize(name: str) -> str:
    """A project or extra name as PEP 503 / PEP 685 compare them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def kind_of(path: str) -> Optional[str]:
    """Which kind of source the file name says ``path`` is (None when it is none releasetui reads)."""
    name = path.rsplit("/", 1)[-1]
    if name.endswith(".txt"):
        return "txt"
    if name == "pyproject.toml":
        return "pyproject"
    if name in ("uv.lock", "poetry.lock"):
        return name
    if name == "pylock.toml" or re.fullmatch(r"pylock\.[^.]+\.toml", name):
        return "pylock"
    return None


KINDS_HINT = "requirements*.txt (any .txt), pyproject.toml, uv.lock, poetry.lock or pylock.toml"


def detect(source: Path) -> str:
    """The requirements source of ``source`` when ``requirements:`` is unset: the first of :data:`AUTO_ORDER`."""
    for name in AUTO_ORDER:
        if (source / name).is_file():
            return name
    raise RequirementsError(f"{source}: no requirements found (looked for {', '.join(AUTO_ORDER)}); set "
                            "requirements: in the config")


def resolve(source: Path, requirements: Optional[str] = None, extras: Sequence[str] = ()) -> Requirements:
    """THE resolution of a source's requirements (deploy, dry run, diff and the TUI all call it).

    ``requirements``: a path inside ``source``, or None to :func:`detect` it; ``extras``: the optional
    dependency groups of a pyproject.toml, uv.lock or poetry.lock to install too.
    """
    rel = requirements or detect(source)
    kind = kind_of(rel)
    if kind is None:
        raise RequirementsError(f"requirements: {rel} is not a kind releasetui reads ({KINDS_HINT})")
    path = source / rel
    extras = tuple(dict.fromkeys(normalize(e) for e in extras))
    if extras and kind in ("txt", "pylock"):
        raise RequirementsError(f"requirements_extras: {rel} has no extras to choose (they apply to pyproject.toml, "
                                "uv.lock and poetry.lock)")
    where = str(path)  # what a message names: the file, whole
    data = _read(path, where)
    if kind == "txt":
        return Requirements(rel, kind, data.decode("utf-8", "replace"), hashlib.sha256(data).hexdigest())
    doc = _toml(data, where)
    if kind == "pyproject":
        lines = from_pyproject(doc, where, extras)
    elif kind == "uv.lock":
        lines = from_uv_lock(doc, where, extras)
    elif kind == "poetry.lock":
        lines = from_poetry_lock(doc, where, extras)
    else:
        lines = from_pylock(doc, where)
    text = "".join(settle_extras(line, extras) + "\n" for line in lines)
    return Requirements(rel, kind, text, hashlib.sha256(text.encode("utf-8")).hexdigest(), extras)


_EXTRA_ATOM = re.compile(r"""\bextra\s*==\s*(['"])([^'"]+)\1""")
# What a marker atom becomes once releasetui has decided it: pip and uv evaluate the rest on the host.
MARKER_TRUE, MARKER_FALSE = 'python_version >= "0"', 'python_version < "0"'


def settle_extras(line: str, extras: Sequence[str]) -> str:
    """``line`` with each ``extra == "x"`` of its marker decided: true for an extra in ``requirements_extras``,
    false for any other.  Installing from a requirements file, pip and uv see no extra at all, so a lock's
    ``extra == "pg"`` (Poetry 2.1 writes it on an extra's packages; uv's conflict markers name
    ``extra-N-PROJECT-EXTRA``) would skip what the deploy asked for."""
    spec, sep, marker = line.partition(" ; ")
    if not sep or "extra" not in marker:
        return line

    def atom(match: "re.Match[str]") -> str:
        name = match.group(2)
        encoded = re.fullmatch(r"extra-([0-9]+)-(.+)", name)
        if encoded and int(encoded.group(1)) < len(encoded.group(2)):
            name = encoded.group(2)[int(encoded.group(1)) + 1:]
        return MARKER_TRUE if normalize(name) in extras else MARKER_FALSE

    return spec + sep + _EXTRA_ATOM.sub(atom, marker)


def _read(path: Path, rel: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise RequirementsError(f"requirements file {path} cannot be read: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise RequirementsError(f"{rel}: larger than {MAX_BYTES // (1024 * 1024)} MB: not a requirements source")
    return data


def _toml(data: bytes, rel: str) -> dict:
    try:
        import tomllib  # type: ignore[import-not-found]
    except ImportError:  # Python < 3.11
        try:
            import tomli as tomllib  # type: ignore[import-not-found,no-redef]
        except ImportError:
            raise RequirementsError(f"{rel}: reading TOML needs Python 3.11 or newer here (or `pip install tomli`); "
                                    "or name a requirements.txt") from None
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise RequirementsError(f"{rel}:{line}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise RequirementsError(f"{rel}: not valid TOML: {exc}") from None


# --- checked values ------------------------------------------------------------------------------

def _table(value: Any, rel: str, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RequirementsError(f"{rel}: {where} is not a table")
    return value


def _array(value: Any, rel: str, where: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise RequirementsError(f"{rel}: {where} is not an array")
    return value


def _name(value: Any, rel: str, where: str) -> str:
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise RequirementsError(f"{rel}: {where}.name is not a package name: {str(value)[:60]!r}")
    return value


def _version(value: Any, rel: str, where: str) -> str:
    if not isinstance(value, str) or not VERSION.fullmatch(value):
        raise RequirementsError(f"{rel}: {where}.version is not a version: {str(value)[:60]!r}")
    return value


def _marker(value: Any, rel: str, where: str) -> Optional[str]:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.isprintable() or "#" in value or len(value) > 2000:
        raise RequirementsError(f"{rel}: {where} is not an environment marker: {str(value)[:60]!r}")
    return value.strip()


def _url(value: Any, rel: str, where: str) -> str:
    if not isinstance(value, str) or not URL.fullmatch(value):
        raise RequirementsError(f"{rel}: {where} is not a URL: {str(value)[:80]!r}")
    return value


def _line(spec: str, markers: frozenset) -> str:
    """``spec`` with the condition ``markers`` (alternatives of conjunctions; :data:`ALWAYS` = none)."""
    rendered = _render(markers)
    return spec if rendered is None else f"{spec} ; {rendered}"


# --- markers along dependency paths: sets of alternatives, each a set of markers that must all hold ---------

ALWAYS: frozenset = frozenset({frozenset()})


def _render(dnf: frozenset) -> Optional[str]:
    if not dnf or frozenset() in dnf:
        return None
    def conj(c: frozenset) -> str:
        parts = sorted(c)
        return parts[0] if len(parts) == 1 else " and ".join(f"({p})" for p in parts)
    alternatives = sorted(conj(c) for c in dnf)
    return alternatives[0] if len(alternatives) == 1 else " or ".join(f"({a})" for a in alternatives)


def _and(dnf: frozenset, marker: Optional[str]) -> frozenset:
    return dnf if marker is None else frozenset(c | {marker} for c in dnf)


def _or(a: frozenset, b: frozenset) -> frozenset:
    both = a | b
    if frozenset() in both:
        return ALWAYS
    return frozenset(c for c in both if not any(o < c for o in both))   # (x) or (x and y) is (x)


@dataclass
class _Edge:
    target: str
    marker: Optional[str]
    extras: tuple[str, ...] = ()


@dataclass
class _Node:
    spec: Optional[str]                     # the line's requirement (None: never installed, e.g. a local project)
    deps: list
    optional: dict


def _walk(nodes: dict[str, _Node], start: Iterable[_Edge], rel: str) -> dict[str, frozenset]:
    """Each node reachable from ``start`` with the condition under which it is needed (markers along the paths)."""
    reach: dict[str, frozenset] = {}
    queue: list[tuple[str, tuple, frozenset]] = [(e.target, e.extras, _and(ALWAYS, e.marker)) for e in start]
    seen: dict[tuple, frozenset] = {}
    while queue:
        key, extras, dnf = queue.pop()
        node = nodes[key]
        for part in ("",) + tuple(extras):
            # A node is visited again only with a condition it did not have yet (for itself or an extra of it).
            have = seen.get((key, part), frozenset())
            merged = _or(have, dnf)
            if merged == have:
                continue
            if len(merged) > MAX_PATHS:
                raise RequirementsError(f"{rel}: the markers on the paths to {key.split('@')[0]} are too many to "
                                        "combine; export a requirements.txt instead")
            seen[(key, part)] = merged
            if part == "":
                reach[key] = merged
            for edge in (node.deps if part == "" else node.optional.get(part, [])):
                queue.append((edge.target, edge.extras, _and(merged, edge.marker)))
    return reach


# --- pyproject.toml --------------------------------------------------------------------------------

def from_pyproject(doc: dict, rel: str, extras: Sequence[str]) -> list[str]:
    """``[project] dependencies`` plus each extra's optional-dependencies (an extra naming the project itself,
    ``app[a,b]``, is expanded), one requirement a line, sorted, each once."""
    project = _table(doc.get("project"), rel, "[project]")
    if not project:
        poetry = isinstance(doc.get("tool"), dict) and "poetry" in doc["tool"]
        raise RequirementsError(f"{rel}: no [project] table" + (" (a Poetry project: use poetry.lock)" if poetry else
                                                                 " (name a requirements.txt or a lock file)"))
    if "dependencies" in _array(project.get("dynamic"), rel, "project.dynamic"):
        raise RequirementsError(f"{rel}: project.dependencies is dynamic (computed by the build backend): name a "
                                "requirements.txt or a lock file")
    own = normalize(project["name"]) if isinstance(project.get("name"), str) else None
    optional = {normalize(k): v for k, v in _table(project.get("optional-dependencies"), rel,
                                                    "project.optional-dependencies").items()}
    lines: list[str] = []
    wanted, done = list(extras), set()

    def take(requirements: Any, where: str) -> None:
        for i, req in enumerate(_array(requirements, rel, where)):
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
    name = _name(pkg.get("name"), rel, where)
    source = _table(pkg.get("source"), rel, f"{where}.source")
    if source.get("editable") == "." or source.get("virtual") == ".":
        return None   # the project itself: it runs from its build, never installed into the venv
    for kind in ("editable", "virtual", "directory", "path"):
        if kind in source:
            return LOCAL + f"{where}.source.{kind} = {str(source[kind])[:60]!r}"
    if "git" in source:
        base, _, commit = str(source["git"]).partition("#")
        base, _, query = base.partition("?")
        base = _url(base, rel, f"{where}.source.git")
        if not SHA.fullmatch(commit):
            raise RequirementsError(f"{rel}: {where}.source.git has no commit (#<sha>): {str(source['git'])[:80]!r}")
        sub = [v for k, v in (p.partition("=")[::2] for p in query.split("&")) if k == "subdirectory"]
        return f"{name} @ git+{base}@{commit}" + (f"#subdirectory={_subdirectory(sub[0], rel, where)}" if sub else "")
    if "url" in source:
        return f"{name} @ {_url(source['url'], rel, f'{where}.source.url')}"
    return f"{name}=={_version(pkg.get('version'), rel, where)}"


# A package that comes from this machine's tree (a path, a workspace member): never looked up on an index by name.
LOCAL = "!local "


def _subdirectory(value: str, rel: str, where: str) -> str:
    """A git dependency's subdirectory, as pip's ``#subdirectory=`` takes it (percent-decoded, checked)."""
    from urllib.parse import unquote
    sub = unquote(value)
    if not re.fullmatch(r"[A-Za-z0-9._/-]{1,200}", sub) or ".." in sub.split("/") or sub.startswith("/"):
        raise RequirementsError(f"{rel}: {where}.source.git: subdirectory {sub[:60]!r} is not a plain relative path")
    return sub


def _refuse_local(rel: str, what: str) -> None:
    """Refuse a dependency that comes from a local path: pip on the host would look its name up on the index."""
    raise RequirementsError(
        f"{rel}: {what}: a dependency from a local path (a workspace member or a path/file source); the hosts "
        "install from an index or a wheelhouse, where the same name may be someone else's package: publish it "
        "(or put its wheel in the index/--find-links pip_args name) and lock it from there")


def from_uv_lock(doc: dict, rel: str, extras: Sequence[str]) -> list[str]:
    """The project's dependencies and the named extras' from a uv.lock, through the lock (not its dev groups)."""
    if doc.get("version") != 1:
        raise RequirementsError(f"{rel}: version = {doc.get('version')!r}: not a uv.lock version releasetui reads (1)")
    nodes: dict[str, _Node] = {}
    by_name: dict[str, list[tuple[str, dict]]] = {}
    packages = _array(doc.get("package"), rel, "package")
    for i, pkg in enumerate(packages):
        where = f"package[{i}]"
        pkg = _table(pkg, rel, where)
        name = normalize(_name(pkg.get("name"), rel, where))
        key = f"{name}@{pkg.get('version')}@{len(by_name.get(name, []))}"
        by_name.setdefault(name, []).append((key, pkg))
    roots = []
    for name, entries in by_name.items():
        for key, pkg in entries:
            where = f"package {pkg['name']}"
            nodes[key] = _Node(_uv_spec(pkg, rel, where), [], {})
            source = pkg.get("source") or {}
            if source.get("editable") == "." or source.get("virtual") == ".":
                roots.append(key)

    def edge(dep: Any, where: str) -> _Edge:
        dep = _table(dep, rel, where)
        name = normalize(_name(dep.get("name"), rel, where))
        choices = by_name.get(name, [])
        if "version" in dep:
            choices = [(k, p) for k, p in choices if p.get("version") == dep["version"]]
        if "source" in dep and len(choices) > 1:
            choices = [(k, p) for k, p in choices if p.get("source") == dep["source"]]
        if len(choices) != 1:
            what = "no" if not choices else "more than one"
            raise RequirementsError(f"{rel}: {where} names {dep['name']!r}: {what} such package in the lock")
        extra = tuple(normalize(x) for x in _array(dep.get("extra"), rel, f"{where}.extra"))
        return _Edge(choices[0][0], _marker(dep.get("marker"), rel, f"{where}.marker"), extra)

    for entries in by_name.values():
        for key, pkg in entries:
            where = f"package {pkg['name']}"
            nodes[key].deps = [edge(d, f"{where}.dependencies[{j}]")
                               for j, d in enumerate(_array(pkg.get("dependencies"), rel, f"{where}.dependencies"))]
            for extra, deps in _table(pkg.get("optional-dependencies"), rel, f"{where}.optional-dependencies").items():
                nodes[key].optional[normalize(extra)] = [
                    edge(d, f"{where}.optional-dependencies.{extra}[{j}]")
                    for j, d in enumerate(_array(deps, rel, f"{where}.optional-dependencies.{extra}"))]
    if not roots:
        raise RequirementsError(f"{rel}: no entry for the project itself (source = {{ editable = \".\" }} or "
                                "{ virtual = \".\" }): is this the lock of this source?")
    available = {x for r in roots for x in nodes[r].optional}
    for extra in extras:
        if extra not in available:
            raise RequirementsError(f"{rel}: requirements_extras: the project has no extra {extra!r} "
                                    f"(it has: {', '.join(sorted(available)) or 'none'})")
    start = [_Edge(root, None, tuple(x for x in extras if x in nodes[root].optional)) for root in roots]
    return _lines(nodes, _walk(nodes, start, rel), rel)


def _lines(nodes: dict[str, _Node], reach: dict[str, frozenset], rel: str) -> list[str]:
    for key in reach:
        spec = nodes[key].spec
        if spec is not None and spec.startswith(LOCAL):
            _refuse_local(rel, spec[len(LOCAL):])
    lines = {_line(nodes[k].spec, dnf) for k, dnf in reach.items() if nodes[k].spec is not None}
    return sorted(lines, key=lambda l: (normalize(REQ_HEAD.match(l).group(1)), l))


# --- poetry.lock -----------------------------------------------------------------------------------

def _poetry_spec(pkg: dict, rel: str, where: str) -> Optional[str]:
    name = _name(pkg.get("name"), rel, where)
    source = _table(pkg.get("source"), rel, f"{where}.source")
    kind = source.get("type")
    if kind in ("directory", "file"):
        _refuse_local(rel, f"{where}.source.type = {kind!r}")
    if kind == "git":
        commit = source.get("resolved_reference") or source.get("reference")
        if not isinstance(commit, str) or not SHA.fullmatch(commit):
            raise RequirementsError(f"{rel}: {where}.source.resolved_reference is not a commit")
        return f"{name} @ git+{_url(source.get('url'), rel, f'{where}.source.url')}@{commit}"
    if kind == "url":
        return f"{name} @ {_url(source.get('url'), rel, f'{where}.source.url')}"
    return f"{name}=={_version(pkg.get('version'), rel, where)}"


def from_poetry_lock(doc: dict, rel: str, extras: Sequence[str]) -> list[str]:
    """The main group of a poetry.lock (lock-version 2.1: each package says its groups and markers), plus the
    packages the named extras need."""
    meta = _table(doc.get("metadata"), rel, "[metadata]")
    version = str(meta.get("lock-version", ""))
    if not re.fullmatch(r"2\.[1-9][0-9]*", version):
        raise RequirementsError(f"{rel}: lock-version {version or '?'} does not say which packages the main group "
                                "needs: lock again with Poetry 2 (lock-version 2.1), or export a requirements.txt")
    packages = [_table(p, rel, f"package[{i}]") for i, p in enumerate(_array(doc.get("package"), rel, "package"))]
    by_name = {normalize(_name(p.get("name"), rel, f"package[{i}]")): p for i, p in enumerate(packages)}
    lock_extras = {normalize(k): v for k, v in _table(doc.get("extras"), rel, "[extras]").items()}
    wanted: list[str] = []
    for extra in extras:
        if extra not in lock_extras:
            raise RequirementsError(f"{rel}: requirements_extras: the lock has no extra {extra!r} "
                                    f"(it has: {', '.join(sorted(lock_extras)) or 'none'})")
        wanted += [normalize(REQ_HEAD.match(str(n)).group(1)) for n in _array(lock_extras[extra], rel, f"extras.{extra}")
                   if REQ_HEAD.match(str(n))]
    # What the extras pull in: their packages and (by name, through the lock) everything those depend on.
    chosen: set[str] = set()
    while wanted:
        name = wanted.pop()
        if name in chosen or name not in by_name:
            continue
        chosen.add(name)
        wanted.extend(normalize(d) for d in _table(by_name[name].get("dependencies"), rel, f"package {name}.dependencies"))
    lines = set()
    for name, pkg in by_name.items():
        where = f"package {pkg['name']}"
        groups = _array(pkg.get("groups"), rel, f"{where}.groups")
        if "main" not in groups or (pkg.get("optional") is True and name not in chosen):
            continue
        markers = pkg.get("markers")
        if isinstance(markers, dict):
            markers = markers.get("main")
        marker = _marker(markers, rel, f"{where}.markers")
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
    for i, pkg in enumerate(_array(doc.get("packages"), rel, "packages")):
        pkg = _table(pkg, rel, f"packages[{i}]")
        name = _name(pkg.get("name"), rel, f"packages[{i}]")
        where = f"packages[{i}] ({name})"
        marker = _marker(pkg.get("marker"), rel, f"{where}.marker")
        if marker and re.search(r"\b(extras|dependency_groups)\b", marker):
            raise RequirementsError(f"{rel}: {where}.marker depends on extras or dependency groups, which pip "
                                    "cannot evaluate: export the lock for the extras you deploy")
        if "directory" in pkg:
            path = _table(pkg["directory"], rel, f"{where}.directory").get("path")
            if path in (".", "", "./"):
                continue   # the project itself
            _refuse_local(rel, f"{where}.directory.path = {str(path)[:60]!r}")
        if isinstance(pkg.get("archive"), dict) and "path" in pkg["archive"]:
            _refuse_local(rel, f"{where}.archive.path")
        if "vcs" in pkg:
            vcs = _table(pkg["vcs"], rel, f"{where}.vcs")
            commit = vcs.get("commit-id")
            if vcs.get("type") not in _VCS or not isinstance(commit, str) or not re.fullmatch(r"[0-9A-Za-z._-]{1,100}", commit):
                raise RequirementsError(f"{rel}: {where}.vcs needs a type (git, hg, bzr, svn) and a commit-id")
            spec = f"{name} @ {_VCS[vcs['type']]}+{_url(vcs.get('url'), rel, f'{where}.vcs.url')}@{commit}"
        elif isinstance(pkg.get("archive"), dict) and "url" in pkg["archive"]:
            spec = f"{name} @ {_url(pkg['archive']['url'], rel, f'{where}.archive.url')}"
        else:
            spec = f"{name}=={_version(pkg.get('version'), rel, where)}"
        lines.add(spec if marker is None else f"{spec} ; {marker}")
    return sorted(lines, key=lambda l: (normalize(REQ_HEAD.match(l).group(1)), l))


__all__ = ["AUTO_ORDER", "KINDS_HINT", "LOCKS", "RESOLVED_NAME", "Requirements", "RequirementsError", "detect",
           "from_poetry_lock", "from_pylock", "from_pyproject", "from_uv_lock", "kind_of", "normalize", "resolve"]
