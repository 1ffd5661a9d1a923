"""Where a rollback goes, and what prune keeps (issue 14, section 2): the pure rules over fake host states,
the history lines the read reports, the metadata mark, and the scripts that write it."""

from __future__ import annotations

import json
import subprocess

from releasetui import commands, rules
from releasetui.commands import ActivateRecords
from releasetui.commands.read import parse_move
from releasetui.metadata import meta_json, read_build, rolled_away_meta, unmarked_meta
from releasetui.models import BuildInfo, HostState, Move

A, B, C, D = "20310101010000", "20310101020000", "20310101030000", "20310101040000"
TOKEN = "0123456789abcdef"


def build(build_id: str, state: str = "complete", pinned: bool = False) -> BuildInfo:
    """A complete build in ``state`` (``complete``, ``failed``, ``rolled-away``, ``incomplete``)."""
    return BuildInfo(build_id, complete=state != "incomplete", failed=state == "failed",
                     rolled_away=state == "rolled-away", pinned=pinned, venv="0123456789abcdef-py3.11")


def host(name: str, current: str, builds: dict[str, str], moves: list[tuple], pinned=()) -> HostState:
    """A host serving ``current`` with ``builds`` (id -> state) and ``moves`` (event, from, to), an hour apart."""
    state = HostState(name, current=current, builds=[build(b, s, b in pinned) for b, s in sorted(builds.items())],
                      venvs=["0123456789abcdef-py3.11"])
    state.moves = [Move(event, f"2031-01-01T{i:02d}:00:00Z", source, target, f"{i:016x}")
                   for i, (event, source, target) in enumerate(moves)]
    for b in state.builds:
        b.current = b.id == current
    return state


# deploy A, deploy B, rollback A, deploy C
SCENARIO = [("deploy", None, A), ("deploy", A, B), ("rollback", B, A), ("deploy", A, C)]


def fleet(**overrides) -> dict:
    builds = {A: "complete", B: "rolled-away", C: "complete"}
    return {name: host(name, C, {**builds, **overrides.get(name, {})}, SCENARIO) for name in ("web1", "web2")}


# --- the default rollback target ---------------------------------------------------------------

def test_after_a_rollback_and_a_deploy_the_default_goes_to_the_build_live_before_not_the_newest_older_one():
    choice = rules.default_rollback_target(fleet())
    assert choice.target == A
    assert choice.reason.startswith("the build live before the current one (deploy at 2031-01-01T03:00:00Z:")
    assert f"{A} → {C}" in choice.reason
    # Even with B good again (unmarked), the build live before C is A: the history decides, not the ids.
    assert rules.default_rollback_target(fleet(web1={B: "complete"}, web2={B: "complete"})).target == A


def test_a_rolled_away_or_failed_build_in_the_chain_is_skipped_and_the_reason_says_so():
    moves = [("deploy", None, A), ("deploy", A, B), ("deploy", B, C)]
    states = {n: host(n, C, {A: "complete", B: "rolled-away" if n == "web1" else "failed", C: "complete"}, moves)
              for n in ("web1", "web2")}
    choice = rules.default_rollback_target(states)
    assert choice.target == A
    assert choice.reason.startswith("the newest good build live before the current one")
    assert f"skipped {B}: rolled-away on web1; failed on web2" in choice.reason
    # Missing on one host, incomplete on another: skipped too.
    states["web1"].builds = [b for b in states["web1"].builds if b.id != B]
    states["web2"].builds[1] = build(B, "incomplete")
    assert rules.default_rollback_target(states).target == A


def test_without_history_the_default_is_the_newest_good_build_older_than_current():
    states = {n: host(n, D, {A: "complete", B: "complete", C: "rolled-away", D: "complete"}, []) for n in ("a", "b")}
    choice = rules.default_rollback_target(states)
    assert choice.target == B and "no switch in the hosts' history" in choice.reason


def test_when_everything_live_before_is_marked_there_is_no_default_and_the_refusal_names_the_skips():
    moves = [("deploy", None, A), ("deploy", A, B), ("rollback", B, A)]
    states = {"web1": host("web1", A, {A: "complete", B: "rolled-away"}, moves)}
    choice = rules.default_rollback_target(states)
    assert choice.target is None and f"skipped {B}: rolled-away" in choice.reason
    plan = rules.plan_rollback(states)
    assert not plan.ok and f"skipped {B}: rolled-away" in str(plan.refusals[0])
    # Named, a marked build is allowed, and the plan says what it is.
    named = rules.plan_rollback(states, B)
    assert named.ok and named.hosts[0].target_rolled_away and not named.hosts[0].rolls_away
    assert "rolled-away there" in " ".join(__import__("releasetui.present", fromlist=["x"]).rollback_plan_lines(named))


def test_a_cycle_in_the_history_ends_and_each_build_counts_once():
    moves = [("deploy", None, A), ("deploy", A, B), ("rollback", B, A), ("deploy", A, B), ("rollback", B, A),
             ("deploy", A, C)]
    assert [b for b, _ in rules.live_before([Move(e, f"2031-01-01T{i:02d}:00:00Z", s, t) for i, (e, s, t)
                                             in enumerate(moves)], C)] == [A, B]


def test_a_gap_in_the_history_still_counts_the_build_a_record_came_from():
    moves = [Move("deploy", "2031-01-01T01:00:00Z", None, A), Move("rollback", "2031-01-01T05:00:00Z", C, B)]
    assert [b for b, _ in rules.live_before(moves, B)] == [C, A]


def test_the_same_operation_on_many_hosts_is_one_move():
    states = fleet()
    assert len(rules.fleet_moves(states)) == len(SCENARIO)


def test_the_plan_says_why_a_named_target_is_not_the_default():
    plan = rules.plan_rollback(fleet(), B)
    assert plan.ok and plan.reason.startswith(f"named; with no id the rollback would go to {A}: the build live")
    assert rules.plan_rollback(fleet(), A).reason.startswith("the build live before the current one")


def test_only_a_switch_back_to_an_older_build_marks_the_one_it_leaves():
    plan = rules.plan_rollback(fleet(), A)
    assert all(h.rolls_away for h in plan.hosts)
    forward = rules.plan_rollback({"web1": host("web1", A, {A: "complete", B: "rolled-away"}, [])}, B)
    assert not forward.hosts[0].rolls_away


# --- prune -----------------------------------------------------------------------------------

def test_prune_keeps_the_build_live_before_current_whatever_its_age_and_removes_rolled_away_first():
    # deploy A, B, C, D; rollback A (D rolled-away); deploy E.  keep 2: E and C are the newest good.
    e = "20310101050000"
    moves = [("deploy", None, A), ("deploy", A, B), ("deploy", B, C), ("deploy", C, D), ("rollback", D, A),
             ("deploy", A, e)]
    state = host("web1", e, {A: "complete", B: "complete", C: "complete", D: "rolled-away", e: "complete"}, moves)
    plan = rules.plan_prune(state, 2)
    assert sorted(plan.remove) == [B, D]
    assert plan.reasons[A] == "the newest build live and healthy before the current one"
    assert plan.reasons[D] == "rolled-away"
    # Pinned, B stays too.
    state.builds[1].pinned = True
    assert rules.plan_prune(state, 2).remove == [D]


def test_a_rolled_away_build_stays_while_the_good_builds_leave_room():
    state = fleet()["web1"]
    plan = rules.plan_prune(state, 3)
    assert plan.remove == [] and plan.reasons[B].startswith("rolled-away, kept while")
    assert rules.plan_prune(state, 2).remove == [B]


def test_a_deploy_prunes_as_if_its_build_were_current_and_keeps_the_one_it_replaces():
    state = fleet()["web1"]
    state.builds.append(build(D))
    plan = rules.plan_prune(state, 2, current=D)
    assert C not in plan.remove and plan.reasons[C] in ("the newest build live and healthy before the current one",
                                                         "among the 2 newest good builds")
    assert rules.last_good_live(state, D) == C


# --- unmark ------------------------------------------------------------------------------------

def test_unmark_is_refused_for_a_build_marked_nowhere_or_missing():
    states = fleet()
    assert rules.unmark_refusals(states, B) == []
    refused = rules.unmark_refusals(states, A)
    assert len(refused) == 1 and "not marked failed or rolled-away on any host" in str(refused[0])
    assert "does not exist there" in str(rules.unmark_refusals(states, D)[0])


# --- metadata and the read ----------------------------------------------------------------------

META = {"format": 2, "id": B, "project": "p", "created_at": "2031-01-01T02:00:00Z", "requirements_sha256": "a" * 64,
        "python_version": "3.11.7", "venv": "0123456789abcdef-py3.11", "complete": True, "failed": False,
        "failure": None}


def test_the_mark_is_read_back_by_the_one_reader_and_unmark_clears_it_and_failed():
    marked = rolled_away_meta(META, f"rolled back to {A} at 2031-01-01T03:00:00Z by alice")
    info = read_build(B, meta_json(marked), "../../venvs/0123456789abcdef-py3.11", ["0123456789abcdef-py3.11"])
    assert (info.state, info.good, info.status) == ("rolled-away", False, "rolled-away")
    assert info.rolled_away_note.startswith(f"rolled back to {A}") and info.to_dict()["rolled_away"] is True
    cleared = unmarked_meta({**marked, "failed": True, "failure": "unhealthy"})
    again = read_build(B, meta_json(cleared), "../../venvs/0123456789abcdef-py3.11", ["0123456789abcdef-py3.11"])
    assert again.state == "complete" and again.good
    bad = read_build(B, meta_json({**META, "rolled_away": "yes"}), "../../venvs/0123456789abcdef-py3.11",
                     ["0123456789abcdef-py3.11"])
    assert bad.damaged == "metadata 'rolled_away' is not true or false"


def test_only_committed_switches_with_well_formed_ids_become_moves():
    ok = {"event": "rollback", "when": "2031-01-01T03:00:00Z", "from": B, "to": A, "outcome": "ok", "op": TOKEN}
    assert parse_move(json.dumps(ok)) == Move("rollback", "2031-01-01T03:00:00Z", B, A, TOKEN)
    for bad in ({**ok, "outcome": "switched-back"}, {**ok, "event": "prune"}, {**ok, "to": "../../etc"},
                {**ok, "when": "yesterday"}, {**ok, "to": None}):
        assert parse_move(json.dumps(bad)) is None, bad
    assert parse_move("not json") is None and parse_move("[1]") is None
    assert parse_move(json.dumps({**ok, "from": "$(id)", "op": "x"})) == Move("rollback", ok["when"], None, A, None)


def test_the_read_reports_the_last_committed_switches_from_a_regular_history_file(tmp_path):
    root = tmp_path / "root"
    (root / "builds").mkdir(parents=True)
    lines = [{"event": "deploy", "when": f"2031-01-01T{i:02d}:00:00Z", "from": None if i == 0 else f"2031010100{i - 1:02d}00",
              "to": f"2031010100{i:02d}00", "outcome": "ok"} for i in range(20)]
    lines.insert(5, {"event": "deploy", "when": "2031-01-01T05:30:00Z", "to": "20310101999999", "outcome": "failed"})
    text = "\n".join(json.dumps(r, sort_keys=True) for r in lines) + "\n{garbage\n"
    (root / "history.jsonl").write_text(text)
    out = subprocess.run(["sh", "-c", commands.read_script(str(root))], capture_output=True, text=True).stdout
    state = commands.parse_read("h", out)
    assert [m.target for m in state.moves] == [f"2031010100{i:02d}00" for i in range(8, 20)]
    (root / "history.jsonl").unlink()
    (root / "history.jsonl").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "elsewhere").write_text(text)
    out = subprocess.run(["sh", "-c", commands.read_script(str(root))], capture_output=True, text=True).stdout
    assert commands.parse_read("h", out).moves == [], "a symlink out of the root is not followed"


def test_the_marks_are_written_only_when_the_fleet_commits():
    records = ActivateRecords(history={"event": "rollback"},
                              commit_metas=((C, '{"rolled_away": true}'), (A, '{"id": "it\'s"}')))
    script = commands.activate_script("/srv/app", TOKEN, target=A, previous=C, restart=None, restart_timeout=5,
                                      python="python3", health=None, hooks=[], hook_env={}, records=records,
                                      verdict_timeout=60)
    commit = script.index('if [ "$_verdict" = COMMIT ]')
    owner = script.index("owns_lock || { echo LOSTLOCK", commit)
    mark = script.index(f"M={C};")
    assert commit < owner < mark < script.index('_record "$_pre" ok') < script.index('echo "BACK')
    assert """'{"id": "it'"'"'s"}'""" in script, "the metadata is quoted"
    assert subprocess.run(["sh", "-n"], input=script, text=True).returncode == 0
