"""``releasetui init``: a starter that loads as written, never an overwrite, and Ansible inventories imported."""

from __future__ import annotations

import json

import re
import subprocess
import sys
from pathlib import Path

import pytest

from releasetui.schema import json_schema

import releasetui
from releasetui import config as config_module
from releasetui.cli import main
from releasetui.config import ConfigError, load_config
from releasetui.init import expand_hosts, starter_text, template

REPO = Path(__file__).resolve().parent.parent


def run(capsys, *argv):
    """``releasetui ARGV`` in this process: (exit code, stdout, stderr lines)."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err.splitlines()


# --- the starter --------------------------------------------------------------------------------

def test_init_writes_a_starter_that_loads_as_written(tmp_path, monkeypatch, capsys):
    app = tmp_path / "My Shop"
    app.mkdir()
    monkeypatch.chdir(app)
    code, out, err = run(capsys, "init")
    assert code == 0 and err == []
    written = app / "hosts.yml"
    assert f"wrote {written}" in out and "releasetui --headless builds" in out
    config = load_config(written)
    assert config.project == "My-Shop", "the project is named after the directory"
    assert [h.name for h in config.hosts] == ["web1"] and config.hosts[0].address == "web1.example.com"
    assert config.roles == ("web",) and config.hosts[0].roles == ("web",)
    assert config.source == app and config.hosts[0].root == "/var/www/My-Shop"
    text = written.read_text()
    assert text.count("\n#") > 40, "the starter is commented"
    # Editors validate it as it is typed: the first line names the schema init wrote beside it.
    assert text.splitlines()[0] == "# yaml-language-server: $schema=hosts.schema.json"
    assert json.loads((app / "hosts.schema.json").read_text()) == json_schema()


def test_init_refuses_to_overwrite(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hosts.yml").write_text("mine\n")
    code, out, err = run(capsys, "init")
    assert code == 2 and out == "" and len(err) == 1
    assert "already exists" in err[0] and str(tmp_path / "hosts.yml") in err[0]
    assert (tmp_path / "hosts.yml").read_text() == "mine\n"
    (tmp_path / "other.yml").symlink_to(tmp_path / "nowhere.yml")  # a dangling link is not written through either
    code, _, err = run(capsys, "init", "--output", str(tmp_path / "other.yml"))
    assert code == 2 and len(err) == 1 and not (tmp_path / "nowhere.yml").exists()


def test_init_output_file_directory_and_missing_directory(tmp_path, capsys):
    code, _, _ = run(capsys, "init", "--output", str(tmp_path / "deploy.yml"))
    assert code == 0 and load_config(tmp_path / "deploy.yml").project == tmp_path.name
    (tmp_path / "conf").mkdir()
    code, _, _ = run(capsys, "init", "-o", str(tmp_path / "conf"))
    assert code == 0 and load_config(tmp_path / "conf" / "hosts.yml").project == "conf"
    code, _out, err = run(capsys, "init", "-o", str(tmp_path / "missing" / "hosts.yml"))
    assert code == 2 and len(err) == 1 and "no such directory" in err[0]


@pytest.mark.parametrize("project", ["myapp", "a", "x.y_z-1"])
def test_starter_is_valid_for_any_project_name(tmp_path, project):
    config = config_module.load_config_text(starter_text(project), tmp_path / "hosts.yml")
    assert config.project == project


def _documented(text: str) -> set[str]:
    """The schema keys a file shows, active or commented out: ``key:`` anywhere (hook names: the word)."""
    keys = set()
    for key in ALL_KEYS:
        pattern = rf"\b{key}\b" if key in config_module.HOOK_NAMES else rf"(?<![\w.-]){key}\s*:"
        if re.search(pattern, text):
            keys.add(key)
    return keys


ALL_KEYS = set(config_module.TOP_KEYS + config_module.SSH_KEYS + config_module.HOST_KEYS + config_module.ROLE_KEYS +
               config_module.HEALTH_KEYS + config_module.HOOK_KEYS + config_module.SHARED_KEYS +
               config_module.ROLLOUT_KEYS + config_module.JUMP_KEYS + config_module.HOOK_NAMES)


def test_example_and_starter_document_every_key():
    """hosts.example.yml and the starter must not drift apart: both show every key the loader accepts."""
    example = (REPO / "hosts.example.yml").read_text()
    starter = starter_text()
    assert _documented(example) == ALL_KEYS, ALL_KEYS - _documented(example)
    assert _documented(starter) == ALL_KEYS, ALL_KEYS - _documented(starter)


def test_template_is_package_data():
    pyproject = (REPO / "pyproject.toml").read_text()
    assert '"templates/*.yml"' in pyproject, "an installed package must carry the starter"
    assert (REPO / "releasetui" / "templates" / "hosts.starter.yml").is_file()
    assert "@ROLES_AND_HOSTS@" in template()


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"releasetui {releasetui.__version__}"
    # One version source: pyproject.toml reads it from the package.
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject and 'version = {attr = "releasetui.__version__"}' in pyproject
    proc = subprocess.run([sys.executable, "-m", "releasetui", "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and re.fullmatch(r"releasetui \d+\.\d+\.\d+\n", proc.stdout)


def test_group_needs_from_ansible(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "init", "--group", "web")
    assert code == 2 and len(err) == 1 and "--from-ansible" in err[0]
    assert not (tmp_path / "hosts.yml").exists()


def test_no_config_message_points_at_init(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RELEASETUI_CONFIG", raising=False)
    code, _, err = run(capsys, "--headless", "builds")
    assert code == 2 and len(err) == 1 and "releasetui init" in err[0] and "hosts.example.yml" not in err[0]


# --- Ansible inventories ------------------------------------------------------------------------

INI = """\
# production
mail.example.com

[web]
web[01:03].example.com http_port=8080
web-special.example.com:2201 ansible_host=10.0.0.9 ansible_user=ops   # the odd one

[db]
db1 ansible_host=10.0.1.5 ansible_python_interpreter=/usr/bin/python3.11
db2 ansible_host=10.0.1.6 ansible_password='s3cret' ansible_ssh_private_key_file=~/.ssh/db

[replicas]
db-[a:b] ansible_port=2200

[db:children]
replicas

[prod:children]
web
db

[web:vars]
ansible_user=deploy
nginx_worker_processes = 4

[all:vars]
ansible_ssh_private_key_file=~/.ssh/prod_ed25519
ansible_become=true
ansible_ssh_common_args='-o ProxyJump=ops@bastion.example.com:2222'
"""

YAML_INVENTORY = """\
all:
  hosts:
    mail.example.com:
  vars:
    ansible_user: deploy
    ntp_servers: [a.pool.ntp.org, b.pool.ntp.org]
  children:
    webservers:
      hosts:
        foo.example.com:
          ansible_port: 2222
          ansible_host: 10.0.0.2
        www[01:02].example.com:
      vars:
        http_port: 80
    dbservers:
      hosts:
        "db one":
          ansible_connection: local
      children:
        replicas:
          hosts:
            db-[a:b].example.com:
              ansible_private_key_file: keys/db
"""


def import_inventory(tmp_path, capsys, name, text, *extra):
    inventory = tmp_path / name
    inventory.write_text(text)
    out_file = tmp_path / "out" / "hosts.yml"
    out_file.parent.mkdir(exist_ok=True)
    code, out, err = run(capsys, "init", "--from-ansible", str(inventory), "--output", str(out_file), *extra)
    return code, out, err, out_file


def test_ini_inventory_hosts_ranges_vars_children(tmp_path, capsys):
    code, out, err, path = import_inventory(tmp_path, capsys, "inventory", INI, "--group", "all")
    assert code == 0, err
    config = load_config(path)
    hosts = {h.name: h for h in config.hosts}
    assert list(hosts) == ["mail.example.com", "web01.example.com", "web02.example.com", "web03.example.com",
                           "web-special.example.com", "db1", "db2", "db-a", "db-b"]
    assert config.roles == ("web", "db", "replicas", "prod"), "every group is a role"
    web1, special = hosts["web01.example.com"], hosts["web-special.example.com"]
    assert (web1.address, web1.user, web1.port, web1.roles) == ("web01.example.com", "deploy", None, ("web", "prod"))
    assert (special.address, special.user, special.port) == ("10.0.0.9", "ops", 2201), "host vars beat group vars"
    assert hosts["db1"].python == "/usr/bin/python3.11" and hosts["db2"].python == "python3"
    assert hosts["db-a"].port == 2200 and hosts["db-a"].roles == ("db", "replicas", "prod"), "children are members"
    assert hosts["db2"].key_file == Path("~/.ssh/db").expanduser()
    assert web1.key_file == Path("~/.ssh/prod_ed25519").expanduser(), "all:vars apply to every host"
    assert web1.jump == config_module.JumpHost("bastion.example.com", user="ops", port=2222), "ProxyJump is mapped"
    assert hosts["mail.example.com"].roles == () and hosts["mail.example.com"].user is None
    assert "9 host(s) and 4 role(s)" in out
    text = path.read_text()
    for listed in ("ansible_become=true", "http_port=8080", "nginx_worker_processes=4", "ansible_password=<hidden>"):
        assert any(listed in line for line in err), (listed, err)
        assert re.search(rf"^#\s+{re.escape(listed)}\s", text, re.MULTILINE), listed
    assert "s3cret" not in text and not any("s3cret" in line for line in err), "secrets are never echoed"
    assert all(line.startswith("releasetui: ") for line in err)


def test_ini_inventory_group_limits_to_the_group_and_its_children(tmp_path, capsys):
    code, _out, err, path = import_inventory(tmp_path, capsys, "inventory.ini", INI, "--group", "db")
    assert code == 0, err
    config = load_config(path)
    assert [h.name for h in config.hosts] == ["db1", "db2", "db-a", "db-b"]
    assert config.roles == ("db", "replicas"), "only the group and the groups under it become roles"
    assert config.host("db-a").roles == ("db", "replicas")
    assert not any("http_port" in line for line in err), "variables of hosts left out are not listed"


def test_several_groups_need_group_and_the_refusal_lists_them_with_their_host_counts(tmp_path, capsys):
    code, out, err, path = import_inventory(tmp_path, capsys, "inventory", INI)
    assert code == 2 and out == "" and len(err) == 1, err
    assert err[0] == (f"releasetui: {tmp_path / 'inventory'}: --group: the inventory's hosts are in 5 groups: "
                      "ungrouped (1 host), web (4 hosts), db (4 hosts), replicas (2 hosts), prod (8 hosts); "
                      "choose one with --group NAME (--group all imports every host)"), err[0]
    assert not path.exists(), "the database servers are never made deploy targets unasked"
    code, _, err, path = import_inventory(tmp_path, capsys, "inv.yml", YAML_INVENTORY)
    assert code == 2 and "webservers (3 hosts), dbservers (3 hosts), replicas (2 hosts)" in err[0], err
    assert not path.exists()


def test_one_group_is_imported_without_asking(tmp_path, capsys):
    inventory = "[web]\nweb1 ansible_host=10.0.0.1\nweb2 ansible_host=10.0.0.2\n[prod:children]\nweb\n"
    code, out, err, path = import_inventory(tmp_path, capsys, "inventory", inventory)
    assert code == 0, err
    assert [h.name for h in load_config(path).hosts] == ["web1", "web2"], "prod and web are the same hosts"


def test_on_a_terminal_init_asks_which_group(tmp_path):
    import os
    import pty
    (tmp_path / "inventory").write_text(INI)
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "releasetui", "init", "--from-ansible", "inventory"],
                            cwd=tmp_path, stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    os.close(slave)
    try:
        os.write(master, b"db\n")
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(master)
    assert proc.returncode == 0, out + err
    assert "db (4 hosts)" in err and "import which group" in err
    config = load_config(tmp_path / "hosts.yml")
    assert [h.name for h in config.hosts] == ["db1", "db2", "db-a", "db-b"]


def test_unknown_group_is_one_line_with_a_suggestion(tmp_path, capsys):
    code, _, err, path = import_inventory(tmp_path, capsys, "inventory.ini", INI, "--group", "dbs")
    assert code == 2 and len(err) == 1 and "did you mean 'db'" in err[0] and not path.exists()


def test_yaml_inventory(tmp_path, capsys):
    code, _out, err, path = import_inventory(tmp_path, capsys, "inventory.yml", YAML_INVENTORY, "--group", "all")
    assert code == 0, err
    config = load_config(path)
    hosts = {h.name: h for h in config.hosts}
    assert list(hosts) == ["mail.example.com", "foo.example.com", "www01.example.com", "www02.example.com",
                           "db-one", "db-a.example.com", "db-b.example.com"]
    assert config.roles == ("webservers", "dbservers", "replicas")
    foo = hosts["foo.example.com"]
    assert (foo.address, foo.port, foo.user, foo.roles) == ("10.0.0.2", 2222, "deploy", ("webservers",))
    assert hosts["db-one"].transport == "local" and hosts["db-one"].address is None
    assert hosts["db-a.example.com"].key_file == path.parent / "keys" / "db"
    assert hosts["db-b.example.com"].roles == ("dbservers", "replicas")
    text = path.read_text()
    assert "# db one" in text, "a renamed host keeps its inventory name in a comment"
    assert any("ntp_servers=" in line for line in err) and any("http_port=80" in line for line in err)
    assert re.search(r"^#\s+ntp_servers=\[", text, re.MULTILINE)


def test_yaml_inventory_group_option(tmp_path, capsys):
    code, _, err, path = import_inventory(tmp_path, capsys, "inv.yaml", YAML_INVENTORY, "--group", "webservers")
    assert code == 0, err
    config = load_config(path)
    assert [h.name for h in config.hosts] == ["foo.example.com", "www01.example.com", "www02.example.com"]
    assert config.roles == ("webservers",)


@pytest.mark.parametrize("pattern, hosts", [
    ("web[01:03].example.com", ["web01.example.com", "web02.example.com", "web03.example.com"]),
    ("web[1:3]", ["web1", "web2", "web3"]),
    ("web[8:10]", ["web8", "web9", "web10"]),
    ("db-[a:c]", ["db-a", "db-b", "db-c"]),
    ("n[0:10:5]", ["n0", "n5", "n10"]),
    ("r[1:2]-[a:b]", ["r1-a", "r1-b", "r2-a", "r2-b"]),
    ("plain.example.com", ["plain.example.com"]),
])
def test_host_ranges(pattern, hosts):
    assert expand_hosts(pattern, Path("inventory"), 1) == hosts


@pytest.mark.parametrize("pattern, words", [
    ("web[0:99999999]", "more than 10000"),
    ("web[1:1000][1:1000]", "more than 10000"),
    ("web[5:1]", "ends before it starts"),
    ("web[a:5]", "not a range"),
    ("web[x]", "START:END"),
])
def test_bad_host_ranges(pattern, words):
    with pytest.raises(ConfigError) as info:
        expand_hosts(pattern, Path("inventory"), 7)
    assert info.value.line == 7 and words in info.value.message


@pytest.mark.parametrize("name, text, line, words", [
    ("inventory", "[web]\nweb1 ansible_port=http\n", 2, "port number"),
    ("inventory", "[web]\nweb1 ansible_port=70000\n", 2, "65535"),
    ("inventory", "[web]\nweb1 ansible_host='-oProxyCommand=id'\n", 2, "host name"),
    ("inventory", "[web]\nweb1 stray\n", 2, "name=value"),
    ("inventory", "[web]\nweb1 a='unclosed\n", 2, "cannot split"),
    ("inventory", "[web:hosts]\nweb1\n", 1, "unknown section"),
    ("inventory", "[web]\nweb[1:99999999]\n", 2, "more than 10000"),
    ("inventory", "[a:children]\nb\n[b:children]\na\n[b]\nh1\n", None, "its own descendant"),
    ("inventory", "[web]\n", None, "no hosts"),
    ("inv.yml", "all:\n  hostz:\n    a:\n", 2, "did you mean 'hosts'"),
    ("inv.yml", "all:\n  hosts:\n    a: {ansible_port: [1]}\n", 3, "port"),
    ("inv.yml", "all:\n  hosts: !!python/name:os.system\n", 2, "not allowed"),
    ("inv.yml", "all: [\n", 1, "never closed"),
    ("inv.yml", "all:\n  hosts:\n    a:\n    b: \x00\n", 4, "U+0000"),
])
def test_bad_inventories_are_one_line(tmp_path, capsys, name, text, line, words):
    code, _out, err, path = import_inventory(tmp_path, capsys, name, text)
    assert code == 2 and len(err) == 1, err
    assert words in err[0] and "Traceback" not in err[0]
    if line is not None:
        assert f"{name}:{line}:" in err[0], err[0]
    assert not path.exists()


def test_missing_inventory(tmp_path, capsys):
    code, _, err = run(capsys, "init", "--from-ansible", str(tmp_path / "x"), "-o", str(tmp_path / "h.yml"))
    assert code == 2 and len(err) == 1 and "file not found" in err[0]


def test_hostile_inventory_values_stay_inside_comments(tmp_path, capsys):
    inventory = ("all:\n  hosts:\n    'evil/host':\n      ansible_host: 10.0.0.7\n"
                 "      ansible_user: \"{{ lookup('env', 'USER') }}\"\n"
                 "      note: \"x\\nproject: pwned\\nroot: /\"\n      ansible_python_interpreter: auto_silent\n"
                 "      ansible_ssh_common_args: -o StrictHostKeyChecking=no\n")
    code, _, err, path = import_inventory(tmp_path, capsys, "inv.yml", inventory)
    assert code == 0, err
    config = load_config(path)
    (host,) = config.hosts
    assert (host.name, host.address) == ("evil-host", "10.0.0.7")
    assert config.project != "pwned" and host.user is None and host.python == "python3"
    listed = "\n".join(err)
    for var in ("ansible_user", "note", "ansible_python_interpreter", "ansible_ssh_common_args"):
        assert var in listed, var
    assert "x\\nproject: pwned" in listed, "a newline in a value is shown escaped"
    assert not re.search(r"^project: pwned", path.read_text(), re.MULTILINE), "and cannot start a line of the file"


def test_a_host_name_that_is_no_address_needs_ansible_host(tmp_path, capsys):
    code, _, err, _path = import_inventory(tmp_path, capsys, "inv.yml", "all:\n  hosts:\n    'web one':\n")
    assert code == 2 and len(err) == 1 and "inv.yml:3:" in err[0] and "ansible_host" in err[0]
