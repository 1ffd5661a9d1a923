"""The TUI's confirmations, built by pure functions from fresh host states and the core's own plans.

Each returns either a :class:`Confirmation` (what the dialog shows) or a
:class:`Refusal` (why the action cannot go ahead, shown instead of asking):
the very plans the core then follows (:mod:`releasetui.rules`), grouped for
many hosts by :mod:`releasetui.present`.  No screen code here, so snapshots
and tests can check the texts directly.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Callable, Mapping, Optional, Sequence, Union

from rich.text import Text

from .. import present, rules
from ..config import Config, HostConfig
from ..models import HostState
from ..operations import new_build_id, prune_plans
from ..operations.waves import waves_for
from ..operations.wheels import builder_for
from .fmt import created_cell, git_cell


@dataclass
class Confirmation:
    """A dialog: title, body, the confirm button's label, whether it destroys something."""

    title: str
    body: Text
    label: str
    danger: bool = False


@dataclass
class Refusal:
    """Why the action is refused, one line per reason (hosts sharing a reason grouped)."""

    title: str
    lines: list


# The dialog's body is about 70 columns wide at 80x24.  A longer "hosts: what happens" line would wrap back to
# the left margin mid-sentence; instead what happens goes on its own line, indented under the hosts.
PLAN_WIDTH = 68


def _plan_line(body: Text, line: str, style: str = "") -> None:
    """One grouped plan line (``48 hosts (web01..web48): A → B, same virtualenv``), broken after the hosts when
    long."""
    hosts, sep, text = line.partition(": ")
    if len(line) + 2 > PLAN_WIDTH and sep:
        body.append(f"  {hosts}:\n      {text}\n", style=style)
    else:
        body.append(f"  {line}\n", style=style)


def _field(body: Text, label: str, value: str, style: str = "bold") -> None:
    """``label`` then ``value``; a value longer than the dialog is wide wraps under itself, not under the label
    (``Changes       3 files changed, …`` and its second line)."""
    lines = textwrap.wrap(value, PLAN_WIDTH, initial_indent=" " * len(label), subsequent_indent=" " * len(label),
                          break_on_hyphens=False) or [""]
    body.append(label, style=style)
    body.append("\n".join(lines)[len(label):] + "\n")


def _targets(states: Mapping[str, object], hosts: Sequence[HostConfig]) -> dict:
    return {h.name: states.get(h.name, RuntimeError("not read yet")) for h in hosts}


def deploy(config: Config, hosts: Sequence[HostConfig], states: Mapping[str, object], requirements_sha256: str,
           now: datetime, diff_summary: Optional[str] = None,
           requirements_label: Optional[str] = None) -> Union[Confirmation, Refusal]:
    """The deploy dialog: source, requirements, what changes (``diff_summary``, from
    :meth:`releasetui.operations.Operations.diff_summary`), then per host (grouped) current → new build and venv
    reuse."""
    plan = rules.plan_deploy(_targets(states, hosts), requirements_sha256, new_build_id(now),
                             {h.name: h.python for h in hosts}, roots={h.name: h.root for h in hosts},
                             wheels={h.name: h.wheels for h in hosts}, local=builder_for(hosts, states))
    if not plan.ok:
        return Refusal("Deploy refused", present.refusal_lines(plan.refusals))
    body = Text()
    body.append("Source        ", style="bold")
    body.append(f"{config.source}\n")
    body.append("Requirements  ", style="bold")
    body.append(f"{requirements_label or config.requirements} ({requirements_sha256[:10]})\n")
    if diff_summary:
        _field(body, "Changes       ", diff_summary)
    # The core takes the id from the clock when the deploy starts: a dialog left open must not
    # give the build an id older than builds deployed meanwhile.
    body.append("Build id      ", style="bold")
    body.append("new: the UTC time when it starts ", style="bold cyan")
    body.append(f"(about {plan.build_id})\n\n", style="dim")
    for line in present.deploy_plan_lines(plan):
        _plan_line(body, line)
    if config.rollout:
        waves, _ = waves_for(config, hosts)
        body.append(f"\nRollout: {len(waves)} waves (" + " | ".join(present.host_list(w) for w in waves) + ")\n",
                    style="cyan")
    body.append("\nNothing switches until every host has the build complete.", style="dim")
    return Confirmation(f"Deploy {config.project} as a new build?", body, "Deploy")


def rollback(config: Config, hosts: Sequence[HostConfig], states: Mapping[str, object], build_id: str,
             now: datetime, tz: Optional[tzinfo], diff_summary: Optional[str] = None) -> Union[Confirmation, Refusal]:
    """The rollback dialog from :func:`releasetui.rules.plan_rollback`: all hosts switch, or none; ``diff_summary``
    (current → the target, from :meth:`releasetui.operations.Operations.diff_summary`) says what changes."""
    targets = _targets(states, hosts)
    plan = rules.plan_rollback(targets, build_id)
    if not plan.ok:
        return Refusal("Rollback refused", present.refusal_lines(plan.refusals))
    first = next((s.build(build_id) for s in targets.values() if isinstance(s, HostState) and s.build(build_id)), None)
    body = Text(f"Build {build_id}, created {created_cell(first.created_at, now, tz) if first else '-'}, "
                f"git {git_cell(first) if first else '-'}" + (f"  {first.git_subject}" if first and first.git_subject else "")
                + "\n")
    if diff_summary:
        _field(body, "Changes: ", diff_summary)
    _why(body, plan)
    body.append("\n")
    for line in present.rollback_plan_lines(plan):
        _plan_line(body, line, "red" if "FAILED" in line else ("yellow" if "rolled-away" in line else ""))
    restarts = sorted({h.restart for h in hosts if h.restart})
    if restarts:
        body.append(f"\nThen: {' / '.join(restarts)}", style="dim")
    if any(h.healthcheck for h in hosts):
        body.append("\nThen the health check: an unhealthy host switches every host back.", style="dim")
    return Confirmation(f"Roll back to {build_id}?", body, "Roll back")


def rollback_target(hosts: Sequence[HostConfig], states: Mapping[str, object], selected: str) -> str:
    """What ``r`` rolls the targets to: the build under the cursor, except the build already live on every target
    (rolling to it would do nothing): then where a rollback with no id goes (:func:`releasetui.rules.plan_rollback`'s
    default), when there is one."""
    targets = _targets(states, hosts)
    read = [s for s in targets.values() if isinstance(s, HostState)]
    if not read or len(read) < len(targets) or any(s.current != selected for s in read):
        return selected
    default = rules.plan_rollback(targets, None).default
    return default.target if default is not None and default.target else selected


def _why(body: Text, plan: rules.RollbackPlan) -> None:
    """Why this build, when it is where a rollback with no id goes; else where that is (or why there is none)."""
    default = plan.default
    if default is None:
        return
    if default.target == plan.target:
        _field(body, "Why: ", default.reason)
    else:
        _field(body, "Default: ", f"{default.target}, {default.reason}" if default.target else
               f"none: {default.reason}", style="dim")


def prune(config: Config, hosts: Sequence[HostConfig], states: Mapping[str, object]) -> Union[Confirmation, Refusal, None]:
    """The prune dialog: exactly what goes on each host (grouped), and why; None when nothing would go."""
    targets = _targets(states, hosts)
    refusals = rules.read_refusals(targets) + rules.layout_refusals(targets, switching=False, action="prune")
    if refusals:
        return Refusal("Prune refused", present.refusal_lines(refusals))
    plans = prune_plans(targets, config.keep_builds)
    if all(p.empty for p in plans.values()):
        return None
    body = Text(f"Keeping current, the fleet's rollback target, the last good build live before current, pinned "
                f"builds and the {config.keep_builds} newest good builds; failed, incomplete and rolled-away builds "
                "go first.\n\n")
    for line in present.prune_plan_lines(plans, rules.reachable(targets)):
        _plan_line(body, line)
    return Confirmation("Prune these builds?", body, "Prune", danger=True)


def unlock(hosts: Sequence[HostConfig], states: Mapping[str, object], this_machine: str,
           pid_alive: Callable[[int], bool]) -> Optional[Confirmation]:
    """The unlock dialog: each lock's holder, pid, and whether it is stale (its process is gone); None: no lock."""
    locked = [(h, states[h.name].lock) for h in hosts
              if isinstance(states.get(h.name), HostState) and states[h.name].lock]  # type: ignore[union-attr]
    if not locked:
        return None
    body = Text("Only remove a lock whose operation is dead: a live deploy would lose its protection "
                "(releasetui stops what the lock's operation still runs on the host).\n\n")
    for host, lock in locked:
        body.append(f"  {host.name:<12}", style="bold")
        # Once per host: the dialog's own STALE line, not also the note describe() adds for the CLI.
        body.append(f"{lock.describe(stale_note=False)}\n")
        if lock.stale or rules.lock_is_stale(lock, this_machine, pid_alive):
            body.append(f"  {'':<12}STALE: pid {lock.pid} no longer runs on {this_machine}\n", style="bold yellow")
        elif lock.where == this_machine and lock.pid:
            body.append(f"  {'':<12}pid {lock.pid} is still running on this machine\n", style="bold red")
    return Confirmation("Remove these deploy locks?", body, "Unlock", danger=True)


def lock_refusal(hosts: Sequence[HostConfig], states: Mapping[str, object], action: str) -> Optional[Refusal]:
    """Refuse up front (before any dialog) when another operation holds a lock on a target."""
    refusals = rules.lock_refusals(_targets(states, hosts))
    if not refusals:
        return None
    return Refusal(f"{action} refused", present.refusal_lines(refusals) + ["(press u to see the lock and remove it "
                                                                            "if its operation is dead)"])


def pin_wanted(hosts: Sequence[HostConfig], states: Mapping[str, object], build_id: str) -> bool:
    """P pins the build, unless it is already pinned on every target host that has it: then it unpins."""
    builds = [s.build(build_id) for s in rules.reachable(_targets(states, hosts)).values()]
    present_on = [b for b in builds if b is not None]
    return not (present_on and all(b.pinned for b in present_on))


def pin(hosts: Sequence[HostConfig], states: Mapping[str, object], build_id: str,
        pinned: bool) -> Union[Confirmation, Refusal]:
    """The pin (or unpin) dialog: each host's build state grouped; refused for the reasons the core's pin has."""
    targets = _targets(states, hosts)
    verb = "Pin" if pinned else "Unpin"
    refusals = rules.pin_refusals(targets, build_id, pinned)
    if refusals:
        return Refusal(f"{verb} refused", present.refusal_lines(refusals))
    rows = {}
    for name, state in rules.reachable(targets).items():
        build = state.build(build_id)
        words = ", ".join(w for w in build.status.split(", ") if w != "pinned")  # type: ignore[union-attr]
        now = "pinned" if pinned else "unpinned"
        already = build.pinned == pinned  # type: ignore[union-attr]
        rows[name] = f"{words}, already {now}" if already else f"{words} → {now}"
    body = Text("Prune never removes a pinned build, on any host; unpinned, it is kept or removed by the "
                "usual rules.\n\n" if pinned else "Unpinned, prune keeps or removes it by the usual rules "
                "(current and the rollback target are always kept).\n\n")
    for text, names in present.group_hosts(rows):
        who = present.hosts_phrase(names, len(rows)) if len(names) > 1 else names[0]
        _plan_line(body, f"{who}: {text}", "red" if "failed" in text else "")
    return Confirmation(f"{verb} build {build_id}?", body, verb)


# --- quitting while an operation runs ------------------------------------------------------------

SWITCHING_OPERATIONS = ("deploy", "rollback")


def quit_promise(operation: str, outlook: Optional[str], wave: int = 0, waves: int = 0,
                 finished: Optional[str] = None) -> Confirmation:
    """What the quit dialog promises, for what confirming does NOW (the dialog redraws as the operation moves on).

    ``outlook``: what a first stop does to the running operation (:meth:`releasetui.runner.Interrupts.outlook`:
    abort, back, finish or switch; None when unknown); ``wave``/``waves``: the activation wave under way;
    ``finished``: the operation's closing line once it has ended (then quitting just quits).
    """
    if finished is not None:
        prints = " and prints what each host serves" if operation in SWITCHING_OPERATIONS else ""
        return Confirmation("Quit?", Text(f"{operation} has finished: {finished}\n\nNothing runs now: quitting just "
                                          f"quits{prints}.\n"), "Quit")
    after = " Then the app quits and prints what each host serves.\n"
    if operation not in SWITCHING_OPERATIONS:
        if operation == "unlock":
            text = ("unlock is running (one short step on each host). Quitting lets it finish; the app quits once "
                    "it has ended.\n")
        else:
            text = (f"{operation} is running (two short steps on each host). Quitting stops it if it is still "
                    "reading the hosts (then nothing changes and the locks are released), else lets it finish. "
                    "The app quits once it has ended.\n")
    elif outlook == "back":
        text = (f"{operation} is switching wave {wave} of {waves}. Quitting lets this wave finish, then switches "
                f"every host it switched back to the build it had (the later waves never switch: never half)." + after)
    elif outlook == "finish":
        which = f" (the last wave, {wave} of {waves})" if waves > 1 else ""
        text = (f"{operation} is switching the hosts{which}. Quitting lets the switch finish: the hosts stay on the "
                "new build if every one is healthy, else every host goes back to the build it had (never half)."
                + after)
    elif outlook == "switch":
        text = (f"{operation} has begun switching the hosts. Quitting lets the wave under way finish: after the "
                "last (or only) wave the hosts stay on the new build if every one is healthy; with waves still to "
                "come, every switched host goes back to the build it had (never half)." + after)
    else:
        removed = ", the partial build is removed" if operation == "deploy" else ""
        text = (f"{operation} is still running and has not switched any host. Quitting aborts it: nothing is "
                f"switched{removed} and the locks are released. The app quits once that cleanup has finished on "
                "every host.\n")
    return Confirmation("Quit while an operation runs?", Text(text), "Quit", danger=True)
