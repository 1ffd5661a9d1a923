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
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional, TextIO

from . import __version__
from .config import Config, ConfigError, find_config, load_config
from .models import Event, ExitCode, InvalidBuildId, OperationResult

ACTIONS = ("deploy", "rollback", "builds", "prune", "logs", "unlock")


class _Parser(argparse.ArgumentParser):
    """argparse that exits with ExitCode.USAGE and one line on stderr."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.print_usage(sys.stderr)
        self.exit(int(ExitCode.USAGE), f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every form of the command."""
    parser = _Parser(prog="releasetui", description="Ship Python web apps over SSH, Capistrano-style, "
                     "and roll back to any earlier build.",
                     epilog="Exit codes: 0 done, 1 failed on a host, 2 usage/config error, 3 host unreachable or "
                            "key refused, 4 locked by another operation, 130 interrupted.")
    parser.add_argument("--config", metavar="PATH", help="hosts.yml to use (default: $RELEASETUI_CONFIG, then ./hosts.yml)")
    parser.add_argument("--host", dest="top_hosts", action="append", metavar="NAME", default=[],
                        help="only this host (repeatable)")
    parser.add_argument("--headless", action="store_true", help="run ACTION without the TUI (for CI)")
    parser.add_argument("--version", action="version", version=f"releasetui {__version__}")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)

    def common(p: argparse.ArgumentParser, dry_run: bool = True, json_: bool = True, hosts: bool = True) -> None:
        # Also accepted after the action, where people tend to type it.
        p.add_argument("--config", dest="sub_config", metavar="PATH", help=argparse.SUPPRESS)
        if hosts:
            p.add_argument("--host", dest="hosts", action="append", metavar="NAME", default=[], help="only this host (repeatable)")
        if dry_run:
            p.add_argument("--dry-run", action="store_true", help="print every remote command; change nothing")
        if json_:
            p.add_argument("--json", action="store_true", help="JSON lines on stdout")

    p = sub.add_parser("deploy", help="ship the source as a new build and make it current")
    p.add_argument("--source", metavar="DIR", help="directory to ship (default: 'source' from the config)")
    common(p)
    p = sub.add_parser("rollback", help="make an earlier build current (default: the one before current)")
    p.add_argument("build_id", nargs="?", metavar="BUILD_ID")
    common(p)
    p = sub.add_parser("builds", help="list each host's builds")
    common(p, dry_run=False)
    p = sub.add_parser("prune", help="remove old and incomplete builds and unused venvs")
    p.add_argument("--keep", type=int, metavar="N", help="complete builds to keep (default: keep_builds)")
    common(p)
    p = sub.add_parser("logs", help="tail the configured log files")
    p.add_argument("-n", dest="lines", type=int, default=50, metavar="N", help="lines per file (default 50)")
    p.add_argument("-f", dest="follow", action="store_true", help="follow until interrupted")
    common(p, dry_run=False, json_=True)
    p = sub.add_parser("unlock", help="remove a deploy lock left by a killed operation")
    common(p, dry_run=False)
    p = sub.add_parser("demo", help="make a sandbox with a sample app and open the TUI on it")
    p.add_argument("--headless", dest="demo_headless", action="store_true",
                   help="only prepare the sandbox and print its config path")
    p.add_argument("--dir", dest="demo_dir", metavar="DIR", help="sandbox directory (default: a cache dir)")
    p.add_argument("--fresh", action="store_true", help="recreate the sandbox from scratch")
    from .init import add_init_parser
    add_init_parser(sub)
    return parser


# --- output -------------------------------------------------------------------

class SafeStream:
    """Wraps stdout so a reader that goes away (``| head``) silences the output instead of failing the operation.

    The operation still runs to its end and the exit code still says how it went.
    """

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.broken = False

    def isatty(self) -> bool:
        """Whether the wrapped stream is a terminal."""
        try:
            return self.stream.isatty()
        except (ValueError, OSError):
            return False

    def write(self, text: str) -> int:
        """Write, or drop the text once the reader is gone."""
        if not self.broken:
            try:
                return self.stream.write(text)
            except (BrokenPipeError, ValueError):
                self._break()
        return len(text)

    def flush(self) -> None:
        """Flush, or do nothing once the reader is gone."""
        if not self.broken:
            try:
                self.stream.flush()
            except (BrokenPipeError, ValueError):
                self._break()

    def _break(self) -> None:
        self.broken = True
        try:  # the interpreter flushes stdout at exit: point it at devnull so that raises nothing either
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
        except (OSError, ValueError, AttributeError):
            pass


class HumanPrinter:
    """Plain lines for people and CI logs: one per finished step per host, colour only on a terminal."""

    COLOURS = {"ok": "32", "failed": "31", "skipped": "33", "dry-run": "36", "info": "2"}

    def __init__(self, out: TextIO = sys.stdout, steps: Optional[TextIO] = None):
        self.out = out
        self.steps = steps or out  # `logs` sends its step lines to stderr: stdout carries only the log lines
        self.colour = out.isatty() and "NO_COLOR" not in os.environ
        self.lock = threading.Lock()

    def paint(self, text: str, status: str) -> str:
        """Colour ``text`` by status when writing to a terminal."""
        code = self.COLOURS.get(status)
        return f"\033[{code}m{text}\033[0m" if self.colour and code else text

    def event(self, event: Event) -> None:
        """Print one event (``started`` ones are skipped: the finished line carries the duration)."""
        if event.status == "started":
            return
        with self.lock:
            if event.status == "log":
                self.out.write(f"{event.host} | {event.message}\n")
                self.out.flush()
                return
            if event.status == "dry-run":
                self.out.write(self.paint(f"# {event.host}: would run {event.step}:", "dry-run") + "\n")
                self.out.write(event.message.rstrip("\n") + "\n")
            else:
                stamp = datetime.now().strftime("%H:%M:%S")
                host = event.host or "-"
                duration = f"{event.duration:6.2f}s" if event.duration is not None else " " * 7
                message = f"  {event.message}" if event.message else ""
                self.steps.write(f"{stamp} {host:<12} {event.step:<12} {self.paint(f'{event.status:<7}', event.status)} "
                                 f"{duration}{message}\n")
            self.out.flush()
            self.steps.flush()

    def summary(self, result: OperationResult) -> None:
        """The closing lines: each host's outcome, the overall status, then (deploy, rollback) what is live now.

        What is live is the LAST line, so a CI log's tail answers "what runs now?".
        """
        with self.lock:
            for outcome in result.outcomes.values():
                line = f"{result.operation} {outcome.host}: {outcome.status}" + (f": {outcome.message}" if outcome.message else "")
                self.out.write(self.paint(line, "ok" if outcome.status == "ok" else "failed") + "\n")
            self.out.write(f"{result.operation} {result.status} in {result.duration:.2f}s (exit {int(result.exit_code)})\n")
            if result.operation in ("deploy", "rollback") and not result.dry_run:
                live = ", ".join(f"{o.host}={o.current or ('unreachable' if o.status == 'unreachable' else 'none')}"
                                 for o in result.outcomes.values())
                self.out.write(f"live now: {live}\n")
            self.out.flush()


class JsonPrinter:
    """JSON lines: one object per event, then a summary object."""

    def __init__(self, out: TextIO = sys.stdout):
        self.out = out
        self.lock = threading.Lock()

    def event(self, event: Event) -> None:
        """Print one event as a JSON object on its own line."""
        with self.lock:
            self.out.write(json.dumps(event.to_dict()) + "\n")
            self.out.flush()

    def summary(self, result: OperationResult) -> None:
        """Print the final summary object."""
        with self.lock:
            self.out.write(json.dumps(result.to_dict()) + "\n")
            self.out.flush()


def _age(created_at: Optional[str]) -> str:
    if not created_at:
        return "-"
    try:
        when = datetime.strptime(created_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return created_at
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def print_builds(states: dict, out: TextIO = sys.stdout) -> None:
    """The human table of ``builds``: one block per host."""
    for name, state in states.items():
        if isinstance(state, Exception):
            out.write(f"{name}: unreachable: {state}\n\n")
            continue
        lock = f", locked: {state.lock.describe()}" if state.lock else ""
        out.write(f"{name}: current {state.current or 'none'}{lock}\n")
        if not state.builds:
            out.write("  no builds yet\n\n")
            continue
        out.write(f"  {'ID':<17} {'CREATED (local)':<19} {'REQS':<12} {'GIT':<11} {'DEPLOYED BY':<24} STATUS\n")
        previous_hash = None
        for build in state.builds:
            reqs = (build.requirements_sha256 or "-")[:10]
            changed = "*" if previous_hash and build.requirements_sha256 and build.requirements_sha256 != previous_hash else " "
            previous_hash = build.requirements_sha256 or previous_hash
            git = (build.git_commit or "-")[:8] + ("+" if build.git_dirty else "")
            out.write(f"  {build.id:<17} {_age(build.created_at):<19} {reqs}{changed} {git:<11} "
                      f"{(build.deployed_by or '-')[:24]:<24} {build.status}\n")
        out.write("\n")


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
    from .executors import HostUnreachable

    states = ops.states(hosts)
    if as_json:
        doc = {"hosts": [{"name": name, "error": str(state), "current": None, "locked_by": None, "builds": []}
                         if isinstance(state, Exception) else state.to_dict() for name, state in states.items()]}
        out.write(json.dumps(doc, indent=2) + "\n")
    else:
        print_builds(states, out)
    out.flush()
    failures = {name: state for name, state in states.items() if isinstance(state, Exception)}
    for name, error in failures.items():
        print(f"releasetui: {name}: {error}", file=sys.stderr)
    if any(isinstance(error, HostUnreachable) for error in failures.values()):
        return ExitCode.UNREACHABLE
    return ExitCode.FAILED if failures else ExitCode.OK


def run_headless(args: argparse.Namespace) -> int:
    """Run one headless action; return its exit code."""
    from .operations import OperationError, Operations

    config = _load(args)
    hosts = config.select((args.top_hosts or []) + (getattr(args, "hosts", None) or []))
    as_json = getattr(args, "json", False)
    out = SafeStream(sys.stdout)
    printer = JsonPrinter(out) if as_json else HumanPrinter(out, steps=sys.stderr if args.action == "logs" else None)
    ops = Operations(config, report=printer.event, dry_run=getattr(args, "dry_run", False))
    try:
        if args.action == "builds":
            return _show_builds(ops, hosts, as_json, out)
        if args.action == "deploy":
            result = ops.deploy(hosts, source=Path(args.source) if args.source else None)
        elif args.action == "rollback":
            result = ops.rollback(hosts, args.build_id)
        elif args.action == "prune":
            result = ops.prune(hosts, args.keep)
        elif args.action == "unlock":
            result = ops.unlock(hosts)
        elif args.action == "logs":
            if not config.logs:
                raise ConfigError(config.path, None, "logs", "no log files configured")
            result = ops.logs(hosts, lines=args.lines, follow=args.follow)
        else:  # pragma: no cover - argparse limits the choices
            raise ValueError(args.action)
    except (OperationError, InvalidBuildId) as exc:
        print(f"releasetui: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    finally:
        ops.close()
    if args.action != "logs" or not result.ok:
        printer.summary(result)
    for outcome in result.outcomes.values():
        if outcome.status != "ok":
            print(f"releasetui: {result.operation} on {outcome.host}: {outcome.status}: {outcome.message}", file=sys.stderr)
    return result.exit_code


def main(argv: Optional[list[str]] = None) -> int:
    """Entry point of the ``releasetui`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
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
