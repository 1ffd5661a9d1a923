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
from typing import TYPE_CHECKING, Optional

from . import clock
from .config import Config, ConfigError, find_config, load_config
from .models import ExitCode, InvalidBuildId
from .stages import stage_from
from .text import clean_line

from .arguments import ACTIONS, LIVE_ACTIONS, build_parser

if TYPE_CHECKING:  # what the output is written through, imported when a run writes (after its connections start)
    from .output import SafeStream


def run_completion(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``completion SHELL`` prints the script; ``completion --names hosts|roles`` what it completes from."""
    if args.names:
        path, _ = find_config(args.config)
        try:
            config = load_config(path, stage_from(args.stage)) if path else None
        except ConfigError:
            config = None  # completion offers nothing rather than an error in the middle of a command line
        if config is None:
            return ExitCode.OK
        names = [h.name for h in config.hosts] if args.names == "hosts" else list(config.roles)
        sys.stdout.write("".join(name + "\n" for name in names))
        return ExitCode.OK
    if not args.shell:
        parser.error("completion needs a SHELL: bash, zsh or fish")
    from .docgen import completion_script
    sys.stdout.write(completion_script(parser, args.shell))
    return ExitCode.OK


# --- main -----------------------------------------------------------------------

def _load(args: argparse.Namespace) -> Config:
    path, looked = find_config(getattr(args, "sub_config", None) or args.config)
    if path is None:
        raise ConfigError("hosts.yml", None, None,
                          "no config found (looked at: " + ", ".join(looked) + "); `releasetui init` writes a "
                          "commented starter, or try `releasetui demo`")
    return load_config(path, stage_from(getattr(args, "sub_stage", None) or args.stage))


CHANGING_ACTIONS = ("deploy", "rollback", "prune", "pin", "unpin", "unmark", "lock", "unlock")


def confirmed(config: Config, args: argparse.Namespace, hosts) -> bool:
    """Whether a changing action may go ahead on a stage with ``confirm: true``: ``--yes``, or a yes typed at a
    terminal; a headless run with neither is refused (a CI job pointed at the wrong stage stops here)."""
    if not config.confirm or args.action not in CHANGING_ACTIONS or getattr(args, "dry_run", False) \
            or getattr(args, "yes", False):
        return True
    where = f"stage {config.stage}" if config.stage else config.path.name
    if not sys.stdin.isatty():
        raise ConfigError(config.path, None, "confirm", f"{where} asks for confirmation: add --yes to {args.action} "
                                                        "without a question (no terminal to ask on)")
    names = ", ".join(h.name for h in hosts[:5]) + (f" and {len(hosts) - 5} more" if len(hosts) > 5 else "")
    sys.stderr.write(f"{args.action} on {where} ({names})? [y/N] ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _show_builds(ops, hosts, as_json: bool, out: SafeStream) -> ExitCode:
    """``builds``: one round trip per host, a table or one JSON document; unreachable hosts exit 3."""
    from .models import HostUnreachable

    states = ops.states(hosts)
    if as_json:
        doc = {"hosts": [{"name": name, "error": str(state), "current": None, "locked_by": None, "builds": []}
                         if isinstance(state, Exception) else state.to_dict() for name, state in states.items()]}
        out.write(json.dumps(doc, indent=2) + "\n")
    else:
        from .listings import print_builds
        print_builds(states, out)
    out.flush()
    # Said once: in the table, or in the document's "error" (stderr is for the command's own failures).
    failures = {name: state for name, state in states.items() if isinstance(state, Exception)}
    if any(isinstance(error, HostUnreachable) for error in failures.values()):
        return ExitCode.UNREACHABLE
    return ExitCode.FAILED if failures else ExitCode.OK


def _show_history(ops, hosts, args, out: SafeStream) -> ExitCode:
    entries, problems = ops.history(hosts)
    if ops.config.stage:  # a stage's roots are its own; a record made on another stage is not this one's history
        entries = [e for e in entries if e.stage in (None, ops.config.stage)]
    entries = entries[-args.lines:]
    if getattr(args, "json", False):
        out.write(json.dumps({"operations": [e.to_dict() for e in entries], "problems": problems}, indent=2) + "\n")
    else:
        from .listings import print_history
        print_history(entries, problems, out)
    out.flush()
    return ExitCode.UNREACHABLE if any(p.startswith("unreachable") for p in problems.values()) else ExitCode.OK


def _show_doctor(ops, hosts, as_json: bool, out: SafeStream) -> ExitCode:
    """``doctor``: one line per problem, grouped across hosts; exit 0 only when every check passed."""
    from .present import host_list

    checkup = ops.doctor(hosts)
    if as_json:
        out.write(json.dumps(checkup.to_dict(), indent=2) + "\n")
    else:
        by_problem: dict[str, list[str]] = {}
        for name, host in checkup.hosts.items():
            for problem in host.problems:
                by_problem.setdefault(problem, []).append(name)
        lines = [f"{host_list(names)}: {problem}" for problem, names in by_problem.items()]
        lines += [f"here: {problem}" for problem in checkup.local]
        failing = sorted(n for n, h in checkup.hosts.items() if h.problems)
        total = len(lines)
        lines.append(f"doctor: every check passed on {len(checkup.hosts)} host(s) and here" if checkup.ok else
                     f"doctor: {total} problem(s)" + (f" on {host_list(failing)}" if failing else "") + " (exit 1)")
        out.write("".join(line + "\n" for line in lines))
    out.flush()
    if any(h.unreachable for h in checkup.hosts.values()):
        return ExitCode.UNREACHABLE
    return ExitCode.OK if checkup.ok else ExitCode.FAILED


def _run_exec(ops, hosts, args, out: SafeStream) -> ExitCode:
    """``exec``: the command on each host; identical outcomes grouped; exit 0 only when it exited 0 everywhere."""
    from .present import host_list

    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        raise ConfigError(ops.config.path, None, "exec", "name the command to run after --, e.g. "
                                                         "releasetui --headless exec -- flask db current")
    hosts = list(hosts)[:1] if args.once else list(hosts)
    if args.interactive:
        if len(hosts) != 1:
            raise ConfigError(ops.config.path, None, "exec -i", f"runs on one host: name it with --host "
                                                                f"(or add --once); {len(hosts)} are targeted")
        import subprocess
        try:
            return subprocess.call(ops.interactive_command(hosts[0], argv))
        except OSError as exc:
            raise ConfigError(ops.config.path, None, "exec -i", f"cannot start ssh: {exc.strerror or exc}") from None
    run = ops.exec(hosts, argv, timeout=args.timeout)
    if getattr(args, "json", False):
        out.write(json.dumps(run.to_dict(), indent=2) + "\n")
    else:
        verdicts: dict[str, list[str]] = {}
        for (kind, value, output), names in run.groups():
            what = f"exit {value}" if kind == "exit" else f"did not run: {value}"
            out.write(f"== {host_list(names)} ({len(names)} host{'s' if len(names) > 1 else ''}): {what}\n")
            if output:
                out.write(output if output.endswith("\n") else output + "\n")
            verdicts.setdefault(what, []).extend(names)
        code = 0 if run.ok else 1
        out.write(f"exec {clean_line(run.command, 80)}: "
                  + "; ".join(f"{what} on {host_list(names)}" for what, names in verdicts.items()) + f" (exit {code})\n")
    out.flush()
    if run.unreachable:
        return ExitCode.UNREACHABLE
    return ExitCode.OK if run.ok else ExitCode.FAILED


def _show_diff(ops, hosts, args, out: SafeStream) -> ExitCode:
    """``diff``: one document (``--json``) or the grouped text; one round trip per host."""
    report = ops.diff(hosts, args.from_id, args.to_id, source=Path(args.source) if args.source else None,
                      ref=args.ref, patch=args.patch)
    if getattr(args, "json", False):
        out.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        out.write("".join(line + "\n" for line in report.lines()))
    out.flush()
    return report.exit_code


def _install_interrupts(ops, printer, action: Optional[str] = None) -> None:
    """Ctrl-C (and SIGTERM, as from a CI runner cancelling a job) presses the operation's interrupt instead of
    raising in the middle of the work: the operation cleans up, history records who stopped it, exit 130.

    What it says goes to stderr through the printer, so a live table is not torn by it.  For ``logs`` it
    only stops the tail: nothing is switched, so there is nothing to switch back.
    """
    def handler(signum, frame) -> None:
        by = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C"
        count = ops.interrupt(by)
        if action == "logs":
            if count == 1:
                printer.notice("releasetui: logs: stopped")
            return
        said = "interrupted" if by == "Ctrl-C" else f"interrupted by {by}"
        if count == 1:
            printer.notice(f"releasetui: {said}: stopping (before the switch: cleaning up; during it: this wave "
                           f"finishes). {by} again to stop waiting and switch every host back.")
        elif count == 2:
            printer.notice(f"releasetui: {said} again: switching every switched host back.")

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _printer(args: argparse.Namespace, out: SafeStream, hosts, stage: Optional[str] = None):
    """JSON lines; the live table on a terminal (Rich, imported only then); else plain lines."""
    from .output import HumanPrinter, JsonPrinter, live_table_wanted
    if getattr(args, "json", False):
        return JsonPrinter(out, stage)
    if args.action in LIVE_ACTIONS and not getattr(args, "dry_run", False) and live_table_wanted(out):
        from .live import LivePrinter
        return LivePrinter(args.action, [h.name for h in hosts], out=out, err=sys.stderr)
    return HumanPrinter(out, steps=sys.stderr if args.action == "logs" else None)


def run_headless(args: argparse.Namespace) -> int:
    """Run one headless action; return its exit code."""
    config = _load(args)
    if getattr(args, "skip_hooks", False) and config.hook_names():
        print(f"releasetui: warning: --skip-hooks: not running {', '.join(config.hook_names())}", file=sys.stderr)
        config = config.without_hooks()
    hosts = config.select((args.top_hosts or []) + (getattr(args, "hosts", None) or []),
                          (args.top_roles or []) + (getattr(args, "roles", None) or []))
    if not confirmed(config, args, hosts):
        print("releasetui: not confirmed: nothing changed", file=sys.stderr)
        return ExitCode.FAILED
    preconnect = _start_connecting(config, args, hosts)
    from .operations import OperationError, Operations
    from .output import SafeStream
    as_json = getattr(args, "json", False)
    out = SafeStream(sys.stdout)
    printer = _printer(args, out, hosts, config.stage)
    # builds, history and diff print one document: their connection steps are not data.
    report = None if args.action in ("builds", "history", "diff", "doctor", "exec") else printer.event
    ops = Operations(config, report=report, dry_run=getattr(args, "dry_run", False),
                     parallel=getattr(args, "parallel", None), lock_wait=getattr(args, "lock_wait", None),
                     message=getattr(args, "message", None))
    _install_interrupts(ops, printer, args.action)
    try:
        if args.action == "builds":
            return _show_builds(ops, hosts, as_json, out)
        if args.action == "history":
            return _show_history(ops, hosts, args, out)
        if args.action == "diff":
            return _show_diff(ops, hosts, args, out)
        if args.action == "doctor":
            return _show_doctor(ops, hosts, as_json, out)
        if args.action == "exec":
            return _run_exec(ops, hosts, args, out)
        result = _operate(ops, config, args, hosts)
    except (OperationError, InvalidBuildId) as exc:
        printer.close()
        print(f"releasetui: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    finally:
        printer.close()  # a live table comes down before anything else is written
        ops.close()
        preconnect.discard()
    if args.action == "logs" and ops.interrupts.pressed:  # following is ended by Ctrl-C: the normal end
        return ExitCode.OK if args.follow and result.ok else ExitCode.INTERRUPTED
    if args.action != "logs" or not result.ok:
        printer.summary(result)
    return result.exit_code


def _operate(ops, config: Config, args: argparse.Namespace, hosts):
    """Run the changing (or log-reading) action ``args`` names on ``hosts``; its OperationResult."""
    from .operations import RolloutChoice
    from .rules import canary_problem
    rollout = None
    if args.action in ("deploy", "rollback"):
        rollout = RolloutChoice(args.canary, args.batch, args.pause or 0.0)
        problem = canary_problem(args.canary, [h.name for h in hosts], known=[h.name for h in config.hosts])
        if problem:  # refused before any host is touched: it cannot mean what was typed
            raise ConfigError(config.path, None, "--canary", problem.reason)
    if args.action == "deploy":
        return ops.deploy(hosts, source=Path(args.source) if args.source else None, rollout=rollout,
                          health=args.health, ref=args.ref)
    if args.action == "rollback":
        return ops.rollback(hosts, args.build_id, rollout=rollout, health=args.health)
    if args.action == "prune":
        return ops.prune(hosts, args.keep)
    if args.action in ("pin", "unpin"):
        return ops.pin(hosts, args.build_id, pinned=args.action == "pin")
    if args.action == "lock":
        return ops.lock(hosts)
    if args.action == "unmark":
        return ops.unmark(hosts, args.build_id)
    if args.action == "unlock":
        return ops.unlock(hosts)
    if args.action == "logs":
        if not any(h.logs for h in hosts):
            raise ConfigError(config.path, None, "logs", "no log files configured")
        return ops.logs(hosts, lines=args.lines, follow=args.follow)
    raise ValueError(args.action)  # pragma: no cover - argparse limits the choices


def _start_connecting(config: Config, args: argparse.Namespace, hosts):
    """Open the hosts' TCP connections now (every headless action connects), so their handshakes overlap the
    imports that follow; the module that holds them (:func:`run_headless` discards what is never used)."""
    from .executors import preconnect
    if preconnect.start(hosts, config.connect_timeout, getattr(args, "parallel", None) or config.parallel):
        from .executors.connect import load_paramiko
        load_paramiko(version_stand_in=True)  # here, while no other thread imports anything
    return preconnect


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
        if args.action == "config":
            from .effective import effective, effective_lines
            config = _load(args)
            text = json.dumps(effective(config), indent=2) + "\n" if args.json else \
                "".join(line + "\n" for line in effective_lines(config))
            sys.stdout.write(text)
            return ExitCode.OK
        if args.action == "schema":
            from .schema import schema_text
            sys.stdout.write(schema_text())
            return ExitCode.OK
        if args.action == "completion":
            return run_completion(args, parser)
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
