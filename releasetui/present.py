"""What a person is shown, as plain text built by pure functions from plans, states and results.

The CLI prints these lines; the TUI's confirmations and summaries show the
same lines (styled), built from the same plans the core then follows.  Hosts
that share a state are grouped ("50 hosts: ... ") so fifty hosts fit on a
screen; only the hosts that differ are listed one by one.
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping, Optional, Sequence

from . import rules
from .models import HostState, OperationResult
from .text import group_hosts, host_list  # their home is text.py: rules name hosts too


def hosts_phrase(names: Sequence[str], total: int) -> str:
    """``all 50 hosts``, ``48 hosts (web01..web48)``, ``web2``."""
    if len(names) == total and total > 2:
        return f"all {total} hosts"
    if len(names) > 2:
        return f"{len(names)} hosts ({host_list(names)})"
    return host_list(names)


def live_line(live: Mapping[str, Optional[str]], unreachable: Iterable[str] = ()) -> str:
    """``live now: 20261128042915 on all 50 hosts`` — or each build with its hosts, and that they disagree."""
    unreachable = set(unreachable)
    known = {h: b for h, b in live.items() if h not in unreachable}
    groups = group_hosts({h: b or "nothing" for h, b in known.items()})
    if len(live) <= 2 and not unreachable and len(groups) == 1:
        build, names = groups[0]
        return f"live now: {build} on {host_list(names)}" if len(names) > 1 or len(live) == 1 else \
            f"live now: {build} on {names[0]}"
    parts = [f"{build} on {hosts_phrase(names, len(live))}" for build, names in groups]
    if unreachable:
        parts.append(f"unknown on {host_list(sorted(unreachable))} (unreachable)")
    line = "live now: " + "; ".join(parts)
    if len(groups) > 1:
        line += " — HOSTS DISAGREE"
    return line


def outcome_lines(result: OperationResult) -> list[tuple[str, str]]:
    """``(status, text)`` per group of hosts that ended the same way, worst first."""
    groups: dict[tuple[str, str], list[str]] = {}
    for outcome in result.outcomes.values():
        message = outcome.message
        if outcome.left and "left on the host" not in message:  # what must be cleared is never left unsaid
            message += ("; " if message else "") + f"left on the host: {' and '.join(outcome.left)}"
        groups.setdefault((outcome.status, message), []).append(outcome.host)
    total = len(result.outcomes)
    order = ["interrupted", "unreachable", "locked", "failed", "refused", "aborted", "ok"]
    lines = []
    for (status, message), names in sorted(groups.items(), key=lambda item: order.index(item[0][0])
                                           if item[0][0] in order else 0):
        who = hosts_phrase(names, total) if len(names) > 1 else names[0]
        if message.startswith(status):  # "locked by another operation: ...", "unreachable: ...": say it once
            lines.append((status, f"{result.operation} {who}: {message}"))
        else:
            lines.append((status, f"{result.operation} {who}: {status}" + (f": {message}" if message else "")))
    return lines


def summary_line(result: OperationResult) -> str:
    """``deploy ok in 2.31s (exit 0)``; on a stage, ``deploy ok on stage production in 2.31s (exit 0)``."""
    verb = "would be ok" if result.dry_run and result.ok else result.status
    where = f" on stage {result.stage}" if result.stage else ""
    return f"{result.operation} {verb}{where} in {result.duration:.2f}s (exit {int(result.exit_code)})"


HOST_PLACEHOLDER = "{host}"


def script_template(host: Optional[str], text: str) -> str:
    """``text`` with the host's own name (a history record's ``"host"``, a root named after it) as ``{host}``.

    Whole names only (``web1`` never inside ``web10``); a text that already
    holds ``{host}`` is kept as it is, so the template always turns back into
    exactly the host's script.
    """
    if not host or HOST_PLACEHOLDER in text:
        return text
    return re.sub(rf"(?<![A-Za-z0-9_]){re.escape(host)}(?![A-Za-z0-9_])", HOST_PLACEHOLDER, text)


def dry_run_blocks(recorded: Sequence[tuple[Optional[str], str, str]]) -> list[tuple[str, str]]:
    """What ``--dry-run`` prints: ``(header, script)`` per distinct script, the hosts that would run it grouped.

    ``recorded`` holds ``(host, kind, text)`` in the order they were recorded.
    Fifty hosts running the same script but for their name show it once:
    ``# would run prepare: the same script on 48 hosts (web03..web50), {host} being each host's name:``;
    a host whose script differs gets its own block, as a lone host does.
    """
    groups: dict[tuple[str, str], list[tuple[Optional[str], str]]] = {}
    for host, kind, text in recorded:
        groups.setdefault((kind, script_template(host, text)), []).append((host, text))
    blocks = []
    for (kind, template), members in groups.items():
        hosts = [h for h, _ in members if h]
        if len(members) == 1 or len(hosts) < len(members):
            blocks += [(f"# {h or 'here'}: would run {kind}:", text) for h, text in members]
            continue
        note = f", {HOST_PLACEHOLDER} being each host's name" if HOST_PLACEHOLDER in template else ""
        blocks.append((f"# would run {kind}: the same script on {len(hosts)} hosts ({host_list(hosts, limit=20)})"
                       f"{note}:", template))
    return blocks


def refusal_lines(refusals: Sequence[rules.Refusal]) -> list[str]:
    """One line per reason, hosts that share it grouped."""
    groups: dict[str, list[str]] = {}
    for refusal in refusals:
        groups.setdefault(refusal.reason, []).append(refusal.host or "all hosts")
    return [f"{host_list(names)}: {reason}" for reason, names in groups.items()]


def deploy_plan_lines(plan: rules.DeployPlan) -> list[str]:
    """``50 hosts: 20261128042915 → new build, venv reused`` and the hosts that differ."""
    rows = {h.host: f"{h.current or 'none'} → new build, " + ("venv reused" if h.venv_reused else "a new venv is built")
            + ("" if not h.wheelhouse else " from the wheelhouse on the host" if not h.send_wheels else
               " from the wheelhouse sent from here" if h.wheels_built_on is None else
               f" from the wheelhouse built on {h.wheels_built_on}") for h in plan.hosts}
    return [f"{hosts_phrase(names, len(rows)) if len(names) > 1 else names[0]}: {text}"
            for text, names in group_hosts(rows)]


def rollback_plan_lines(plan: rules.RollbackPlan) -> list[str]:
    """``50 hosts: A → B, same venv`` (``already current`` where nothing changes), the failed or rolled-away note."""
    rows = {}
    for switch in plan.hosts:
        if not switch.needed:
            rows[switch.host] = f"{switch.target} is already current (nothing to do)"
        else:
            rows[switch.host] = (f"{switch.current or 'none'} → {switch.target}, "
                                 + ("switches virtualenv" if switch.venv_changes else "same virtualenv")
                                 + (" — the target was marked FAILED there" if switch.target_failed else "")
                                 + (" — the target is marked rolled-away there (cleared when this rollback commits)"
                                    if switch.target_rolled_away and not switch.target_failed else ""))
    return [f"{hosts_phrase(names, len(rows)) if len(names) > 1 else names[0]}: {text}"
            for text, names in group_hosts(rows)]


def prune_plan_lines(plans: Mapping[str, rules.HostPrune], states: Mapping[str, HostState]) -> list[str]:
    """What prune removes, hosts with the same removals grouped; each build with its state."""
    rows = {}
    for name, plan in plans.items():
        state = states[name]
        words = []
        for build_id in plan.remove:
            build = state.build(build_id)
            words.append(f"{build_id} ({plan.reasons.get(build_id) or (build.state if build else '?')})")
        words += [f"venv {v}" for v in plan.remove_venvs] + [f"wheelhouse {w}" for w in plan.remove_wheelhouses]
        rows[name] = "remove " + ", ".join(words) if words else "nothing to remove"
    return [f"{hosts_phrase(names, len(rows)) if len(names) > 1 else names[0]}: {text}"
            for text, names in group_hosts(rows)]
