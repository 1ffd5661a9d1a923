"""What is generated from the code: the JSON Schema of hosts.yml, the docs' configuration and command references,
and shell completion. Each is checked against the code it comes from, so none can drift."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from releasetui import config, schema
from releasetui.arguments import build_parser
from releasetui.docgen import completion_script, generated_docs, subcommands
from releasetui.init import starter_text

from .support.helpers import REPO

PLACES = {"top": config.TOP_KEYS, "ssh": config.SSH_KEYS, "host": config.HOST_KEYS, "role": config.ROLE_KEYS,
          "healthcheck": config.HEALTH_KEYS, "hook": config.HOOK_KEYS, "shared": config.SHARED_KEYS,
          "rollout": config.ROLLOUT_KEYS, "jump": config.JUMP_KEYS, "hooks": config.HOOK_NAMES,
          "env": config.ENV_KEYS}


@pytest.mark.parametrize("place", sorted(PLACES))
def test_every_key_the_validator_takes_is_documented_and_no_other(place):
    assert sorted(schema.keys_of(place)) == sorted(PLACES[place])


def test_the_generated_references_in_docs_match_the_code():
    for relative, text in generated_docs(build_parser()).items():
        path = REPO / "docs" / relative
        assert path.read_text() == text, f"{path} is stale: run python scripts/gen_docs.py"


def test_the_command_reference_names_every_action_and_option():
    parser = build_parser()
    text = generated_docs(parser)["reference/commands.md"]
    for name, sub in subcommands(parser).items():
        assert f"## `{name}`" in text
    assert "`--lock-wait SECONDS`" in text and "| 4 | locked by another operation" in text


def _schema_validator():
    return jsonschema.Draft202012Validator(schema.json_schema())


@pytest.mark.parametrize("path", ["hosts.example.yml", "init's starter", "examples/flask-app/hosts.yml"])
def test_the_shipped_configs_validate_against_the_schema(path):
    text = starter_text("shop") if path == "init's starter" else (REPO / path).read_text()
    doc = yaml.safe_load(text)
    errors = [e.message for e in _schema_validator().iter_errors(doc)]
    assert errors == []


def test_the_schema_refuses_what_the_validator_refuses(tmp_path):
    doc = yaml.safe_load((REPO / "hosts.example.yml").read_text())
    doc["hosts"]["web1"]["restart_timout"] = 5            # a typo
    doc["parallel"] = 0                                   # out of range
    messages = " ".join(e.message for e in _schema_validator().iter_errors(doc))
    assert "restart_timout" in messages and "0 is less than the minimum of 1" in messages
    text = (REPO / "hosts.example.yml").read_text().replace("parallel: 25", "parallel: 0")
    with pytest.raises(config.ConfigError, match="parallel"):
        config.load_config_text(text, tmp_path / "hosts.yml")


def test_schema_command_prints_the_schema():
    proc = subprocess.run([sys.executable, "-m", "releasetui", "schema"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert proc.returncode == 0 and json.loads(proc.stdout) == schema.json_schema()


def _complete(tmp_path: Path, words: list[str]) -> list[str]:
    """Run the generated bash completion for ``words`` (the last one being completed) in a real bash."""
    script = tmp_path / "complete.bash"
    script.write_text(completion_script(build_parser(), "bash"))
    shim = tmp_path / "bin" / "releasetui"
    shim.parent.mkdir(exist_ok=True)
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} -m releasetui \"$@\"\n")
    shim.chmod(0o755)
    array = " ".join(f"'{w}'" for w in ["releasetui", *words])
    cmd = f"source {script}; COMP_WORDS=({array}); COMP_CWORD={len(words)}; _releasetui; printf '%s\\n' \"${{COMPREPLY[@]}}\""
    env = {**os.environ, "PYTHONPATH": str(REPO), "PATH": f"{shim.parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_completion_completes_actions_options_and_host_names(tmp_path):
    (tmp_path / "hosts.yml").write_text("project: shop\nroot: /srv/shop\nroles: {web: {}}\n"
                                        "hosts:\n  web1: {address: a, roles: [web]}\n  web2: {address: b}\n"
                                        "  db1: {address: c}\n")
    assert _complete(tmp_path, ["ro"]) == ["rollback"]
    assert _complete(tmp_path, ["deploy", "--lock"]) == ["--lock-wait"]
    assert _complete(tmp_path, ["deploy", "--host", "web"]) == ["web1", "web2"]
    assert _complete(tmp_path, ["builds", "--role", ""]) == ["web"]


def test_fish_and_zsh_scripts_cover_every_action():
    parser = build_parser()
    fish, zsh = completion_script(parser, "fish"), completion_script(parser, "zsh")
    for name in subcommands(parser):
        assert name in fish and f"    {name}) opts=" in zsh
    assert zsh.startswith("autoload -U +X bashcompinit")
