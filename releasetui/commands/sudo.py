"""sudo in a host's restart command: made non-interactive (a password prompt fails at once, never hangs an
operation), and the sudoers line that would let it run without one (what an operation suggests when it fails)."""

from __future__ import annotations

import re
import shlex
from typing import Optional

def sudo_noninteractive(command: str) -> str:
    """``sudo ...`` becomes ``sudo -n ...``: a password prompt must fail at once, never hang an operation."""
    stripped = command.lstrip()
    if stripped.startswith("sudo ") and not stripped.startswith(("sudo -n ", "sudo --non-interactive ")):
        return command[: len(command) - len(stripped)] + "sudo -n " + stripped[len("sudo "):]
    return command


# sudo's options that take a value (``-u root``); any other option stands alone.
_SUDO_VALUE_OPTIONS = {"-u", "--user", "-g", "--group", "-C", "--close-from", "-D", "--chdir", "-h", "--host",
                       "-p", "--prompt", "-R", "--chroot", "-T", "--command-timeout", "-U", "--other-user",
                       "-r", "--role", "-t", "--type"}


def sudo_command(command: Optional[str]) -> Optional[tuple[str, str, list[str]]]:
    """``(run as, program, arguments)`` of the command a ``sudo ...`` restart runs, for the sudoers line; else None.

    Only the first command of the line counts (up to ``;``, ``&&``, ``||``, ``|``).
    """
    if not command or not command.lstrip().startswith("sudo "):
        return None
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        words = []
        for word in lexer:
            if word and set(word) <= set("();<>|&"):
                break
            words.append(word)
    except ValueError:
        return None
    runas, i = "root", 1
    while i < len(words) and words[i].startswith("-") and words[i] != "--":
        option = words[i]
        if option in _SUDO_VALUE_OPTIONS and i + 1 < len(words):
            if option in ("-u", "--user"):
                runas = words[i + 1]
            i += 2
            continue
        if option.startswith("-u") and len(option) > 2:
            runas = option[2:]
        elif option.startswith("--user="):
            runas = option[len("--user="):]
        i += 1
    if i < len(words) and words[i] == "--":
        i += 1
    if i >= len(words):
        return None
    return runas, words[i], words[i + 1:]


def sudoers_line(user: str, program_path: str, restart: Optional[str]) -> str:
    """The sudoers line that lets ``user`` run the restart without a password (exactly that command)."""
    parts = sudo_command(restart)
    if parts is None:
        return f"{user} ALL=(root) NOPASSWD: <the restart command, with its full path>"
    runas, program, args = parts
    # sudoers gives ',', ':', '=' and '\\' a meaning in a command's arguments: escape them.
    escaped = [re.sub(r"([,:=\\])", r"\\\1", a) for a in args]
    return " ".join([f"{user} ALL=({runas}) NOPASSWD: {program_path or program}", *escaped]).rstrip()


# Once a host has switched, its script must reach its end whatever becomes of the connection: a lost connection
# closes the script's stdout, and the next line it printed would kill it (SIGPIPE) with the new build live and
# the lock held.  Catching SIGPIPE (a no-op), it reads no verdict (stdin is closed too) and switches back by
# itself.  Caught, not ignored ('' would be): an ignored signal stays ignored in every child, so the restart
# command and any daemon it starts would inherit it; a caught one is reset to its default on exec.


__all__ = ["sudo_command", "sudo_noninteractive", "sudoers_line"]
