"""Command line: ``releasetui`` opens the TUI; ``releasetui --headless ACTION`` is for CI and scripts.

Headless output contract: stdout is data (one line per finished step per
host, or JSON lines with ``--json``); diagnostics go to stderr; the exit code
is an :class:`~releasetui.models.ExitCode`.  This module never imports
Textual: the TUI is imported only when it is opened.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import Optional

from . import __version__, clock
from .config import Config, ConfigError, find_config, load_config
from .models import ExitCode, InvalidBuildId
from .output import HumanPrinter, JsonPrinter, SafeStream, live_table_wanted, print_builds, print_history

ACTIONS = ("deploy", "rollback", "builds", "prune", "logs", "unlock", "pin", "unpin", "history", "diff")
# Operations that change hosts: on a terminal they show the live per-host table.
LIVE_ACTIONS = ("deploy", "rollback", "prune", "pin", "unpin", "unlock")


class _Parser(argparse.ArgumentParser):
    """argparse that exits with ExitCode.USAGE and one line on stderr."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.print_usage(sys.stderr)
        self.exit(int(ExitCode.USAGE), f"{self.prog}: error: {message}\n")


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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every form of the command."""
    parser = _Parser(prog="releasetui", description="Ship Python web apps over SSH, Capistrano-style, "
                     "and roll back to any earlier build.",
                     epilog="Exit codes: 0 done, 1 failed or refused, 2 usage/config error, 3 host unreachable or "
                            "key refused, 4 locked by another operation, 130 interrupted.")
    parser.add_argument("--config", metavar="PATH", help="hosts.yml to use (default: $RELEASETUI_CONFIG, then ./hosts.yml)")
    parser.add_argument("--host", dest="top_hosts", action="append", metavar="NAME", default=[],
                        help="only this host (repeatable)")
    parser.add_argument("--role", dest="top_roles", action="append", metavar="NAME", default=[],
                        help="only the hosts of this role (repeatable)")
    parser.add_argument("--headless", action="store_true", help="run ACTION without the TUI (for CI)")
    parser.add_argument("--version", action="version", version=f"releasetui {__version__}")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)

    def common(p: argparse.ArgumentParser, dry_run: bool = True, json_: bool = True, locks: bool = False) -> None:
        # Also accepted after the action, where people tend to type it.
        p.add_argument("--config", dest="sub_config", metavar="PATH", help=argparse.SUPPRESS)
        p.add_argument("--host", dest="hosts", action="append", metavar="NAME", default=[], help="only this host (repeatable)")
        p.add_argument("--role", dest="roles", action="append", metavar="NAME", default=[],
                       help="only the hosts of this role (repeatable)")
        p.add_argument("--parallel", type=_positive, metavar="N", help="hosts worked on at once (default: parallel)")
        if dry_run:
            p.add_argument("--dry-run", action="store_true", help="read the hosts, print every remote command; change nothing")
        if json_:
            p.add_argument("--json", action="store_true", help="JSON lines on stdout")
        if locks:
            p.add_argument("--lock-wait", type=_seconds, metavar="SECONDS",
                           help="wait up to this long for another operation's lock (default: lock_wait)")
            p.add_argument("--message", metavar="TEXT", help="why: kept in the lock and in history")

    def rollout(p: argparse.ArgumentParser) -> None:
        p.add_argument("--canary", type=_canary, metavar="N|HOSTS", help="switch these hosts first (a count or names)")
        p.add_argument("--batch", type=_batch, metavar="N|P%", help="then this many hosts per wave")
        p.add_argument("--pause", type=_seconds, metavar="SECONDS", help="between waves")
        p.add_argument("--no-health", dest="health", action="store_false", help="do not poll the health check")

    p = sub.add_parser("deploy", help="ship the source as a new build and make it current on every host")
    p.add_argument("--source", metavar="DIR", help="directory to ship (default: 'source' from the config)")
    p.add_argument("--ref", metavar="REF", help="ship exactly this git commit, tag or branch of the source's "
                   "repository (not the working tree)")
    rollout(p)
    common(p, locks=True)
    p = sub.add_parser("rollback", help="make an earlier build current on every host (default: the previous good one)")
    p.add_argument("build_id", nargs="?", metavar="BUILD_ID")
    rollout(p)
    common(p, locks=True)
    p = sub.add_parser("builds", help="list each host's builds")
    common(p, dry_run=False)
    p = sub.add_parser("diff", help="what a deploy or rollback would change: files, requirements, commits")
    p.add_argument("from_id", nargs="?", metavar="FROM", help="a build id or 'current' (default: current)")
    p.add_argument("to_id", nargs="?", metavar="TO", help="a build id or 'current' (default: what a deploy would "
                   "ship now)")
    p.add_argument("--source", metavar="DIR", help="the source a deploy would ship (default: 'source')")
    p.add_argument("--ref", metavar="REF", help="compare with exactly this git commit, tag or branch")
    common(p, dry_run=False)
    p = sub.add_parser("prune", help="remove failed, incomplete and old builds and unused venvs")
    p.add_argument("--keep", type=int, metavar="N", help="good builds to keep (default: keep_builds, at least 2)")
    common(p, locks=True)
    p = sub.add_parser("pin", help="keep a build forever (prune never removes it)")
    p.add_argument("build_id", metavar="BUILD_ID")
    common(p, locks=True)
    p = sub.add_parser("unpin", help="let prune remove a pinned build again")
    p.add_argument("build_id", metavar="BUILD_ID")
    common(p, locks=True)
    p = sub.add_parser("logs", help="tail the configured log files")
    p.add_argument("-n", dest="lines", type=int, default=50, metavar="N", help="lines per file (default 50)")
    p.add_argument("-f", dest="follow", action="store_true", help="follow until interrupted")
    common(p, dry_run=False, json_=True)
    p = sub.add_parser("unlock", help="remove a deploy lock left by a killed operation")
    common(p)
    p = sub.add_parser("history", help="every operation on the hosts, newest last")
    p.add_argument("-n", dest="lines", type=_positive, default=50, metavar="N", help="operations shown (default 50)")
    common(p, dry_run=False)
    p = sub.add_parser("demo", help="make a sandbox with a sample app and open the TUI on it")
    p.add_argument("--headless", dest="demo_headless", action="store_true",
                   help="only prepare the sandbox and print its config path")
    p.add_argument("--dir", dest="demo_dir", metavar="DIR", help="sandbox directory (default: a cache dir)")
    p.add_argument("--fresh", action="store_true", help="recreate the sandbox from scratch")
    from .init import add_init_parser
    add_init_parser(sub)
    return parser


# --- main -----------------------------------------------------------------------

def _load(args: argparse.Namespace) -> Config:
    path, looked = find_config(getattr(args, "sub_config", None) or args.config)
    if path is None:
        raise ConfigError("hosts.yml", None, None,
                          "no config found (looked at: " + ", ".join(looked) + "); `releasetui init` writes a "
                          "commented starter, or try `releasetui demo`")
    return load_config(path)


def _show_builds(ops, hosts, as_json: bool, out: SafeStream) -> ExitCode:
    """``builds``: one round trip per host, a table or one JSON document; unreachable hosts exit 3."""
    from .models import HostUnreachable

    states = ops.states(hosts)
    if as_json:
        doc = {"hosts": [{"name": name, "error": str(state), "current": None, "locked_by": None, "builds": []}
                         if isinstance(state, Exception) else state.to_dict() for name, state in states.items()]}
        out.write(json.dumps(doc, indent=2) + "\n")
    else:
        print_builds(states, out)
    out.flush()
    # Said once: in the table, or in the document's "error" (stderr is for the command's own failures).
    failures = {name: state for name, state in states.items() if isinstance(state, Exception)}
    if any(isinstance(error, HostUnreachable) for error in failures.values()):
        return ExitCode.UNREACHABLE
    return ExitCode.FAILED if failures else ExitCode.OK


def _show_history(ops, hosts, args, out: SafeStream) -> ExitCode:
    entries, problems = ops.history(hosts)
    entries = entries[-args.lines:]
    if getattr(args, "json", False):
        out.write(json.dumps({"operations": [e.to_dict() for e in entries], "problems": problems}, indent=2) + "\n")
    else:
        print_history(entries, problems, out)
    out.flush()
    return ExitCode.UNREACHABLE if any(p.startswith("unreachable") for p in problems.values()) else ExitCode.OK


def _show_diff(ops, hosts, args, out: SafeStream) -> ExitCode:
    """``diff``: one document (``--json``) or the grouped text; one round trip per host."""
    report = ops.diff(hosts, args.from_id, args.to_id, source=Path(args.source) if args.source else None,
                      ref=args.ref)
    if getattr(args, "json", False):
        out.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        out.write("".join(line + "\n" for line in report.lines()))
    out.flush()
    return report.exit_code


def _install_interrupts(ops, printer) -> None:
    """Ctrl-C (and SIGTERM, as from a CI runner cancelling a job) presses the operation's interrupt instead of
    raising in the middle of the work: the operation cleans up, history records who stopped it, exit 130.

    What it says goes to stderr through the printer, so a live table is not torn by it.
    """
    def handler(signum, frame) -> None:
        by = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C"
        count = ops.interrupt(by)
        said = "interrupted" if by == "Ctrl-C" else f"interrupted by {by}"
        if count == 1:
            printer.notice(f"releasetui: {said}: stopping (before the switch: cleaning up; during it: this wave "
                           f"finishes). {by} again to stop waiting and switch every host back.")
        elif count == 2:
            printer.notice(f"releasetui: {said} again: switching every switched host back.")

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _printer(args: argparse.Namespace, out: SafeStream, hosts):
    """JSON lines; the live table on a terminal (Rich, imported only then); else plain lines."""
    if getattr(args, "json", False):
        return JsonPrinter(out)
    if args.action in LIVE_ACTIONS and not getattr(args, "dry_run", False) and live_table_wanted(out):
        from .live import LivePrinter
        return LivePrinter(args.action, [h.name for h in hosts], out=out, err=sys.stderr)
    return HumanPrinter(out, steps=sys.stderr if args.action == "logs" else None)


def run_headless(args: argparse.Namespace) -> int:
    """Run one headless action; return its exit code."""
    from .operations import OperationError, Operations, RolloutChoice

    config = _load(args)
    hosts = config.select((args.top_hosts or []) + (getattr(args, "hosts", None) or []),
                          (args.top_roles or []) + (getattr(args, "roles", None) or []))
    as_json = getattr(args, "json", False)
    out = SafeStream(sys.stdout)
    printer = _printer(args, out, hosts)
    # builds, history and diff print one document: their connection steps are not data.
    report = None if args.action in ("builds", "history", "diff") else printer.event
    ops = Operations(config, report=report, dry_run=getattr(args, "dry_run", False),
                     parallel=getattr(args, "parallel", None), lock_wait=getattr(args, "lock_wait", None),
                     message=getattr(args, "message", None))
    _install_interrupts(ops, printer)
    try:
        if args.action == "builds":
            return _show_builds(ops, hosts, as_json, out)
        if args.action == "history":
            return _show_history(ops, hosts, args, out)
        if args.action == "diff":
            return _show_diff(ops, hosts, args, out)
        rollout = None
        if args.action in ("deploy", "rollback"):
            rollout = RolloutChoice(args.canary, args.batch, args.pause or 0.0)
            if isinstance(args.canary, tuple):
                unknown = [n for n in args.canary if n not in {h.name for h in hosts}]
                if unknown:
                    raise ConfigError(config.path, None, "--canary", f"not a targeted host: {', '.join(unknown)}")
        if args.action == "deploy":
            result = ops.deploy(hosts, source=Path(args.source) if args.source else None, rollout=rollout,
                                health=args.health, ref=args.ref)
        elif args.action == "rollback":
            result = ops.rollback(hosts, args.build_id, rollout=rollout, health=args.health)
        elif args.action == "prune":
            result = ops.prune(hosts, args.keep)
        elif args.action in ("pin", "unpin"):
            result = ops.pin(hosts, args.build_id, pinned=args.action == "pin")
        elif args.action == "unlock":
            result = ops.unlock(hosts)
        elif args.action == "logs":
            if not any(h.logs for h in hosts):
                raise ConfigError(config.path, None, "logs", "no log files configured")
            result = ops.logs(hosts, lines=args.lines, follow=args.follow)
            if ops.interrupts.pressed:
                return ExitCode.INTERRUPTED
        else:  # pragma: no cover - argparse limits the choices
            raise ValueError(args.action)
    except (OperationError, InvalidBuildId) as exc:
        printer.close()
        print(f"releasetui: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    finally:
        printer.close()  # a live table comes down before anything else is written
        ops.close()
    if args.action != "logs" or not result.ok:
        printer.summary(result)
    return result.exit_code


def main(argv: Optional[list[str]] = None) -> int:
    """Entry point of the ``releasetui`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        clock.clock_from_env()
    except ValueError as exc:
        print(f"releasetui: {clock.ENV_VAR}: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    try:
        if args.action == "demo":
            from .demo import run_demo
            return run_demo(args)
        if args.action == "init":
            from .init import run_init
            return run_init(args)
        if args.action in ACTIONS:
            return int(run_headless(args))
        if args.headless:
            parser.error("--headless needs an ACTION: " + ", ".join(ACTIONS))
        return run_tui(args)
    except ConfigError as exc:
        print(f"releasetui: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    except KeyboardInterrupt:
        print("releasetui: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        # stdout closed early (e.g. piped into head): not an error worth a traceback.
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return ExitCode.OK


def run_tui(args: argparse.Namespace) -> int:
    """Open the TUI (imports Textual only now)."""
    from .tui.app import run_app
    return run_app(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
