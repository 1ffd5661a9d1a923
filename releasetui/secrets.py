"""The app's environment file: ``env:`` in hosts.yml, resolved here once per operation, written on each host.

``clear:`` values are written as they are; ``secret:`` names take their values from this machine's environment
(CI secrets) or from ``secrets_command:`` (any command printing ``KEY=VALUE`` lines: ``op inject``, ``vault``,
``sops -d``, ``cat`` of a file).  A value never leaves this module except inside :attr:`EnvFile.content`, which
only the shipping stream carries: no message, ``repr`` or record here holds one.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Optional

NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
COMMAND_TIMEOUT = 120.0


class SecretError(Exception):
    """A secret cannot be had (missing, or the command failed): one line naming the key, never a value."""


@dataclass(frozen=True)
class EnvSpec:
    """What ``env:`` asks for: the file's path in each build, clear values, secret names, the secrets command."""

    file: str = ".env"
    clear: tuple[tuple[str, str], ...] = ()
    secret: tuple[str, ...] = ()
    secrets_command: Optional[str] = None

    @property
    def names(self) -> tuple[str, ...]:
        """Every name the file will hold, in order."""
        return tuple(name for name, _ in self.clear) + self.secret


@dataclass(frozen=True)
class EnvFile:
    """The file's text (secret values in it: never print it), its digest and the names it holds."""

    content: str = field(repr=False)
    digest: str = ""
    names: tuple[str, ...] = ()
    path: str = ".env"

    def __repr__(self) -> str:
        return f"EnvFile(digest={self.digest!r}, names={self.names!r})"


def quote_value(value: str) -> str:
    """``value`` as dotenv readers (python-dotenv, the shell, simple ``KEY=value`` parsers) read it back."""
    if "'" not in value and "\n" not in value and "\r" not in value:
        return f"'{value}'"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def render(values: Mapping[str, str]) -> str:
    """The file's text: one ``KEY='value'`` line each, in the order given."""
    return "".join(f"{name}={quote_value(value)}\n" for name, value in values.items())


def digest_of(content: str) -> str:
    """What keys the file on a host (``envs/<digest>``) and in a build's metadata."""
    import hashlib  # only a config with env: digests (the CLI's start stays lean)
    return hashlib.sha256(content.encode("utf-8")).hexdigest()[:16]


def parse_pairs(text: str, what: str) -> dict[str, str]:
    """``KEY=VALUE`` lines (blank lines, ``#`` comments and a leading ``export`` allowed; quotes around a value
    removed).  A bad line is named by its number only: it may hold a secret."""
    values = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("export "):
            stripped = stripped[7:].lstrip()
        name, sep, value = stripped.partition("=")
        name = name.strip()
        if not sep or not NAME_PATTERN.fullmatch(name):
            raise SecretError(f"{what}: line {number} is not KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name] = value
    return values


def run_secrets_command(command: str, cwd: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """Run ``secrets_command`` once (``sh -c``, stdin closed, bounded) and read its ``KEY=VALUE`` lines.

    Its output and its stderr are never shown: either may hold secrets.  A failure says how it ended.
    """
    import subprocess  # only a config with a secrets_command runs one (the CLI's start stays lean)
    try:
        proc = subprocess.run(["sh", "-c", command], cwd=cwd, env=dict(environ), stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=COMMAND_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise SecretError(f"env.secrets_command did not finish within {COMMAND_TIMEOUT:.0f}s") from None
    except OSError as exc:
        raise SecretError(f"env.secrets_command could not start: {exc.strerror or exc}") from None
    if proc.returncode != 0:
        raise SecretError(f"env.secrets_command failed with exit {proc.returncode} (its output is not shown: it may "
                          "hold secrets; run it yourself to see why)")
    try:
        text = proc.stdout.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretError("env.secrets_command printed something that is not UTF-8 text") from None
    return parse_pairs(text, "env.secrets_command's output")


def resolve(spec: Optional[EnvSpec], cwd: Path, environ: Optional[Mapping[str, str]] = None,
            run: Callable[[str, Path, Mapping[str, str]], dict] = run_secrets_command) -> Optional[EnvFile]:
    """The file to write, or None when there is no ``env:``; :class:`SecretError` when a secret cannot be had."""
    if spec is None:
        return None
    env = os.environ if environ is None else environ
    values = dict(spec.clear)
    from_command = run(spec.secrets_command, cwd, env) if spec.secrets_command and spec.secret else {}
    missing = []
    for name in spec.secret:
        if name in from_command:
            values[name] = from_command[name]
        elif name in env:
            values[name] = env[name]
        else:
            missing.append(name)
    if missing:
        where = "this machine's environment" + (" or env.secrets_command's output" if spec.secrets_command else "")
        raise SecretError(f"env: secret {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set in {where}")
    for name, value in values.items():
        if "\0" in value:
            raise SecretError(f"env: {name}'s value holds a NUL byte")
    content = render(values)
    return EnvFile(content, digest_of(content), spec.names, spec.file)
