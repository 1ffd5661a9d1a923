"""Text generated from the code itself, so it cannot drift: the command reference (from the argparse parser),
the configuration reference (from :mod:`releasetui.schema`) and shell completion scripts.

``python scripts/gen_docs.py`` writes the references into ``docs/reference/``;
a test regenerates them and compares.  Nothing here is on a headless run's
start-up path: the CLI imports it only for ``completion``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Iterator

from . import schema
from .models import ExitCode

EXIT_MEANINGS = {
    ExitCode.OK: "done",
    ExitCode.FAILED: "failed or refused (the output says why, per host)",
    ExitCode.USAGE: "usage or configuration error (one line names the file, line and key)",
    ExitCode.UNREACHABLE: "a host unreachable, or its host key refused",
    ExitCode.LOCKED: "locked by another operation (`--lock-wait` waits instead)",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C, SIGTERM), whatever the phase",
}


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parser's subcommands by name, in the order they were added."""
    for action in parser._actions:  # argparse offers no public way to list them
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices.items())
    return {}


def _help_of(parser: argparse.ArgumentParser, name: str) -> str:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                if choice.dest == name:
                    return choice.help or ""
    return ""


def _options(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, (argparse._HelpAction,
                                                                   argparse._SubParsersAction)):
            continue
        yield action


def _usage_name(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`"
    names = ", ".join(action.option_strings)
    takes_value = action.nargs != 0 and not isinstance(action, (argparse._StoreTrueAction,
                                                                argparse._StoreFalseAction,
                                                                argparse._VersionAction))
    return f"`{names} {action.metavar or action.dest.upper()}`" if takes_value else f"`{names}`"


def commands_markdown(parser: argparse.ArgumentParser) -> str:
    """The command reference page: every subcommand, its arguments and options, and the exit codes."""
    lines = ["# Command reference", "",
             "Generated from the argument parser by `python scripts/gen_docs.py`; a test fails when it drifts.",
             "Every action runs headless as `releasetui --headless ACTION` (CI); without `--headless` the TUI opens.",
             "", "## Global options", ""]
    lines += [f"- {_usage_name(a)}: {a.help}" for a in _options(parser) if a.help]
    lines += ["", "## Exit codes", "", "| code | meaning |", "|---|---|"]
    lines += [f"| {int(code)} | {meaning} |" for code, meaning in EXIT_MEANINGS.items()]
    for name, sub in subcommands(parser).items():
        lines += ["", f"## `{name}`", "", _help_of(parser, name).rstrip(".") + ".", ""]
        for action in _options(sub):
            lines.append(f"- {_usage_name(action)}: {action.help or ''}".rstrip(": "))
    return "\n".join(lines) + "\n"


def generated_docs(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Relative path under ``docs/`` -> the text that belongs there."""
    return {"reference/commands.md": commands_markdown(parser),
            "reference/configuration.md": schema.reference_markdown() + "\n"}


def write_docs(parser: argparse.ArgumentParser, docs: Path) -> list[Path]:
    """Write every generated page under ``docs``; returns the files written."""
    written = []
    for relative, text in generated_docs(parser).items():
        path = docs / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written


# --- shell completion --------------------------------------------------------------------------

def _words(parser: argparse.ArgumentParser) -> tuple[list[str], dict[str, list[str]]]:
    subs = subcommands(parser)
    top = [o for a in _options(parser) for o in a.option_strings]
    return list(subs) + top, {name: [o for a in _options(sub) for o in a.option_strings]
                              for name, sub in subs.items()}


_NAME_OPTIONS = {"--host": "hosts", "--role": "roles"}


def completion_script(parser: argparse.ArgumentParser, shell: str) -> str:
    """A completion script for ``shell`` (bash, zsh or fish): subcommands, their options, host and role names.

    Host and role names come from ``releasetui completion --names hosts|roles``,
    which reads the config the command line would (no connection is made).
    """
    top, per_command = _words(parser)
    if shell in ("bash", "zsh"):
        cases = "\n".join(f"    {name}) opts={' '.join(opts)!r} ;;" for name, opts in per_command.items())
        body = f"""_releasetui() {{
  local cur prev cmd opts i
  cur="${{COMP_WORDS[COMP_CWORD]}}"; prev="${{COMP_WORDS[COMP_CWORD-1]}}"
  case "$prev" in
    --host) COMPREPLY=($(compgen -W "$(releasetui completion --names hosts 2>/dev/null)" -- "$cur")); return ;;
    --role) COMPREPLY=($(compgen -W "$(releasetui completion --names roles 2>/dev/null)" -- "$cur")); return ;;
    --config|--source|--dir|--output|-o|--from-ansible) COMPREPLY=($(compgen -f -- "$cur")); return ;;
  esac
  cmd=''
  for ((i=1; i<COMP_CWORD; i++)); do
    case "${{COMP_WORDS[i]}}" in -*) ;; *) cmd="${{COMP_WORDS[i]}}"; break ;; esac
  done
  case "$cmd" in
{cases}
    *) opts={' '.join(top)!r} ;;
  esac
  COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}}
complete -F _releasetui releasetui
"""
        if shell == "zsh":
            return "autoload -U +X bashcompinit && bashcompinit\n" + body
        return body
    if shell == "fish":
        subs = " ".join(per_command)
        lines = ["complete -c releasetui -f",
                 f"complete -c releasetui -n 'not __fish_seen_subcommand_from {subs}' -a '{subs}'"]
        for option in (o for o in top if o.startswith("--")):
            lines.append(f"complete -c releasetui -n 'not __fish_seen_subcommand_from {subs}' -l {option[2:]}")
        for name, opts in per_command.items():
            for option in (o for o in opts if o.startswith("--")):
                names = _NAME_OPTIONS.get(option)
                extra = f" -x -a '(releasetui completion --names {names} 2>/dev/null)'" if names else ""
                lines.append(f"complete -c releasetui -n '__fish_seen_subcommand_from {name}' -l {option[2:]}{extra}")
        return "\n".join(lines) + "\n"
    raise ValueError(f"no completion for {shell!r} (bash, zsh or fish)")
