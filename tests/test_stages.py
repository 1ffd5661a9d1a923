"""Stages: ``--stage NAME`` merges ``hosts.NAME.yml`` over ``hosts.yml``; the stage is named wherever the fleet
is (history, locks, hooks), guarded by ``require_stage`` and ``confirm``, and two stages never share a root."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from releasetui.config import ConfigError, load_config

from .support.helpers import Project, summary

BASE = """project: shop
python: python3
keep_builds: 5
logs: [a.log, b.log]
healthcheck: {command: "true", timeout: 5}
stages: [staging, production]
roles: {web: {restart: "echo web"}}
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


def test_a_stage_file_is_deep_merged_over_the_main_one(tmp_path):
    main = write(tmp_path, "hosts.yml", BASE + "hosts:\n  web1: {address: 10.0.0.1, root: /srv/shop, roles: [web]}\n")
    write(tmp_path, "hosts.staging.yml", "keep_builds: 3\nlogs: [staging.log]\nhealthcheck: null\n"
                                         "roles: {web: {restart_timeout: 9}}\n"
                                         "hosts:\n  web1: {root: /srv/shop-staging}\n  web9: {address: 10.0.0.9, root: /srv/x}\n")
    config = load_config(main, "staging")
    assert config.stage == "staging" and config.stages == ("staging", "production")
    assert config.keep_builds == 3 and config.logs == ("staging.log",)           # scalars and lists replace
    assert config.healthcheck is None                                            # null removes the key
    web1 = config.host("web1")
    assert (web1.address, web1.root) == ("10.0.0.1", "/srv/shop-staging")        # mappings merge
    assert (web1.restart, web1.restart_timeout) == ("echo web", 9)
    assert [h.name for h in config.hosts] == ["web1", "web9"]
    plain = load_config(main)
    assert plain.stage is None and plain.keep_builds == 5 and plain.host("web1").root == "/srv/shop"


def test_an_error_names_the_file_and_line_the_value_came_from(tmp_path):
    main = write(tmp_path, "hosts.yml", BASE + "hosts:\n  web1: {address: a, root: /srv/shop}\n")
    write(tmp_path, "hosts.production.yml", "# production\nparallel: 0\n")
    with pytest.raises(ConfigError) as caught:
        load_config(main, "production")
    assert str(caught.value).startswith(f"{tmp_path / 'hosts.production.yml'}:2: parallel: ")


def test_an_unknown_stage_gets_did_you_mean_and_a_missing_file_is_named(tmp_path):
    main = write(tmp_path, "hosts.yml", BASE + "hosts:\n  web1: {address: a, root: /srv/shop}\n")
    with pytest.raises(ConfigError, match=r"no stage named 'prodution'; did you mean 'production'\?"):
        load_config(main, "prodution")
    with pytest.raises(ConfigError, match=r"hosts.production.yml: --stage: stage production's file is missing"):
        load_config(main, "production")
    with pytest.raises(ConfigError, match="is not a stage name"):
        load_config(main, "../etc")


def test_two_stages_never_share_a_root_on_one_machine(tmp_path):
    main = write(tmp_path, "hosts.yml", BASE.replace("stages: [staging, production]\n", "stages: [staging, production]\n"))
    write(tmp_path, "hosts.staging.yml", "hosts:\n  s1: {address: 10.0.0.5, root: /srv/shop}\n")
    write(tmp_path, "hosts.production.yml", "hosts:\n  p1: {address: 10.0.0.5, root: /srv/shop}\n")
    with pytest.raises(ConfigError, match=r"hosts.s1.root: /srv/shop on 10.0.0.5 is also stage production's"):
        load_config(main, "staging")
    write(tmp_path, "hosts.production.yml", "hosts:\n  p1: {address: 10.0.0.5, root: /srv/shop-prod}\n")
    assert load_config(main, "staging").host("s1").root == "/srv/shop"


def staged(project: Project, extra_main: str = "", production: str = "") -> None:
    """Turn a sample project into two stages: production gets the project's own hosts, staging other roots."""
    text = project.config.read_text()
    head, hosts = text.split("hosts:\n", 1)
    project.config.write_text(head + "stages: [staging, production]\n" + extra_main)
    project.config.with_name("hosts.production.yml").write_text(production + "hosts:\n" + hosts)
    staging_hosts = hosts.replace("root-", "staging-root-")
    project.config.with_name("hosts.staging.yml").write_text("hosts:\n" + staging_hosts)


def test_require_stage_refuses_to_run_without_one(local_project):
    p = local_project
    staged(p, extra_main="require_stage: true\n")
    proc = p.cli("--headless", "deploy")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "require_stage: is true: name a stage with --stage NAME" in proc.stderr
    assert not p.roots["box"].exists()
    ok = p.cli("--headless", "deploy", env={"RELEASETUI_STAGE": "production"})
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert p.current("box")


def test_confirm_on_a_stage_stops_a_headless_run_without_yes(local_project):
    p = local_project
    staged(p, production="confirm: true\n")
    refused = p.cli("--headless", "deploy", "--stage", "production")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "confirm: stage production asks for confirmation: add --yes" in refused.stderr
    assert not p.roots["box"].exists()
    assert p.cli("--headless", "deploy", "--stage", "staging").returncode == 0      # staging has no guard
    assert p.cli("--headless", "deploy", "--dry-run", "--stage", "production").returncode == 0
    done = p.cli("--headless", "--stage", "production", "deploy", "--yes", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert p.current("box") == summary(done)["build_id"]


@pytest.mark.ssh
def test_the_stage_is_in_history_locks_and_hooks_over_ssh(ssh_project):
    p = ssh_project
    marker = p.dir / "hook-env"
    staged(p, extra_main=f"hooks: {{local_after: 'echo \"$RELEASETUI_STAGE\" > {marker}'}}\n")
    proc = p.cli("--headless", "deploy", "--stage", "staging", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    build = summary(proc)["build_id"]
    assert summary(proc)["stage"] == "staging"
    assert all(json.loads(line).get("stage") == "staging" for line in proc.stdout.splitlines() if line.strip())
    again = p.cli("--headless", "deploy", "--stage", "staging")
    assert again.returncode == 0 and again.stdout.splitlines()[-2].startswith("deploy ok on stage staging in "), \
        again.stdout
    listed = p.cli("--headless", "history", "--stage", "staging")
    assert listed.returncode == 0 and all("on web1, web2 (stage staging)" in line
                                          for line in listed.stdout.splitlines()), listed.stdout
    assert json.loads(p.cli("--headless", "history", "--json", "--stage", "staging").stdout)[
        "operations"][0]["stage"] == "staging"
    build = summary(p.cli("--headless", "deploy", "--stage", "staging", "--json"))["build_id"]
    assert marker.read_text() == "staging\n"
    staging_roots = {name: root.with_name("staging-" + root.name) for name, root in p.roots.items()}
    for name, root in staging_roots.items():
        assert (root / "current").resolve().name == build
        records = [json.loads(line) for line in (root / "history.jsonl").read_text().splitlines()]
        assert all(r["stage"] == "staging" and r["host"] == name for r in records) and len(records) == 3
        assert not p.roots[name].exists(), "production's roots are untouched by a staging deploy"



def test_config_prints_the_merged_configuration_and_where_each_host_setting_came_from(local_project):
    p = local_project
    text = p.config.read_text().replace("hosts:\n", "roles: {web: {restart_timeout: 7}}\nhosts:\n", 1)
    p.config.write_text(text.replace("transport: local}", "transport: local, roles: [web]}"))
    staged(p)
    p.config.with_name("hosts.staging.yml").write_text(
        p.config.with_name("hosts.staging.yml").read_text() + "keep_builds: 9\n")
    proc = p.cli("config", "--stage", "staging", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["top"]["stage"] == "staging" and doc["top"]["keep_builds"] == 9
    box = doc["hosts"]["box"]["settings"]
    assert box["root"] == {"value": str(p.roots["box"]).replace("root-box", "staging-root-box"), "from": "hosts.box"}
    assert box["restart_timeout"] == {"value": 7, "from": "roles.web"}
    assert box["python"]["from"] == "top level" and box["healthcheck"] == {"value": None, "from": "default"}
    human = p.cli("config", "--stage", "staging").stdout
    assert "keep_builds: 9" in human and "    restart_timeout: 7.0  [roles.web]" in human
