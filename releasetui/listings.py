"""What ``builds`` and ``history`` print for people: the fleet summary and one block per group of hosts with the
same builds, and one line per history record.  Plain text, cleaned of anything a host wrote; never Textual."""

from __future__ import annotations

import sys
from typing import Optional, TextIO

from . import present
from .clock import parse_stamp
from .history import OUTCOMES
from .models import HostState
from .text import clean_line


def local_time(created_at: Optional[str]) -> str:
    """``2026-11-28 10:15:00`` in local time, from the metadata's UTC stamp."""
    if not created_at:
        return "-"
    when = parse_stamp(created_at)
    if when is None:
        return clean_line(created_at, 19)
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def print_builds(states: dict, out: TextIO = sys.stdout) -> None:
    """The human table of ``builds``: a fleet summary, then one block per group of hosts with the same builds.

    Hosts whose builds, current build, lock and problems are the same share
    one block (``web01..web48 (48 hosts): current ...``); the hosts that
    differ follow, each with its own.  Within a block, newest first; failed,
    rolled-away, damaged and pinned marked.  (A build's creation time differs by a second
    or two between hosts; a shared block shows the earliest.)
    """
    for line in fleet_summary_lines(states):
        out.write(line + "\n")
    if len(states) > 1:
        out.write("\n")
    blocks: dict[tuple, list[str]] = {}
    created: dict[tuple, dict[str, str]] = {}
    for name, state in states.items():
        key = _block_key(state)
        blocks.setdefault(key, []).append(name)
        if isinstance(state, HostState):
            times = created.setdefault(key, {})
            for build in state.builds:
                if build.created_at and (build.id not in times or build.created_at < times[build.id]):
                    times[build.id] = build.created_at
    for key, names in sorted(blocks.items(), key=lambda item: -len(item[1])):
        who = names[0] if len(names) == 1 else f"{present.host_list(names)} ({len(names)} hosts)"
        for line in _block_lines(states[names[0]], created.get(key, {})):
            out.write((f"{who}: {line}" if line and not line.startswith(" ") else line) + "\n")
            who = None
        out.write("\n")


def fleet_summary_lines(states: dict) -> list[str]:
    """What the fleet serves, who could not be read or is locked, and which builds are where (newest first)."""
    if len(states) <= 1:
        return []
    reachable = {n: s for n, s in states.items() if isinstance(s, HostState)}
    unreachable = [n for n in states if n not in reachable]
    total = len(states)
    live = {n: s.current or "nothing" for n, s in reachable.items()}
    groups = present.group_hosts(live)
    if not reachable:
        lines = [f"fleet: unknown: none of the {total} hosts could be read"]
    elif len(groups) == 1 and not unreachable:
        lines = [f"fleet: {groups[0][0]} on all {total} hosts"]
    else:
        parts = [f"{build} on {present.hosts_phrase(names, total)}" for build, names in groups]
        lines = ["fleet: " + ("HOSTS DISAGREE: " if len(groups) > 1 else "") + "; ".join(parts)]
    if unreachable:
        lines.append(f"unreachable: {present.hosts_phrase(unreachable, total)}")
    locked = {n: clean_line(s.lock.describe(), 160) for n, s in reachable.items() if s.lock}
    for text, names in present.group_hosts(locked):
        lines.append(f"locked: {present.hosts_phrase(names, total)}: {text}")
    where: dict[str, dict[str, list[str]]] = {}
    for name, state in reachable.items():
        for build in state.builds:
            marks = where.setdefault(build.id, {})
            marks.setdefault("", []).append(name)
            for word in build.status.split(", "):
                if word not in ("complete", "current"):
                    marks.setdefault(word, []).append(name)
    if where:
        lines.append("builds (newest first):")
        ids = sorted(where, reverse=True)
        for build_id in ids[:12]:
            marks = where[build_id]
            have = marks.pop("")
            missing = [n for n in reachable if n not in have]
            if len(have) == 1:
                text = f"  {build_id}  on {have[0]}"
            elif missing and len(missing) < len(have):
                text = f"  {build_id}  on {len(have)} hosts (not on {present.host_list(missing, limit=4)})"
            else:
                text = f"  {build_id}  on {present.hosts_phrase(have, len(reachable))}"
            current = [n for n, s in reachable.items() if s.current == build_id]
            if current:
                text += ", current" + ("" if len(current) == len(have) else f" on {present.host_list(current, limit=4)}")
            for word, names in marks.items():
                text += f", {word}" + ("" if len(names) == len(have) else f" on {present.host_list(names, limit=4)}")
            lines.append(text)
        if len(ids) > 12:
            lines.append(f"  … {len(ids) - 12} older")
    return lines


def _block_key(state) -> tuple:
    """What makes two hosts' blocks the same (the creation times aside)."""
    if not isinstance(state, HostState):
        return ("unreachable", clean_line(state, 300))
    if not state.initialized:
        return ("empty",)
    builds = tuple((b.id, b.status, b.requirements_sha256, b.git_commit, b.git_dirty, b.deployed_by, b.git_subject,
                    b.damaged, b.failure, b.rolled_away_note) for b in state.builds)
    lock = state.lock.describe() if state.lock else None
    return ("state", state.current, lock, tuple(state.problems), builds)


def _block_lines(state, created: dict) -> list[str]:
    """One host's block (its first line without the host's name)."""
    from .rules import requirements_changed
    if not isinstance(state, HostState):
        return [f"unreachable: {clean_line(state, 300)}"]
    if not state.initialized:
        return ["nothing deployed yet (no project root)"]
    lock = f", locked: {state.lock.describe()}" if state.lock else ""
    current = state.build(state.current)
    flag = f" ({current.status})" if current and current.status != "current" else ""
    lines = [f"current {state.current or 'none'}{flag}{lock}"]
    lines += [f"  problem: {clean_line(problem, 200)}" for problem in state.problems]
    if not state.builds:
        return lines + ["  no builds yet"]
    lines.append(f"  {'ID':<17} {'STATUS':<18} {'CREATED (local)':<19} {'REQS':<12} {'GIT':<11} {'DEPLOYED BY':<24} SUBJECT")
    changed = requirements_changed(state.builds)
    for build in sorted(state.builds, key=lambda b: b.id, reverse=True):
        reqs = (build.requirements_sha256 or "-")[:10] + ("*" if changed.get(build.id) else " ")
        git = (build.git_commit or "-")[:8] + ("+" if build.git_dirty else "")
        lines.append(f"  {build.id:<17} {build.status:<18} {local_time(created.get(build.id, build.created_at)):<19} "
                     f"{clean_line(reqs, 12):<12} {clean_line(git, 11):<11} {clean_line(build.deployed_by or '-', 24):<24} "
                     f"{clean_line(build.git_subject or '', 50)}")
        if build.damaged:
            lines.append(f"  {'':<17} damaged: {clean_line(build.damaged, 120)}")
        elif build.failed and build.failure:
            lines.append(f"  {'':<17} failed: {clean_line(build.failure, 120)}")
        elif build.rolled_away and build.rolled_away_note:
            lines.append(f"  {'':<17} rolled-away: {clean_line(build.rolled_away_note, 120)}")
    return lines


def history_line(entry, total_hosts: Optional[int] = None) -> str:
    """One operation for a person: when it started (local time), what, how it ended, from → to, where, who, how long.

    ``2026-11-28 10:15:00  deploy    ok      20261127… → 20261128…  on all 50 hosts  by alice@laptop  in 12.3s``;
    hosts that ended differently are named after it (``failed on web07; switched-back on 49 hosts``), then why
    (``— unhealthy after 15s: exit 1 on web07; ...``, ``— interrupted by Ctrl-C``), the CI job and the message.
    The outcome word and the time are the ones ``history --json`` gives (``outcome``, ``when``).
    """
    when = entry.began
    stamp = when.astimezone().strftime("%Y-%m-%d %H:%M:%S") if when else "????-??-?? ??:??:??"
    names = sorted(entry.hosts)
    total = total_hosts or len(names)
    outcomes = present.group_hosts({h: entry.hosts[h] for h in names})
    parts = [stamp, f"{clean_line(entry.event, 12):<9} {clean_line(entry.outcome, 14):<6}"]
    if entry.moves:
        moves = present.group_hosts({h: f"{a or 'none'} → {b or 'none'}" for h, (a, b) in sorted(entry.moves.items())})
        if len(moves) == 1:
            parts.append(moves[0][0])
        else:
            parts.append("; ".join(f"{move} on {present.hosts_phrase(hosts, total)}" for move, hosts in moves))
    elif entry.details:
        details = present.group_hosts({h: entry.details[h] for h in sorted(entry.details)})
        if len(details) == 1:
            parts.append(clean_line(details[0][0], 200))
        else:
            parts.append("; ".join(f"{clean_line(text, 120)} on {present.hosts_phrase(hosts, total)}"
                                   for text, hosts in details[:4])
                         + (f"; … ({len(details) - 4} more)" if len(details) > 4 else ""))
    parts.append(f"on {present.hosts_phrase(names, total) if len(names) != 1 else names[0]}"
                 + (f" (stage {clean_line(entry.stage, 40)})" if entry.stage else ""))
    parts.append(f"by {entry.who or '?'}")
    if entry.duration is not None:
        parts.append(f"in {took(entry.duration)}")
    line = "  ".join(parts)
    if len(outcomes) > 1:
        line += "  (" + "; ".join(f"{outcome} on {present.hosts_phrase(hosts, len(names))}"
                                  for outcome, hosts in outcomes) + ")"
    line += reasons_text(entry, len(names))
    if entry.ci_url:
        line += f"  {entry.ci_url}"
    if entry.message:
        line += f"  “{entry.message}”"
    return clean_line(line, 1000)


def reasons_text(entry, total: int) -> str:
    """``  — web07: unhealthy after 15s: exit 1; 49 hosts (...): switched back: ...``, worst first; or the one
    reason every host shares (``  — interrupted by Ctrl-C``); "" when no host recorded why."""
    groups = present.group_hosts({h: entry.reasons[h] for h in sorted(entry.reasons)})
    if not groups:
        return ""
    if len(groups) == 1 and len(groups[0][1]) == total:
        return f"  — {clean_line(groups[0][0], 300)}"
    rank = {o: i for i, o in enumerate(OUTCOMES)}
    groups.sort(key=lambda group: rank.get(entry.hosts.get(group[1][0]), 0))
    text = "; ".join(f"{present.hosts_phrase(hosts, total)}: {clean_line(why, 200)}" for why, hosts in groups[:4])
    return f"  — {text}" + (f"; … ({len(groups) - 4} more)" if len(groups) > 4 else "")


def took(seconds: float) -> str:
    """A duration for a person: ``6.4s`` under a minute, else ``2m05s``."""
    if seconds < 59.95:
        return f"{seconds:.1f}s"
    whole = int(round(seconds))
    return f"{whole // 60}m{whole % 60:02d}s"


def print_history(entries: list, problems: dict, out: TextIO = sys.stdout, err: Optional[TextIO] = None) -> None:
    """One line per operation (see :func:`history_line`), oldest first; each host's reading problem on stderr."""
    everyone = {h for entry in entries for h in entry.hosts}
    for entry in entries:
        out.write(history_line(entry, len(everyone)) + "\n")
    if not entries:
        out.write("no operations recorded yet\n")
    err = err or sys.stderr
    for host, problem in problems.items():
        err.write(f"releasetui: {host}: {clean_line(problem, 300)}\n")
