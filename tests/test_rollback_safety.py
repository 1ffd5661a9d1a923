"""Where a rollback goes (issue 14, section 2), over two real loopback sshd hosts.

Build B was bad, ``rollback A`` took the fleet back, then ``deploy C``: a
``rollback`` with no id must go back to A (the build live before C), never to
B, which is marked ``rolled-away`` on every host; prune must keep A; ``unmark``
clears the mark.  Each assertion here failed before the mark existed.
"""

from __future__ import annotations

import re

import pytest

from .support.helpers import builds_doc, deploy_ok, summary

pytestmark = pytest.mark.ssh


def build_states(project, build_id: str) -> dict[str, str]:
    """Host -> the build's state in ``builds --json`` (``missing`` where it is not)."""
    doc = builds_doc(project)
    states = {}
    for host in doc["hosts"]:
        build = next((b for b in host["builds"] if b["id"] == build_id), None)
        states[host["name"]] = build["state"] if build else "missing"
    return states


def test_a_rolled_away_build_is_never_the_default_target_and_prune_keeps_the_last_good_one(ssh_project):
    p = ssh_project
    a = deploy_ok(p)
    p.write_app("v2")
    b = deploy_ok(p)
    back = p.cli("--headless", "rollback", a, "--json")
    assert back.returncode == 0, back.stdout + back.stderr
    assert build_states(p, b) == {"web1": "rolled-away", "web2": "rolled-away"}
    assert build_states(p, a) == {"web1": "complete", "web2": "complete"}, "the target carries no mark"
    p.write_app("v3")
    c = deploy_ok(p)
    # The mark survives the next deploy (keep_builds 3 leaves room for it) and shows in every listing.
    doc = builds_doc(p)
    for host in doc["hosts"]:
        marked = next(x for x in host["builds"] if x["id"] == b)
        assert marked["rolled_away"] is True and marked["status"] == "rolled-away", marked
    listing = p.cli("--headless", "builds")
    assert listing.returncode == 0 and re.search(rf"{b} +rolled-away ", listing.stdout), listing.stdout
    assert f"rolled-away: rolled back to {a} at " in listing.stdout, listing.stdout

    # The dry run names A and says why: the build live before C, per the history.
    dry = p.cli("--headless", "rollback", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert f"would switch {c} -> {a}" in dry.stdout and "the build live before the current one" in dry.stdout, dry.stdout

    # unmark B: under the lock, recorded like pin; B is good again on both hosts.
    unmark = p.cli("--headless", "unmark", b, "--json")
    assert unmark.returncode == 0, unmark.stdout + unmark.stderr
    assert build_states(p, b) == {"web1": "complete", "web2": "complete"}
    assert [r["event"] for r in p.history("web1")][-1] == "unmark" and p.history("web2")[-1]["build"] == b
    again = p.cli("--headless", "unmark", b)
    assert again.returncode == 1 and "not marked" in again.stdout, again.stdout

    # Prune with room for 2 good builds (C and B, the newest): A stays, the build live before the current one.
    pruned = p.cli("--headless", "prune", "--keep", "2", "--json")
    assert pruned.returncode == 0, pruned.stdout + pruned.stderr
    assert p.builds("web1") == p.builds("web2") == [a, b, c], summary(pruned)

    # rollback with no id: A (live before C), not B (newer, good again, but never live before C).
    roll = p.cli("--headless", "rollback", "--json")
    assert roll.returncode == 0, roll.stdout + roll.stderr
    assert p.current("web1") == p.current("web2") == a
    assert build_states(p, c) == {"web1": "rolled-away", "web2": "rolled-away"}
    record = p.history("web1")[-1]
    assert (record["event"], record["from"], record["to"]) == ("rollback", c, a)


def test_rolling_back_to_a_marked_build_by_name_works_and_clears_its_mark(ssh_project):
    p = ssh_project
    a = deploy_ok(p)
    p.write_app("v2")
    b = deploy_ok(p)
    assert p.cli("--headless", "rollback").returncode == 0  # no history of a rollback yet: to A, B marked
    assert build_states(p, b) == {"web1": "rolled-away", "web2": "rolled-away"}
    # With B marked and nothing live before A, there is no default target: refused, nothing changes.
    refused = p.cli("--headless", "rollback")
    assert refused.returncode == 1 and "skipped " + b + ": rolled-away" in refused.stdout, refused.stdout
    assert p.current("web1") == p.current("web2") == a
    named = p.cli("--headless", "rollback", b, "--dry-run")
    assert named.returncode == 0 and "rolled-away" in named.stdout, named.stdout
    forward = p.cli("--headless", "rollback", b)
    assert forward.returncode == 0, forward.stdout + forward.stderr
    assert p.current("web1") == p.current("web2") == b
    assert build_states(p, b) == {"web1": "complete", "web2": "complete"}, "the mark is cleared on commit"
    assert build_states(p, a) == {"web1": "complete", "web2": "complete"}, "a roll forward marks nothing"


def test_prune_keeps_the_build_live_before_the_current_one_whatever_its_age(ssh_project):
    p = ssh_project
    p.set("keep_builds", "6")
    ids = []
    for n in range(4):
        p.write_app(f"v{n}")
        ids.append(deploy_ok(p))
    # The team goes back past two builds to the oldest, then ships a fix.
    assert p.cli("--headless", "rollback", ids[0]).returncode == 0
    p.write_app("fix")
    fix = deploy_ok(p)
    dry = p.cli("--headless", "prune", "--keep", "2", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    removed = {h["host"]: h["removed"] for h in summary(dry)["hosts"]}
    # Kept: the fix (current), ids[0] (live before it); the 2 newest good are fix and ids[2]; ids[3] is rolled-away.
    assert {h: sorted(r) for h, r in removed.items()} == {h: sorted([ids[1], ids[3]]) for h in ("web1", "web2")}
