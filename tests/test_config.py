"""hosts.yml: what a good file gives, and the one line a bad one gets (file, line, key; exit 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from releasetui.config import ConfigError, find_config, load_config

REPO = Path(__file__).resolve().parent.parent

GOOD = """\
project: myapp
source: app
requirements: requirements.txt
python: python3
pip_args: [--index-url, https://pypi.example/simple]
keep_builds: 4
restart: supervisorctl restart uwsgi
logs: [/var/log/uwsgi/myapp.log]
root: /var/www/myapp
ssh: {user: deploy, port: 22, key_file: keys/id_ed25519, known_hosts: keys/known_hosts}
hosts:
  web1: {address: web1.example.com}
  web2: {address: 10.0.0.12, port: 2222, root: /srv/myapp, user: ops}
  box:  {transport: local, root: /srv/box}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hosts.yml"
    path.write_text(text)
    return path


def test_good_config_resolves_defaults_and_overrides(tmp_path):
    config = load_config(write(tmp_path, GOOD))
    assert config.project == "myapp" and config.keep_builds == 4
    assert config.source == tmp_path / "app", "local paths are relative to the config file"
    assert config.pip_args == ("--index-url", "https://pypi.example/simple")
    web1, web2, box = config.hosts
    assert (web1.user, web1.port, web1.root) == ("deploy", 22, "/var/www/myapp")
    assert (web2.user, web2.port, web2.root) == ("ops", 2222, "/srv/myapp")
    assert web1.key_file == tmp_path / "keys" / "id_ed25519"
    assert box.transport == "local" and box.address is None
    assert [h.name for h in config.select(["web2"])] == ["web2"]
    with pytest.raises(ConfigError, match="no host named 'web3'"):
        config.select(["web3"])


def test_example_config_in_repo_loads():
    config = load_config(REPO / "hosts.example.yml")
    assert config.restart == "supervisorctl restart uwsgi"
    assert [h.name for h in config.hosts] == ["web1", "web2", "worker1"]
    assert config.roles == ("web", "worker"), "the example shows a two-role fleet"
    web1, worker1 = config.host("web1"), config.host("worker1")
    assert web1.healthcheck is not None and worker1.healthcheck is None
    assert worker1.restart == "supervisorctl restart celery" and web1.restart == config.restart


@pytest.mark.parametrize("replace, line, key, words", [
    (("keep_builds: 4", "keep_builds: five"), 6, "keep_builds", "whole number"),
    (("keep_builds: 4", "keep_build: 4"), 6, "keep_build", "unknown key"),
    (("  web1: {address: web1.example.com}", "  web1: {port: 22}"), 12, "hosts.web1.address", "required"),
    (("  web2: {address: 10.0.0.12, port: 2222,", "  web2: {address: 10.0.0.12, port: 70000,"), 13, "hosts.web2.port", "65535"),
    (("  box:  {transport: local,", "  box:  {transport: ftp,"), 14, "hosts.box.transport", "one of"),
    (("  box:  {transport: local,", "  box:  {colour: red, transport: local,"), 14, "hosts.box.colour", "unknown key"),
    (("root: /var/www/myapp", "root: var/www"), 9, "root", "absolute"),
    (("root: /var/www/myapp", "root: /var/www/../.."), 9, "root", "'..'"),
    (("logs: [/var/log/uwsgi/myapp.log]", "logs: /var/log/x.log"), 8, "logs", "list"),
    (("ssh: {user: deploy,", "ssh: {user: 'de ploy',"), 10, "ssh.user", "user name"),
])
def test_mistakes_name_file_line_and_key(tmp_path, replace, line, key, words):
    old, new = replace
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    error = info.value
    assert (error.path, error.line, error.key) == (str(path), line, key)
    assert words in error.message
    assert str(error).startswith(f"{path}:{line}: {key}: ")


def test_yaml_syntax_error_has_a_line(tmp_path):
    path = write(tmp_path, GOOD.replace("keep_builds: 4", "keep_builds: [4"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.line is not None and "YAML syntax" in info.value.message


def test_missing_project_and_unreadable_file(tmp_path):
    with pytest.raises(ConfigError, match="project: is required"):
        load_config(write(tmp_path, GOOD.replace("project: myapp\n", "")))
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yml")


def test_config_lookup_order(tmp_path, monkeypatch):
    monkeypatch.delenv("RELEASETUI_CONFIG", raising=False)
    assert find_config(None, cwd=tmp_path)[0] is None
    write(tmp_path, GOOD)
    assert find_config(None, cwd=tmp_path)[0] == tmp_path / "hosts.yml"
    monkeypatch.setenv("RELEASETUI_CONFIG", "/elsewhere.yml")
    assert find_config(None, cwd=tmp_path)[0] == Path("/elsewhere.yml")
    assert find_config("explicit.yml", cwd=tmp_path)[0] == Path("explicit.yml")


@pytest.mark.parametrize("text", [
    GOOD.replace("keep_builds: 4", "keep_builds: five"),
    GOOD.replace("hosts:", "hosts: [").replace("  box:", "#"),
    "",
])
def test_cli_prints_one_line_and_exits_2(tmp_path, text):
    path = write(tmp_path, text)
    proc = subprocess.run([sys.executable, "-m", "releasetui", "--config", str(path), "--headless", "builds"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
