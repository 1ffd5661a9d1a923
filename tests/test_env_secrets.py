"""``env:``: the app's environment file written on every host by the deploy, a rollback getting back the env its
build ran with, and a secret's value found in no output, record or file releasetui writes but the env file."""

from __future__ import annotations

import json
import os
import stat

import pytest

from .support.helpers import Project, summary

CANARY = "canary-9f3b1e-do-not-leak"
ENV = ("env: {clear: {MODE: production}, secret: [DB_PASSWORD]}\n"
       "hooks: {before_activate: 'grep -c \"^DB_PASSWORD=\" .env'}")


def with_env(project: Project) -> None:
    project.config.write_text(project.config.read_text().replace("hosts:\n", ENV + "\nhosts:\n", 1))


def every_file(root) -> dict:
    """Every regular file under ``root`` (links not followed), but the env files themselves."""
    found = {}
    for folder, dirs, files in os.walk(root):
        if os.path.basename(folder) == "envs":
            continue
        for name in files:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                with open(path, "rb") as handle:
                    found[path] = handle.read()
    return found


@pytest.mark.ssh
def test_a_secret_reaches_the_env_file_and_nothing_else(ssh_project):
    p = ssh_project
    with_env(p)
    secret = {"DB_PASSWORD": CANARY}
    outputs = []
    for args in (("deploy", "--dry-run"), ("deploy", "--json"), ("builds", "--json"), ("history", "--json"),
                 ("diff",), ("config",)):
        proc = p.cli("--headless", *args, env=secret)
        assert proc.returncode == 0, (args, proc.stdout + proc.stderr)
        outputs.append(proc.stdout + proc.stderr)
    v1 = p.current("web1")
    for host, root in p.roots.items():
        env_link = root / "builds" / v1 / ".env"
        assert os.readlink(env_link).startswith("../../envs/")
        target = env_link.resolve()
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        assert target.read_text() == f"MODE='production'\nDB_PASSWORD='{CANARY}'\n"
        meta = json.loads((root / "builds" / v1 / ".releasetui-build.json").read_text())
        assert meta["env_digest"] == target.name
        for path, data in every_file(root).items():
            assert CANARY.encode() not in data, path
    assert all(CANARY not in text for text in outputs)
    assert "env .env: 2 name(s) (MODE, DB_PASSWORD)" in outputs[1]
    # The hook saw the file before any host switched.
    assert any(e.get("step") == "before_activate" and e.get("message") == "1"
               for e in map(json.loads, outputs[1].splitlines()) if e.get("event") == "step")

    # Unchanged: nothing is sent again (the file on the host is the same file); changed: a new file, and a
    # rollback gets back the one its build ran with.
    env_file = (p.roots["web1"] / "builds" / v1 / ".env").resolve()
    inode = env_file.stat().st_ino
    p.write_app("v2")
    v2 = summary(p.cli("--headless", "deploy", "--json", env=secret))["build_id"]
    assert (p.roots["web1"] / "builds" / v2 / ".env").resolve().stat().st_ino == inode
    p.write_app("v3")
    rotated = p.cli("--headless", "deploy", "--json", env={"DB_PASSWORD": "rotated"})
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    assert "DB_PASSWORD='rotated'" in (p.roots["web2"] / "current" / ".env").read_text()
    back = p.cli("--headless", "rollback", v2)
    assert back.returncode == 0, back.stdout + back.stderr
    assert CANARY in (p.roots["web2"] / "current" / ".env").read_text()


def test_a_missing_secret_refuses_before_anything_changes(local_project):
    p = local_project
    with_env(p)
    proc = p.cli("--headless", "deploy")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().endswith("env: secret DB_PASSWORD is not set in this machine's environment")
    assert not p.roots["box"].exists()


def test_prune_removes_env_files_no_build_uses(local_project):
    p = local_project
    with_env(p)
    for n in range(4):
        p.write_app(f"v{n}")
        proc = p.cli("--headless", "deploy", env={"DB_PASSWORD": f"value-{n}"})
        assert proc.returncode == 0, proc.stdout + proc.stderr
    envs = p.roots["box"] / "envs"
    linked = {os.path.basename(os.readlink(p.roots["box"] / "builds" / b / ".env")) for b in p.builds("box")}
    assert sorted(os.listdir(envs)) == sorted(linked) and len(linked) == 3, "keep_builds: 3, one env each"


def test_diff_says_the_env_changed_and_never_shows_a_value(local_project):
    p = local_project
    with_env(p)
    assert p.cli("--headless", "deploy", env={"DB_PASSWORD": CANARY}).returncode == 0
    same = p.cli("--headless", "diff", env={"DB_PASSWORD": CANARY})
    assert "env changed" not in same.stdout, same.stdout
    rotated = p.cli("--headless", "diff", "--json", env={"DB_PASSWORD": "rotated"})
    [group] = json.loads(rotated.stdout)["groups"]
    assert group["env"]["changed"] and "env changed" in group["summary"]
    unknown = p.cli("--headless", "diff")   # the secret is not set here: unknown, not "changed"
    assert unknown.returncode == 0 and "env changed" not in unknown.stdout
    assert CANARY not in rotated.stdout + same.stdout + unknown.stdout
