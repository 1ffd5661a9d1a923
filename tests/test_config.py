"""hosts.yml: what a good file gives, and the one line a bad one gets (file, line, key; exit 2)."""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from releasetui.config import (
    MIN_KEEP_BUILDS,
    ConfigError,
    HealthCheck,
    Hook,
    JumpHost,
    Rollout,
    Shared,
    find_config,
    load_config,
)

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


# --- the fleet schema: roles, per-host settings, hooks, shared, rollout, jump hosts ---------------

FLEET = """\
project: shop
root: /srv/shop
restart: supervisorctl restart uwsgi
restart_timeout: 30
logs: [/var/log/uwsgi.log]
healthcheck: {url: "http://127.0.0.1:8000/health", expect: 200}
hooks:
  before_activate: {command: flask db upgrade, once: true, host: web2, timeout: 600}
  after_activate: curl -fsS http://127.0.0.1:8000/warm
  local_after: ["echo deployed"]
  local_failed: [echo failed, {command: echo again, timeout: 5}]
roles:
  web: {}
  worker:
    restart: supervisorctl restart celery
    healthcheck: null
    logs: [/var/log/celery.log]
    python: python3.12
    hooks: {after_activate: []}
  eu: {root: /srv/eu}
ssh: {user: deploy, jump: "ops@bastion.example.com:2200"}
hosts:
  web1: {address: web1.example.com, roles: [web, eu]}
  web2: {address: web2.example.com, roles: [web], restart_timeout: 90, jump: null}
  worker1:
    address: 10.0.1.21
    roles: [worker]
    hooks: {before_activate: [], after_rollback: "echo back"}
    jump: {address: 10.0.0.1, user: ops, port: 2222, key_file: keys/jump, known_hosts: keys/jump_known}
  box: {transport: local, root: /tmp/box}
"""


def test_settings_resolve_host_then_roles_then_top(tmp_path):
    config = load_config(write(tmp_path, FLEET))
    assert config.roles == ("web", "worker", "eu")
    web1, web2, worker1, _box = config.hosts
    assert web1.roles == ("web", "eu") and web1.root == "/srv/eu", "a role's root beats the top level's"
    assert web2.root == "/srv/shop" and web2.restart_timeout == 90.0 and web1.restart_timeout == 30.0
    assert worker1.restart == "supervisorctl restart celery" and web1.restart == "supervisorctl restart uwsgi"
    assert worker1.healthcheck is None, "healthcheck: null on a role turns it off"
    assert web1.healthcheck == HealthCheck(url="http://127.0.0.1:8000/health", expect=200)
    assert worker1.logs == ("/var/log/celery.log",) and web1.logs == ("/var/log/uwsgi.log",)
    assert worker1.python == "python3.12" and web1.python == "python3" == config.python
    assert config.restart == "supervisorctl restart uwsgi" and config.restart_timeout == 30.0


def test_hooks_merge_per_name_most_specific_level_wins(tmp_path):
    config = load_config(write(tmp_path, FLEET))
    web1, web2, worker1, _box = config.hosts
    migrate = Hook("before_activate", "flask db upgrade", timeout=600.0, once=True, host="web2")
    warm = Hook("after_activate", "curl -fsS http://127.0.0.1:8000/warm")
    assert web1.hooks == (migrate, warm) == web2.hooks
    assert worker1.hooks == (Hook("after_rollback", "echo back"),), "[] clears a hook; the host's own replace"
    assert config.hooks == (Hook("local_after", "echo deployed"), Hook("local_failed", "echo failed"),
                            Hook("local_failed", "echo again", timeout=5.0)), "local hooks: top level only, in order"


def test_jump_hosts_default_override_and_off(tmp_path):
    config = load_config(write(tmp_path, FLEET))
    web1, web2, worker1, box = config.hosts
    assert web1.jump == JumpHost("bastion.example.com", user="ops", port=2200)
    assert web2.jump is None, "jump: null reaches the host directly"
    assert worker1.jump == JumpHost("10.0.0.1", user="ops", port=2222, key_file=tmp_path / "keys" / "jump",
                                    known_hosts=tmp_path / "keys" / "jump_known")
    assert box.jump is None, "a local host never gets the default jump host"


@pytest.mark.parametrize("jump, expected", [
    ("bastion", JumpHost("bastion")),
    ("ops@bastion", JumpHost("bastion", user="ops")),
    ("bastion:2222", JumpHost("bastion", port=2222)),
    ("ops@[2001:db8::1]:22", JumpHost("2001:db8::1", user="ops", port=22)),
    ("{address: 10.0.0.1}", JumpHost("10.0.0.1")),
])
def test_jump_forms(tmp_path, jump, expected):
    text = f"project: x\nroot: /srv/x\nssh: {{jump: {jump!s}}}\nhosts:\n  a: {{address: a}}\n"
    if not jump.startswith("{"):
        text = text.replace(f"jump: {jump}", f"jump: '{jump}'")
    assert load_config(write(tmp_path, text)).hosts[0].jump == expected


def test_select_by_names_and_roles(tmp_path):
    config = load_config(write(tmp_path, FLEET))
    def names(hosts):
        return [h.name for h in hosts]

    assert names(config.select(None)) == names(config.select([], [])) == ["web1", "web2", "worker1", "box"]
    assert names(config.select(None, ["web"])) == ["web1", "web2"]
    assert names(config.select(["box", "web1"], ["worker"])) == ["web1", "worker1", "box"], "union, config order"
    assert names(config.select(["web1", "web1"], ["web", "eu"])) == ["web1", "web2"], "no duplicates"
    with pytest.raises(ConfigError) as info:
        config.select(None, ["wrker"])
    assert info.value.key == "--role" and "did you mean 'worker'" in info.value.message
    assert "web, worker, eu" in info.value.message
    with pytest.raises(ConfigError, match="no host named 'web3'"):
        config.select(["web3"], ["web"])


def test_defaults_of_the_new_keys(tmp_path):
    config = load_config(write(tmp_path, "project: x\nroot: /srv/x\nhosts:\n  a: {address: a}\n"))
    assert (config.parallel, config.lock_wait, config.connect_timeout, config.script_timeout,
            config.install_timeout, config.require_clean) == (25, 0.0, 15.0, 120.0, 1800.0, False)
    assert config.shared == Shared() and config.rollout is None and config.hooks == () and config.roles == ()
    (host,) = config.hosts
    assert (host.roles, host.python, host.restart, host.restart_timeout, host.healthcheck, host.logs, host.hooks,
            host.jump) == ((), "python3", None, 60.0, None, (), (), None)
    assert MIN_KEEP_BUILDS == 2


def test_new_top_level_keys_parse(tmp_path):
    text = FLEET + ("parallel: 5\nlock_wait: 30\nconnect_timeout: 7.5\nscript_timeout: 60\ninstall_timeout: 900\n"
                    "require_clean: true\nshared: {files: [.env, config/local.py], dirs: [instance, uploads/]}\n"
                    "rollout: {canary: [web2], batch: ' 25 %', pause: 1.5}\n")
    config = load_config(write(tmp_path, text))
    assert (config.parallel, config.lock_wait, config.connect_timeout, config.script_timeout,
            config.install_timeout, config.require_clean) == (5, 30.0, 7.5, 60.0, 900.0, True)
    assert config.shared == Shared(files=(".env", "config/local.py"), dirs=("instance", "uploads"))
    assert config.rollout == Rollout(canary=("web2",), batch="25%", pause=1.5)
    config = load_config(write(tmp_path, FLEET + "rollout: {canary: 2, batch: 3}\n"))
    assert config.rollout == Rollout(canary=2, batch=3, pause=0.0)
    config = load_config(write(tmp_path, FLEET + "rollout: {canary: [], batch: null}\n"))
    assert config.rollout == Rollout()


def test_merge_keys_share_settings_between_hosts(tmp_path):
    text = ("project: x\nroot: /srv/x\nhosts:\n  a: &d {user: ops, port: 2200, address: a}\n"
            "  b: {<<: *d, address: b, port: 22}\n")
    a, b = load_config(write(tmp_path, text)).hosts
    assert (a.user, a.port, b.user, b.port, b.address) == ("ops", 2200, "ops", 22, "b")


BOX = "  box: {transport: local, root: /tmp/box}"
FLEET_MISTAKES = [
    # (old, new, the text of the line reported, key, words)
    ("roles: [web, eu]}", "roles: [web, wrker]}", "web1:", "hosts.web1.roles[1]", "did you mean 'worker'"),
    ("roles: [web, eu]}", "roles: [web, db]}", "web1:", "hosts.web1.roles[1]", "no role 'db'"),
    ("roles: [web, eu]}", "roles: [web, web]}", "web1:", "hosts.web1.roles[1]", "twice"),
    ("roles: [web, eu]}", "roles: web}", None, None, None),  # one role may be given without a list
    ("  eu: {root: /srv/eu}", "  eu: {python: python3.11}", None, None, None),  # web1's roles web + eu agree
    ("roles: [web, eu]}", "roles: [worker, eu]}", None, None, None),  # worker and eu set different keys
    ("  eu: {root: /srv/eu}|||BOX", "  eu: {python: python3.11}|||BOX\n  w: {address: w, roles: [worker, eu]}",
     "  w:", "hosts.w.python", "its roles 'worker' and 'eu' set different values: set it on the host"),
    ("  eu: {root: /srv/eu}|||BOX", "  eu: {python: python3.11}|||BOX\n  w: {address: w, roles: [worker, eu], python: py}",
     None, None, None),  # the host's own value settles it
    ("  web: {}|||  eu: {root: /srv/eu}", "  web: {restart: x}|||  eu: {restart: systemctl restart shop}", "web1:",
     "hosts.web1.restart",
     "'web' and 'eu'"),
    ("  web: {}", "  web: {hooks: {after_activate: echo web}}", None, None, None),
    ("  web: {}|||BOX", "  web: {hooks: {after_rollback: echo web}}|||BOX\n  w: {address: w, roles: [web, worker]}",
     None, None, None),  # worker does not set after_rollback: no conflict
    ("  web: {}|||BOX", "  web: {hooks: {after_activate: echo web}}|||BOX\n  w: {address: w, roles: [web, worker]}",
     "  w:", "hosts.w.hooks.after_activate", "set it on the host"),
    ("  eu: {root: /srv/eu}", "  eu: {hooks: {local_after: echo eu}}", "  eu:", "roles.eu.hooks.local_after",
     "top-level"),
    ("  eu: {root: /srv/eu}", "  eu: {adress: x}", "  eu:", "roles.eu.adress", "did you mean 'address'"),
    ("  eu: {root: /srv/eu}", "  eu: {address: x}", "  eu:", "roles.eu.address", "belongs under hosts.NAME"),
    ("  eu: {root: /srv/eu}", "  e u: {root: /srv/eu}", "  e u:", "roles.'e u'", "role names"),
    ("  web: {}", "  web: []", "  web:", "roles.web", "mapping"),
    ("  after_activate: curl", "  after_activat: curl", "after_activat", "hooks.after_activat",
     "did you mean 'after_activate'"),
    ("  after_activate: curl -fsS http://127.0.0.1:8000/warm", "  after_activate: {command: x, once: true}",
     "after_activate", "hooks.after_activate.once", "only before_activate"),
    ("once: true, host: web2", "host: web2", "before_activate", "hooks.before_activate.host", "once: true"),
    ("once: true, host: web2", "once: true, host: web9", "before_activate", "hooks.before_activate.host",
     "no host named 'web9'"),
    ("once: true, host: web2", "once: true, host: worker1", "before_activate", "hooks.before_activate.host",
     "does not run this hook"),
    ("once: true, host: web2", "once: yes please", "before_activate", "hooks.before_activate.once", "true or false"),
    ("timeout: 600}", "timeout: 0}", "before_activate", "hooks.before_activate.timeout", "more than 0"),
    ("timeout: 600}", "timeout: 86401}", "before_activate", "hooks.before_activate.timeout", "at most 86400"),
    ("{command: flask db upgrade,", "{cmd: flask db upgrade,", "before_activate", "hooks.before_activate.cmd",
     "did you mean 'command'"),
    ('local_after: ["echo deployed"]', 'local_after: ["  "]', "local_after", "hooks.local_after[0]", "empty"),
    ('local_after: ["echo deployed"]', "local_after: [[echo]]", "local_after", "hooks.local_after[0]",
     "expected a command"),
    ("{command: echo again, timeout: 5}", "{timeout: 5}", "local_failed", "hooks.local_failed[1].command", "required"),
    ("restart_timeout: 30", "restart_timeout: -1", "restart_timeout", "restart_timeout", "more than 0"),
    ("restart_timeout: 90,", "restart_timeout: soon,", "web2:", "hosts.web2.restart_timeout", "number"),
    ("jump: null}", "jump: 'ops@'}", "web2:", "hosts.web2.jump", "[user@]host[:port]"),
    ("jump: null}", "jump: 'bastion:99999'}", "web2:", "hosts.web2.jump", "65535"),
    ("jump: null}", "jump: {user: ops}}", "web2:", "hosts.web2.jump.address", "required"),
    ("jump: null}", "jump: {address: b, proxy: c}}", "web2:", "hosts.web2.jump.proxy", "unknown key"),
    ("  box: {transport: local, root: /tmp/box}", "  box: {transport: local, root: /tmp/box, jump: b}",
     "box:", "hosts.box.jump", "local host"),
    ("ssh: {user: deploy,", "ssh: {usr: deploy,", "ssh:", "ssh.usr", "did you mean 'user'"),
    ('jump: "ops@bastion.example.com:2200"', "jump: '-oProxyCommand=x'", "ssh:", "ssh.jump", "host name"),
]


@pytest.mark.parametrize("old, new, line, key, words", FLEET_MISTAKES)
def test_fleet_mistakes_name_file_line_and_key(tmp_path, old, new, line, key, words):
    text = FLEET
    for old_part, new_part in zip(old.split("|||"), new.split("|||")):
        old_part, new_part = old_part.replace("BOX", BOX), new_part.replace("BOX", BOX)
        assert old_part in text
        text = text.replace(old_part, new_part, 1)
    path = write(tmp_path, text)
    if line is None:  # a variant that must load
        load_config(path)
        return
    with pytest.raises(ConfigError) as info:
        load_config(path)
    error = info.value
    expected_line = next(i for i, text_line in enumerate(text.splitlines(), 1) if line in text_line)
    assert (error.line, error.key) == (expected_line, key), str(error)
    assert words in error.message, str(error)


@pytest.mark.parametrize("extra, line, key, words", [
    ("parallel: 0", 31, "parallel", "between 1 and 1000"),
    ("parallel: 1001", 31, "parallel", "between 1 and 1000"),
    ("parallel: 2.5", 31, "parallel", "whole number"),
    ("lock_wait: -1", 31, "lock_wait", "between 0 and 86400"),
    ("connect_timeout: 0", 31, "connect_timeout", "more than 0"),
    ("connect_timeout: 601", 31, "connect_timeout", "at most 600"),
    ("script_timeout: .nan", 31, "script_timeout", "at most 86400"),
    ("install_timeout: .inf", 31, "install_timeout", "at most 86400"),
    ("require_clean: maybe", 31, "require_clean", "true or false"),
    ("keep_builds: 1", 31, "keep_builds", "at least 2"),
    ("shared: {files: [/etc/passwd]}", 31, "shared.files[0]", "leading '/'"),
    ("shared: {files: [../up]}", 31, "shared.files[0]", "'..'"),
    ("shared: {files: ['.']}", 31, "shared.files[0]", "inside the build"),
    ("shared: {dirs: [env]}", 31, "shared.dirs[0]", "releasetui's own"),
    ("shared: {files: [.env, ./.env]}", 31, "shared.files[1]", "twice"),
    ("shared: {files: [.env], dirs: [.env]}", 31, "shared.dirs[0]", "also in shared.files"),
    ("shared: {files: [instance/.env], dirs: [instance]}", 31, "shared.dirs[0]", "overlaps 'instance/.env'"),
    ("shared: {dirs: [a, a/b]}", 31, "shared.dirs[1]", "overlaps 'a'"),
    ("shared: {dir: [a]}", 31, "shared.dir", "did you mean 'dirs'"),
    ("shared: {files: .env}", 31, "shared.files", "list"),
    ("include: .env.example", 31, "include", "list of paths or globs"),
    ("include: [/etc/passwd]", 31, "include[0]", "inside source"),
    ("include: [.env.example, ../up/.env]", 31, "include[1]", "'..'"),
    ("include: ['**']", 31, "include[0]", "would include everything"),
    ("include: [\"a\\tb\"]", 31, "include[0]", "control characters"),
    ("include: [3]", 31, "include[0]", "expected text"),
    ("include: ['certs/[z-a].pem']", 31, "include[0]", "not a valid glob"),
    ("rollout: {canary: -1}", 31, "rollout.canary", "0 or more"),
    ("rollout: {canary: [web1, web9]}", 31, "rollout.canary[1]", "no host named 'web9'"),
    ("rollout: {canary: [web1, web1]}", 31, "rollout.canary[1]", "twice"),
    # A canary that leaves no host to wait for its verdict is every host in one wave: refused, as --canary is.
    ("rollout: {canary: 7}", 31, "rollout.canary", "would switch all 4 configured hosts in one wave"),
    ("rollout: {canary: 4}", 31, "rollout.canary", "use fewer than 4"),
    ("rollout: {canary: [web1, web2, worker1, box]}", 31, "rollout.canary", "names all 4 configured hosts"),
    ("rollout: {batch: 0}", 31, "rollout.batch", "at least 1"),
    ("rollout: {batch: '0%'}", 31, "rollout.batch", "1% to 100%"),
    ("rollout: {batch: 101%}", 31, "rollout.batch", "1% to 100%"),
    ("rollout: {batch: half}", 31, "rollout.batch", "percentage"),
    ("rollout: {pause: 3601}", 31, "rollout.pause", "between 0 and 3600"),
    ("rollout: {canary: 1, batches: 2}", 31, "rollout.batches", "did you mean 'batch'"),
    ("rollout: [1]", 31, "rollout", "mapping"),
    ("keep_bulds: 3", 31, "keep_bulds", "did you mean 'keep_builds'"),
    ("user: deploy", 31, "user", "belongs under ssh:"),
])
def test_top_level_mistakes(tmp_path, extra, line, key, words):
    assert FLEET.count("\n") == 30
    path = write(tmp_path, FLEET + extra + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert (info.value.line, info.value.key) == (line, key), str(info.value)
    assert words in info.value.message, str(info.value)


# --- hostile and malformed files: one bounded line, a line number, never a traceback or a hang ---

BASE = "project: x\nroot: /srv/x\nhosts:\n  web1: {address: a}\n"  # 4 lines; mistakes go on line 5


def laughs(levels: int = 9, width: int = 10) -> str:
    """The classic alias bomb: each level is ``width`` aliases of the one before (10**9 values)."""
    lines = ['l0: &l0 "lol"']
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


# (id, file content (str or bytes), the line the error must name (None: no line makes sense), words in the message)
HOSTILE = [
    ("laughs-as-key", laughs(6) + "? *l6\n: 1\n", None, "expands to more than"),
    ("laughs-as-value", BASE + laughs(), None, "expands to more than"),
    ("laughs-under-hosts", "project: x\nroot: /srv/x\n" + laughs().replace("l0:", "hosts:\n  l0:", 1), None, "expands"),
    ("laughs-wide", BASE + "a: &a [" + ",".join("x" * 2000) + "]\nb: [" + ",".join(["*a"] * 200) + "]\n", 6,
     "expands to more than"),
    ("too-many-aliases", BASE + "a: &a 1\nb: [" + ",".join(["*a"] * 600) + "]\n", 6, "aliases"),
    ("alias-list-as-key", BASE + "a: &a [1, 2]\n? *a\n: 1\n", None, "keys must be text, not a list"),
    ("mapping-as-key", BASE + "? {a: 1}\n: 1\n", 5, "keys must be text, not a mapping"),
    ("number-as-key", BASE + "5: x\n", 5, "keys must be text"),
    ("null-as-key", BASE + "~: x\n", 5, "keys must be text"),
    ("recursive-alias", BASE + "logs: &a [*a]\n", 5, "contains it"),
    ("recursive-merge", BASE + "ssh: &s {<<: *s}\n", 5, "contains it"),
    ("undefined-alias", BASE + "logs: *nowhere\n", 5, "no anchor"),
    ("duplicate-anchor", BASE + "a: &x 1\nb: &x 2\n", 6, "defined twice"),
    ("tag-python-name", BASE + "restart: !!python/name:os.system\n", 5, "!!python/name:os.system"),
    ("tag-python-object", BASE + "ssh: !!python/object/apply:os.system [id]\n", 5, "not allowed"),
    ("tag-custom", BASE + "keep_builds: !custom 3\n", 5, "'!custom' is not allowed"),
    ("tag-int-abc", BASE + "keep_builds: !!int abc\n", 5, "not a valid whole number"),
    ("tag-float-abc", BASE + "lock_wait: !!float abc\n", 5, "not a valid number"),
    ("tag-bool-maybe", BASE + "require_clean: !!bool maybe\n", 5, "not a valid true/false"),
    ("tag-timestamp", BASE + "restart: !!timestamp yesterday\n", 5, "!!timestamp"),
    ("tag-binary", BASE + "restart: !!binary aGVsbG8=\n", 5, "!!binary"),
    ("tag-set", BASE + "logs: !!set {a, b}\n", 5, "!!set"),
    ("tag-on-key", BASE + "!!python/str project2: x\n", 5, "not allowed"),
    ("tag-directive", "%TAG !e! tag:evil.example,2000:\n---\n" + BASE + "restart: !e!run x\n", 7, "not allowed"),
    ("deep-flow-seq", BASE + "logs: " + "[" * 10000 + "\n", 5, "nested more than 50"),
    ("deep-flow-seq-closed", BASE + "logs: " + "[" * 5000 + "]" * 5000 + "\n", 5, "nested more than 50"),
    ("deep-flow-map", BASE + "ssh: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n", 5, "nested more than 50"),
    ("deep-block-map", BASE + "ssh:\n" + "".join(" " * (i + 1) + f"k{i}:\n" for i in range(300)), 55, "nested"),
    ("deep-block-seq", BASE + "logs:\n" + "".join(" " * i + "- \n" for i in range(1, 200)), None, "nested"),
    ("deep-via-aliases", BASE + "".join(f"a{i}: &a{i} [[[[[[[[[[*a{i - 1}]]]]]]]]]]\n" if i else "a0: &a0 [x]\n"
                                        for i in range(8)), None, "nested more than 50"),
    ("nul-byte", BASE + "restart: a\x00b\n", 5, "U+0000"),
    ("nul-only", "\x00" * 100, 1, "U+0000"),
    ("escape-sequence", BASE + "restart: echo \x1b[31mred\n", 5, "U+001B"),
    ("bell-in-key", BASE + "re\x07start: x\n", 5, "U+0007"),
    ("del-char", BASE + "restart: \x7f\n", 5, "U+007F"),
    ("c1-control", BASE + "restart: \u0090\n", 5, "U+0090"),
    ("line-separator", BASE + "restart: a\u2028b\n", 5, "U+2028"),
    ("next-line-char", BASE + "restart: a\x85b\n", 5, "U+0085"),
    ("bidi-override", BASE + "restart: echo safe\u202e\u2066 && rm -rf x\n", 5, "U+202E"),
    ("bom-in-the-middle", BASE + "restart: a\ufeffb\n", 5, "U+FEFF"),
    ("zero-width-space", BASE.replace("address: a", "address: a\u200b"), 4, "U+200B"),
    ("text-after-document-end", BASE + "...\nfoo: 1\n", 6, "end of the document"),
    ("latin-1", (BASE + "restart: caf\xe9\n").encode("latin-1"), 5, "not UTF-8"),
    ("binary-junk", bytes(range(256)) * 8, None, None),
    ("utf16", BASE.encode("utf-16"), None, None),
    ("huge-file", BASE + "#" + "x" * (1024 * 1024) + "\n", None, "larger than"),
    ("huge-value-int", BASE + "keep_builds: " + "9" * 200_000 + "\n", 5, "not a valid whole number"),
    ("huge-value-text", BASE + "keep_builds: " + "x" * 200_000 + "\n", 5, "expected a whole number"),
    ("huge-quoted-value", BASE + "parallel: '" + "y" * 200_000 + "'\n", 5, "expected a whole number"),
    ("huge-key", BASE + "k" * 200_000 + ": 1\n", 5, "1024"),
    ("huge-host-name", BASE.replace("web1", "w" * 200_000), 4, "1024"),
    ("huge-quoted-key", BASE + '"' + "q" * 200_000 + '": 1\n', 5, "1024"),
    ("long-quoted-key", BASE + '"' + "q" * 1000 + '": 1\n', 5, "unknown key"),
    ("long-role-name", BASE + "roles: {'" + "r" * 1000 + "': {}}\n", 5, "role names"),
    ("huge-list-item", BASE + "logs: [" + "x" * 100_000 + ", [1]]\n", 5, "expected a single value, not a list"),
    ("newline-in-key", BASE + '"a\\nb\\nc": 1\n', 5, "unknown key"),
    ("newline-in-value", BASE + 'keep_builds: "1\\n2"\n', 5, "expected a whole number"),
    ("ansi-in-value", BASE + 'keep_builds: "\\e[2J\\e[H"\n', 5, "expected a whole number"),
    ("two-documents", BASE + "---\nproject: y\n", 5, "one document"),
    ("top-level-list", "- a\n- b\n", 1, "must be a mapping"),
    ("top-level-scalar", "just some text\n", 1, "must be a mapping"),
    ("missing-space", "project:x\n", 1, "missing space"),
    ("empty-file", "", None, "empty"),
    ("only-comments", "# nothing here\n\n", None, "empty"),
    ("nan-timeout", BASE + "connect_timeout: .nan\n", 5, "more than 0"),
    ("int-overflow-port", BASE.replace("address: a}", "address: a, port: 1e999}"), 4, "whole number"),
    ("huge-exponent", BASE + "lock_wait: 1.0e+999999\n", 5, "between 0 and 86400"),
    ("merge-of-scalar", BASE + "ssh: {<<: 5}\n", 5, "merge"),
    ("bool-as-text", BASE.replace("project: x", "project: yes"), 1, "expected text"),
    ("date-as-text", BASE + "restart: 2024-01-01\n", 5, "put it in quotes"),
    ("list-as-project", BASE.replace("project: x", "project: [x]"), 1, "not a list"),
    ("hosts-as-list", "project: x\nroot: /srv/x\nhosts: [a, b]\n", 3, "mapping"),
    ("hosts-null", "project: x\nroot: /srv/x\nhosts:\n", 3, "at least one host"),
    ("dash-address", BASE.replace("address: a", "address: -oProxyCommand=id"), 4, "host name or IP"),
    ("root-with-newline", BASE.replace("root: /srv/x", 'root: "/srv/x\\nrm -rf /"'), 2, "control characters"),
    ("bad-utf8-midway", BASE.encode() + b"restart: \xc3\x28\n", 5, "not UTF-8"),
]


@pytest.mark.parametrize("content, line, words", [pytest.param(c, l, w, id=i) for i, c, l, w in HOSTILE])
def test_hostile_configs_are_one_bounded_line(tmp_path, content, line, words):
    path = tmp_path / "hosts.yml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    started = time.monotonic()
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert time.monotonic() - started < 10
    error = info.value
    text = str(error)
    assert "\n" not in text and "\r" not in text and "\x1b" not in text
    assert len(error.message) < 300 and len(text) < 300 + len(str(path)), text
    assert error.path == str(path) and text.startswith(str(path))
    if line is not None:
        assert error.line == line, text
    if words is not None:
        assert words in error.message, text


# The common YAML slips, and the line the mistake is really on (PyYAML notices most of them a line or more later).
SYNTAX = [
    ("unclosed-flow-seq", "project: x\nlogs: [a, b\nroot: /srv/x\nhosts:\n  a: {address: a}\n", 2, "'[' is not closed"),
    ("unclosed-flow-seq-at-end", "project: x\nroot: /srv/x\nlogs: [a, b\n", 3, "'[' is never closed"),
    ("empty-unclosed-flow-seq-at-end", "project: x\nroot: /x\nlogs: [\n", 3, "'[' is never closed"),
    ("empty-unclosed-flow-map-at-end", "project: x\nssh: {\n\n", 2, "'{' is never closed"),
    ("unclosed-flow-map", "project: x\nssh: {user: deploy\nroot: /srv/x\nhosts:\n  a: {address: a}\n", 2,
     "'{' is not closed"),
    ("unclosed-flow-map-in-hosts", "project: x\nhosts:\n  a: {address: a\n  b: {address: b}\nroot: /x\n", 3,
     "'{' is not closed"),
    ("mismatched-bracket", "project: x\nhosts:\n  a: {address: a, port: [22}\n", 3, "'[' is not closed"),
    ("unclosed-double-quote", 'project: "x\nroot: /srv/x\nhosts:\n  a: {address: a}\n', 1, "quote is never closed"),
    ("unclosed-single-quote", "project: x\nroot: '/srv/x\nhosts:\n  a: {address: a}\n", 2, "quote is never closed"),
    ("unclosed-quote-in-flow", 'project: x\nssh: {user: "deploy}\nroot: /x\n', 2, "quote is never closed"),
    ("tab-indent", "project: x\nhosts:\n\tweb1: {address: a}\nroot: /x\n", 3, "tab"),
    ("tab-indent-nested", "project: x\nhosts:\n  web1:\n\taddress: a\nroot: /x\n", 4, "tab"),
    ("missing-colon", "project: x\nkeep_builds 4\nroot: /x\n", 2, "missing ':'"),
    ("missing-colon-first-line", "project x\nroot: /x\n", 1, "missing ':'"),
    ("missing-colon-two-lines", "project x\nsource y\nroot: /x\n", 1, "missing ':'"),
    ("missing-colon-last-line", "project: x\nroot: /x\nkeep_builds 4\n", 3, "missing ':'"),
    ("missing-colon-nested", "project: x\nhosts:\n  web1\n  web2: {address: b}\n", 3, "missing ':'"),
    ("missing-colon-nested-deeper", "hosts:\n  web1:\n    address a\n    port: 22\nproject: x\n", 3, "missing ':'"),
    ("missing-space-after-colon", "project: x\nkeep_builds:5\nroot: /x\n", 2, "missing ':'"),
    ("dedented-key", "project: x\nhosts:\n  web1: {address: a}\n web2: {address: b}\nroot: /x\n", 4, "indented"),
    ("over-indented-key", "project: x\n  source: .\nroot: /x\n", 2, "indentation"),
    ("over-indented-nested", "project: x\nssh:\n  user: a\n   port: 22\nroot: /x\n", 4, "indentation"),
    ("over-indented-host", "project: x\nhosts:\n  web1: {address: a}\n    web2: {address: b}\n", 4, "indented"),
    ("colon-in-plain-value", "project: x\nrestart: echo a: b\nroot: /x\n", 2, "quote a value"),
    ("text-after-flow", "project: x\nlogs: [a] b\nroot: /x\n", 2, "unexpected text"),
    ("extra-close-bracket", "project: x\nlogs: [a]]\nroot: /x\n", 2, "closes nothing"),
    ("list-item-in-mapping", "project: x\n- a\nroot: /x\n", 2, "list item"),
    ("mapping-after-list-item", "project: x\nlogs:\n  - a\n  b: c\nroot: /x\n", 4, "indentation"),
    ("bad-escape", 'project: x\nrestart: "a\\qb"\nroot: /x\n', 2, "escape"),
    ("value-starts-with-at", "project: x\nrestart: @reboot\n", 2, "cannot start with '@'"),
    ("value-starts-with-backtick", "project: x\nrestart: `id`\n", 2, "cannot start with '`'"),
    ("block-scalar-indicator", "project: x\nrestart: |x\n  a\n", 2, "block scalar"),
    ("anchor-without-name", "project: x\nrestart: &\n", 2, "anchor"),
]


@pytest.mark.parametrize("text, line, words", [pytest.param(t, l, w, id=i) for i, t, l, w in SYNTAX])
def test_yaml_syntax_errors_name_the_line_of_the_mistake(tmp_path, text, line, words):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.line == line, str(info.value)
    assert words in info.value.message, str(info.value)
    assert "\n" not in str(info.value) and len(info.value.message) < 300


def test_a_byte_order_mark_at_the_start_and_emoji_are_fine(tmp_path):
    config = load_config(write(tmp_path, "\ufeff" + BASE + "restart: echo 🎉 déployé\n"))
    assert config.restart == "echo 🎉 déployé"


def test_a_near_limit_file_loads_quickly(tmp_path):
    """An honest but big file (200 hosts, 100 kB of comments) is not mistaken for an attack, and is fast."""
    hosts = "".join(f"  web{i:03}: {{address: 10.0.{i // 250}.{i % 250}, roles: [web]}}\n" for i in range(200))
    text = "# " + "c" * 100_000 + "\nproject: x\nroot: /srv/x\nroles: {web: {}}\nhosts:\n" + hosts
    started = time.monotonic()
    config = load_config(write(tmp_path, text))
    assert len(config.hosts) == 200 and time.monotonic() - started < 5


CLI_HOSTILE = ["laughs-as-key", "laughs-as-value", "deep-flow-seq", "deep-flow-map", "tag-python-name", "tag-int-abc",
               "nul-byte", "huge-value-text", "huge-key", "utf16", "huge-file"]


@pytest.mark.parametrize("case", CLI_HOSTILE)
def test_cli_on_hostile_config_exits_2_with_one_line_quickly_and_small(tmp_path, case):
    content = next(c for i, c, _, _ in HOSTILE if i == case)
    path = tmp_path / "hosts.yml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))

    def limit_memory():  # an unbounded expansion dies here (MemoryError) instead of eating the machine
        resource.setrlimit(resource.RLIMIT_AS, (1024 ** 3, 1024 ** 3))

    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "releasetui", "--config", str(path), "--headless", "builds"],
                          capture_output=True, text=True, timeout=30, preexec_fn=limit_memory)
    elapsed = time.monotonic() - started
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr[-2000:]
    assert lines[0].startswith(f"releasetui: {path}") and "Traceback" not in proc.stderr
    assert len(lines[0]) < 400
    assert elapsed < 15


@pytest.mark.parametrize("content, line, key", [
    ("project: !!python/name:os.system\nroot: /srv/x\nhosts:\n  web1: {address: a}\n", 1, "project"),
    ("project: x\nroot: /srv/x\nhosts:\n  web1:\n    address: !!python/name:os.system\n", 5, "hosts.web1.address"),
    (BASE + "ssh:\n  user: !!binary aGVsbG8=\n", 6, "ssh.user"),
    (BASE + "logs: [a, !!set {b}]\n", 5, "logs[1]"),
])
def test_a_refused_yaml_tag_names_its_key_as_every_config_error_does(tmp_path, content, line, key):
    path = tmp_path / "hosts.yml"
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert (info.value.line, info.value.key) == (line, key), str(info.value)
    assert str(info.value).startswith(f"{path}:{line}: {key}: YAML tag '!!"), str(info.value)
