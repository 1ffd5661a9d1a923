"""Hooks end to end over two real loopback sshd hosts whose hooks differ: where and when each runs, what it gets,
what its failure does, and what --dry-run says.

The hosts are two directories on this machine, so a hook on one "host" can look at the other's root: that is how
these tests prove "after every host has a complete build and before any switch".
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import yaml

from .support.helpers import Project, events, summary

pytestmark = pytest.mark.ssh


def edit(p: Project, change) -> None:
    """Change hosts.yml as a document (``change(doc)``)."""
    doc = yaml.safe_load(p.config.read_text())
    change(doc)
    p.config.write_text(yaml.safe_dump(doc, sort_keys=False))


def git_source(p: Project, message: str = "first version") -> str:
    """Make the app a git repository with one commit; returns the commit id."""
    git = ["git", "-C", str(p.source), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", str(p.source)], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-q", "-m", message], check=True)
    return subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()


def deploy(p: Project, *args: str) -> subprocess.CompletedProcess:
    """A --json deploy in a fresh second (plain build ids)."""
    return p.cli("--headless", "deploy", "--json", *args)


def env_file(path) -> dict:
    """``NAME=value`` lines (as ``env`` prints them) -> dict."""
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


# Writes what a hook sees to <root>/<name>.seen: its environment, where it runs, which python, and, for BOTH hosts'
# roots, where current points and whether the new build's metadata says complete.
PROBE = r"""#!/bin/sh
out="$RELEASETUI_ROOT/$1.seen"
env | grep '^RELEASETUI_' | sort > "$out"
echo "PWD=$PWD" >> "$out"
echo "PYTHON=$(command -v python)" >> "$out"
for r in {roots}; do
  echo "CURRENT $(basename "$r")=$(readlink "$r/current")" >> "$out"
  if grep -q '"complete": true' "$r/builds/$RELEASETUI_BUILD_ID/.releasetui-build.json" 2>/dev/null; then
    echo "COMPLETE $(basename "$r")=yes" >> "$out"; else echo "COMPLETE $(basename "$r")=no" >> "$out"; fi
done
echo "$1 ran on $RELEASETUI_HOST"
"""


def probe(p: Project) -> str:
    script = p.dir / "probe.sh"
    script.write_text(PROBE.replace("{roots}", " ".join(str(r) for r in p.roots.values())))
    script.chmod(0o755)
    return str(script)


def test_hooks_run_where_and_when_they_should_with_their_environment(ssh_project):
    p = ssh_project
    commit = git_source(p)
    script = probe(p)
    migrations = p.dir / "migrations.log"

    def hooks(doc):
        doc["hooks"] = {
            "before_activate": [f"{script} before",
                                {"command": f"echo migrating; echo $RELEASETUI_HOST >> {migrations}", "once": True}],
            "after_activate": f"{script} after",
            "local_before": "env | grep '^RELEASETUI_' | sort > local_before.seen; pwd >> local_before.seen",
            "local_after": "env | grep '^RELEASETUI_' | sort > local_after.seen",
            "local_failed": "touch local_failed.seen",
        }
        # web2 differs: its own after_activate replaces the top-level one.
        doc["hosts"]["web2"]["hooks"] = {"after_activate": "echo web2 warms its own cache; touch $RELEASETUI_ROOT/warm"}
    edit(p, hooks)

    first = deploy(p)
    assert first.returncode == 0, first.stdout + first.stderr
    v1 = summary(first)["build_id"]
    second = deploy(p)
    assert second.returncode == 0, second.stdout + second.stderr
    v2 = summary(second)["build_id"]
    steps = events(second)

    # before_activate: on each host, inside the NEW build with its venv first on PATH, once every host's build is
    # complete and before any host switched.
    for host in ("web1", "web2"):
        root = p.roots[host]
        seen = env_file(root / "before.seen")
        assert seen["PWD"] == str(root / "builds" / v2)
        assert seen["PYTHON"] == str(root / "builds" / v2 / "env" / "bin" / "python")
        assert seen["RELEASETUI_BUILD_ID"] == v2 and seen["RELEASETUI_PREVIOUS_BUILD_ID"] == v1
        assert seen["RELEASETUI_OPERATION"] == "deploy" and seen["RELEASETUI_HOST"] == host
        assert seen["RELEASETUI_ROOT"] == str(root) and seen["RELEASETUI_GIT_COMMIT"] == commit
        for other in ("root-web1", "root-web2"):
            assert seen[f"COMPLETE {other}"] == "yes", f"{host}'s hook ran before {other} had a complete build"
            assert seen[f"CURRENT {other}"] == f"builds/{v1}", f"{host}'s hook ran after {other} switched"
    order = [(e["host"], e["step"], e["status"]) for e in steps if e["status"] in ("ok", "failed")]
    last_build = max(i for i, e in enumerate(order) if e[1] == "build")
    hook_steps = [i for i, e in enumerate(order) if e[1] == "before_activate"]
    first_switch = min(i for i, e in enumerate(order) if e[1] == "switch")
    assert last_build < min(hook_steps) and max(hook_steps) < first_switch, order

    # `once`: the migration ran on one host per deploy, the same one each time (the first in config order).
    assert migrations.read_text() == "web1\nweb1\n"
    output = [(e["host"], e["message"]) for e in steps if e["step"] == "before_activate" and e["status"] == "output"]
    assert ("web1", "migrating") in output and ("web2", "migrating") not in output
    assert ("web1", "before ran on web1") in output and ("web2", "before ran on web2") in output

    # after_activate: web1 runs the top-level hook in the build just switched to; web2 its own.
    seen = env_file(p.roots["web1"] / "after.seen")
    assert seen["PWD"] == str(p.roots["web1"] / "builds" / v2) and seen["CURRENT root-web1"] == f"builds/{v2}"
    assert seen["RELEASETUI_BUILD_ID"] == v2 and seen["RELEASETUI_HOST"] == "web1"
    assert not (p.roots["web2"] / "after.seen").exists() and (p.roots["web2"] / "warm").exists()
    assert ("web2", "after_activate", "output", "web2 warms its own cache") in \
        [(e["host"], e["step"], e["status"], e["message"]) for e in steps]

    # Local hooks: here, in the config's directory, with every host named.
    local = env_file(p.dir / "local_before.seen")
    assert local["RELEASETUI_HOSTS"] == "web1 web2" and local["RELEASETUI_OPERATION"] == "deploy"
    assert local["RELEASETUI_BUILD_ID"] == v2 and local["RELEASETUI_PREVIOUS_BUILD_ID"] == v1
    assert local["RELEASETUI_GIT_COMMIT"] == commit and "RELEASETUI_HOST" not in local
    assert (p.dir / "local_before.seen").read_text().splitlines()[-1] == str(p.dir)
    assert env_file(p.dir / "local_after.seen")["RELEASETUI_BUILD_ID"] == v2
    assert not (p.dir / "local_failed.seen").exists()
    # A before_activate hook costs one round trip on the hosts that have one; nothing else changes.
    assert [h["round_trips"] for h in summary(second)["hosts"]] == [4, 4]

    # after_rollback runs on a rollback (and gets the rollback's ids); before_activate does not.
    edit(p, lambda doc: doc["hooks"].update({"after_rollback": f"{script} rollback"}))
    back = p.cli("--headless", "rollback", "--json")
    assert back.returncode == 0, back.stdout + back.stderr
    for host in ("web1", "web2"):
        seen = env_file(p.roots[host] / "rollback.seen")
        assert seen["RELEASETUI_OPERATION"] == "rollback" and seen["RELEASETUI_BUILD_ID"] == v1
        assert seen["RELEASETUI_PREVIOUS_BUILD_ID"] == v2 and seen["PWD"] == str(p.roots[host] / "builds" / v1)
    assert env_file(p.dir / "local_after.seen")["RELEASETUI_OPERATION"] == "rollback"
    assert migrations.read_text() == "web1\nweb1\n"


def test_once_hook_runs_on_the_host_it_names_and_is_refused_when_that_host_is_not_targeted(ssh_project):
    p = ssh_project
    migrations = p.dir / "migrations.log"
    edit(p, lambda doc: doc.update(hooks={"before_activate": [
        {"command": f"echo $RELEASETUI_HOST >> {migrations}", "once": True, "host": "web2"}]}))
    assert deploy(p).returncode == 0
    assert deploy(p).returncode == 0
    assert migrations.read_text() == "web2\nweb2\n"

    alone = p.cli("--headless", "deploy", "--host", "web1")
    assert alone.returncode == 2, alone.stdout + alone.stderr
    assert alone.stderr.strip().endswith("runs once, on web2, which this deploy does not target: add --host web2")
    assert "Traceback" not in alone.stderr and len(alone.stderr.strip().splitlines()) == 1
    assert migrations.read_text() == "web2\nweb2\n"


def test_a_failing_before_activate_aborts_every_host_before_any_switch(ssh_project):
    p = ssh_project
    first = deploy(p)
    assert first.returncode == 0, first.stdout + first.stderr
    v1 = summary(first)["build_id"]
    restarts = (p.dir / "restarts.log").read_text()

    def hooks(doc):
        doc["hooks"] = {"before_activate": "echo checking $RELEASETUI_HOST",
                        "local_after": "touch local_after.seen", "local_failed": "touch local_failed.seen"}
        # Only web2's migration fails; web1's passes.
        doc["hosts"]["web2"]["hooks"] = {"before_activate": "echo applying 002_users; "
                                                            "echo 'column users.email already exists' >&2; exit 3"}
    edit(p, hooks)
    p.write_app("v2")
    proc = p.cli("--headless", "deploy")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # The hook's output is in the step lines, with the host's name, and its last line in the outcome.
    assert any(" web2 " in line and "before_activate" in line and "column users.email already exists" in line
               for line in proc.stdout.splitlines()), proc.stdout
    assert "deploy web2: failed: before_activate 'echo applying 002_users;" in proc.stdout
    assert "exit 3: column users.email already exists; nothing switched anywhere" in proc.stdout
    assert "deploy web1: aborted: not switched" in proc.stdout
    for host in ("web1", "web2"):
        assert p.current(host) == v1
        assert p.builds(host) == [v1], "the partial build is removed everywhere"
        assert not (p.roots[host] / "deploy.lock").exists()
    assert (p.dir / "restarts.log").read_text() == restarts, "nothing restarted"
    assert (p.dir / "local_failed.seen").exists() and not (p.dir / "local_after.seen").exists()

    # A hook that runs out of time fails the same way.
    edit(p, lambda doc: doc["hosts"]["web2"].update(hooks={"before_activate": {"command": "sleep 30", "timeout": 1}}))
    started = time.monotonic()
    slow = deploy(p)
    assert slow.returncode == 1 and time.monotonic() - started < 20, slow.stdout
    assert "before_activate 'sleep 30' failed: timed out after 1s" in summary(slow)["hosts"][1]["message"]
    assert p.current("web1") == p.current("web2") == v1 and p.builds("web2") == [v1]


def test_a_failing_after_hook_switches_every_host_back(ssh_project):
    p = ssh_project
    first = deploy(p)
    assert first.returncode == 0
    v1 = summary(first)["build_id"]
    # web1's warm-up fails after its switch; web2's passes: both must end on v1.
    edit(p, lambda doc: doc["hosts"]["web1"].update(hooks={"after_activate": "echo cache cold >&2; exit 1"}))
    bad = deploy(p)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    v2 = summary(bad)["build_id"]
    hosts = {h["host"]: h for h in summary(bad)["hosts"]}
    assert hosts["web1"]["status"] == "failed" and hosts["web2"]["status"] == "aborted"
    assert f"build {v2}: after_activate 'echo cache cold >&2; exit 1' failed: exit 1: cache cold; switched back " \
           f"to {v1}" in hosts["web1"]["message"]
    assert p.current("web1") == p.current("web2") == v1
    doc = json.loads((p.roots["web1"] / "builds" / v2 / ".releasetui-build.json").read_text())
    assert doc["failed"] is True

    # after_rollback fails on web2 only: the rollback is undone on both.
    edit(p, lambda doc: (doc["hosts"]["web1"].pop("hooks"),
                         doc["hosts"]["web2"].update(hooks={"after_rollback": "exit 7"})))
    good = deploy(p)
    assert good.returncode == 0, good.stdout + good.stderr
    v3 = summary(good)["build_id"]
    back = p.cli("--headless", "rollback", v1, "--json")
    assert back.returncode == 1, back.stdout + back.stderr
    assert "after_rollback 'exit 7' failed: exit 7" in {h["host"]: h for h in summary(back)["hosts"]}["web2"]["message"]
    assert p.current("web1") == p.current("web2") == v3


def test_dry_run_prints_the_hooks_it_would_run_and_runs_none(ssh_project):
    p = ssh_project
    assert deploy(p).returncode == 0
    marker = p.dir / "ran"

    def hooks(doc):
        doc["hooks"] = {"before_activate": [{"command": f"touch {marker}.migrate", "once": True},
                                            f"touch {marker}.assets"],
                        "after_activate": f"touch {marker}.warm",
                        "local_before": f"touch {marker}.local", "local_after": "echo notify"}
        doc["hosts"]["web2"]["hooks"] = {"after_activate": []}
    edit(p, hooks)
    proc = p.cli("--headless", "deploy", "--dry-run")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = proc.stdout
    assert f"# here: would run local_before:\nwould run here, before anything changes: touch {marker}.local" in text
    assert "# web1: would run before_activate:\nwould run in builds/" in text
    assert f"before any host switches (once: this host only): touch {marker}.migrate" in text
    assert text.count(f"touch {marker}.migrate") == 1, "the once hook is listed for web1 only"
    # The same hook on both hosts is listed once, for both.
    assert text.count(f"before any host switches: touch {marker}.assets") == 1
    assert "# would run before_activate: the same script on 2 hosts (web1, web2):\nwould run in builds/" in text
    assert "# web1: would run after_activate:" in text and "# web2: would run after_activate:" not in text
    assert "would run here, once it succeeded: echo notify" in text
    assert not list(p.dir.glob("ran*")), "a dry run runs no hook"


def test_skip_hooks_runs_none_and_says_so_in_one_warning(local_project):
    p = local_project
    marker = p.dir / "hook-ran"
    p.set("hooks", f"{{local_before: 'touch {marker}', after_activate: 'touch {marker}'}}")
    proc = p.cli("--headless", "deploy", "--skip-hooks")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr == "releasetui: warning: --skip-hooks: not running local_before, after_activate\n"
    assert not marker.exists() and p.current("box")
    assert p.cli("--headless", "deploy").returncode == 0
    assert marker.exists()
