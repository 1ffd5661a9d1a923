"""Load and validate ``hosts.yml``.

Every mistake becomes one :class:`ConfigError` that names the file, the line
and the key, so the CLI can print a single line and exit 2 instead of a
traceback.

The file is untrusted input (it may come from a repository anyone can push
to), so reading it is bounded: at most :data:`MAX_CONFIG_BYTES`, nesting at
most :data:`MAX_DEPTH` deep, at most :data:`MAX_ALIASES` aliases and
:data:`MAX_NODES` values once aliases are expanded, no YAML tags beyond the
plain types, and every value quoted in a message is cut to
:data:`SHOWN_CHARS` characters.  The YAML is turned into nodes by our own
loop over the parser's events (:func:`compose_yaml`), not by PyYAML's
recursive composer, so no input can raise ``RecursionError``.
"""

from __future__ import annotations

import difflib
import fnmatch
import os
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Union

import yaml

from . import shipping
from .secrets import NAME_PATTERN as SECRET_NAME_PATTERN, EnvSpec
from .stages import STAGE_ENV_VAR, STAGE_NAME_PATTERN, declared_stages, mark_source, merge_nodes, source_of, stage_path

CONFIG_ENV_VAR = "RELEASETUI_CONFIG"
DEFAULT_CONFIG_NAME = "hosts.yml"
TRANSPORTS = ("ssh", "local")
HOST_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
PROJECT_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
ROLE_NAME_PATTERN = HOST_NAME_PATTERN
USER_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")

HOOK_NAMES_REMOTE = ("before_activate", "after_activate", "after_rollback")
HOOK_NAMES_LOCAL = ("local_before", "local_after", "local_failed")
HOOK_NAMES = HOOK_NAMES_REMOTE + HOOK_NAMES_LOCAL
MIN_KEEP_BUILDS = 2  # the live build and one to roll back to; `prune --keep` shares it

# Bounds on what a config file may be.  A real hosts.yml is a few kB; these are far above any
# honest file and far below what hurts (a 514-byte "billion laughs" once grew to 6 GB).
MAX_CONFIG_BYTES = 1024 * 1024
MAX_DEPTH = 50            # lists/mappings inside each other, aliases expanded
MAX_ALIASES = 500         # `*name` uses in one file
MAX_NODES = 100_000       # values in the file once every alias is expanded
SHOWN_CHARS = 80          # a value quoted in a message is cut to this
_MAX_KEY_CHARS = 120      # the key path of a message
_MAX_MESSAGE_CHARS = 240  # the message itself

# Names of files releasetui itself keeps in a build: a shared link there would clobber them.
_RESERVED_IN_BUILD = ("env", ".releasetui-build.json")


def _escape(text: str) -> str:
    """``text`` with every non-printable character written as an escape, so a message stays one line."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def _clip(text: str, limit: int) -> str:
    """``text`` on one line and at most ``limit`` characters, ending in an ellipsis when cut."""
    text = _escape(text[: limit * 2])  # escaping at most quadruples; never escape a 200 kB value whole
    return text if len(text) <= limit else text[: limit - 1] + "…"


def show(value: Any) -> str:
    """A value as a message may quote it: one line, at most about :data:`SHOWN_CHARS` characters."""
    if isinstance(value, str):
        return repr(_clip(value, SHOWN_CHARS))
    return _clip(repr(value), SHOWN_CHARS)


class ConfigError(Exception):
    """A problem with the configuration file, located by file, line and key.

    Whatever it is given, its text is one line of bounded length: control
    characters are escaped and long keys and messages are cut.
    """

    def __init__(self, path: Union[str, Path, None], line: Optional[int], key: Optional[str], message: str):
        self.path = str(path) if path is not None else "<config>"
        self.line = line
        self.key = _clip(key, _MAX_KEY_CHARS) if key else key
        self.message = _clip(message, _MAX_MESSAGE_CHARS)
        super().__init__(str(self))

    def __str__(self) -> str:
        path = _escape(self.path)
        where = path if self.line is None else f"{path}:{self.line}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


@dataclass(frozen=True)
class HealthCheck:
    """How to decide that a freshly switched build is serving: a URL or a command, polled until ``timeout``."""

    url: Optional[str] = None
    command: Optional[str] = None
    expect: Union[str, int, None] = None
    timeout: float = 30.0
    interval: float = 0.5


@dataclass(frozen=True)
class Hook:
    """One hook: a shell command run at a named point of an operation, bounded by a timeout."""

    name: str                    # one of HOOK_NAMES_REMOTE + HOOK_NAMES_LOCAL
    command: str
    timeout: float = 300.0       # seconds, 0 < t <= 86400
    once: bool = False           # before_activate only: run on ONE host (migrations)
    host: Optional[str] = None   # before_activate + once only: the host that runs it (a configured host)


@dataclass(frozen=True)
class Shared:
    """Files and folders that live under ROOT/shared/ and are symlinked into every build."""

    files: tuple[str, ...] = ()
    dirs: tuple[str, ...] = ()   # relative paths, no leading '/', no '..', no duplicates, no overlap files/dirs


@dataclass(frozen=True)
class Rollout:
    """Canary and batches for the activation phase."""

    canary: Union[int, tuple[str, ...]] = 0   # a count (>= 0) or a list of configured host names
    batch: Union[int, str, None] = None       # hosts per wave after the canary: N >= 1, or "P%" (1..100); None = all at once
    pause: float = 0.0                        # seconds between waves, 0..3600


@dataclass(frozen=True)
class JumpHost:
    """A bastion the host is reached through (its key is checked like any host's)."""

    address: str
    user: Optional[str] = None
    port: Optional[int] = None
    key_file: Optional[Path] = None
    known_hosts: Optional[Path] = None


@dataclass(frozen=True)
class HostConfig:
    """One target host, with every setting already resolved (host > its roles > top level > default)."""

    name: str
    root: str
    transport: str = "ssh"
    address: Optional[str] = None
    user: Optional[str] = None
    port: Optional[int] = None
    key_file: Optional[Path] = None
    known_hosts: Optional[Path] = None
    roles: tuple[str, ...] = ()
    python: str = "python3"
    restart: Optional[str] = None
    restart_timeout: float = 60.0
    healthcheck: Optional[HealthCheck] = None
    logs: tuple[str, ...] = ()
    hooks: tuple[Hook, ...] = ()            # the REMOTE hooks this host runs, in HOOK_NAMES_REMOTE order
    jump: Optional[JumpHost] = None
    # Where each resolved setting came from: ("root", "hosts.web1"), ("python", "roles.web"), ("logs", "default").
    origins: tuple[tuple[str, str], ...] = field(default=(), compare=False, repr=False)

    @property
    def label(self) -> str:
        """Where the host is, for humans: ``user@address:port`` or ``local``."""
        if self.transport == "local":
            return "local"
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"{user}{self.address}{port}"


@dataclass(frozen=True)
class Config:
    """The whole validated ``hosts.yml``.

    ``python``, ``restart``, ``restart_timeout``, ``logs`` and ``healthcheck``
    here are the top-level values; what a host uses is on its
    :class:`HostConfig`, resolved over its roles.
    """

    path: Path
    project: str
    source: Path
    requirements: str
    python: str
    keep_builds: int
    hosts: tuple[HostConfig, ...]
    excludes_file: Optional[Path] = None
    include: tuple[str, ...] = ()           # paths/globs under source that ship though git ignores them or they
                                            # look like secrets (releasetui.shipping)
    pip_args: tuple[str, ...] = ()
    restart: Optional[str] = None
    logs: tuple[str, ...] = ()
    healthcheck: Optional[HealthCheck] = None
    extra: dict = field(default_factory=dict)
    roles: tuple[str, ...] = ()             # names defined under `roles:` (in file order)
    hooks: tuple[Hook, ...] = ()            # LOCAL hooks (top level only), in HOOK_NAMES_LOCAL order
    shared: Shared = Shared()
    rollout: Optional[Rollout] = None
    parallel: int = 25                      # 1..1000: hosts connected / shipped / installed at once
    lock_wait: float = 0.0                  # seconds to wait for another operation's lock (0..86400)
    connect_timeout: float = 15.0           # seconds (0 < t <= 600)
    script_timeout: float = 120.0           # seconds for short remote scripts (0 < t <= 86400)
    install_timeout: float = 1800.0         # seconds for shipping + venv + pip on a host (0 < t <= 86400)
    require_clean: bool = False             # refuse to deploy a dirty git working tree
    restart_timeout: float = 60.0           # the top-level value; hosts carry the resolved one
    stage: Optional[str] = None             # the stage loaded (hosts.STAGE.yml merged over this file), if any
    stages: tuple[str, ...] = ()            # the stages this file declares
    require_stage: bool = False             # refuse to load without a stage
    confirm: bool = False                   # changing operations need --yes (or a yes on a terminal)
    env: Optional[EnvSpec] = None           # the app's environment file, written on every host (names only here)

    def host(self, name: str) -> HostConfig:
        """The host called ``name``; KeyError when there is none."""
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    def without_hooks(self) -> "Config":
        """This config with no hook anywhere (``--skip-hooks``, for emergencies)."""
        import dataclasses
        return dataclasses.replace(self, hooks=(), hosts=tuple(dataclasses.replace(h, hooks=()) for h in self.hosts))

    def hook_names(self) -> list[str]:
        """The names of every hook configured anywhere, in order, once each."""
        return list(dict.fromkeys(h.name for h in self.hooks + tuple(x for host in self.hosts for x in host.hooks)))

    def select(self, names: Optional[list[str]], roles: Optional[list[str]] = None) -> tuple[HostConfig, ...]:
        """The hosts named OR in one of ``roles`` (union, config order, no duplicates); all when both are empty.

        An unknown host name is a ConfigError on ``--host``, an unknown role one on ``--role``.
        """
        if not names and not roles:
            return self.hosts
        all_names = [h.name for h in self.hosts]
        wanted_names = set()
        for name in names or ():
            matched = _matching(name, all_names)
            if not matched:
                what = "matches" if _is_glob(name) else "named"
                raise ConfigError(self.path, None, "--host",
                                  f"no host {what} {show(name)}{_suggest(name, all_names)} (known: "
                                  f"{_listing(all_names)})")
            wanted_names.update(matched)
        wanted_roles = set()
        for role in roles or ():
            matched = _matching(role, self.roles)
            if not matched:
                known = f"known: {_listing(self.roles)}" if self.roles else "no roles are defined under roles:"
                what = "matches" if _is_glob(role) else "named"
                raise ConfigError(self.path, None, "--role", f"no role {what} {show(role)}{_suggest(role, self.roles)} ({known})")
            wanted_roles.update(matched)
        return tuple(h for h in self.hosts if h.name in wanted_names or wanted_roles.intersection(h.roles))


def _is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


def _matching(pattern: str, names: Iterable[str]) -> list[str]:
    """The names ``pattern`` selects: itself when it is a name, else every name the glob (``web1*``) matches."""
    names = list(names)
    if not _is_glob(pattern):
        return [pattern] if pattern in names else []
    return [n for n in names if fnmatch.fnmatchcase(n, pattern)]


def find_config(explicit: Optional[str] = None, cwd: Optional[Path] = None) -> tuple[Optional[Path], list[str]]:
    """Locate the config: ``--config``, else ``$RELEASETUI_CONFIG``, else ``./hosts.yml``.

    Returns the path found (or None) and the places looked at, in order, so a
    caller can tell the user exactly where it searched.
    """
    looked: list[str] = []
    if explicit:
        return Path(explicit), [f"--config {explicit}"]
    env_value = os.environ.get(CONFIG_ENV_VAR)
    if env_value:
        return Path(env_value), [f"${CONFIG_ENV_VAR}={env_value}"]
    looked.append(f"${CONFIG_ENV_VAR} (not set)")
    candidate = (cwd or Path.cwd()) / DEFAULT_CONFIG_NAME
    looked.append(str(candidate))
    if candidate.exists():
        return candidate, looked
    return None, looked


def _suggest(name: str, choices: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for a near miss, else ``""``."""
    close = _suggest_word(name, choices)
    return f"; did you mean {close!r}?" if close else ""


def _suggest_word(name: str, choices: Iterable[str]) -> Optional[str]:
    """The near miss of ``name`` among ``choices``, or None."""
    if not isinstance(name, str) or len(name) > 64:  # difflib on a 200 kB name is slow and never close
        return None
    close = difflib.get_close_matches(name, sorted(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def _listing(names: Iterable[str], limit: int = 160) -> str:
    """Names joined by commas, cut at about ``limit`` characters (a fleet may have hundreds)."""
    text = ", ".join(names)
    return text if len(text) <= limit else text[: limit - 1].rsplit(", ", 1)[0] + ", …"


# --- reading YAML, bounded ------------------------------------------------------------------

_TAG = "tag:yaml.org,2002:"
# Explicit tags that only restate a plain type; anything else (python/*, timestamp, binary, set, custom) is refused.
_ALLOWED_TAGS = {_TAG + name for name in ("str", "int", "float", "bool", "null", "seq", "map")}
# What YAML lets into a document (its "printable" set); everything else is refused before parsing, with its line.
_NOT_YAML_PRINTABLE = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Printable to YAML but invisible in an editor, and able to mislead: NEL and the Unicode line separators (YAML
# breaks lines there, so every line number after one would disagree with the editor's), a zero-width space,
# bidirectional controls (they can make a line show other text than it holds) and a byte-order mark past the start.
_INVISIBLE = re.compile("[\x85\u2028\u2029\u200b\u202a-\u202e\u2066-\u2069]|(?<!^)\ufeff")
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_RESOLVER = yaml.resolver.Resolver()
try:  # libyaml's parser is ~10x faster; a 1 MB file then takes well under a second
    _FastParser: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _FastParser = yaml.SafeLoader


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_TAG):] if tag.startswith(_TAG) else tag


def _line_of(text: str, index: int) -> int:
    """1-based line of ``text[index]``, counting line breaks as YAML does."""
    return len(_LINE_BREAK.findall(text, 0, index)) + 1


class _Limit(Exception):
    """Raised inside :func:`compose_yaml` with a 0-based line and a message; becomes a ConfigError."""

    def __init__(self, line: Optional[int], message: str, key: Optional[str] = None):
        super().__init__(message)
        self.line = line
        self.message = message
        self.key = key


def _compose_events(events: Iterable[yaml.Event]) -> Optional[yaml.Node]:
    """Build the node graph of ONE document from parser events, with a loop instead of recursion.

    Enforces the nesting, alias, size and tag limits as it goes, so a hostile
    file stops at the first event past a limit.  An anchor counts as defined
    once its node is complete, so an alias can never refer to a node that
    contains it (no cycles).
    """
    stack: list[list] = []  # [collection node, pending key node or None, its start event]
    anchors: dict[str, yaml.Node] = {}
    anchor_lines: dict[str, int] = {}
    open_anchors: dict[str, int] = {}
    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (values once expanded, depth once expanded)
    root: Optional[yaml.Node] = None
    documents = 0
    aliases = 0

    def place(node: yaml.Node) -> None:
        nonlocal root
        if not stack:
            root = node
            return
        frame = stack[-1]
        parent = frame[0]
        if isinstance(parent, yaml.SequenceNode):
            parent.value.append(node)
        elif frame[1] is None:
            frame[1] = node
        else:
            parent.value.append((frame[1], node))
            frame[1] = None

    def key_path() -> Optional[str]:
        """Where the event being read sits, as config errors name keys: ``hosts.web1.address``, ``logs[1]``."""
        path = ""
        for parent, key, _ in stack:
            if isinstance(parent, yaml.SequenceNode):
                path += f"[{len(parent.value)}]"
            elif isinstance(key, yaml.ScalarNode):
                path += ("." if path else "") + key.value
            else:  # the event is a key itself: its mapping's path
                break
        return path or None

    def check_tag(event: yaml.Event) -> None:
        tag = getattr(event, "tag", None)
        if tag is not None and tag != "!" and tag not in _ALLOWED_TAGS:
            raise _Limit(event.start_mark.line, f"YAML tag {show(_short_tag(tag))} is not allowed "
                                                "(plain values, lists and mappings only)", key_path())

    def register(event: yaml.Event, node: yaml.Node) -> None:
        anchor = getattr(event, "anchor", None)
        if anchor is None:
            return
        if anchor in anchors or anchor in open_anchors:
            first = anchor_lines.get(anchor, open_anchors.get(anchor, 0)) + 1
            raise _Limit(event.start_mark.line, f"anchor &{_clip(anchor, 40)} is defined twice (first on line {first})")
        anchors[anchor] = node
        anchor_lines[anchor] = event.start_mark.line

    def measure(node: yaml.Node, children: Iterable[yaml.Node]) -> None:
        total, deepest = 1, 0
        for child in children:
            size, depth = sizes[id(child)]
            total += size
            deepest = max(deepest, depth)
        if deepest + 1 > MAX_DEPTH:
            raise _Limit(node.start_mark.line, f"nested more than {MAX_DEPTH} levels deep (aliases expanded)")
        if total > MAX_NODES:
            raise _Limit(node.start_mark.line, f"expands to more than {MAX_NODES} values (YAML aliases?): refused")
        sizes[id(node)] = (total, deepest + 1)

    for event in events:
        if isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise _Limit(event.start_mark.line, "a second YAML document ('---'): a config is one document")
        elif isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                raise _Limit(event.start_mark.line, f"more than {MAX_ALIASES} aliases (*name): refused")
            if event.anchor in open_anchors:
                raise _Limit(event.start_mark.line, f"alias *{_clip(event.anchor, 40)} refers to a list or "
                                                    "mapping that contains it")
            if event.anchor not in anchors:
                raise _Limit(event.start_mark.line, f"alias *{_clip(event.anchor, 40)} has no anchor "
                                                    f"&{_clip(event.anchor, 40)} before it")
            place(anchors[event.anchor])
        elif isinstance(event, yaml.ScalarEvent):
            check_tag(event)
            tag = event.tag
            if tag is None or tag == "!":
                tag = _RESOLVER.resolve(yaml.ScalarNode, event.value, event.implicit)
            node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)
            sizes[id(node)] = (1, 0)
            register(event, node)
            place(node)
        elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            check_tag(event)
            if len(stack) >= MAX_DEPTH:
                raise _Limit(event.start_mark.line, f"nested more than {MAX_DEPTH} levels deep")
            kind = yaml.SequenceNode if isinstance(event, yaml.SequenceStartEvent) else yaml.MappingNode
            tag = event.tag
            if tag is None or tag == "!":
                tag = _RESOLVER.resolve(kind, None, event.implicit)
            node = kind(tag, [], event.start_mark, None, flow_style=event.flow_style)
            if event.anchor is not None:
                if event.anchor in anchors or event.anchor in open_anchors:
                    register(event, node)  # raises: defined twice
                open_anchors[event.anchor] = event.start_mark.line
            stack.append([node, None, event])
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            node, _, start = stack.pop()
            node.end_mark = event.end_mark
            if isinstance(node, yaml.MappingNode):
                measure(node, (part for pair in node.value for part in pair))
            else:
                measure(node, node.value)
            if start.anchor is not None:
                del open_anchors[start.anchor]
                register(start, node)
            place(node)
    return root


def compose_yaml(text: str, path: Union[str, Path]) -> Optional[yaml.Node]:
    """Parse ``text`` (the file at ``path``) into one YAML node graph within the limits; None when empty.

    Used for ``hosts.yml`` and for Ansible inventories: any problem is a
    ConfigError on one line naming ``path`` and the line of the mistake.
    """
    for pattern, what in ((_NOT_YAML_PRINTABLE, "control character"), (_INVISIBLE, "invisible character")):
        bad = pattern.search(text)
        if bad:
            line = _line_of(text, bad.start())
            start = max(text.rfind("\n", 0, bad.start()), text.rfind("\r", 0, bad.start())) + 1
            why = "not allowed in YAML; is this a binary file?" if pattern is _NOT_YAML_PRINTABLE else \
                "it hides what the line says or where it ends; delete it"
            raise ConfigError(path, line, None, f"{what} U+{ord(bad.group()):04X} at column {bad.start() - start + 1} "
                                                f"({why})")
    try:
        return _compose_events(yaml.parse(text, Loader=_FastParser))
    except _Limit as exc:
        raise ConfigError(path, exc.line + 1 if exc.line is not None else None, exc.key, exc.message) from None
    except yaml.MarkedYAMLError as fast_error:
        error = fast_error
    except yaml.YAMLError as exc:  # pragma: no cover - the reader's errors are caught above
        raise ConfigError(path, None, None, f"YAML syntax: {exc}") from None
    if _FastParser is not yaml.SafeLoader:
        # libyaml's messages differ from PyYAML's; PyYAML's parser (slower, only on this error path)
        # gives the messages the line heuristics below are written for.
        try:
            _compose_events(yaml.parse(text, Loader=yaml.SafeLoader))
        except _Limit as exc:
            raise ConfigError(path, exc.line + 1 if exc.line is not None else None, exc.key, exc.message) from None
        except yaml.MarkedYAMLError as slow_error:
            error = slow_error
    line, message = _syntax_error(text, error)
    raise ConfigError(path, line, None, f"YAML syntax: {message}")


# What PyYAML found where a block mapping wanted its next key, said for people.
_TOKEN_WORDS = {
    "'<scalar>'": "unexpected text where a key was expected (after a closed value, or at the wrong indentation)",
    "'<block mapping start>'": "this line is indented differently from the keys around it",
    "'<block sequence start>'": "a list where a key was expected: check this line's indentation",
    "']'": "a ']' that closes nothing", "'}'": "a '}' that closes nothing",
}


def _found(problem: str) -> str:
    """What PyYAML says it found instead: ``"but got ':'"`` -> ``':'``."""
    match = re.search(r"but (?:got|found) (.*)$", problem)
    return match.group(1) if match else "something else"


def _syntax_error(text: str, error: yaml.MarkedYAMLError) -> tuple[Optional[int], str]:
    """The line of the real mistake and a one-line explanation for a YAML syntax error.

    PyYAML often notices a mistake on a later line than the one that holds it
    (an unclosed ``[`` is noticed where the next key starts); this moves the
    report back to the mistake for the common cases.
    """
    context = error.context or ""
    problem = error.problem or ""
    context_line = error.context_mark.line + 1 if error.context_mark is not None else None
    problem_line = error.problem_mark.line + 1 if error.problem_mark is not None else None
    last_line = len(_LINE_BREAK.findall(text)) + (0 if re.search("[\r\n\x85\u2028\u2029]$", text) else 1)

    def clamp(line: Optional[int]) -> Optional[int]:
        return None if line is None else max(1, min(line, last_line))

    def elsewhere() -> str:
        if problem_line is None or problem_line == context_line:
            return ""
        if problem_line > last_line:
            return " before the end of the file"
        return f" on line {problem_line}"

    for opener, closer, kind in (("[", "]", "flow sequence"), ("{", "}", "flow mapping")):
        if context.startswith(f"while parsing a {kind}") and context_line is not None:
            found = _found(problem)
            if found == "'<stream end>'":
                return clamp(context_line), f"this {opener!r} is never closed with {closer!r}"
            return clamp(context_line), (f"this {opener!r} is not closed: found {found}{elsewhere()} where ',' or "
                                         f"{closer!r} was expected")
    if context.startswith("while parsing a flow node") and "<stream end>" in problem:
        opener = _unclosed_flow(text)
        if opener is not None:
            return clamp(opener[0]), f"this {opener[1]!r} is never closed with {']' if opener[1] == '[' else '}'!r}"
    if context.startswith("while scanning a quoted scalar") and context_line is not None:
        return clamp(context_line), "this quote is never closed"
    if context.startswith("while scanning a double-quoted scalar"):
        return clamp(problem_line), f"{problem} in a double-quoted value (use single quotes, or write \\\\)"
    if context.startswith("while scanning a simple key") and context_line is not None:
        if _line_length(text, context_line) > 1024:
            return clamp(context_line), "a key longer than 1024 characters (YAML's limit), or a line without ':'"
        return clamp(context_line), "missing ':' after a key (or a value that runs on past the line)"
    if "'\\t' that cannot start any token" in problem:
        return clamp(problem_line), "a tab where YAML expects spaces: indent with spaces only"
    match = re.match(r"found character (.*) that cannot start any token", problem)
    if match:
        return clamp(problem_line), f"a value cannot start with {match.group(1)}: put it in quotes"
    if problem.startswith("mapping values are not allowed here") and problem_line is not None:
        start = _runaway_key_line(text, problem_line)
        if start is not None:
            return clamp(start), "missing ':' after the key on this line (the next ':' was taken as part of it)"
        if _line_length(text, problem_line) > 1024:
            return clamp(problem_line), "a key longer than 1024 characters (YAML's limit)"
        return clamp(problem_line), ("unexpected ':' (quote a value that contains ': ', or check this line's "
                                     "indentation)")
    if "expected <block end>" in problem:
        found = _found(problem)
        if found == "'-'":
            return clamp(problem_line), "a list item '-' where a key was expected: check this line's indentation"
        if found in _TOKEN_WORDS:
            return clamp(problem_line), _TOKEN_WORDS[found]
        return clamp(problem_line), f"found {found} where a key was expected: check this line's indentation"
    if problem.startswith("expected '<document start>'"):
        return clamp(problem_line), "text after the end of the document ('...'): a config is one document"
    if context.startswith("expected a single document"):
        return clamp(problem_line), "a second YAML document ('---'): a config is one document"
    line = problem_line if problem_line is not None else context_line
    parts = [part for part in (context, problem) if part]
    return clamp(line), ": ".join(parts) or str(error).splitlines()[0]


def _unclosed_flow(text: str) -> Optional[tuple[int, str]]:
    """The line and bracket of the innermost '[' or '{' still open where the scanner stops."""
    loader = yaml.SafeLoader(text)
    opened: list[tuple[int, str]] = []
    try:
        while loader.check_token():
            token = loader.get_token()
            if isinstance(token, (yaml.FlowSequenceStartToken, yaml.FlowMappingStartToken)):
                bracket = "[" if isinstance(token, yaml.FlowSequenceStartToken) else "{"
                opened.append((token.start_mark.line + 1, bracket))
            elif isinstance(token, (yaml.FlowSequenceEndToken, yaml.FlowMappingEndToken)) and opened:
                opened.pop()
    except yaml.YAMLError:
        pass
    finally:
        loader.dispose()
    return opened[-1] if opened else None


def _line_length(text: str, line: int) -> int:
    """Length of the 1-based ``line`` of ``text`` (0 past the end)."""
    lines = _LINE_BREAK.split(text)
    return len(lines[line - 1]) if 0 < line <= len(lines) else 0


def _runaway_key_line(text: str, problem_line: int) -> Optional[int]:
    """For "mapping values are not allowed here": the earlier line where a key without ':' began, if any.

    ``project myapp`` followed by ``root: /x`` scans as ONE plain value
    "project myapp root" followed by ':' on line 2; the mistake is line 1.
    Only a value that starts a line (where a key would be) counts: ``root:
    /x`` followed by an over-indented ``port: 2`` is a mistake on line 2.
    """
    loader = yaml.SafeLoader(text)
    seen: list = []
    try:
        while loader.check_token():
            seen.append(loader.get_token())
            del seen[:-2]
    except yaml.YAMLError:
        pass
    finally:
        pending = list(loader.tokens)
        loader.dispose()
    scalars = [t for t in seen + pending if isinstance(t, yaml.ScalarToken) and t.start_mark.line + 1 <= problem_line]
    if not scalars:
        return None
    token = scalars[-1]
    if not token.plain or token.start_mark.line + 1 >= problem_line:
        return None
    lines = _LINE_BREAK.split(text)
    before = lines[token.start_mark.line][: token.start_mark.column] if token.start_mark.line < len(lines) else ""
    if before.strip(" -?") == "":
        return token.start_mark.line + 1
    return None


# --- validating nodes -------------------------------------------------------------------------

def _keyname(name: str) -> str:
    """A mapping key as it appears in a key path: plain when simple, else quoted and cut."""
    return name if re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name) else repr(_clip(name, 40))


def _join(where: str, name: str) -> str:
    return f"{where}.{_keyname(name)}" if where else _keyname(name)


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    return show(node.value)


_SCALAR_BUILDERS: dict[str, Callable[[yaml.ScalarNode], Any]] = {
    _TAG + "null": lambda node: None,
    _TAG + "bool": lambda node: _CONSTRUCTOR.construct_yaml_bool(node),
    _TAG + "int": lambda node: _CONSTRUCTOR.construct_yaml_int(node),
    _TAG + "float": lambda node: _CONSTRUCTOR.construct_yaml_float(node),
    _TAG + "timestamp": lambda node: _CONSTRUCTOR.construct_yaml_timestamp(node),
}
_TYPE_NAMES = {_TAG + "bool": "true/false", _TAG + "int": "whole number", _TAG + "float": "number",
               _TAG + "timestamp": "date"}


class _Reader:
    """Turns nodes into checked values; every error names the file, the node's line and the key path."""

    def __init__(self, path: Path):
        self.path = path

    def error(self, node: Optional[yaml.Node], key: Optional[str], message: str) -> ConfigError:
        """A ConfigError at ``node``'s line."""
        line = node.start_mark.line + 1 if node is not None else None
        return ConfigError(source_of(node, self.path), line, key or None, message)

    def value(self, node: yaml.Node, key: str) -> Any:
        """The Python value of a single (scalar) node."""
        if not isinstance(node, yaml.ScalarNode):
            raise self.error(node, key, f"expected a single value, not {_kind(node)}")
        builder = _SCALAR_BUILDERS.get(node.tag)
        if builder is None:  # str, and `=` / `<<` outside a key, which YAML 1.1 gives tags of their own
            return node.value
        try:
            return builder(node)
        except (ValueError, TypeError, AttributeError, KeyError, OverflowError, yaml.YAMLError):
            # e.g. `!!int abc`, `!!bool maybe`, a 5000-digit number
            raise self.error(node, key, f"not a valid {_TYPE_NAMES.get(node.tag, 'value')}: {show(node.value)}") from None

    def is_null(self, node: Optional[yaml.Node]) -> bool:
        """Whether ``node`` is missing or an explicit null (``key:``, ``~``, ``null``)."""
        return node is None or (isinstance(node, yaml.ScalarNode) and node.tag == _TAG + "null")

    def mapping(self, node: yaml.Node, where: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """The text keys of a mapping node, with ``<<: *defaults`` merge keys applied (explicit keys win)."""
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, where or None, f"expected a mapping of key: value, not {_kind(node)}")
        merged: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        explicit: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag == _TAG + "merge":
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                for source in sources:
                    if not isinstance(source, yaml.MappingNode):
                        raise self.error(source, _join(where, "<<"), "merge (<<) takes a mapping or a list of mappings")
                    for name, pair in self.mapping(source, where).items():
                        merged.setdefault(name, pair)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                # Never construct or print a list/mapping key: it may be an alias bomb.
                raise self.error(key_node, where or None, f"keys must be text, not {_kind(key_node)}")
            name = self.value(key_node, where)
            if not isinstance(name, str):
                raise self.error(key_node, where or None, f"keys must be text, not {show(key_node.value)} "
                                                          "(put it in quotes)")
            if name in explicit:
                raise self.error(key_node, _join(where, name), "appears twice")
            explicit[name] = (key_node, value_node)
        merged.update(explicit)
        return merged

    def check_keys(self, items: dict, allowed: Iterable[str], where: str, level: str) -> None:
        """Refuse keys not in ``allowed``, suggesting the near miss or the level the key belongs to."""
        allowed = tuple(allowed)
        for name, (key_node, _) in items.items():
            if name in allowed:
                continue
            hint = _suggest(name, allowed)
            if not hint:
                # A key of another level (or a near miss of one): say where it goes.
                elsewhere = {key for home, keys in _KEY_HOMES.items() if home != level for key in keys}
                meant = name if name in elsewhere else _suggest_word(name, elsewhere)
                homes = [home for home, keys in _KEY_HOMES.items() if home != level and meant in keys]
                if homes and meant == name:
                    hint = f"; {name!r} belongs under {' or '.join(homes)}"
                elif homes:
                    hint = f"; did you mean {meant!r}? (it belongs under {' or '.join(homes)})"
                elif len(", ".join(allowed)) <= 150:
                    hint = f" (expected one of: {', '.join(sorted(allowed))})"
                else:
                    hint = " (`releasetui init` writes a starter that lists every key)"
            raise self.error(key_node, _join(where, name), f"unknown key{hint}")

    def text(self, node: yaml.Node, key: str, check: Optional[Callable[[str], Optional[str]]] = None) -> str:
        """A text value (a number or date is refused: quote it)."""
        value = self.value(node, key)
        if value is None:
            raise self.error(node, key, "needs a value (it is empty or null)")
        if not isinstance(value, str):
            raise self.error(node, key, f"expected text, got {show(node.value)} (put it in quotes)")
        return self._checked(node, key, value, check)

    def integer(self, node: yaml.Node, key: str, check: Optional[Callable[[int], Optional[str]]] = None) -> int:
        """A whole number."""
        value = self.value(node, key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(node, key, f"expected a whole number, got {show(node.value)}")
        return self._checked(node, key, value, check)

    def number(self, node: yaml.Node, key: str, low: float, high: float, low_inclusive: bool = False) -> float:
        """A number in (low, high] (or [low, high]); NaN and infinities fail the range check."""
        value = self.value(node, key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(node, key, f"expected a number of seconds, got {show(node.value)}")
        value = float(value)
        inside = (low <= value <= high) if low_inclusive else (low < value <= high)
        if not inside:
            span = f"between {low:g} and {high:g}" if low_inclusive else f"more than {low:g} and at most {high:g}"
            raise self.error(node, key, f"must be {span} seconds, got {show(node.value)}")
        return value

    def boolean(self, node: yaml.Node, key: str) -> bool:
        """true or false."""
        value = self.value(node, key)
        if not isinstance(value, bool):
            raise self.error(node, key, f"expected true or false, got {show(node.value)}")
        return value

    def string_list(self, node: yaml.Node, key: str) -> tuple[str, ...]:
        """A list of text values; null is the empty list."""
        if self.is_null(node):
            return ()
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(node, key, f"expected a list of text values, e.g. [a, b], not {_kind(node)}")
        return tuple(self.text(item, f"{key}[{i}]") for i, item in enumerate(node.value))

    def _checked(self, node: yaml.Node, key: str, value: Any, check: Optional[Callable[[Any], Optional[str]]]) -> Any:
        if check:
            problem = check(value)
            if problem:
                raise self.error(node, key, problem)
        return value


def _local_path(base: Path, value: str) -> Path:
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else (base / path)


def _check_root(value: str) -> Optional[str]:
    if not value.startswith("/"):
        return "must be an absolute path on the host (e.g. /var/www/myapp)"
    normal = posixpath.normpath(value)
    if normal == "/" or ".." in value.split("/"):
        return "must be a dedicated directory, not / and without '..'"
    if not value.isprintable():
        return "must not contain control characters"
    return None


def _check_port(value: int) -> Optional[str]:
    return None if 0 < value < 65536 else f"must be between 1 and 65535, got {value}"


def _check_address(value: str) -> Optional[str]:
    if value and not value.startswith("-") and value.isprintable() and not any(c.isspace() for c in value):
        return None
    return "must be a host name or IP address"


def _check_user(value: str) -> Optional[str]:
    return None if USER_NAME_PATTERN.fullmatch(value) else "not a valid user name"


def _check_command(value: str) -> Optional[str]:
    return None if value.strip() else "must not be empty"


TOP_KEYS = (
    "project", "source", "requirements", "excludes_file", "include", "python", "pip_args", "keep_builds",
    "restart", "restart_timeout", "logs", "root", "ssh", "hosts", "healthcheck", "roles", "hooks", "shared",
    "rollout", "parallel", "lock_wait", "connect_timeout", "script_timeout", "install_timeout", "require_clean",
    "stages", "require_stage", "confirm", "env",
)
ENV_KEYS = ("file", "clear", "secret", "secrets_command")
SSH_KEYS = ("user", "port", "key_file", "known_hosts", "jump")
SETTING_KEYS = ("root", "python", "restart", "restart_timeout", "healthcheck", "logs", "hooks")
ROLE_KEYS = SETTING_KEYS
HOST_KEYS = ("address", "user", "port", "key_file", "known_hosts", "transport", "roles", "jump") + SETTING_KEYS
HEALTH_KEYS = ("url", "command", "expect", "timeout", "interval")
HOOK_KEYS = ("command", "timeout", "once", "host")
SHARED_KEYS = ("files", "dirs")
ROLLOUT_KEYS = ("canary", "batch", "pause")
JUMP_KEYS = ("address", "user", "port", "key_file", "known_hosts")
# Where each key may appear, for "unknown key; 'user' belongs under ssh: or hosts.NAME".
_KEY_HOMES = {
    "the top level": TOP_KEYS, "ssh:": SSH_KEYS, "hosts.NAME": HOST_KEYS, "roles.NAME": ROLE_KEYS,
    "healthcheck:": HEALTH_KEYS, "a hook": HOOK_KEYS, "shared:": SHARED_KEYS, "rollout:": ROLLOUT_KEYS,
    "jump:": JUMP_KEYS, "hooks:": HOOK_NAMES, "env:": ENV_KEYS,
}

_DEFAULTS = {"python": "python3", "restart": None, "restart_timeout": 60.0, "healthcheck": None, "logs": ()}


def read_config_text(path: Union[str, Path]) -> str:
    """The text of the file at ``path``, refusing what is not a config: too large, not UTF-8, unreadable.

    Reads at most one byte past the limit, so ``--config /dev/zero`` ends at once.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(path, None, None, "file not found") from None
    except IsADirectoryError:
        raise ConfigError(path, None, None, "is a directory, not a file") from None
    except OSError as exc:
        raise ConfigError(path, None, None, f"cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(path, None, None, f"larger than {MAX_CONFIG_BYTES // 1024} kB: not a config file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(path, line, None, f"not UTF-8 text (byte 0x{data[exc.start]:02x})") from None


def load_config(path: Union[str, Path], stage: Optional[str] = None) -> Config:
    """Read, parse and validate the config at ``path`` (with ``hosts.STAGE.yml`` merged over it when ``stage``
    is given); raise :class:`ConfigError` on any mistake."""
    path = Path(path)
    config = _load(path, stage)
    if stage is not None:
        _check_stage_roots(config)
    return config


def _load(path: Path, stage: Optional[str]) -> Config:
    root_node = compose_yaml(read_config_text(path), path)
    if root_node is None:
        raise ConfigError(path, None, None, "the file is empty (`releasetui init` writes a starter)")
    if stage is not None:
        root_node = _with_stage(root_node, path, stage)
    return _Builder(_Reader(path), path, stage).build(root_node)


def _with_stage(root_node: yaml.Node, path: Path, stage: str) -> yaml.Node:
    """The main file's nodes with the stage file's merged over them."""
    if not STAGE_NAME_PATTERN.fullmatch(stage):
        raise ConfigError(path, None, "--stage", f"{show(stage)} is not a stage name (letters, digits, '_' and '-')")
    declared = declared_stages(root_node)
    known = f"stages: {_listing(declared)}" if declared else "this file declares no stages:"
    if declared and stage not in declared:
        raise ConfigError(path, None, "--stage", f"no stage named {show(stage)}{_suggest(stage, declared)} ({known})")
    overlay_path = stage_path(path, stage)
    if not overlay_path.is_file():
        raise ConfigError(overlay_path, None, "--stage", f"stage {stage}'s file is missing ({known})")
    overlay = compose_yaml(read_config_text(overlay_path), overlay_path)
    if overlay is None:
        return root_node
    mark_source(overlay, overlay_path)
    return merge_nodes(root_node, overlay)


def _host_place(host: HostConfig) -> tuple:
    return ("local",) if host.transport == "local" else (host.address, host.port or 22)


def _check_stage_roots(config: Config) -> None:
    """Two stages never share a root on one machine (they would share its lock, builds and history)."""
    mine = {(_host_place(h), h.root): h for h in config.hosts}
    for other in config.stages:
        if other == config.stage or not stage_path(config.path, other).is_file():
            continue
        for host in _load(config.path, other).hosts:
            clash = mine.get((_host_place(host), host.root))
            if clash is not None:
                where = "this machine" if clash.transport == "local" else clash.address
                raise ConfigError(stage_path(config.path, config.stage or ""), None, f"hosts.{clash.name}.root",
                                  f"{clash.root} on {where} is also stage {other}'s (host {host.name}): each stage "
                                  "needs roots of its own, or the two would share one lock and one set of builds")


def load_config_text(text: str, path: Union[str, Path]) -> Config:
    """Validate ``text`` as the config file at ``path`` (local paths in it are relative to ``path``'s folder)."""
    path = Path(path)
    root_node = compose_yaml(text, path)
    if root_node is None:
        raise ConfigError(path, None, None, "the file is empty (`releasetui init` writes a starter)")
    return _Builder(_Reader(path), path).build(root_node)


class _Builder:
    """Builds a :class:`Config` from the top node: one instance per load."""

    def __init__(self, reader: _Reader, path: Path, stage: Optional[str] = None):
        self.r = reader
        self.path = path
        self.stage = stage
        self.base = path.resolve().parent
        self.once_hosts: list[tuple[Hook, yaml.Node, str]] = []  # once-hooks naming a host, checked at the end

    def build(self, root_node: yaml.Node) -> Config:
        """The whole config, validated."""
        r = self.r
        if not isinstance(root_node, yaml.MappingNode):
            hint = " (missing space after ':'?)" if isinstance(root_node, yaml.ScalarNode) and ":" in str(root_node.value) else ""
            raise r.error(root_node, None, f"the file must be a mapping of key: value, not {_kind(root_node)}{hint}")
        top = r.mapping(root_node, "")
        r.check_keys(top, TOP_KEYS, "", "the top level")

        def get(name: str) -> Optional[yaml.Node]:
            pair = top.get(name)
            return pair[1] if pair else None

        def given(name: str) -> bool:  # present and not null
            return not r.is_null(get(name))

        stage_fields = self.stage_settings(get)  # first: without its stage, this file may lack hosts
        if "project" not in top:
            raise ConfigError(self.path, None, "project", "is required (the name of the app)")
        project = r.text(get("project"), "project",
                         lambda v: None if PROJECT_NAME_PATTERN.fullmatch(v) else "letters, digits, '.', '_' and '-' only")
        source = _local_path(self.base, r.text(get("source"), "source")) if given("source") else self.base
        requirements = "requirements.txt"
        if given("requirements"):
            requirements = r.text(get("requirements"), "requirements",
                                  lambda v: "must be a path inside source" if v.startswith("/") or ".." in v.split("/") else None)
        excludes_file = None
        if given("excludes_file"):
            # Its existence is checked by deploy, the only operation that reads it.
            excludes_file = _local_path(self.base, r.text(get("excludes_file"), "excludes_file"))
        include = self.include(get("include")) if given("include") else ()
        pip_args = r.string_list(get("pip_args"), "pip_args")
        keep_builds = 5
        if given("keep_builds"):
            keep_builds = r.integer(get("keep_builds"), "keep_builds",
                                    lambda v: None if v >= MIN_KEEP_BUILDS else
                                    f"must be at least {MIN_KEEP_BUILDS} (the live build and one to roll back to)")
        top_settings = self.settings(top, "", "top")
        ssh_defaults: dict[str, Any] = {}
        default_jump: Optional[JumpHost] = None
        if given("ssh"):
            ssh_items = r.mapping(get("ssh"), "ssh")
            r.check_keys(ssh_items, SSH_KEYS, "ssh", "ssh:")
            ssh_defaults = self.ssh_settings(ssh_items, "ssh")
            if "jump" in ssh_items and not r.is_null(ssh_items["jump"][1]):
                default_jump = self.jump(ssh_items["jump"][1], "ssh.jump")

        role_names, role_settings = self.roles(get("roles"))
        hosts = self.hosts(get("hosts"), top.get("hosts"), ssh_defaults, default_jump, top_settings,
                           role_names, role_settings)
        host_names = [h.name for h in hosts]
        self.check_once_hosts(hosts)

        shared = self.shared(get("shared")) if given("shared") else Shared()
        local_hooks = tuple(hook for name in HOOK_NAMES_LOCAL for hook in top_settings.get("hooks", {}).get(name, ()))
        config = Config(
            path=self.path, project=project, source=source, requirements=requirements,
            python=top_settings.get("python", _DEFAULTS["python"]), keep_builds=keep_builds, hosts=tuple(hosts),
            excludes_file=excludes_file, include=include, pip_args=pip_args, restart=top_settings.get("restart"),
            logs=top_settings.get("logs", ()), healthcheck=top_settings.get("healthcheck"),
            roles=tuple(role_names), hooks=local_hooks,
            shared=shared,
            env=self.env(get("env"), shared) if given("env") else None,
            rollout=self.rollout(get("rollout"), host_names) if given("rollout") else None,
            parallel=r.integer(get("parallel"), "parallel",
                               lambda v: None if 1 <= v <= 1000 else f"must be between 1 and 1000, got {v}")
            if given("parallel") else 25,
            lock_wait=r.number(get("lock_wait"), "lock_wait", 0, 86400, low_inclusive=True) if given("lock_wait") else 0.0,
            connect_timeout=r.number(get("connect_timeout"), "connect_timeout", 0, 600) if given("connect_timeout") else 15.0,
            script_timeout=r.number(get("script_timeout"), "script_timeout", 0, 86400) if given("script_timeout") else 120.0,
            install_timeout=r.number(get("install_timeout"), "install_timeout", 0, 86400)
            if given("install_timeout") else 1800.0,
            require_clean=r.boolean(get("require_clean"), "require_clean") if given("require_clean") else False,
            restart_timeout=top_settings.get("restart_timeout", _DEFAULTS["restart_timeout"]),
            **stage_fields,
        )
        return config

    def stage_settings(self, get: Callable[[str], Optional[yaml.Node]]) -> dict[str, Any]:
        """``stages``, ``require_stage`` and ``confirm``, checked against the stage asked for."""
        r = self.r
        stages_node, require_node = get("stages"), get("require_stage")
        stages = tuple(r.string_list(stages_node, "stages")) if not r.is_null(stages_node) else ()
        for name in stages:
            if not STAGE_NAME_PATTERN.fullmatch(name):
                raise r.error(stages_node, "stages", f"{show(name)} is not a stage name (letters, digits, '_', '-')")
        require = r.boolean(require_node, "require_stage") if not r.is_null(require_node) else False
        if require and self.stage is None:
            listed = f" (stages: {_listing(stages)})" if stages else ""
            raise r.error(require_node, "require_stage", f"is true: name a stage with --stage NAME or "
                                                         f"${STAGE_ENV_VAR}{listed}")
        confirm = r.boolean(get("confirm"), "confirm") if not r.is_null(get("confirm")) else False
        return {"stage": self.stage, "stages": stages, "require_stage": require, "confirm": confirm}

    # -- per-level settings: top, roles.NAME, hosts.NAME --

    def settings(self, items: dict, where: str, level: str) -> dict[str, Any]:
        """The settings (root, python, restart, ...) that ``items`` sets; absent keys are absent from the result.

        ``restart``, ``healthcheck`` and ``logs`` may be null: that SETS them
        to none (a role with ``healthcheck: null`` turns the check off).
        ``hooks`` maps each hook name it sets to its hooks.
        """
        r = self.r
        result: dict[str, Any] = {}
        for key in SETTING_KEYS:
            if key not in items:
                continue
            node, full = items[key][1], _join(where, key)
            if key == "root":
                result[key] = posixpath.normpath(r.text(node, full, _check_root))
            elif key == "python":
                result[key] = r.text(node, full, lambda v: None if v.strip() and v.isprintable() else
                                     "must name an interpreter on the host, e.g. python3")
            elif key == "restart":
                result[key] = None if r.is_null(node) else r.text(node, full, _check_command)
            elif key == "restart_timeout":
                result[key] = r.number(node, full, 0, 86400)
            elif key == "healthcheck":
                result[key] = None if r.is_null(node) else self.healthcheck(node, full)
            elif key == "logs":
                result[key] = r.string_list(node, full)
            elif key == "hooks":
                result[key] = self.hooks(node, full, level)
        return result

    def healthcheck(self, node: yaml.Node, where: str) -> HealthCheck:
        """A ``healthcheck:`` mapping."""
        r = self.r
        items = r.mapping(node, where)
        r.check_keys(items, HEALTH_KEYS, where, "healthcheck:")
        url = command = None
        if "url" in items:
            url = r.text(items["url"][1], f"{where}.url",
                         lambda v: None if v.startswith(("http://", "https://")) and v.isprintable()
                         else "must start with http:// or https://")
        if "command" in items:
            command = r.text(items["command"][1], f"{where}.command", _check_command)
        if (url is None) == (command is None):
            raise r.error(node, where, "give exactly one of 'url' or 'command'")
        expect = None
        if "expect" in items and not r.is_null(items["expect"][1]):
            expect = r.value(items["expect"][1], f"{where}.expect")
            if isinstance(expect, bool) or not isinstance(expect, (str, int)):
                raise r.error(items["expect"][1], f"{where}.expect", "expected a status code or text the body must contain")
        timeout = r.number(items["timeout"][1], f"{where}.timeout", 0, 3600) if "timeout" in items else 30.0
        interval = r.number(items["interval"][1], f"{where}.interval", 0, 60) if "interval" in items else 0.5
        return HealthCheck(url=url, command=command, expect=expect, timeout=timeout, interval=interval)

    def hooks(self, node: yaml.Node, where: str, level: str) -> dict[str, tuple[Hook, ...]]:
        """A ``hooks:`` mapping: hook name -> its hooks (an empty tuple when set to ``[]`` or null)."""
        r = self.r
        if r.is_null(node):
            return {}
        items = r.mapping(node, where)
        allowed = HOOK_NAMES if level == "top" else HOOK_NAMES_REMOTE
        for name, (key_node, _) in items.items():
            if name in HOOK_NAMES_LOCAL and level != "top":
                raise r.error(key_node, _join(where, name), "local hooks run on this machine, once per operation: "
                                                            "set them in the top-level hooks: only")
        r.check_keys(items, allowed, where, "hooks:")
        result = {}
        for name, (_, value_node) in items.items():
            full = _join(where, name)
            if r.is_null(value_node):
                result[name] = ()
            elif isinstance(value_node, yaml.SequenceNode):
                result[name] = tuple(self.hook(name, item, f"{full}[{i}]") for i, item in enumerate(value_node.value))
            else:
                result[name] = (self.hook(name, value_node, full),)
        return result

    def hook(self, name: str, node: yaml.Node, where: str) -> Hook:
        """One hook: a command string, or ``{command, timeout, once, host}``."""
        r = self.r
        if isinstance(node, yaml.ScalarNode):
            return Hook(name=name, command=r.text(node, where, _check_command))
        if not isinstance(node, yaml.MappingNode):
            raise r.error(node, where, "expected a command, or a mapping {command, timeout, once, host}")
        items = r.mapping(node, where)
        r.check_keys(items, HOOK_KEYS, where, "a hook")
        if "command" not in items:
            raise r.error(node, f"{where}.command", "is required")
        command = r.text(items["command"][1], f"{where}.command", _check_command)
        timeout = r.number(items["timeout"][1], f"{where}.timeout", 0, 86400) if "timeout" in items else 300.0
        once = False
        if "once" in items:
            if name != "before_activate":
                raise r.error(items["once"][0], f"{where}.once", "only before_activate hooks can run once")
            once = r.boolean(items["once"][1], f"{where}.once")
        host = None
        if "host" in items:
            if name != "before_activate" or not once:
                raise r.error(items["host"][0], f"{where}.host", "picks the host of a before_activate hook with "
                                                                 "once: true (add once: true)")
            host = r.text(items["host"][1], f"{where}.host")
        hook = Hook(name=name, command=command, timeout=timeout, once=once, host=host)
        if host is not None:
            self.once_hosts.append((hook, items["host"][1], f"{where}.host"))
        return hook

    def check_once_hosts(self, hosts: list[HostConfig]) -> None:
        """A once-hook's ``host:`` must be a configured host that gets that hook."""
        by_name = {h.name: h for h in hosts}
        for hook, node, where in self.once_hosts:
            chosen = by_name.get(hook.host)
            if chosen is None:
                raise self.r.error(node, where, f"no host named {show(hook.host)}{_suggest(hook.host, by_name)}")
            if hook not in chosen.hooks:
                raise self.r.error(node, where, f"{hook.host} does not run this hook (its roles or its own hooks: "
                                                "replace it)")

    # -- ssh, jump hosts, roles, hosts --

    def ssh_settings(self, items: dict, where: str) -> dict[str, Any]:
        """user, port, key_file, known_hosts as given in ``items``."""
        r = self.r
        settings: dict[str, Any] = {}
        if "user" in items and not r.is_null(items["user"][1]):
            settings["user"] = r.text(items["user"][1], f"{where}.user", _check_user)
        if "port" in items and not r.is_null(items["port"][1]):
            settings["port"] = r.integer(items["port"][1], f"{where}.port", _check_port)
        for key in ("key_file", "known_hosts"):
            if key in items and not r.is_null(items[key][1]):
                settings[key] = _local_path(self.base, r.text(items[key][1], f"{where}.{key}"))
        return settings

    def jump(self, node: yaml.Node, where: str) -> JumpHost:
        """A jump host: ``"[user@]host[:port]"`` or a mapping of address, user, port, key_file, known_hosts."""
        r = self.r
        if isinstance(node, yaml.ScalarNode):
            value = r.text(node, where)
            match = re.fullmatch(r"(?:(?P<user>[^@\s]+)@)?(?P<host>\[[0-9A-Fa-f:.]+\]|[^:@\s\[\]]+)(?::(?P<port>[0-9]{1,5}))?",
                                 value)
            if not match:
                raise r.error(node, where, f"expected [user@]host[:port], got {show(value)}")
            user, address, port = match.group("user"), match.group("host").strip("[]"), match.group("port")
            if user is not None and _check_user(user):
                raise r.error(node, where, f"not a valid user name: {show(user)}")
            if _check_address(address):
                raise r.error(node, where, f"not a host name or IP address: {show(address)}")
            if port is not None and _check_port(int(port)):
                raise r.error(node, where, _check_port(int(port)))
            return JumpHost(address=address, user=user, port=int(port) if port else None)
        items = r.mapping(node, where)
        r.check_keys(items, JUMP_KEYS, where, "jump:")
        if "address" not in items:
            raise r.error(node, f"{where}.address", "is required")
        address = r.text(items["address"][1], f"{where}.address", _check_address)
        return JumpHost(address=address, **self.ssh_settings(items, where))

    def roles(self, node: Optional[yaml.Node]) -> tuple[list[str], dict[str, dict[str, Any]]]:
        """The ``roles:`` mapping: names in file order, and the settings each sets."""
        r = self.r
        if r.is_null(node):
            return [], {}
        items = r.mapping(node, "roles")
        names, settings = [], {}
        for name, (key_node, value_node) in items.items():
            where = _join("roles", name)
            if not ROLE_NAME_PATTERN.fullmatch(name):
                raise r.error(key_node, where, "role names may use letters, digits, '.', '_' and '-' only")
            role_items = {} if r.is_null(value_node) else r.mapping(value_node, where)
            r.check_keys(role_items, ROLE_KEYS, where, "roles.NAME")
            names.append(name)
            settings[name] = self.settings(role_items, where, "role")
        return names, settings

    def hosts(self, node: Optional[yaml.Node], pair: Optional[tuple], ssh_defaults: dict, default_jump: Optional[JumpHost],
              top_settings: dict, role_names: list[str], role_settings: dict) -> list[HostConfig]:
        """Every host, with its settings resolved over its roles and the top level."""
        r = self.r
        if node is None:
            raise ConfigError(self.path, None, "hosts", "is required (name: {address: ...} for each host)")
        if r.is_null(node):
            raise r.error(pair[0], "hosts", "needs at least one host")
        host_items = r.mapping(node, "hosts")
        if not host_items:
            raise r.error(node, "hosts", "needs at least one host")
        hosts = []
        for name, (key_node, value_node) in host_items.items():
            where = _join("hosts", name)
            if not HOST_NAME_PATTERN.fullmatch(name):
                raise r.error(key_node, where, "host names may use letters, digits, '.', '_' and '-' only")
            items = {} if r.is_null(value_node) else r.mapping(value_node, where)
            r.check_keys(items, HOST_KEYS, where, "hosts.NAME")
            ssh = dict(ssh_defaults)
            ssh.update(self.ssh_settings(items, where))
            transport = "ssh"
            if "transport" in items:
                transport = r.text(items["transport"][1], f"{where}.transport",
                                   lambda v: None if v in TRANSPORTS else f"must be one of: {', '.join(TRANSPORTS)}")
            address = None
            if "address" in items and not r.is_null(items["address"][1]):
                address = r.text(items["address"][1], f"{where}.address", _check_address)
            if transport == "ssh" and not address:
                raise r.error(key_node, f"{where}.address", "is required for an ssh host")
            jump = default_jump if transport == "ssh" else None
            if "jump" in items:
                if transport != "ssh" and not r.is_null(items["jump"][1]):
                    raise r.error(items["jump"][0], f"{where}.jump", "a local host is not reached over SSH")
                jump = None if r.is_null(items["jump"][1]) else self.jump(items["jump"][1], f"{where}.jump")
            roles = self.host_roles(items, where, role_names)
            own = self.settings(items, where, "host")
            resolved = self.resolve(name, key_node, where, own, roles, role_settings, top_settings)
            if resolved.get("root") is None:
                raise r.error(key_node, f"{where}.root", "no project root: set 'root' at the top, on a role or on this host")
            hosts.append(HostConfig(name=name, transport=transport, address=address, roles=roles, jump=jump,
                                    **ssh, **resolved))
        return hosts

    def host_roles(self, items: dict, where: str, role_names: list[str]) -> tuple[str, ...]:
        """A host's ``roles:``: a list (or one name) of roles defined under the top-level ``roles:``."""
        r = self.r
        if "roles" not in items or r.is_null(items["roles"][1]):
            return ()
        node = items["roles"][1]
        members = [node] if isinstance(node, yaml.ScalarNode) else None
        if members is None:
            if not isinstance(node, yaml.SequenceNode):
                raise r.error(node, f"{where}.roles", f"expected a list of role names, e.g. [web], not {_kind(node)}")
            members = node.value
        roles: list[str] = []
        for i, member in enumerate(members):
            key = f"{where}.roles" if member is node else f"{where}.roles[{i}]"
            role = r.text(member, key)
            if role not in role_names:
                known = f"defined: {_listing(role_names)}" if role_names else "there is no roles: section"
                raise r.error(member, key, f"no role {show(role)} under roles:{_suggest(role, role_names)} ({known}; a "
                                           "role used only as a label needs an empty entry, e.g. roles: {web: {}})")
            if role in roles:
                raise r.error(member, key, f"role {show(role)} is listed twice")
            roles.append(role)
        return tuple(roles)

    def resolve(self, name: str, key_node: yaml.Node, where: str, own: dict, roles: tuple[str, ...],
                role_settings: dict, top_settings: dict) -> dict[str, Any]:
        """Each setting for one host: the host's own, else its roles' (which must agree), else the top level's."""
        resolved: dict[str, Any] = {}

        origins: dict[str, str] = {}

        def pick(key: str, values: dict, role_values: list[tuple[str, Any]], top_values: dict, default: Any,
                 key_path: str) -> Any:
            if key in values:
                origins[key] = where
                return values[key]
            if role_values:
                first_role, first = role_values[0]
                for other_role, other in role_values[1:]:
                    if other != first:
                        raise self.r.error(key_node, key_path, f"its roles {first_role!r} and {other_role!r} set "
                                                               "different values: set it on the host")
                origins[key] = f"roles.{first_role}"
                return first
            origins[key] = "top level" if key in top_values else "default"
            return top_values.get(key, default)

        for key in SETTING_KEYS:
            if key == "hooks":
                continue
            role_values = [(role, role_settings[role][key]) for role in roles if key in role_settings[role]]
            resolved[key] = pick(key, own, role_values, top_settings, _DEFAULTS.get(key), _join(where, key))
        own_hooks, top_hooks = own.get("hooks", {}), top_settings.get("hooks", {})
        hooks: list[Hook] = []
        for hook_name in HOOK_NAMES_REMOTE:
            role_values = [(role, role_settings[role]["hooks"][hook_name]) for role in roles
                           if hook_name in role_settings[role].get("hooks", {})]
            hooks.extend(pick(hook_name, own_hooks, role_values, top_hooks, (), f"{where}.hooks.{hook_name}"))
        resolved["hooks"] = tuple(hooks)
        resolved["origins"] = tuple(sorted(origins.items()))
        return resolved

    # -- include, shared, rollout --

    def include(self, node: yaml.Node) -> tuple[str, ...]:
        """``include: [.env.example, certs/*.pem]``: paths or globs relative to source (:mod:`releasetui.shipping`)."""
        r = self.r
        if not isinstance(node, yaml.SequenceNode):
            raise r.error(node, "include", f"expected a list of paths or globs relative to source, e.g. "
                                           f"[.env.example], not {_kind(node)}")
        patterns = []
        for i, item in enumerate(node.value):
            value = r.text(item, f"include[{i}]", shipping.pattern_problem)
            patterns.append(value[2:] if value.startswith("./") else value)
        return tuple(patterns)

    def shared(self, node: yaml.Node) -> Shared:
        """``shared: {files, dirs}``: relative paths, each unique and none inside another."""
        r = self.r
        items = r.mapping(node, "shared")
        r.check_keys(items, SHARED_KEYS, "shared", "shared:")
        seen: dict[str, str] = {}
        lists: dict[str, list[str]] = {"files": [], "dirs": []}
        for kind in SHARED_KEYS:
            if kind not in items or r.is_null(items[kind][1]):
                continue
            list_node = items[kind][1]
            if not isinstance(list_node, yaml.SequenceNode):
                raise r.error(list_node, f"shared.{kind}", f"expected a list of paths, e.g. [.env], not {_kind(list_node)}")
            for i, item in enumerate(list_node.value):
                key = f"shared.{kind}[{i}]"
                value = r.text(item, key)
                normal = posixpath.normpath(value) if value else value
                if not value or normal == "." or value.startswith("/") or ".." in value.split("/"):
                    raise r.error(item, key, f"must be a path inside the build, without a leading '/' or '..', got "
                                             f"{show(value)}")
                if not value.isprintable():
                    raise r.error(item, key, "must not contain control characters")
                if normal.split("/")[0] in _RESERVED_IN_BUILD:
                    raise r.error(item, key, f"{show(normal)} is releasetui's own file in each build")
                for other, other_kind in seen.items():
                    if other == normal:
                        raise r.error(item, key, f"{show(normal)} is listed twice (also in shared.{other_kind})"
                                      if other_kind != kind else f"{show(normal)} is listed twice")
                    if normal.startswith(other + "/") or other.startswith(normal + "/"):
                        raise r.error(item, key, f"{show(normal)} overlaps {show(other)} in shared.{other_kind}")
                seen[normal] = kind
                lists[kind].append(normal)
        return Shared(files=tuple(lists["files"]), dirs=tuple(lists["dirs"]))

    def env(self, node: yaml.Node, shared: Shared) -> EnvSpec:
        """``env: {file, clear, secret, secrets_command}``: the app's environment file (:mod:`releasetui.secrets`)."""
        r = self.r
        items = r.mapping(node, "env")
        r.check_keys(items, ENV_KEYS, "env", "env:")
        path = ".env"
        if "file" in items and not r.is_null(items["file"][1]):
            path = r.text(items["file"][1], "env.file")
            normal = posixpath.normpath(path)
            if path.startswith("/") or ".." in path.split("/") or normal == "." or not path.isprintable():
                raise r.error(items["file"][1], "env.file", f"must be a path inside the build, got {show(path)}")
            if normal.split("/")[0] in _RESERVED_IN_BUILD:
                raise r.error(items["file"][1], "env.file", f"{show(normal)} is releasetui's own file in each build")
            path = normal
        if path in shared.files or any(path == d or path.startswith(d + "/") for d in shared.dirs):
            raise r.error(node, "env", f"{show(path)} is also under shared: one file cannot be both (drop it from "
                                       "shared.files: env: writes it on every host)")
        clear: list[tuple[str, str]] = []
        if "clear" in items and not r.is_null(items["clear"][1]):
            for name, (key_node, value_node) in r.mapping(items["clear"][1], "env.clear").items():
                if not SECRET_NAME_PATTERN.fullmatch(name):
                    raise r.error(key_node, f"env.clear.{name}", "not a variable name (letters, digits, '_')")
                value = r.value(value_node, f"env.clear.{name}")
                if isinstance(value, bool):
                    value = "true" if value else "false"
                if value is None or not isinstance(value, (str, int, float)):
                    raise r.error(value_node, f"env.clear.{name}", "expected a single text or number value")
                clear.append((name, str(value)))
        secret = r.string_list(items["secret"][1], "env.secret") if "secret" in items else ()
        for i, name in enumerate(secret):
            if not SECRET_NAME_PATTERN.fullmatch(name):
                raise r.error(items["secret"][1], f"env.secret[{i}]", f"{show(name)} is not a variable name")
            if name in dict(clear):
                raise r.error(items["secret"][1], f"env.secret[{i}]", f"{name} is also under env.clear")
        command = None
        if "secrets_command" in items and not r.is_null(items["secrets_command"][1]):
            command = r.text(items["secrets_command"][1], "env.secrets_command", _check_command)
        return EnvSpec(file=path, clear=tuple(clear), secret=tuple(secret), secrets_command=command)

    def canary(self, node: yaml.Node, host_names: list[str]) -> Union[int, tuple[str, ...]]:
        """``rollout.canary``: a count or host names, checked by the rule ``--canary`` obeys too."""
        from .rules import canary_problem  # rules imports this module: only at call time
        r = self.r
        if isinstance(node, yaml.SequenceNode):
            names = tuple(r.text(item, f"rollout.canary[{i}]") for i, item in enumerate(node.value))
            canary: Union[int, tuple[str, ...]] = names
        else:
            canary = r.integer(node, "rollout.canary")
        problem = canary_problem(canary, host_names, where="configured")
        if problem is None:
            return canary if canary != () else 0
        if problem.index is None:
            raise r.error(node, "rollout.canary", problem.reason)
        suggestion = _suggest(problem.unknown, host_names) if problem.unknown else ""
        raise r.error(node.value[problem.index], f"rollout.canary[{problem.index}]", problem.reason + suggestion)

    def rollout(self, node: yaml.Node, host_names: list[str]) -> Rollout:
        """``rollout: {canary, batch, pause}``."""
        r = self.r
        items = r.mapping(node, "rollout")
        r.check_keys(items, ROLLOUT_KEYS, "rollout", "rollout:")
        canary: Union[int, tuple[str, ...]] = 0
        if "canary" in items and not r.is_null(items["canary"][1]):
            canary = self.canary(items["canary"][1], host_names)
        batch: Union[int, str, None] = None
        if "batch" in items and not r.is_null(items["batch"][1]):
            batch_node = items["batch"][1]
            value = r.value(batch_node, "rollout.batch")
            if isinstance(value, str):
                match = re.fullmatch(r"\s*([0-9]{1,3})\s*%\s*", value)
                if not match or not 1 <= int(match.group(1)) <= 100:
                    raise r.error(batch_node, "rollout.batch", f"expected a number of hosts or a percentage from 1% to "
                                                               f"100%, got {show(value)}")
                batch = f"{int(match.group(1))}%"
            else:
                batch = r.integer(batch_node, "rollout.batch", lambda v: None if v >= 1 else "must be at least 1 host")
        pause = r.number(items["pause"][1], "rollout.pause", 0, 3600, low_inclusive=True) if "pause" in items else 0.0
        return Rollout(canary=canary, batch=batch, pause=pause)
