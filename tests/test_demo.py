"""``releasetui demo``: an offline sandbox with real builds, reused unless --fresh, TUI opened lazily."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from releasetui.demo import DEMO_BUILDS, DEMO_HOSTS, build_wheel, default_sandbox

from .support.helpers import TEST_CLOCK

pytestmark = pytest.mark.skipif(not any(os.access(os.path.join(p, "rsync"), os.X_OK)
                                        for p in os.environ.get("PATH", "").split(os.pathsep)),
                                reason="rsync is not installed")


def run(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **TEST_CLOCK.env(), **(env or {})}
    full_env.pop("RELEASETUI_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "releasetui", *args], capture_output=True, text=True,
                          timeout=timeout, env=full_env, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """One demo sandbox for the module (it deploys five builds to two hosts: a few seconds)."""
    base = tmp_path_factory.mktemp("demo") / "sandbox"
    return base, run("demo", "--headless", "--dir", str(base))


def test_headless_demo_prints_the_config_path_and_deploys_builds(sandbox):
    base, proc = sandbox
    assert proc.returncode == 0, proc.stderr
    config = Path(proc.stdout.strip())
    assert config == base / "hosts.yml" and config.is_file()
    assert str(base) in proc.stderr  # the sandbox path is shown
    builds = run("--config", str(config), "--headless", "builds", "--json")
    assert builds.returncode == 0, builds.stderr
    doc = json.loads(builds.stdout)
    assert [h["name"] for h in doc["hosts"]] == list(DEMO_HOSTS)
    for host in doc["hosts"]:
        assert len(host["builds"]) == len(DEMO_BUILDS) >= 4
        assert all(b["complete"] for b in host["builds"])
        assert host["current"] == host["builds"][-1]["id"]
        assert len({b["requirements_sha256"] for b in host["builds"]}) == 2  # one requirements change
    text = config.read_text()
    assert "transport: local" in text and "--no-index" in text


def test_demo_app_runs_in_its_build_venv_without_flask(sandbox):
    base, _ = sandbox
    current = base / "hosts" / "web1" / "current"
    probe = ("import app\n"
             "out = []\n"
             "body = app.application({}, lambda status, headers: out.append(status))\n"
             "print(out[0], b''.join(body).decode().strip())\n")
    proc = subprocess.run([str(current / "env" / "bin" / "python"), "-c", probe], cwd=current,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"200 OK Hello, world from demo {DEMO_BUILDS[-1][0]}"


def test_demo_reuses_the_sandbox_unless_fresh(sandbox):
    base, _ = sandbox
    again = run("demo", "--headless", "--dir", str(base))
    assert again.returncode == 0 and "reusing" in again.stderr
    assert again.stdout.strip() == str(base / "hosts.yml")


def test_demo_fresh_starts_over(tmp_path):
    base = tmp_path / "sb"
    assert run("demo", "--headless", "--dir", str(base)).returncode == 0
    (base / "hosts" / "web1" / "builds" / "20200101000000").mkdir()
    fresh = run("demo", "--headless", "--dir", str(base), "--fresh")
    assert fresh.returncode == 0, fresh.stderr
    assert not (base / "hosts" / "web1" / "builds" / "20200101000000").exists()


def test_headless_demo_never_imports_textual(tmp_path):
    code = ("import sys; from releasetui.cli import main; "
            f"rc = main(['demo', '--headless', '--dir', {str(tmp_path / 'sb')!r}]); "
            "assert rc == 0; assert not any(m == 'textual' or m.startswith('textual.') for m in sys.modules), 'textual'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


def test_default_sandbox_follows_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_sandbox() == tmp_path / "releasetui" / "demo"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_sandbox() == Path.home() / ".cache" / "releasetui" / "demo"


def test_build_wheel_writes_a_valid_wheel(tmp_path):
    wheel = build_wheel(tmp_path, "tiny", "1.0", "X = 1\n")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert {"tiny/__init__.py", "tiny-1.0.dist-info/METADATA", "tiny-1.0.dist-info/WHEEL",
                "tiny-1.0.dist-info/RECORD"} <= names
        record = archive.read("tiny-1.0.dist-info/RECORD").decode()
    assert "tiny/__init__.py,sha256=" in record


def test_demo_opens_the_tui_on_the_sandbox(sandbox, monkeypatch):
    """Without --headless the demo hands its config to the TUI (run is stubbed: no terminal here)."""
    import argparse
    from releasetui import demo
    from releasetui.tui import app as app_module
    base, _ = sandbox
    seen = {}

    def fake_run_app(args):
        seen["config"] = args.config
        return 0
    monkeypatch.setattr(app_module, "run_app", fake_run_app)
    args = argparse.Namespace(demo_dir=str(base), demo_headless=False, fresh=False)
    assert demo.run_demo(args) == 0
    assert seen["config"] == str(base / "hosts.yml")
