"""Apps shaped as Python projects, deployed over the loopback sshd: a ``src/`` package with pyproject.toml, a
uv.lock, ``installer: uv`` and ``pip``.  The dependency comes from the local wheelhouse (never an index)."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path
from typing import Optional

from releasetui.requirements import RESOLVED_NAME

from .support.helpers import Project, events, summary, uv_binary

HOSTS = ("web1", "web2")


def package_app(p: Project, dependencies: str, description: str = "an app") -> None:
    """Turn the sample into a package app: ``src/pkg`` + ``pyproject.toml``, no requirements.txt, and no
    ``requirements:`` in hosts.yml (detected)."""
    (p.source / "requirements.txt").unlink(missing_ok=True)
    (p.source / "app.py").unlink(missing_ok=True)
    (p.source / "src" / "pkg").mkdir(parents=True, exist_ok=True)
    (p.source / "src" / "pkg" / "__init__.py").write_text(
        "import tinylib\n\ndef create_app():\n    return 'pkg with tinylib ' + tinylib.VERSION\n")
    (p.source / "pyproject.toml").write_text(textwrap.dedent(f'''\
        [project]
        name = "pkg"
        version = "0.1.0"
        description = "{description}"
        dependencies = [{dependencies}]

        [build-system]
        requires = ["setuptools>=64"]
        build-backend = "setuptools.build_meta"
        '''))
    p.config.write_text("".join(line for line in p.config.read_text().splitlines(True)
                                if not line.startswith("requirements:")))


def uv_lock(tinylib: str) -> str:
    """A uv.lock of ``pkg`` (editable, never installed) depending on tinylib ``tinylib``."""
    return textwrap.dedent(f'''\
        version = 1
        revision = 2
        requires-python = ">=3.9"

        [[package]]
        name = "pkg"
        version = "0.1.0"
        source = {{ editable = "." }}
        dependencies = [{{ name = "tinylib" }}]

        [[package]]
        name = "tinylib"
        version = "{tinylib}"
        source = {{ registry = "https://pypi.org/simple" }}
        ''')


def deployed(p: Project, env: Optional[dict] = None) -> tuple[str, subprocess.CompletedProcess]:
    """Deploy (it must succeed); the build id and the run."""
    proc = p.cli("--headless", "deploy", "--json", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return summary(proc)["build_id"], proc


def in_build(p: Project, host: str, build: str, code: str, pythonpath: str = "") -> subprocess.CompletedProcess:
    """Run ``code`` with the build's venv, from the build directory (as a process manager with chdir does)."""
    build_dir = p.roots[host] / "builds" / build
    env = {"PATH": "/usr/bin:/bin", **({"PYTHONPATH": pythonpath} if pythonpath else {})}
    return subprocess.run([str(build_dir / "env" / "bin" / "python"), "-c", code], cwd=build_dir, env=env,
                          capture_output=True, text=True)


def meta(p: Project, host: str, build: str) -> dict:
    """The build's metadata on the host."""
    return json.loads((p.roots[host] / "builds" / build / ".releasetui-build.json").read_text())


def venv_messages(proc: subprocess.CompletedProcess) -> list[str]:
    """The venv step's ok lines."""
    return [e["message"] for e in events(proc) if e["step"] == "venv" and e["status"] == "ok"]


def test_a_src_layout_package_deploys_from_pyproject_and_runs_from_its_build(ssh_project):
    p = ssh_project
    package_app(p, '"tinylib==2.0"')
    p.set("uv", "/nonexistent/uv")   # installer auto, and no uv where it looks: pip, as before there was uv
    first, proc = deployed(p)
    assert all(m.endswith("with pip") for m in venv_messages(proc)) and len(venv_messages(proc)) == 2
    for host in HOSTS:
        build = p.roots[host] / "builds" / first
        assert (build / RESOLVED_NAME).read_text() == "tinylib==2.0\n"
        assert meta(p, host, first)["installer"] == "pip"
        assert in_build(p, host, first, "import tinylib; print(tinylib.VERSION)").stdout == "2.0\n"
        # module = pkg:create_app() with chdir = the build and PYTHONPATH=src: the package runs from its build...
        ran = in_build(p, host, first, "import pkg; print(pkg.create_app(), pkg.__file__)", pythonpath="src")
        assert ran.stdout.startswith(f"pkg with tinylib 2.0 {build}/src/pkg/"), ran.stderr
        # ...and is not in the shared venv (it changes every build: a rollback must not keep the newer one).
        assert "ModuleNotFoundError" in in_build(p, host, first, "import pkg").stderr
    # An edit of pyproject.toml that leaves the dependencies alone keeps the venv; one that changes them does not.
    package_app(p, '"tinylib==2.0"', description="the same app, described better")
    second, proc = deployed(p)
    assert all(m.startswith("reused") for m in venv_messages(proc)) and len(venv_messages(proc)) == 2
    package_app(p, '"tinylib==1.0"')
    third, _ = deployed(p)
    assert meta(p, "web1", third)["venv"] != meta(p, "web1", second)["venv"]
    assert in_build(p, "web1", third, "import tinylib; print(tinylib.VERSION)").stdout == "1.0\n"


def test_a_uv_lock_app_installed_by_uv_then_by_pip(ssh_project):
    p = ssh_project
    uv = uv_binary()
    package_app(p, '"tinylib"')   # unpinned: the wheelhouse's newest is 2.0; the lock (preferred) says 1.0
    (p.source / "uv.lock").write_text(uv_lock("1.0"))
    p.set("installer", "uv")
    p.set("uv", uv)
    first, proc = deployed(p)
    assert all(m.startswith("built venvs/") and " with uv 0." in m for m in venv_messages(proc)), venv_messages(proc)
    assert len(venv_messages(proc)) == 2
    for host in HOSTS:
        assert (p.roots[host] / "builds" / first / RESOLVED_NAME).read_text() == "tinylib==1.0\n"
        assert in_build(p, host, first, "import tinylib; print(tinylib.VERSION)").stdout == "1.0\n"
        assert meta(p, host, first)["installer"] == "uv"
    listed = json.loads(p.cli("--headless", "builds", "--json").stdout)
    assert {b["installer"] for h in listed["hosts"] for b in h["builds"]} == {"uv"}
    # A lock change is a requirements change, as diff reads it from each side's resolved text.
    (p.source / "uv.lock").write_text(uv_lock("2.0"))
    diff = p.cli("--headless", "diff", "--json")
    assert diff.returncode == 0, diff.stderr
    assert "+tinylib==2.0" in diff.stdout and "-tinylib==1.0" in diff.stdout
    p.set("installer", "pip")
    second, proc = deployed(p)
    assert all(m.endswith("with pip") for m in venv_messages(proc)), venv_messages(proc)
    for host in HOSTS:
        assert meta(p, host, second)["installer"] == "pip"
        assert in_build(p, host, second, "import tinylib; print(tinylib.VERSION)").stdout == "2.0\n"


def test_installer_uv_on_a_host_without_uv_fails_its_prepare_in_one_line(ssh_project):
    p = ssh_project
    p.write_app("v1", "tinylib==2.0")
    p.set("installer", "uv")
    p.set("uv", "/nonexistent/uv")
    proc = p.cli("--headless", "deploy", "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    for host in summary(proc)["hosts"]:
        assert "installer is uv, but this host has no uv (looked for uv: /nonexistent/uv)" in host["message"]
    assert [p.current(h) for h in HOSTS] == [None, None]


def test_a_bad_lock_stops_the_deploy_in_one_line_before_any_host(ssh_project):
    p = ssh_project
    package_app(p, '"tinylib"')
    (p.source / "uv.lock").write_text(uv_lock("1.0").replace('version = "1.0"', 'version = "1.0 ; rm -rf /"'))
    proc = p.cli("--headless", "deploy")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "uv.lock: package tinylib.version is not a version" in proc.stderr
    assert not any((p.roots[h] / "builds").exists() and p.builds(h) for h in HOSTS)


def test_installer_auto_finds_uv_on_the_path(local_project):
    p = local_project
    uv = uv_binary()
    package_app(p, '"tinylib==1.0"')
    first, proc = deployed(p, env={"PATH": f"{Path(uv).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"})
    assert [m for m in venv_messages(proc) if " with uv " in m] == venv_messages(proc) != []
    assert meta(p, "box", first)["installer"] == "uv"
