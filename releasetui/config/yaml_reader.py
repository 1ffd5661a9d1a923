"""The bounded YAML reader: text to one node graph within fixed limits, every syntax error said in one line.

Public because ``init`` reads Ansible inventories with it too."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Optional, Union

import yaml

from .errors import ConfigError, clip, show
from .model import MAX_ALIASES, MAX_DEPTH, MAX_NODES


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
            raise _Limit(event.start_mark.line, f"anchor &{clip(anchor, 40)} is defined twice (first on line {first})")
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
                raise _Limit(event.start_mark.line, f"alias *{clip(event.anchor, 40)} refers to a list or "
                                                    "mapping that contains it")
            if event.anchor not in anchors:
                raise _Limit(event.start_mark.line, f"alias *{clip(event.anchor, 40)} has no anchor "
                                                    f"&{clip(event.anchor, 40)} before it")
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
