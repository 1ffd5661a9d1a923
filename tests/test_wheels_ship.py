"""``wheels: ship``: the wheelhouse built once on this machine, sent with the build, installed with --no-index.

The hosts here have no package index: their pip reads no pip.conf and knows only an index that drops every
connection (:class:`~tests.support.helpers.IndexTrap`, which counts them). The client reaches the test's
wheels through its own environment only (:func:`~tests.support.helpers.client_index_env`), never through
``pip_args``, which the hosts would get too.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from releasetui import present, rules
from releasetui.models import BuildInfo, HostState

from .support.helpers import IndexTrap, Project, client_index_env, events, find_uv, make_project, \
    no_index_python, ssh_hosts, summary

pytestmark = pytest.mark.ssh


@pytest.fixture
def trap():
    trap = IndexTrap()
    yield trap
    trap.close()


def shipping_project(tmp_path: Path, wheelhouse: Path, ssh_env, trap: IndexTrap, mode: str = "ship",
                     hosts: dict | None = None, installer: str = "uv") -> tuple[Project, dict]:
    """Hosts with no index (for pip and for uv); ``wheels: mode``; no pip_args. Returns the project and the
    client's environment."""
    p = make_project(tmp_path, wheelhouse, hosts or ssh_hosts(ssh_env), ssh_env=ssh_env, installer=installer)
    p.set("pip_args", "[]")
    p.set("wheels", mode)
    no_index_python(p, trap)
    return p, client_index_env(p, wheelhouse)


def key_of(requirement: str) -> str:
    """The venv (and wheelhouse) key of a requirements file holding ``requirement``, on the test's Python."""
    import sys
    digest = hashlib.sha256((requirement + "\n").encode()).hexdigest()
    return rules.venv_key(digest, f"{sys.version_info[0]}.{sys.version_info[1]}")


def deploy(p: Project, env: dict, *args: str):
    proc = p.cli("--headless", "deploy", "--json", *args, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def wheel_steps(proc) -> list[str]:
    return [e["message"] for e in events(proc) if e["step"] == "wheels" and e["status"] == "ok"]


@pytest.mark.parametrize("installer", ["pip", "uv"])
def test_ship_installs_where_no_index_is_reachable_and_host_mode_cannot(tmp_path, wheelhouse, ssh_env, trap,
                                                                        installer):
    if installer == "uv" and not find_uv():
        pytest.skip("uv is not installed")
    p, env = shipping_project(tmp_path, wheelhouse, ssh_env, trap, mode="host", installer=installer)
    refused = p.cli("--headless", "deploy", "--json", env=env)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert ("pip wheel" if installer == "pip" else "uv pip install") in refused.stdout, refused.stdout
    assert trap.connections > 0, refused.stdout  # it did try the index
    tried = trap.connections

    p.set("wheels", "ship")
    first = deploy(p, env)
    assert trap.connections == tried, "a host tried an index"
    key = key_of("tinylib==1.0")
    assert wheel_steps(first) == [f"wheelhouse {key} built here (1 wheels, "
                                  f"{(p.dir / 'cache/releasetui/wheelhouses' / key / 'tinylib-1.0-py3-none-any.whl').stat().st_size}"
                                  " bytes): sent to 2 host(s)"]
    assert [h["round_trips"] for h in summary(first)["hosts"]] == [3, 3]
    for name, root in p.roots.items():
        assert [w.name for w in (root / "wheelhouses" / key).iterdir()] == ["tinylib-1.0-py3-none-any.whl"]
        site = list((root / "current" / "env" / "lib").glob("python*/site-packages/tinylib*"))
        assert site, f"tinylib is not installed on {name}"
        assert not list((root / "wheels").glob("*.whl"))  # the host's own wheel cache was never used


def test_the_wheelhouse_is_built_once_and_sent_only_where_a_venv_is_built(tmp_path, wheelhouse, ssh_env, trap):
    p, env = shipping_project(tmp_path, wheelhouse, ssh_env, trap)
    key = key_of("tinylib==1.0")
    deploy(p, env, "--host", "web1")
    cache = p.dir / "cache/releasetui/wheelhouses" / key
    stamp = (cache / "tinylib-1.0-py3-none-any.whl").stat().st_mtime_ns

    # web2 has no venv yet: sent the wheelhouse from this machine's cache (not rebuilt); web1 reuses its venv.
    plan = p.cli("--headless", "deploy", "--dry-run", env=env)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert f"venv {key} is reused: no wheelhouse sent" in plan.stdout
    assert f"send wheelhouse {key} from {cache}" in plan.stdout
    assert f"--find-links \"$_wh\"" in plan.stdout and f"_wh=wheelhouses/{key}" in plan.stdout
    both = deploy(p, env)
    assert wheel_steps(both)[0].startswith(f"wheelhouse {key} from this machine's cache") and \
        wheel_steps(both)[0].endswith("sent to 1 host(s)")
    assert (cache / "tinylib-1.0-py3-none-any.whl").stat().st_mtime_ns == stamp
    prepared = {e["host"]: e["message"] for e in events(both) if e["step"] == "build" and e["status"] == "ok"}
    assert "wheelhouse" in prepared["web2"] and "wheelhouse" not in prepared["web1"], prepared
    assert (p.roots["web2"] / "wheelhouses" / key).is_dir()

    # Unchanged requirements: nothing built, nothing sent, no extra round trip.
    p.write_app("v2")
    again = deploy(p, env)
    assert wheel_steps(again) == []
    assert [h["round_trips"] for h in summary(again)["hosts"]] == [3, 3]
    assert trap.connections == 0


def test_prune_removes_a_wheelhouse_with_the_last_build_that_uses_it(tmp_path, wheelhouse, ssh_env, trap):
    one = {"web1": ssh_hosts(ssh_env)["web1"]}
    p, env = shipping_project(tmp_path, wheelhouse, ssh_env, trap, hosts=one)
    root = p.roots["web1"]
    old, new = key_of("tinylib==1.0"), key_of("tinylib==2.0")
    deploy(p, env)
    p.write_app("v2", "tinylib==2.0")
    deploy(p, env)
    p.write_app("v3", "tinylib==2.0")
    deploy(p, env)
    assert sorted(w.name for w in (root / "wheelhouses").iterdir()) == sorted([old, new])
    plan = p.cli("--headless", "prune", "--keep", "2", "--dry-run", env=env)
    assert f"wheelhouse:{old}" in plan.stdout and f"wheelhouse:{new}" not in plan.stdout, plan.stdout
    pruned = p.cli("--headless", "prune", "--keep", "2", "--json", env=env)
    assert pruned.returncode == 0, pruned.stdout + pruned.stderr
    assert f"wheelhouse:{old}" in summary(pruned)["hosts"][0]["removed"]
    assert [w.name for w in (root / "wheelhouses").iterdir()] == [new]
    assert (root / "venvs" / new).is_dir() and not (root / "venvs" / old).exists()

    # A deploy's own prune (after the switch) does the same: back to 1.0 twice, keeping 2 builds.
    p.set("keep_builds", "2")
    for version in ("v4", "v5"):
        p.write_app(version, "tinylib==1.0")
        deploy(p, env)
    assert [w.name for w in (root / "wheelhouses").iterdir()] == [old]


def test_a_host_this_machine_cannot_build_for_is_refused_before_anything_changes(tmp_path, wheelhouse, ssh_env,
                                                                                  trap):
    p, env = shipping_project(tmp_path, wheelhouse, ssh_env, trap)
    wrapper = p.dir / "no-index-python"
    wrapper.write_text(wrapper.read_text().replace("exec ", 'case "$1" in --version) echo "Python 2.7.18"; exit 0;; esac\nexec ', 1))
    proc = p.cli("--headless", "deploy", env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "wheels: ship builds the wheelhouse on this machine" in proc.stdout, proc.stdout
    assert "Python 2.7): set wheels: host for it" in proc.stdout, proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    for root in p.roots.values():
        assert not list((root / "builds").iterdir()) and not (root / "deploy.lock").exists()
    assert not (p.dir / "cache").exists()


# --- the rules, pure ---------------------------------------------------------------------------

def test_a_wheelhouse_is_sent_only_for_a_venv_to_build_and_refused_on_a_platform_mismatch():
    key = rules.venv_key("a" * 64, "3.11.7")
    fresh = HostState("h", python_version="3.11.7", platform="Linux x86_64")
    local = rules.LocalBuilder("Linux x86_64", {"3.11": "/usr/bin/python3.11"})
    assert rules.wheels_to_send(fresh, key, "ship")
    assert not rules.wheels_to_send(fresh, key, "host")
    assert not rules.wheels_to_send(HostState("h", venvs=[key]), key, "ship")
    assert not rules.wheels_to_send(HostState("h", wheelhouses=[key]), key, "ship")
    assert rules.wheelhouse_refusal(fresh, local) is None
    arm = HostState("h", python_version="3.11.7", platform="Linux aarch64")
    assert "(Linux aarch64, Python 3.11)" in rules.wheelhouse_refusal(arm, local)
    plan = rules.plan_deploy({"h": arm}, "a" * 64, "20300101000000", {"h": "python3"}, wheels={"h": "ship"},
                             local=local)
    assert not plan.ok and plan.refusals[0].host == "h"
    fine = rules.plan_deploy({"h": fresh}, "a" * 64, "20300101000000", {"h": "python3"}, wheels={"h": "ship"},
                             local=local)
    assert present.deploy_plan_lines(fine) == ["h: none → new build, a new venv is built from the wheelhouse sent "
                                               "from here"]
    reused = HostState("h", python_version="3.11.7", platform="Linux aarch64", venvs=[key])
    assert rules.plan_deploy({"h": reused}, "a" * 64, "20300101000000", {"h": "python3"}, wheels={"h": "ship"},
                             local=local).ok  # nothing to build: nothing to refuse


def test_prune_plans_a_wheelhouse_away_with_the_venv_it_filled():
    old, new = rules.venv_key("a" * 64, "3.11"), rules.venv_key("b" * 64, "3.11")
    builds = [BuildInfo(f"2030010100000{i}", complete=True, venv=old if i == 1 else new) for i in range(1, 5)]
    state = HostState("h", current=builds[-1].id, builds=builds, venvs=[old, new], wheelhouses=[old, new])
    plan = rules.plan_prune(state, 2)
    assert plan.remove_wheelhouses == [old] and plan.remove_venvs == [old]
    assert not plan.empty


def test_a_wheelhouse_this_machine_cannot_build_aborts_the_deploy_in_one_line(tmp_path, wheelhouse, ssh_env, trap):
    p, env = shipping_project(tmp_path, wheelhouse, ssh_env, trap)
    (tmp_path / "empty").mkdir()
    env = {"PIP_CONFIG_FILE": env["PIP_CONFIG_FILE"], "XDG_CACHE_HOME": env["XDG_CACHE_HOME"],
           "PIP_FIND_LINKS": str(tmp_path / "empty"), "PIP_INDEX_URL": trap.url, "PIP_RETRIES": "0"}
    proc = p.cli("--headless", "deploy", "--json", env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert all("wheels: ship: pip wheel -r requirements.txt failed here" in h["message"]
               for h in summary(proc)["hosts"]), summary(proc)
    assert "Traceback" not in proc.stdout + proc.stderr
    for root in p.roots.values():
        assert not list((root / "builds").iterdir()) and not (root / "deploy.lock").exists()
        assert not (root / "wheelhouses").exists()


# --- the host's receiver, on hostile input -------------------------------------------------------

def receive(tmp_path: Path, wheels: list, data: bytes) -> subprocess.CompletedProcess:
    """Run the host's ship helper with a wheelhouse on stdin in ``tmp_path`` (the project root)."""
    import json
    import sys
    from releasetui.commands.prepare import ship_py
    stdin = json.dumps({"wheels": wheels}).encode() + b"\n" + data
    return subprocess.run([sys.executable, "-I", "-S", "-c", ship_py(KEY), "builds/x", "0"], input=stdin,
                          cwd=tmp_path, capture_output=True)


KEY = "0123456789abcdef-py3.11"


@pytest.mark.parametrize("name", ["../evil.whl", "a/b.whl", ".hidden.whl", "evil.sh", "x\n.whl"])
def test_the_host_refuses_a_wheel_name_that_could_leave_the_wheelhouse(tmp_path, name):
    proc = receive(tmp_path, [[name, 3, hashlib.sha256(b"abc").hexdigest()]], b"abc")
    assert proc.returncode == 1 and b"refusing wheel" in proc.stderr, proc.stderr
    assert not (tmp_path / "evil.whl").exists() and not (tmp_path / "wheelhouses" / KEY).exists()


def test_the_host_keeps_no_wheelhouse_that_arrived_damaged_or_short(tmp_path):
    damaged = receive(tmp_path, [["a-1.0-py3-none-any.whl", 3, hashlib.sha256(b"abc").hexdigest()]], b"abd")
    assert damaged.returncode == 1 and b"arrived damaged" in damaged.stderr
    short = receive(tmp_path, [["a-1.0-py3-none-any.whl", 5, hashlib.sha256(b"abcde").hexdigest()]], b"abc")
    assert short.returncode == 1 and b"did not arrive whole" in short.stderr
    assert not (tmp_path / "wheelhouses" / KEY).exists()
    (tmp_path / "elsewhere").mkdir()
    shutil.rmtree(tmp_path / "wheelhouses")
    (tmp_path / "wheelhouses").symlink_to(tmp_path / "elsewhere")
    linked = receive(tmp_path, [["a-1.0-py3-none-any.whl", 3, hashlib.sha256(b"abc").hexdigest()]], b"abc")
    assert linked.returncode == 1 and b"symlink" in linked.stderr
    assert not any((tmp_path / "elsewhere").iterdir())


def test_the_local_wheelhouse_cache_is_kept_apart_for_each_set_of_pip_args():
    from releasetui.operations.wheels import cache_dir
    env = {"XDG_CACHE_HOME": "/tmp/x"}
    plain = cache_dir(env)
    other_index = cache_dir(env, ("--index-url", "https://mirror.example.invalid/simple"))
    binary_only = cache_dir(env, ("--only-binary", ":all:"))
    assert plain == cache_dir(env, ()) and len({plain, other_index, binary_only}) == 3
    assert other_index.parent == plain
