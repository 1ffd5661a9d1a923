"""Releases from git (``deploy --ref``, ``require_clean``, the subject in ``builds``) and ``diff`` (what a deploy or
a rollback would change), over two real loopback sshd hosts; the diff's pure logic on its own first."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import pytest

from releasetui.config import load_config
from releasetui.diffing import Commit, DiffReport, DiffSide, build_diff, requirement_lines
from releasetui.operations import Operations

from .support.helpers import Project, builds_doc, summary


def entry(sha: str, kind: str = "f", mode: int = 0o644) -> list:
    return [kind, mode, sha * 64 if kind == "f" else None, 1, None]


# --- the diff itself, pure ------------------------------------------------------------------

def test_files_requirements_and_commits_make_one_summary_line():
    old = DiffSide("20261128100000", "20261128100000", {"app.py": entry("a"), "old.py": entry("b"),
                                                        "static": entry("", "d"), "static/x.css": entry("c")},
                   "flask==3.0.0\n# pinned\nredis==5.0.0\n", "1" * 40, current=True)
    new = DiffSide("source", None, {"app.py": entry("A"), "static": entry("", "d"), "static/x.css": entry("c"),
                                    "static/y.css": entry("d"), "run.sh": entry("e", mode=0o755)},
                   "flask==3.0.0\nredis==5.0.1  # cache\n", "2" * 40)
    commits = [Commit("2" * 40, "Add cache", "+"), Commit("3" * 40, "Fix login", "+"),
               Commit("4" * 40, "Bump flask", "+"), Commit("5" * 40, "Tidy", "+")]
    diff = build_diff(old, new, commits)
    assert (diff.added, diff.removed, diff.changed) == (["run.sh", "static/y.css"], ["old.py"], ["app.py"])
    assert diff.requirements_added == ["redis==5.0.1"] and diff.requirements_removed == ["redis==5.0.0"]
    assert diff.summary() == ("4 files changed (2 added, 1 removed), requirements: +redis==5.0.1, -redis==5.0.0, "
                              "4 commits: Add cache; Fix login; Bump flask; …")
    text = "\n".join(diff.lines())
    assert "    + run.sh\n    + static/y.css\n" in text and "    - old.py" in text and "    ~ app.py" in text
    assert "    -redis==5.0.0\n    +redis==5.0.1  # cache" in text
    assert "    + 2222222222 Add cache" in text


def test_a_rollback_undoes_commits_and_unknowns_are_said():
    old = DiffSide("b2", "b2", {"a": entry("x")}, "x==1\n", "2" * 40)
    new = DiffSide("b1", "b1", None, None, None)
    diff = build_diff(old, new, [Commit("2" * 40, "Risky change", "-")])
    assert diff.summary() == "files unknown, 1 commit undone: Risky change"
    assert "files: unknown: b1 has no file list" in "\n".join(diff.lines())
    same = build_diff(old, DiffSide("b2", "b2", {"a": entry("x")}, "x==1\n", "2" * 40))
    assert same.summary() == "no changes (same files, requirements and commit)" and same.commits == []
    assert requirement_lines("  # c\nflask>=3 # why\n\nredis\n") == ["flask>=3", "redis"]


def test_hosts_with_the_same_diff_are_grouped():
    def side(label, sha):
        return DiffSide(label, label, {"app.py": entry(sha)}, "", None)
    same = build_diff(side("b1", "a"), side("source", "b"))
    other = build_diff(side("b0", "c"), side("source", "b"))
    report = DiffReport.grouped("current", "source", {"web1": same, "web2": other, "web3": same},
                                {"web4": "build b9 does not exist there", "web5": "build b9 does not exist there"})
    assert [hosts for _, hosts in report.groups] == [["web1", "web3"], ["web2"]]
    assert report.summary() == ("web1, web3: 1 file changed; web2: 1 file changed; web4, web5: build b9 does not "
                                "exist there")
    assert report.exit_code == 1
    assert report.lines()[0] == "web1, web3: b1 -> source"
    assert json.loads(json.dumps(report.to_dict()))["groups"][0]["hosts"] == ["web1", "web3"]


# --- over SSH ------------------------------------------------------------------------------------

def git(p: Project, *args: str) -> str:
    return subprocess.run(["git", "-C", str(p.source), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                          capture_output=True, text=True, check=True).stdout.strip()


def commit_all(p: Project, message: str) -> str:
    git(p, "add", "-A")
    git(p, "commit", "-q", "-m", message)
    return git(p, "rev-parse", "HEAD")


@pytest.fixture
def repo_project(ssh_project) -> Project:
    """The two-host project with its app in a git repository (two commits, tag v1 on the first)."""
    p = ssh_project
    subprocess.run(["git", "init", "-q", str(p.source)], check=True)
    commit_all(p, "First version")
    git(p, "tag", "v1")
    return p


@pytest.mark.ssh
def test_deploy_ref_ships_exactly_that_commit_and_records_it(repo_project):
    p = repo_project
    v1_commit = git(p, "rev-parse", "v1")
    p.write_app("v2", "tinylib==2.0")
    v2_commit = commit_all(p, "Second version: tinylib 2")
    # The working tree now differs from every commit: a changed file, an untracked one.
    (p.source / "app.py").write_text("VERSION = 'uncommitted'\n")
    (p.source / "scratch.py").write_text("print('not committed')\n")
    (p.source / "run.sh").write_text("#!/bin/sh\n")

    p.set("require_clean", "true")
    dirty = p.cli("--headless", "deploy")
    assert dirty.returncode == 2, dirty.stdout + dirty.stderr
    assert dirty.stderr == (f"releasetui: {p.source} has uncommitted changes and require_clean is set: commit them, "
                            "or deploy a commit with --ref\n")
    assert p.builds("web1") == [], "nothing was touched"

    trees = set(Path(tempfile.gettempdir()).glob("releasetui-ref-*"))
    proc = p.cli("--headless", "deploy", "--ref", "v1", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    b1 = summary(proc)["build_id"]
    for host in ("web1", "web2"):
        build = p.roots[host] / "builds" / b1
        assert (build / "app.py").read_text() == "VERSION = 'v1'\n"
        assert not (build / "scratch.py").exists() and not (build / "notes.tmp").exists()
        assert sorted(json.loads((build / ".releasetui-manifest.json").read_text())["files"]) == \
            ["app.py", "requirements.txt", "static", "static/big.txt"]
        meta = json.loads((build / ".releasetui-build.json").read_text())
        assert (meta["git_ref"], meta["git_commit"], meta["git_subject"], meta["git_dirty"]) == \
            ("v1", v1_commit, "First version", False)
        assert meta["source"] == str(p.source)
    second = p.cli("--headless", "deploy", "--ref", "HEAD", "--json")
    assert second.returncode == 0, second.stdout + second.stderr
    b2 = summary(second)["build_id"]
    assert (p.roots["web2"] / "builds" / b2 / "app.py").read_text() == "VERSION = 'v2'\n"
    assert set(Path(tempfile.gettempdir()).glob("releasetui-ref-*")) == trees, "the temporary trees are removed"

    # builds shows the subject (and --json the ref, commit and subject).
    table = p.cli("--headless", "builds")
    assert table.returncode == 0
    # The table row (the fleet summary above the table names builds too, without their commit).
    row = next(line for line in table.stdout.splitlines() if line.strip().startswith(b2) and v2_commit[:8] in line)
    assert row.rstrip().endswith("Second version: tinylib 2") and v2_commit[:8] in row
    first = next(b for b in builds_doc(p)["hosts"][0]["builds"] if b["id"] == b1)
    assert (first["git_ref"], first["git_subject"]) == ("v1", "First version")

    for bad, said in (("no-such-branch", "--ref no-such-branch: no such commit, tag or branch"),
                      ("--upload-pack=touch /tmp/x", "not a git ref")):
        refused = p.cli("--headless", "deploy", f"--ref={bad}")
        assert refused.returncode == 2 and said in refused.stderr, refused.stderr
        assert len(refused.stderr.splitlines()) == 1 and "Traceback" not in refused.stderr


@pytest.mark.ssh
def test_require_clean_refuses_a_source_outside_git(ssh_project):
    p = ssh_project
    p.set("require_clean", "true")
    proc = p.cli("--headless", "deploy")
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith("is not in a git repository and require_clean is set: deploy from a git "
                                        "checkout")


@pytest.mark.ssh
def test_diff_shows_files_requirements_and_commits_grouped_by_host_in_one_round_trip(repo_project):
    p = repo_project
    first = p.cli("--headless", "deploy", "--json")
    assert first.returncode == 0, first.stdout + first.stderr
    b1 = summary(first)["build_id"]
    # web2 moves on alone: the hosts now differ.
    p.write_app("v2", "tinylib==2.0")
    (p.source / "static" / "new.css").write_text("body {}\n")
    commit_all(p, "Second version: tinylib 2")
    second = p.cli("--headless", "deploy", "--host", "web2", "--json")
    assert second.returncode == 0, second.stdout + second.stderr
    b2 = summary(second)["build_id"]
    (p.source / "app.py").write_text("VERSION = 'v3'\n")
    c3 = commit_all(p, "Third: say v3")

    proc = p.cli("--headless", "diff")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    web1 = lines.index(f"web1: {b1} (current, git {git(p, 'rev-parse', 'v1')[:10]}) -> source (git {c3[:10]})")
    web2 = next(i for i, line in enumerate(lines) if line.startswith(f"web2: {b2} (current"))
    assert lines[web1 + 1] == ("  3 files changed (1 added), requirements: +tinylib==2.0, -tinylib==1.0, 2 commits: "
                               "Third: say v3; Second version: tinylib 2")
    assert lines[web2 + 1] == "  1 file changed, 1 commit: Third: say v3"
    assert "    + static/new.css" in lines[web1:web2] and "    ~ app.py" in lines[web2:]
    assert "    -tinylib==1.0" in lines[web1:web2] and "    +tinylib==2.0" in lines[web1:web2]

    # A rollback's diff: web2 back to b1 takes a commit and a requirement away; web1 lacks nothing (already there).
    back = p.cli("--headless", "diff", "current", b1, "--host", "web2", "--json")
    assert back.returncode == 0, back.stderr
    doc = json.loads(back.stdout)
    group = doc["groups"][0]
    assert group["hosts"] == ["web2"] and group["from"]["build_id"] == b2 and group["to"]["build_id"] == b1
    assert group["files"] == {"added": [], "removed": ["static/new.css"], "changed": ["app.py", "requirements.txt"]}
    assert [c["side"] for c in group["commits"]] == ["-"]
    assert group["summary"] == ("3 files changed (1 removed), requirements: +tinylib==1.0, -tinylib==2.0, 1 commit "
                                "undone: Second version: tinylib 2")

    missing = p.cli("--headless", "diff", b2)
    assert missing.returncode == 1
    assert missing.stdout.splitlines()[-1] == f"web1: build {b2} does not exist there"
    bad = p.cli("--headless", "diff", "nope")
    assert bad.returncode == 2 and bad.stderr.startswith("releasetui: invalid build id 'nope'")

    # The TUI's confirmations get the one line, for exactly one round trip per host.
    config = load_config(p.config)
    ops = Operations(config)
    try:
        line = ops.diff_summary(config.hosts, to_id=b1)
        assert line == ("web1: no changes (same files, requirements and commit); web2: 3 files changed (1 removed), "
                        "requirements: +tinylib==1.0, -tinylib==2.0, 1 commit undone: Second version: tinylib 2")
        assert [ops.round_trips(h) for h in config.hosts] == [1, 1]
    finally:
        ops.close()


# --- the TUI shows the subject and the diff summary --------------------------------------------

class _FakeOperations:
    """The core's read side: one host with two builds from git, one without a subject."""

    def __init__(self, config, report, pool):
        self.config = config

    def states(self, hosts):
        from releasetui.models import BuildInfo, HostState
        builds = [BuildInfo("20261128090000", complete=True, git_commit="1" * 40, git_subject="First version"),
                  BuildInfo("20261128100000", complete=True, current=True, git_commit="2" * 40,
                            git_subject="Fix the login form so that long e-mail addresses fit " + "x" * 40)]
        return {"web1": HostState("web1", current="20261128100000", builds=builds)}


async def test_the_builds_table_shows_each_builds_subject_and_filters_on_it(tmp_path):
    from pathlib import Path as _Path

    from textual.widgets import DataTable

    from releasetui.config import Config, HostConfig
    from releasetui.tui.app import ReleaseApp
    config = Config(path=_Path("/srv/demo/hosts.yml"), project="demo", source=_Path("/srv/demo/app"),
                    requirements="requirements.txt", python="python3", keep_builds=5, restart=None, logs=(),
                    hosts=(HostConfig("web1", "/var/www/demo", address="web1.example.com"),))
    app = ReleaseApp(config, operations_factory=_FakeOperations, refresh_interval=None)
    async with app.run_test(size=(160, 30)) as pilot:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        table = app.main.query_one("#builds", DataTable)
        assert str(table.get_cell("20261128090000", "subject")) == "First version"
        assert str(table.get_cell("20261128100000", "subject")).startswith("Fix the login form")
        assert str(table.get_cell("20261128100000", "subject")).endswith("…")
        app.main.filter_text = "first version"
        app.main.fill_builds()
        assert [row.value for row in table.rows] == ["20261128090000"]


def test_the_confirmations_show_the_diff_summary():
    from datetime import datetime, timezone
    from pathlib import Path as _Path

    from releasetui.config import Config, HostConfig
    from releasetui.models import BuildInfo, HostState
    from releasetui.tui import confirm
    config = Config(path=_Path("/srv/demo/hosts.yml"), project="demo", source=_Path("/srv/demo/app"),
                    requirements="requirements.txt", python="python3", keep_builds=5, restart=None, logs=(),
                    hosts=(HostConfig("web1", "/var/www/demo", address="web1.example.com"),))
    builds = [BuildInfo("20261128090000", complete=True, venv="0" * 16 + "-py3.11"),
              BuildInfo("20261128100000", complete=True, current=True, venv="0" * 16 + "-py3.11")]
    states = {"web1": HostState("web1", current="20261128100000", builds=builds, python_version="3.11.7")}
    now = datetime(2026, 11, 28, 12, tzinfo=timezone.utc)
    line = "12 files changed, requirements: +redis==5.0.1, 3 commits: Add cache; Fix login; Tidy"
    shown = confirm.deploy(config, config.hosts, states, "a" * 64, now, diff_summary=line)
    # Longer than the dialog is wide: it wraps under itself, not under the label.
    assert ("Changes       12 files changed, requirements: +redis==5.0.1, 3\n"
            "              commits: Add cache; Fix login; Tidy\n") in shown.body.plain, shown.body.plain
    back = confirm.rollback(config, config.hosts, states, "20261128090000", now, timezone.utc,
                            diff_summary="2 commits undone: x; y")
    assert "Changes: 2 commits undone: x; y\n" in back.body.plain
    assert "Changes" not in confirm.deploy(config, config.hosts, states, "a" * 64, now).body.plain
