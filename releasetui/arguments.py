"""The command line's grammar: every ACTION, its options and how a usage error is said (one line, exit 2)."""

from __future__ import annotations

import argparse

from . import __version__
from .models import ExitCode

ACTIONS = ("deploy", "rollback", "builds", "prune", "logs", "lock", "unlock", "pin", "unpin", "unmark", "history",
           "diff", "doctor", "exec")
# Operations that change hosts: on a terminal they show the live per-host table.
LIVE_ACTIONS = ("deploy", "rollback", "prune", "pin", "unpin", "unmark", "lock", "unlock")


class _Parser(argparse.ArgumentParser):
    """argparse that exits with ExitCode.USAGE and one line on stderr (no usage block: ``--help`` has it)."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(int(ExitCode.USAGE), usage_line(message, self.prog))


def usage_line(message: str, prog: str = "releasetui") -> str:
    """``releasetui: <error> (see releasetui deploy --help)``: the one line a usage error is."""
    text = " ".join(message.split())  # argparse's messages may wrap; a usage error stays one line
    return f"releasetui: {text} (see {prog} --help)\n"


def _batch(text: str):
    """``--batch N`` or ``--batch 25%``."""
    if text.endswith("%"):
        number = text[:-1]
        if number.isdigit() and 1 <= int(number) <= 100:
            return text
    elif text.isdigit() and int(text) >= 1:
        return int(text)
    raise argparse.ArgumentTypeError(f"expected a number of hosts (>= 1) or a percentage like 25%, got {text!r}")


def _canary(text: str):
    """``--canary N`` or ``--canary web1,web2``."""
    if text.isdigit():
        return int(text)
    return tuple(name for name in text.split(",") if name)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 <= value <= 86400:
        raise argparse.ArgumentTypeError("must be between 0 and 86400 seconds")
    return value


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def _count(text: str) -> int:
    """A whole number >= 0 (``logs -n 0 -f``: only new lines); ``-5`` is refused, not handed to ``tail``."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every form of the command."""
    parser = _top_parser()
    sub = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    _operation_parsers(sub)
    _maintenance_parsers(sub)
    _tool_parsers(sub)
    return parser


def _top_parser() -> argparse.ArgumentParser:
    """``releasetui`` itself: the options before ACTION."""
    parser = _Parser(prog="releasetui", description="Ship Python web apps over SSH, Capistrano-style, "
                     "and roll back to any earlier build.",
                     epilog="Exit codes: 0 done, 1 failed or refused, 2 usage/config error, 3 host unreachable or "
                            "key refused, 4 locked by another operation, 130 interrupted.")
    parser.add_argument("--config", metavar="PATH", help="hosts.yml to use (default: $RELEASETUI_CONFIG, then ./hosts.yml)")
    parser.add_argument("--host", dest="top_hosts", action="append", metavar="NAME", default=[],
                        help="only this host, or the hosts a glob matches: 'web1*' (repeatable)")
    parser.add_argument("--role", dest="top_roles", action="append", metavar="NAME", default=[],
                        help="only the hosts of this role, or of the roles a glob matches (repeatable)")
    parser.add_argument("--stage", metavar="NAME", help="merge hosts.NAME.yml over the config (default: "
                        "$RELEASETUI_STAGE)")
    parser.add_argument("--headless", action="store_true", help="run ACTION without the TUI (for CI)")
    parser.add_argument("--version", action="version", version=f"releasetui {__version__}")
    return parser


def _common(p: argparse.ArgumentParser, dry_run: bool = True, json_: bool = True, locks: bool = False) -> None:
    """The options every ACTION takes (also accepted after the action, where people tend to type them)."""
    p.add_argument("--config", dest="sub_config", metavar="PATH", help=argparse.SUPPRESS)
    p.add_argument("--stage", dest="sub_stage", metavar="NAME", help=argparse.SUPPRESS)
    p.add_argument("--host", dest="hosts", action="append", metavar="NAME", default=[],
                   help="only this host, or the hosts a glob matches: 'web1*' (repeatable)")
    p.add_argument("--role", dest="roles", action="append", metavar="NAME", default=[],
                   help="only the hosts of this role, or of the roles a glob matches (repeatable)")
    p.add_argument("--parallel", type=_positive, metavar="N", help="hosts worked on at once (default: parallel)")
    if dry_run:
        p.add_argument("--dry-run", action="store_true",
                       help="read the hosts, print every remote command; change nothing")
    if json_:
        p.add_argument("--json", action="store_true", help="JSON lines on stdout")
    if locks:
        p.add_argument("--lock-wait", type=_seconds, metavar="SECONDS",
                       help="wait up to this long for another operation's lock (default: lock_wait)")
        p.add_argument("--message", metavar="TEXT", help="why: kept in the lock and in history")
        p.add_argument("--yes", action="store_true", help="go ahead on a stage with confirm: true (no question)")

def _rollout(p: argparse.ArgumentParser) -> None:
    """Waves and health: the options of the operations that switch builds."""
    p.add_argument("--canary", type=_canary, metavar="N|HOSTS", help="switch these hosts first (a count or names)")
    p.add_argument("--batch", type=_batch, metavar="N|P%", help="then this many hosts per wave")
    p.add_argument("--pause", type=_seconds, metavar="SECONDS", help="between waves")
    p.add_argument("--no-health", dest="health", action="store_false", help="do not poll the health check")
    p.add_argument("--skip-hooks", action="store_true", help="run no hook at all (emergencies: migrations and "
                   "notifications are skipped too)")


def _operation_parsers(sub) -> None:
    """deploy, rollback, builds, diff."""
    p = sub.add_parser("deploy", help="ship the source as a new build and make it current on every host")
    p.add_argument("--source", metavar="DIR", help="directory to ship (default: 'source' from the config)")
    p.add_argument("--ref", metavar="REF", help="ship exactly this git commit, tag or branch of the source's "
                   "repository (not the working tree)")
    _rollout(p)
    _common(p, locks=True)
    p = sub.add_parser("rollback", help="make an earlier build current on every host (default: the previous good one)")
    p.add_argument("build_id", nargs="?", metavar="BUILD_ID")
    _rollout(p)
    _common(p, locks=True)
    p = sub.add_parser("builds", help="list each host's builds")
    _common(p, dry_run=False)
    p = sub.add_parser("diff", help="what a deploy or rollback would change: files, requirements, commits")
    p.add_argument("from_id", nargs="?", metavar="FROM", help="a build id or 'current' (default: current)")
    p.add_argument("to_id", nargs="?", metavar="TO", help="a build id or 'current' (default: what a deploy would "
                   "ship now)")
    p.add_argument("--source", metavar="DIR", help="the source a deploy would ship (default: 'source')")
    p.add_argument("--ref", metavar="REF", help="compare with exactly this git commit, tag or branch")
    p.add_argument("-p", "--patch", action="store_true", help="show each changed file's unified diff (capped)")
    _common(p, dry_run=False)


def _maintenance_parsers(sub) -> None:
    """prune, pin, unpin, unmark, logs, lock, unlock, history, exec, doctor."""
    p = sub.add_parser("prune", help="remove failed, incomplete and old builds and unused venvs")
    p.add_argument("--keep", type=int, metavar="N", help="good builds to keep (default: keep_builds, at least 2)")
    _common(p, locks=True)
    p = sub.add_parser("pin", help="keep a build forever (prune never removes it)")
    p.add_argument("build_id", metavar="BUILD_ID")
    _common(p, locks=True)
    p = sub.add_parser("unpin", help="let prune remove a pinned build again")
    p.add_argument("build_id", metavar="BUILD_ID")
    _common(p, locks=True)
    p = sub.add_parser("unmark", help="clear a build's rolled-away and failed marks (a default rollback target again)")
    p.add_argument("build_id", metavar="BUILD_ID")
    _common(p, locks=True)
    p = sub.add_parser("logs", help="tail the configured log files")
    p.add_argument("-n", dest="lines", type=_count, default=50, metavar="N", help="lines per file (default 50)")
    p.add_argument("-f", dest="follow", action="store_true", help="follow until interrupted")
    _common(p, dry_run=False, json_=True)
    p = sub.add_parser("lock", help="hold the fleet's lock by hand (every other operation exits 4) until unlock")
    _common(p, locks=True)
    p.add_argument("-m", dest="message", metavar="TEXT", help="why (required): shown to everyone refused")
    p = sub.add_parser("unlock", help="remove a deploy lock: a manual one, or one left by a killed operation")
    _common(p)
    p.add_argument("--yes", action="store_true", help="go ahead on a stage with confirm: true (no question)")
    p = sub.add_parser("history", help="every operation on the hosts, newest last")
    p.add_argument("-n", dest="lines", type=_positive, default=50, metavar="N", help="operations shown (default 50)")
    _common(p, dry_run=False)
    p = sub.add_parser("exec", help="run a one-off command in the live build of each host (its venv on PATH)")
    p.add_argument("--once", action="store_true", help="on the first targeted host only")
    p.add_argument("-i", dest="interactive", action="store_true", help="interactive, with this terminal (one host)")
    p.add_argument("--timeout", type=_seconds, metavar="SECONDS", help="per host (default: script_timeout)")
    _common(p)
    p.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND", help="the command and its arguments")
    p = sub.add_parser("doctor", help="check every host and this machine for what a deploy needs")
    _common(p, dry_run=False)


def _tool_parsers(sub) -> None:
    """demo, init, config, schema, completion: what is not an operation on the hosts."""
    p = sub.add_parser("demo", help="make a sandbox with a sample app and open the TUI on it")
    p.add_argument("--headless", dest="demo_headless", action="store_true",
                   help="only prepare the sandbox and print its config path")
    p.add_argument("--dir", dest="demo_dir", metavar="DIR", help="sandbox directory (default: a cache dir)")
    p.add_argument("--fresh", action="store_true", help="recreate the sandbox from scratch")
    from .init.command import add_init_parser
    add_init_parser(sub)
    p = sub.add_parser("config", help="print the configuration as operations use it (stage merged, hosts resolved)")
    p.add_argument("--json", action="store_true", help="one JSON document")
    p.add_argument("--config", dest="sub_config", metavar="PATH", help=argparse.SUPPRESS)
    p.add_argument("--stage", dest="sub_stage", metavar="NAME", help=argparse.SUPPRESS)
    p = sub.add_parser("schema", help="print the JSON Schema of hosts.yml (for editors and linters)")
    p = sub.add_parser("completion", help="print a shell completion script (bash, zsh or fish)")
    p.add_argument("shell", nargs="?", choices=("bash", "zsh", "fish"), metavar="SHELL", help="bash, zsh or fish")
    p.add_argument("--names", choices=("hosts", "roles"), help="print the config's host or role names, one a line")
