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

One job per module: :mod:`.errors` (how a mistake is said), :mod:`.model` (the validated configuration),
:mod:`.yaml_reader` (the bounded YAML reader), :mod:`.validation` (checking nodes, the keys of each place),
:mod:`.building` (reading a file and building the model).  Import from ``releasetui.config``.
"""

from __future__ import annotations

from .errors import (ConfigError, SHOWN_CHARS, clip, listing, show, suggest, suggest_word)
from .model import (CONFIG_ENV_VAR, Config, DEFAULT_CONFIG_NAME, HOOK_NAMES, HOOK_NAMES_LOCAL, HOOK_NAMES_REMOTE,
                    HOST_NAME_PATTERN, HealthCheck, Hook, HostConfig, JumpHost, MAX_ALIASES, MAX_CONFIG_BYTES,
                    MAX_DEPTH, MAX_NODES, MIN_KEEP_BUILDS, PROJECT_NAME_PATTERN, ROLE_NAME_PATTERN, Rollout, Shared,
                    TRANSPORTS, USER_NAME_PATTERN, WHEELS_MODES, find_config)
from .yaml_reader import (compose_yaml)
from .validation import (ENV_KEYS, HEALTH_KEYS, HOOK_KEYS, HOST_KEYS, JUMP_KEYS, ROLE_KEYS, ROLLOUT_KEYS, Reader,
                         SETTING_KEYS, SHARED_KEYS, SSH_KEYS, TOP_KEYS, _check_address)
from .building import (load_config, load_config_text, read_config_text)

__all__ = [
    "CONFIG_ENV_VAR", "Config", "ConfigError", "DEFAULT_CONFIG_NAME", "ENV_KEYS", "HEALTH_KEYS", "HOOK_KEYS",
    "HOOK_NAMES", "HOOK_NAMES_LOCAL", "HOOK_NAMES_REMOTE", "HOST_KEYS", "HOST_NAME_PATTERN", "HealthCheck",
    "Hook", "HostConfig", "JUMP_KEYS", "JumpHost", "MAX_ALIASES", "MAX_CONFIG_BYTES", "MAX_DEPTH", "MAX_NODES",
    "MIN_KEEP_BUILDS", "PROJECT_NAME_PATTERN", "ROLE_KEYS", "ROLE_NAME_PATTERN", "ROLLOUT_KEYS", "Reader",
    "Rollout", "SETTING_KEYS", "SHARED_KEYS", "SHOWN_CHARS", "SSH_KEYS", "Shared", "TOP_KEYS", "TRANSPORTS",
    "USER_NAME_PATTERN", "WHEELS_MODES", "_check_address", "clip", "compose_yaml", "find_config", "listing", "load_config",
    "load_config_text", "read_config_text", "show", "suggest", "suggest_word"
]
