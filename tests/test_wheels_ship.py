"""``wheels: ship``: the wheelhouse built once on this machine, sent with the build, installed with --no-index.

The hosts here have no package index: their pip reads no pip.conf and knows only an index that drops every
connection (:class:`~tests.support.helpers.IndexTrap`, which counts them). The client reaches the test's
wheels through its own environment only (:func:`~tests.support.helpers.client_index_env`), never through
``pip_args``, which the hosts would get too.
"""

from __future__ import annotations

import hashlib
import os
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
    assert "--find-links \"$_wh\"" in plan.stdout and f"_wh=wheelhouses/{key}" in plan.stdout
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


# --- built on a host, when this machine cannot build for the hosts ------------------------------

# This machine's platform probe, and only it, says a platform the hosts do not have: everything else is real.
ELSEWHERE = ("import sys, releasetui.operations.wheels as w\n"
             "from releasetui.rules import LocalBuilder\n"
             "w.local_builder = lambda versions: LocalBuilder('Linux riscv64', "
             "{'%d.%d' % sys.version_info[:2]: sys.executable})\n"
             "from releasetui.cli import main\n"
             "sys.exit(main(sys.argv[1:]))\n")


def popen_elsewhere(p: Project, env: dict, *args: str) -> subprocess.Popen:
    """Start ``releasetui ARGS`` from a client whose platform (riscv64) is not the hosts'."""
    import sys
    from .support.helpers import REPO, TEST_CLOCK
    full = {**os.environ, **TEST_CLOCK.env(), **env, "PYTHONPATH": str(REPO)}
    full.pop("RELEASETUI_CONFIG", None)
    return subprocess.Popen([sys.executable, "-c", ELSEWHERE, "--config", str(p.config), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full)


def cli_elsewhere(p: Project, env: dict, *args: str) -> subprocess.CompletedProcess:
    """Run ``releasetui ARGS`` from a client whose platform (riscv64) is not the hosts'."""
    proc = popen_elsewhere(p, env, *args)
    out, err = proc.communicate(timeout=180)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def host_builder_project(tmp_path: Path, wheelhouse: Path, ssh_env, trap: IndexTrap) -> tuple[Project, dict, Path]:
    """web1's pip finds wheels in a folder of its own (returned) and no index; web2's knows only the trap. The
    client's pip knows only the trap too (it must build nothing)."""
    from .support.helpers import HOST_PYTHON
    source = tmp_path / "web1-wheels"
    shutil.copytree(wheelhouse, source)
    reach = tmp_path / "reach-python"
    reach.write_text("#!/bin/sh\nunset PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_CONSTRAINT\n"
                     f"PIP_CONFIG_FILE=/dev/null PIP_NO_INDEX=1 PIP_FIND_LINKS={source}\n"
                     "export PIP_CONFIG_FILE PIP_NO_INDEX PIP_FIND_LINKS\n"
                     f"exec {HOST_PYTHON} \"$@\"\n")
    reach.chmod(0o755)
    hosts = ssh_hosts(ssh_env)
    hosts["web1"]["python"] = str(reach)
    p, _ = shipping_project(tmp_path, wheelhouse, ssh_env, trap, hosts=hosts)
    env = {"PIP_CONFIG_FILE": "/dev/null", "PIP_INDEX_URL": trap.url, "PIP_RETRIES": "0",
           "XDG_CACHE_HOME": str(p.dir / "cache")}
    return p, env, source


def hosts_platform_cache(p: Project, key: str) -> Path:
    """Where the client keeps a wheelhouse built on one of the test's hosts (this machine's real platform)."""
    import platform
    import sys
    return (p.dir / "cache/releasetui/wheelhouses" /
            f"host-{platform.system()}-{platform.machine()}-py{sys.version_info[0]}.{sys.version_info[1]}" / key)


def imports_tinylib(root: Path) -> str:
    proc = subprocess.run([str(root / "current" / "env" / "bin" / "python"), "-c",
                           "import tinylib; print(tinylib.VERSION)"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_a_wheelhouse_this_machine_cannot_build_is_built_on_one_host_and_sent_to_all(tmp_path, wheelhouse, ssh_env,
                                                                                    trap):
    p, env, _ = host_builder_project(tmp_path, wheelhouse, ssh_env, trap)
    key = key_of("tinylib==1.0")
    plan = cli_elsewhere(p, env, "--headless", "deploy", "--dry-run")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert f"build wheelhouse {key} on web1 (this machine cannot build for" in plan.stdout, plan.stdout
    assert "-m pip wheel -q --disable-pip-version-check --no-cache-dir -r \"$_wd/requirements.txt\"" in plan.stdout
    assert not (p.dir / "cache").exists()

    first = cli_elsewhere(p, env, "--headless", "deploy", "--json")
    assert first.returncode == 0, first.stdout + first.stderr
    cache = hosts_platform_cache(p, key)
    wheel = cache / "tinylib-1.0-py3-none-any.whl"
    assert wheel_steps(first) == [f"wheelhouse {key} built on web1 (1 wheels, {wheel.stat().st_size} bytes): "
                                  "sent to 2 host(s)"]
    assert (cache / ".releasetui-complete").is_file()
    assert not (p.dir / "cache/releasetui/wheelhouses" / key).exists()   # nothing was built here
    # One round trip more, on the builder only.
    assert {h["host"]: h["round_trips"] for h in summary(first)["hosts"]} == {"web1": 4, "web2": 3}
    assert trap.connections == 0, "a host or the client tried an index"
    for root in p.roots.values():
        assert imports_tinylib(root) == "1.0"
        assert [w.name for w in (root / "wheelhouses" / key).iterdir()] == [wheel.name]
        assert not list(root.glob(".releasetui-wheelhouse.*"))

    # A new host (web2 wiped) and a new build of the same requirements: sent from the cache, nothing built.
    shutil.rmtree(p.roots["web2"])
    p.write_app("v2")
    again = cli_elsewhere(p, env, "--headless", "deploy", "--json")
    assert again.returncode == 0, again.stdout + again.stderr
    assert [m.split(" (1 wheels")[0] for m in wheel_steps(again)] == [
        f"wheelhouse {key} from this machine's cache (built on a host of {_uname()})"]
    assert [h["round_trips"] for h in summary(again)["hosts"]] == [3, 3]
    assert imports_tinylib(p.roots["web2"]) == "1.0" and trap.connections == 0


def _uname() -> str:
    import platform
    return f"{platform.system()} {platform.machine()}"


def test_a_wheelhouse_that_fails_to_build_on_its_host_changes_no_host(tmp_path, wheelhouse, ssh_env, trap):
    p, env, _ = host_builder_project(tmp_path, wheelhouse, ssh_env, trap)
    first = cli_elsewhere(p, env, "--headless", "deploy", "--json")
    assert first.returncode == 0, first.stdout + first.stderr
    before = {name: (p.builds(name), p.current(name), sorted(os.listdir(root / "wheelhouses")))
              for name, root in p.roots.items()}
    (p.dir / "web1-wheels" / "tinylib-2.0-py3-none-any.whl").unlink()   # web1 cannot find 2.0 any more
    p.write_app("v2", "tinylib==2.0")
    proc = cli_elsewhere(p, env, "--headless", "deploy", "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    outcomes = {h["host"]: h for h in summary(proc)["hosts"]}
    words = "wheels: ship: the wheelhouse could not be built on web1: pip wheel: "
    assert outcomes["web1"]["status"] == "failed" and outcomes["web1"]["message"].startswith(words)
    assert "tinylib==2.0" in outcomes["web1"]["message"] and "\n" not in outcomes["web1"]["message"]
    assert outcomes["web2"]["status"] == "aborted" and words in outcomes["web2"]["message"], outcomes
    assert "Traceback" not in proc.stdout + proc.stderr
    for name, root in p.roots.items():
        assert (p.builds(name), p.current(name), sorted(os.listdir(root / "wheelhouses"))) == before[name]
        assert not list(root.glob(".releasetui-wheelhouse.*")) and not (root / "deploy.lock").exists()
    assert not hosts_platform_cache(p, key_of("tinylib==2.0")).exists()


def test_ctrl_c_while_a_host_builds_the_wheelhouse_leaves_every_host_as_it_was(tmp_path, wheelhouse, ssh_env, trap):
    import signal
    from .support.helpers import wait_for
    p, env, _ = host_builder_project(tmp_path, wheelhouse, ssh_env, trap)
    reach, marker = tmp_path / "reach-python", tmp_path / "pip-wheel-started"
    # web1's pip wheel hangs (after saying it started) until it is stopped.
    reach.write_text(reach.read_text().replace("exec ", f'case " $* " in *" wheel "*) touch {marker}; sleep 120;; '
                                               'esac\nexec ', 1))
    proc = popen_elsewhere(p, env, "--headless", "deploy")
    try:
        wait_for(marker.exists, 60, "pip wheel on web1")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, out + err
    assert "interrupted" in out and "Traceback" not in out + err
    for name, root in p.roots.items():
        assert p.builds(name) == [] and p.current(name) is None and not (root / "wheelhouses").exists()
        assert not list(root.glob(".releasetui-wheelhouse.*")) and not (root / "deploy.lock").exists(), \
            sorted(os.listdir(root))
    hung = subprocess.run(["pgrep", "-f", f"{reach} -m pip wheel"], capture_output=True, text=True).stdout
    assert hung == "", "the hung pip wheel runs on"


# --- the rules, pure ---------------------------------------------------------------------------

def test_a_wheelhouse_is_sent_only_for_a_venv_to_build_and_built_here_only_for_this_platform():
    key = rules.venv_key("a" * 64, "3.11.7")
    fresh = HostState("h", python_version="3.11.7", platform="Linux x86_64")
    local = rules.LocalBuilder("Linux x86_64", {"3.11": "/usr/bin/python3.11"})
    assert rules.wheels_to_send(fresh, key, "ship")
    assert not rules.wheels_to_send(fresh, key, "host")
    assert not rules.wheels_to_send(HostState("h", venvs=[key]), key, "ship")
    assert not rules.wheels_to_send(HostState("h", wheelhouses=[key]), key, "ship")
    assert rules.builds_here(fresh, local)
    assert not rules.builds_here(HostState("h", python_version="3.11.7", platform="Linux aarch64"), local)
    assert not rules.builds_here(HostState("h", python_version="3.12.1", platform="Linux x86_64"), local)
    assert not rules.builds_here(HostState("h", python_version="3.11.7"), local)   # platform unknown
    fine = rules.plan_deploy({"h": fresh}, "a" * 64, "20300101000000", {"h": "python3"}, wheels={"h": "ship"},
                             local=local)
    assert fine.ok and fine.hosts[0].wheels_built_on is None
    assert present.deploy_plan_lines(fine) == ["h: none → new build, a new venv is built from the wheelhouse sent "
                                               "from here"]


def test_a_musl_host_is_another_platform_and_this_machine_names_its_own_as_the_hosts_read_script_does(tmp_path):
    from releasetui.commands import parse_read, read_script
    from releasetui.operations.wheels import libc_suffix, local_builder
    local = rules.LocalBuilder("Linux x86_64", {"3.11": "/usr/bin/python3.11"})
    assert not rules.builds_here(HostState("h", python_version="3.11.7", platform="Linux x86_64 musl"), local)
    assert libc_suffix(str(tmp_path)) == ""
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "ld-musl-x86_64.so.1").write_text("")
    assert libc_suffix(str(tmp_path)) == " musl"
    # This machine read as a host says what this machine says of itself: a wheelhouse built here is for it.
    script = read_script(str(tmp_path / "root"), python="python3", platform=True)
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30).stdout
    assert parse_read("h", out).platform == local_builder([]).platform


def test_a_wheelhouse_this_machine_cannot_build_is_built_by_the_first_host_of_its_key_and_platform():
    sha, base = "a" * 64, "20300101000000"
    local = rules.LocalBuilder("Linux x86_64", {"3.11": "/usr/bin/python3.11"})
    arm11, arm12 = rules.venv_key(sha, "3.11.7"), rules.venv_key(sha, "3.12.1")

    def host(platform, version, **more):
        return HostState("", python_version=version, platform=platform, **more)
    states = {"x1": host("Linux x86_64", "3.11.7"),          # built here
              "a1": host("Linux aarch64", "3.11.7", venvs=[arm11]),   # reuses its venv: needs nothing
              "a2": host("Linux aarch64", "3.11.7"),          # the first arm 3.11 host that needs it: builds it
              "a3": host("Linux aarch64", "3.11.7"),
              "b1": host("Linux aarch64", "3.12.1"),          # another Python: another wheelhouse
              "r1": host("Linux riscv64", "3.11.7"),          # another platform: never shares a1's
              "u1": host(None, "3.11.7"), "u2": host(None, "3.11.7"),   # platform unknown: each its own
              "h1": host("Linux aarch64", "3.11.7")}          # wheels: host: no wheelhouse at all
    for name, state in states.items():
        state.name = name
    modes = {name: "host" if name == "h1" else "ship" for name in states}
    plan = rules.plan_deploy(states, sha, base, {n: "python3" for n in states}, wheels=modes, local=local)
    assert plan.ok, plan.refusals
    built_on = {p.host: p.wheels_built_on for p in plan.hosts if p.send_wheels}
    assert built_on == {"x1": None, "a2": "a2", "a3": "a2", "b1": "b1", "r1": "r1", "u1": "u1", "u2": "u2"}
    assert [p.venv for p in plan.hosts if p.host in ("a2", "b1")] == [arm11, arm12]
    # The order of the plan decides: a3 first, a3 builds.
    reordered = {n: states[n] for n in ("a3", "a2")}
    plan = rules.plan_deploy(reordered, sha, base, {n: "python3" for n in reordered}, wheels=modes, local=local)
    assert [p.wheels_built_on for p in plan.hosts] == ["a3", "a3"]
    assert present.deploy_plan_lines(plan) == ["a3, a2: none → new build, a new venv is built from the "
                                               "wheelhouse built on a3"]
    # No machine given at all (nothing here builds): still no refusal, each group has its builder.
    plan = rules.plan_deploy(reordered, sha, base, {n: "python3" for n in reordered}, wheels=modes, local=None)
    assert plan.ok and [p.wheels_built_on for p in plan.hosts] == ["a3", "a3"]


# --- the builder host's script and its parser, pure ----------------------------------------------

def test_the_builder_script_runs_pip_wheel_under_the_lock_and_removes_its_folder_on_every_exit():
    from releasetui import commands
    text = "".join(f"package{i}==1.{i}\n" for i in range(400))   # long: carried gzip'd
    script = commands.wheelhouse_script("/srv/my app", "0123456789abcdef", key=KEY, python="/opt/py 3/bin/python",
                                        requirements_text=text, pip_args=["--index-url", "https://m.invalid/ s"],
                                        install_timeout=600)
    assert "cd '/srv/my app'" in script and "owns_lock || { echo LOSTLOCK" in script
    assert "deploy.lock/worker.pid" in script                          # an interrupt or unlock can stop it
    assert script.index("trap '_stop_pip; rm -rf -- \"$_wd\"' EXIT") < script.index("-m pip wheel")
    assert ("timeout -k 10 570 '/opt/py 3/bin/python' -m pip wheel -q --disable-pip-version-check --no-cache-dir "
            "-r \"$_wd/requirements.txt\" -w \"$_wd/wheels\" --index-url 'https://m.invalid/ s'") in script
    assert "package399" not in script and "zlib.decompress" in script   # the requirements ride compressed
    # After pip, the lock is checked again before anything is sent.
    assert script.index("-m pip wheel") < script.rindex("owns_lock ||") < script.index("\"$_wd/wheels\" 36864")
    with pytest.raises(ValueError):
        commands.wheelhouse_script("/srv", "0123456789abcdef", key="../x", python="python3", requirements_text="",
                                   pip_args=[], install_timeout=60)


def emitted(tmp_path: Path, wheels: dict) -> str:
    """What the builder's emitter writes for a folder holding ``wheels`` (name -> bytes)."""
    import sys
    from releasetui.commands.wheelhouse import EMIT_PY, RAW_PER_LINE
    folder = tmp_path / "wheels"
    folder.mkdir()
    for name, data in wheels.items():
        (folder / name).write_bytes(data)
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", EMIT_PY, str(folder), str(RAW_PER_LINE)],
                          capture_output=True, check=True)
    return proc.stdout.decode("utf-8")


def test_the_builder_sends_wheels_in_bounded_lines_and_the_client_checks_each(tmp_path):
    import os as _os
    from releasetui.commands import parse_wheelhouse
    from releasetui.commands.wheelhouse import LINE_CHARS
    big, small = _os.urandom(200_000), b"tiny"
    out = emitted(tmp_path, {"big-1.0-py3-none-any.whl": big, "small-1.0-py3-none-any.whl": small,
                             "notes.txt": b"not a wheel"})
    assert max(len(line) for line in out.splitlines()) <= LINE_CHARS + len("W64\t") and LINE_CHARS == 48 * 1024
    assert len([line for line in out.splitlines() if line.startswith("W64\t")]) == 7   # 6 for big, 1 for small
    got = parse_wheelhouse(out)
    assert got.complete and got.problem is None
    assert got.wheels == [("big-1.0-py3-none-any.whl", big), ("small-1.0-py3-none-any.whl", small)]

    sha = hashlib.sha256(small).hexdigest()
    for name in ["../evil.whl", "a/b.whl", ".hidden.whl", "evil.sh", "x y.whl", "a\\b.whl", "-rf.whl",
                 "a" * 300 + ".whl"]:
        bad = parse_wheelhouse(f"WHEEL\t{name}\t4\t{sha}\nW64\tdGlueQ==\nWHEELSEND\t1\n")
        assert not bad.complete and bad.wheels == [] and "refusing the wheel name" in bad.problem, name
    damaged = out.replace(hashlib.sha256(small).hexdigest(), hashlib.sha256(b"tinY").hexdigest())
    assert "small-1.0-py3-none-any.whl arrived damaged" in parse_wheelhouse(damaged).problem
    short = "\n".join(line for line in out.splitlines() if not line.startswith("WHEELSEND"))
    assert not parse_wheelhouse(short).complete
    assert "did not arrive whole" in parse_wheelhouse(out.split("\nW64")[0]).problem
    assert "arrived of the 3 sent" in parse_wheelhouse(out.replace("WHEELSEND\t2", "WHEELSEND\t3")).problem
    failed = parse_wheelhouse("@@step\twheelhouse\tfailed\t5\tpip wheel: no\nWHEELSFAILED\tERROR: no tinylib\n")
    assert failed.failed == "ERROR: no tinylib" and not failed.complete


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
    from releasetui.commands.ship_helper import ship_py
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


def test_a_host_built_wheelhouse_streams_to_disk_and_the_script_output_keeps_none_of_its_bytes(tmp_path):
    import os as _os
    from releasetui.commands import WheelhouseReader
    from releasetui.config import HostConfig
    from releasetui.executors import LocalExecutor
    from releasetui.operations.wheels import COMPLETE, Receiving
    wheels = {"big-1.0-py3-none-any.whl": _os.urandom(300_000), "small-1.0-py3-none-any.whl": b"tiny"}
    out = emitted(tmp_path, wheels)
    (tmp_path / "out.txt").write_text(out)
    arriving = Receiving("0123456789abcdef-py3.11", tmp_path / "cache")
    reader = WheelhouseReader(arriving.open_wheel)
    process = LocalExecutor(HostConfig("box", str(tmp_path), transport="local")).start(f"cat {tmp_path / 'out.txt'}")
    process.keep_only(reader.take)
    process.feed(None)
    result = process.wait()
    report = reader.end()
    assert report.complete and report.problem is None and reader.names == sorted(wheels)
    assert "W64" not in result.stdout and len(result.stdout) < 200 and "WHEELSEND\t2" in result.stdout
    house = arriving.keep()
    assert {p.name for p in house.path.iterdir()} == set(wheels) | {COMPLETE}
    assert all((house.path / name).read_bytes() == data for name, data in wheels.items())
    # A wheel that arrives damaged: nothing of it is kept.
    arriving = Receiving("0123456789abcdef-py3.12", tmp_path / "cache")
    reader = WheelhouseReader(arriving.open_wheel)
    for line in out.replace(hashlib.sha256(b"tiny").hexdigest(), "0" * 64).splitlines():
        reader.take(line)
    assert "small-1.0-py3-none-any.whl arrived damaged" in reader.end().problem
    arriving.drop()
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["0123456789abcdef-py3.11"]


def test_only_what_a_lock_pins_is_kept_from_a_wheelhouse():
    from releasetui.requirements import Requirements
    lock = Requirements("uv.lock", "uv.lock", "flask==3.1.0\nflask-sqlalchemy==3.1.1 ; python_version >= \"3.8\"\n"
                        "mylib @ git+https://example.org/mylib.git@0123456789abcdef\n", "0" * 64)
    fine = ["flask-3.1.0-py3-none-any.whl", "Flask_SQLAlchemy-3.1.1-py3-none-any.whl", "mylib-0.0.1-py3-none-any.whl"]
    assert lock.unpinned_wheels(fine) == []
    assert lock.unpinned_wheels(fine + ["flask-3.0.0-py3-none-any.whl", "evil-6.6-py3-none-any.whl"]) == [
        "flask-3.0.0-py3-none-any.whl", "evil-6.6-py3-none-any.whl"]
    plain = Requirements("requirements.txt", "txt", "flask>=3\n", "0" * 64)   # its closure is not written down
    assert plain.unpinned_wheels(["evil-6.6-py3-none-any.whl"]) == []


TINY_LOCK = ('lock-version = "1.0"\ncreated-by = "test"\n\n[[packages]]\nname = "tinylib"\nversion = "VERSION"\n'
             'index = "https://pypi.org/simple"\n')


def test_a_builder_host_that_sends_a_package_the_lock_does_not_pin_changes_no_host(tmp_path, wheelhouse, ssh_env,
                                                                                  trap):
    from .support.helpers import HOST_PYTHON
    p, env, source = host_builder_project(tmp_path, wheelhouse, ssh_env, trap)
    p.set("requirements", "pylock.toml")
    (p.source / "pylock.toml").write_text(TINY_LOCK.replace("VERSION", "1.0"))
    first = cli_elsewhere(p, env, "--headless", "deploy", "--json")
    assert first.returncode == 0, first.stdout + first.stderr    # what the lock pins is kept and sent
    before = {name: (p.builds(name), p.current(name), sorted(os.listdir(root / "wheelhouses")))
              for name, root in p.roots.items()}
    # web1's pip now hands over one package more than it was asked for (another index, a compromised host).
    shutil.copy(source / "tinylib-1.0-py3-none-any.whl", tmp_path / "evil-6.6-py3-none-any.whl")
    reach = tmp_path / "reach-python"
    reach.write_text(reach.read_text().replace(f'exec {HOST_PYTHON} "$@"\n', (
        f'{HOST_PYTHON} "$@"; _rc=$?\n'
        f'_prev=; for _a in "$@"; do [ "$_prev" = -w ] && cp {tmp_path}/evil-6.6-py3-none-any.whl "$_a"/; '
        '_prev=$_a; done\nexit $_rc\n')))
    (p.source / "pylock.toml").write_text(TINY_LOCK.replace("VERSION", "2.0"))
    proc = cli_elsewhere(p, env, "--headless", "deploy", "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "wheels: ship: the wheelhouse could not be built on web1: it sent evil-6.6-py3-none-any.whl, which " \
           "pylock.toml does not pin: not kept, not sent" in proc.stdout, proc.stdout
    assert {name: (p.builds(name), p.current(name), sorted(os.listdir(root / "wheelhouses")))
            for name, root in p.roots.items()} == before
    assert not list((p.dir / "cache").rglob("evil-*")) and not list(tmp_path.glob("*/wheelhouses/*/evil-*"))
