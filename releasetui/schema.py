"""Every key of ``hosts.yml``, described once: the JSON Schema (``releasetui schema``) and the configuration
reference in ``docs/`` are both generated from :data:`SECTIONS`.

The validator (:mod:`releasetui.config`) stays the judge of a file; this table
says what each key means to a person and to an editor.  A test holds the two
together: a key the validator takes and this table lacks (or the reverse)
fails the suite, so the reference cannot drift from the code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional

SCHEMA_ID = "https://releasetui.dev/schema/hosts.json"
PER_HOST = "per role / per host"


@dataclass(frozen=True)
class Key:
    """One key: its JSON Schema type, its default, and what it does (one or two sentences)."""

    name: str
    schema: dict
    doc: str
    default: Any = None
    scope: str = ""            # PER_HOST when roles.NAME and hosts.NAME may set it too


@dataclass(frozen=True)
class Section:
    """The keys that may appear at one place of the file (the top level, ``ssh:``, ``hosts.NAME``...)."""

    place: str
    title: str
    keys: tuple[Key, ...]


_STR = {"type": "string"}
_BOOL = {"type": "boolean"}
_PATH = {"type": "string", "minLength": 1}
_STRS = {"type": "array", "items": {"type": "string"}}
_CMD = {"type": ["string", "null"]}


def _num(low: float, high: float, exclusive_low: bool = True) -> dict:
    bound = {"exclusiveMinimum": low} if exclusive_low else {"minimum": low}
    return {"type": "number", **bound, "maximum": high}


_HOOK_ITEM = {"oneOf": [{"type": "string"}, {"$ref": "#/$defs/hook"}]}
_HOOK = {"oneOf": [{"type": "null"}, {"type": "string"}, {"$ref": "#/$defs/hook"},
                   {"type": "array", "items": _HOOK_ITEM}]}
_JUMP = {"oneOf": [{"type": "null"}, {"type": "string"}, {"$ref": "#/$defs/jump"}]}
_HEALTH = {"oneOf": [{"type": "null"}, {"$ref": "#/$defs/healthcheck"}]}


def _nullable(ref: str) -> dict:
    """A mapping section that may also be left empty (``roles:`` with nothing under it)."""
    return {"oneOf": [{"type": "null"}, {"$ref": f"#/$defs/{ref}"}]}

SETTINGS = (
    Key("root", _PATH, "Project root on the host: builds/, current, venvs/, shared/, deploy.lock/, history.jsonl.",
        scope=PER_HOST),
    Key("python", _STR, "Interpreter on the host that makes the virtualenvs (and runs the health check).",
        "python3", PER_HOST),
    Key("installer", {"enum": ["auto", "uv", "pip"]}, "What makes and fills a new venv on the host: uv (`uv venv`, "
        "`uv pip install`), pip, or auto: uv when the host has it, else pip. A reused venv keeps what built it.",
        "auto", PER_HOST),
    Key("uv", _CMD, "The uv executable on the host (a path or a command name); null: `uv` on PATH, then "
        "~/.local/bin/uv, then ~/.cargo/bin/uv.", None, PER_HOST),
    Key("restart", _CMD, "Shell command run on each host after `current` is switched (deploy and rollback); "
        "null: no restart.", None, PER_HOST),
    Key("restart_timeout", _num(0, 86400), "Seconds the restart command may take before it counts as failed.",
        60, PER_HOST),
    Key("healthcheck", _HEALTH, "After switch and restart, poll until healthy or timeout; when unhealthy, "
        "switch back and mark the build failed. null turns it off on a role or host.", None, PER_HOST),
    Key("logs", _STRS, "Log files tailed by `logs` and the TUI's `l` (relative paths are under root).", [],
        PER_HOST),
    Key("hooks", _nullable("hooks"), "Shell commands run at fixed points of an operation "
        "(see Hooks).", None, PER_HOST),
    Key("wheels", {"type": "string", "enum": ["host", "ship"]}, "Where a new venv's wheels come from: `host`: "
        "each host gets them from the index itself (`pip wheel`, or uv); `ship` builds the wheelhouse once per "
        "requirements digest, on this machine when it has the hosts' OS, architecture and Python, else on the first "
        "host that needs it, and sends it, so the other hosts install with `--no-index` and never reach an index.", "host", PER_HOST),
)

TOP = (
    Key("project", {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"},
        "Name of the app: letters, digits, '.', '_' and '-'."),
    Key("source", _PATH, "Local directory shipped as each new build (relative to the config file): in a git work "
        "tree, what git would commit; files that look like secrets are held back unless `include` names them.", "."),
    Key("requirements", {"type": "string", "pattern": "(\\.txt|(^|/)(pyproject\\.toml|uv\\.lock|poetry\\.lock|"
        "pylock(\\.[^./]+)?\\.toml))$"},
        "What the venvs are made from, inside source: a requirements*.txt, pyproject.toml, uv.lock, poetry.lock or "
        "pylock.toml. Unset: the first of pylock.toml, uv.lock, poetry.lock, requirements.txt, pyproject.toml found. "
        "The digest of what it resolves to keys the virtualenvs.", "detected"),
    Key("requirements_extras", _STRS, "Optional dependencies installed too (pyproject.toml, uv.lock and "
        "poetry.lock extras).", []),
    Key("excludes_file", _PATH, "An rsync --exclude-from file, applied on top of what ships."),
    Key("include", _STRS, "Paths or globs (relative to source) shipped although they look like secrets or git "
        "ignores them (`.env.example`, `static/dist`).", []),
    Key("pip_args", _STRS, "Extra arguments for pip (an index URL, or --no-index --find-links DIR).", []),
    Key("keep_builds", {"type": "integer", "minimum": 2}, "Complete builds kept by prune (at least 2).", 5),
    Key("ssh", _nullable("ssh"), "Default SSH settings for every host."),
    Key("hosts", {"type": "object", "minProperties": 1, "additionalProperties": {"$ref": "#/$defs/host"}},
        "The hosts, by name."),
    Key("roles", {"type": ["object", "null"], "additionalProperties": _nullable("role")},
        "Groups of hosts that share settings; a role that is only a label takes `{}`."),
    Key("shared", _nullable("shared"), "Files and folders kept under ROOT/shared/ and linked into "
        "every build."),
    Key("rollout", {"oneOf": [{"type": "null"}, {"$ref": "#/$defs/rollout"}]}, "Activation in waves: a canary, "
        "then batches."),
    Key("parallel", {"type": "integer", "minimum": 1, "maximum": 1000}, "Hosts connected, shipped to and "
        "installed on at once.", 25),
    Key("lock_wait", _num(0, 86400, exclusive_low=False), "Seconds to wait for another operation's lock "
        "before exit 4 (0: do not wait).", 0),
    Key("connect_timeout", _num(0, 600), "Seconds to open an SSH connection.", 15),
    Key("script_timeout", _num(0, 86400), "Seconds for short remote scripts (read, lock, unlock, prune).", 120),
    Key("install_timeout", _num(0, 86400), "Seconds for shipping, venv and pip on a host.", 1800),
    Key("require_clean", _BOOL, "Refuse to deploy a source whose git working tree has uncommitted changes.",
        False),
    Key("stages", {"type": "array", "items": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$"}},
        "The stages this file has: `--stage NAME` merges `hosts.NAME.yml` over it.", []),
    Key("require_stage", _BOOL, "Refuse to run without `--stage` (or `$RELEASETUI_STAGE`).", False),
    Key("env", {"oneOf": [{"type": "null"}, {"$ref": "#/$defs/env"}]}, "The app's environment file, written on "
        "every host by each deploy (clear values, and secrets from this machine's environment or a command)."),
    Key("confirm", _BOOL, "Changing operations need `--yes` when no terminal can ask (set it in a production "
        "stage's file).", False),
) + SETTINGS

_CONNECTION = (
    Key("user", _STR, "SSH user."),
    Key("port", {"type": "integer", "minimum": 1, "maximum": 65535}, "SSH port.", 22),
    Key("key_file", _PATH, "Private key (relative to the config file, or ~/...)."),
    Key("known_hosts", _PATH, "known_hosts file the host key is checked against; an unknown key is refused.",
        "~/.ssh/known_hosts"),
)

SECTIONS = (
    Section("top", "Top level", TOP),
    Section("ssh", "ssh:", _CONNECTION + (
        Key("jump", _JUMP, "A bastion every ssh host is reached through: \"[user@]host[:port]\" or a mapping."),)),
    Section("host", "hosts.NAME", (
        Key("address", _STR, "Host name or IP address to connect to."),
        *_CONNECTION,
        Key("transport", {"enum": ["ssh", "local"]}, "ssh, or local (this machine, no SSH).", "ssh"),
        Key("roles", _STRS, "Roles of this host (each listed under roles:).", []),
        Key("jump", _JUMP, "A bastion for this host; null turns the ssh: default off."),
    ) + SETTINGS),
    Section("role", "roles.NAME", SETTINGS),
    Section("healthcheck", "healthcheck:", (
        Key("url", _STR, "URL fetched on the host (or use command)."),
        Key("command", _STR, "Shell command run on the host; its output is matched (or use url)."),
        Key("expect", {"type": ["string", "integer"]}, "Text the answer must contain (`{build_id}` becomes the "
            "build just switched to), or an HTTP status code."),
        Key("timeout", _num(0, 3600), "Seconds until the build counts as unhealthy.", 30),
        Key("interval", _num(0, 60), "Seconds between attempts.", 0.5),
    )),
    Section("hook", "a hook", (
        Key("command", _STR, "Shell command."),
        Key("timeout", _num(0, 86400), "Seconds it may take.", 300),
        Key("once", _BOOL, "before_activate only: run on one host (migrations).", False),
        Key("host", _STR, "With once: the host that runs it.", None),
    )),
    Section("hooks", "hooks:", tuple(Key(name, _HOOK, doc) for name, doc in (
        ("before_activate", "On every host once it has the new build, before any switches (e.g. migrations)."),
        ("after_activate", "On each host after its switch and restart, before the health check."),
        ("after_rollback", "On each host after a rollback's switch and restart."),
        ("local_before", "Here, before anything changes (top level only)."),
        ("local_after", "Here, after the operation succeeded (top level only)."),
        ("local_failed", "Here, after the operation failed (top level only)."),
    ))),
    Section("shared", "shared:", (
        Key("files", _STRS, "Files under ROOT/shared/ linked into every build at the same path.", []),
        Key("dirs", _STRS, "Folders under ROOT/shared/ linked into every build at the same path.", []),
    )),
    Section("rollout", "rollout:", (
        Key("canary", {"oneOf": [{"type": "integer", "minimum": 0}, _STRS]}, "Hosts switched first: a count or "
            "a list of host names.", 0),
        Key("batch", {"oneOf": [{"type": "null"}, {"type": "integer", "minimum": 1},
                                {"type": "string", "pattern": "^[0-9]{1,3}%$"}]},
            "Hosts per wave after the canary: a number or a percentage like \"25%\"; null: all the rest.", None),
        Key("pause", _num(0, 3600, exclusive_low=False), "Seconds between waves.", 0),
    )),
    Section("env", "env:", (
        Key("file", _PATH, "Where the build sees the file (linked to ROOT/envs/<digest>, kept with the build).",
            ".env"),
        Key("clear", {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
            "Values written as they are (not secret: `config` shows them)."),
        Key("secret", _STRS, "Names whose values come from this machine's environment (CI secrets) or from "
            "secrets_command; a missing one refuses the operation. Values are never shown or recorded.", []),
        Key("secrets_command", _STR, "A command run here once per operation, printing KEY=VALUE lines "
            "(`op inject`, `vault`, `sops -d`, ...); its output is never shown."),
    )),
    Section("jump", "jump:", (Key("address", _STR, "The bastion's address."),) + _CONNECTION),
)


def section(place: str) -> Section:
    """The section for ``place`` (``top``, ``ssh``, ``host``...); KeyError when there is none."""
    for candidate in SECTIONS:
        if candidate.place == place:
            return candidate
    raise KeyError(place)


def _object(keys: tuple[Key, ...], required: tuple[str, ...] = ()) -> dict:
    properties = {}
    for key in keys:
        prop = dict(key.schema)
        prop["description"] = key.doc
        if key.default is not None:
            prop["default"] = key.default
        properties[key.name] = prop
    doc: dict = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        doc["required"] = list(required)
    return doc


def json_schema() -> dict:
    """The JSON Schema (draft 2020-12) of ``hosts.yml``, for editors (yaml-language-server) and CI linters."""
    defs = {s.place: _object(s.keys) for s in SECTIONS if s.place != "top"}
    defs["hook"] = _object(section("hook").keys, required=("command",))
    # Nothing is required here: a stage's file (hosts.production.yml) holds only what differs.
    root = _object(section("top").keys)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            "title": "releasetui hosts.yml", **root, "$defs": defs}


def schema_text() -> str:
    """:func:`json_schema` as the text ``releasetui schema`` prints."""
    return json.dumps(json_schema(), indent=2) + "\n"


def _type_text(schema: dict) -> str:
    if "$ref" in schema:
        return "mapping"
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])  # escaped: the value sits in a table cell
    if "oneOf" in schema:
        return " or ".join(dict.fromkeys(_type_text(s) for s in schema["oneOf"]))
    kind = schema.get("type")
    if isinstance(kind, list):
        return " or ".join(kind)
    return {"array": "list", "object": "mapping"}.get(kind, kind or "any")


def _default_text(default: Any) -> str:
    if default is None:
        return ""
    return f"`{json.dumps(default)}`"


def reference_markdown() -> str:
    """The configuration reference page (``docs/reference/configuration.md``), generated from :data:`SECTIONS`."""
    lines = ["# Configuration reference", "",
             "Generated from `releasetui/schema.py` by `python scripts/gen_docs.py`; a test fails when it drifts.",
             f"Keys marked *{PER_HOST}* may also be set under `roles.NAME` and `hosts.NAME`: a host uses its own",
             "value, else its roles', else the top level's.", ""]
    for sect in SECTIONS:
        lines += [f"## `{sect.title}`" if sect.place != "top" else "## Top level", "",
                  "| key | type | default | what it does |", "|---|---|---|---|"]
        for key in sect.keys:
            doc = key.doc + (f" *({key.scope})*" if key.scope and sect.place == "top" else "")
            lines.append(f"| `{key.name}` | {_type_text(key.schema)} | {_default_text(key.default)} | "
                         f"{doc.replace('|', '&#124;')} |")
        lines.append("")
    return "\n".join(lines)


def keys_of(place: str) -> tuple[str, ...]:
    """The key names documented for ``place``."""
    return tuple(k.name for k in section(place).keys)


def find_key(place: str, name: str) -> Optional[Key]:
    """The documented key ``name`` at ``place``, or None."""
    return next((k for k in section(place).keys if k.name == name), None)
