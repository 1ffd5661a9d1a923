"""The CircleCI config does what the seed's does: tests on every push, `releasetui --headless deploy` on master only."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml

from releasetui.config import load_config

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / ".circleci" / "config.yml"


def load() -> dict:
    """The parsed .circleci/config.yml."""
    return yaml.safe_load(CONFIG.read_text())


def runs(job: dict) -> list[dict]:
    """The job's ``run`` steps, each as a mapping with at least ``command``."""
    out = []
    for step in job["steps"]:
        if isinstance(step, dict) and "run" in step:
            run = step["run"]
            out.append(run if isinstance(run, dict) else {"command": run})
    return out


def test_test_job_runs_pytest_with_the_stack():
    job = load()["jobs"]["test"]
    commands = "\n".join(r["command"] for r in runs(job))
    assert "-m pytest" in commands
    assert ".[test,stack]" in commands, "the stack test needs supervisor and uwsgi"
    assert "pip wheel" in commands and ".wheelhouse" in commands, "tests install Flask from a local wheelhouse"


def test_deploy_runs_releasetui_headless_on_master_after_the_tests():
    doc = load()
    deploy_steps = runs(doc["jobs"]["deploy"])
    staging, final = deploy_steps[-2:]
    # Staging first, then production (which asks for --yes: confirm: true in its stage file).
    assert shlex.split(staging["command"])[1:] == ["--headless", "deploy", "--stage", "staging"], staging
    argv = shlex.split(final["command"])
    assert Path(argv[0]).name == "releasetui" and argv[1:] == ["--headless", "deploy", "--stage", "production",
                                                                "--yes"], final
    # It runs where a hosts.yml is, so `releasetui` finds it as ./hosts.yml; both stages must load.
    workdir = final.get("working_directory", "~/project").replace("~/project", str(REPO))
    for stage in ("staging", "production"):
        config = load_config(Path(workdir) / "hosts.yml", stage)
        assert config.healthcheck is not None and "{build_id}" in str(config.healthcheck.expect)
    assert load_config(Path(workdir) / "hosts.yml", "production").confirm
    assert {h.name for h in load_config(Path(workdir) / "hosts.yml", "staging").hosts} == {"staging1"}

    (workflow,) = doc["workflows"].values()
    jobs = {}
    for entry in workflow["jobs"]:
        name, settings = (entry, {}) if isinstance(entry, str) else next(iter(entry.items()))
        jobs[name] = settings
    assert set(jobs) == {"test", "deploy"}
    assert jobs["deploy"]["requires"] == ["test"]
    assert jobs["deploy"]["filters"] == {"branches": {"only": "master"}}
    assert "filters" not in jobs["test"], "tests run on every branch"


def test_ssh_secrets_come_from_project_settings_not_the_repo():
    text = CONFIG.read_text()
    assert "PRIVATE KEY" not in text
    setup = "\n".join(r["command"] for r in runs(load()["jobs"]["deploy"]))
    assert 'echo "$KNOWN_HOSTS" >> ~/.ssh/known_hosts' in setup
    assert "$DEPLOY_SSH_KEY" in setup and "chmod 600 ~/.ssh/id_ed25519" in setup
    # The key lands where the example hosts.yml looks for it, and host keys are checked against that file.
    example = load_config(REPO / "examples" / "flask-app" / "hosts.yml", "production")
    host = example.hosts[0]
    assert str(host.key_file).endswith("/.ssh/id_ed25519")
    assert str(host.known_hosts).endswith("/.ssh/known_hosts")
