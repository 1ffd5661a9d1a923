"""Requirements sources resolved to what pip and uv install (pure: small fixture files, no index, no host)."""

from __future__ import annotations

import hashlib
import subprocess
import textwrap
from pathlib import Path

import pytest

from releasetui.commands.prepare import prepare_script
from releasetui.commands.venv import REQUIREMENTS_END, requirements_lines
from releasetui.config import ConfigError, load_config_text
from releasetui.requirements import RESOLVED_NAME, RequirementsError, detect, resolve

UV_LOCK = textwrap.dedent('''\
    version = 1
    revision = 2
    requires-python = ">=3.9"

    [[package]]
    name = "app"
    version = "0.1.0"
    source = { editable = "." }
    dependencies = [
        { name = "flask" },
        { name = "uvloop", marker = "sys_platform != 'win32'" },
    ]

    [package.optional-dependencies]
    pg = [{ name = "psycopg", extra = ["binary"] }]

    [package.dev-dependencies]
    dev = [{ name = "pytest" }]

    [[package]]
    name = "flask"
    version = "3.1.0"
    source = { registry = "https://pypi.org/simple" }
    dependencies = [
        { name = "click" },
        { name = "importlib-metadata", marker = "python_full_version < '3.10'" },
    ]

    [[package]]
    name = "click"
    version = "8.1.8"
    source = { registry = "https://pypi.org/simple" }
    dependencies = [{ name = "colorama", marker = "sys_platform == 'win32'" }]

    [[package]]
    name = "colorama"
    version = "0.4.6"
    source = { registry = "https://pypi.org/simple" }

    [[package]]
    name = "importlib-metadata"
    version = "8.5.0"
    source = { registry = "https://pypi.org/simple" }

    [[package]]
    name = "uvloop"
    version = "0.21.0"
    source = { registry = "https://pypi.org/simple" }
    dependencies = [{ name = "importlib-metadata", marker = "python_full_version < '3.10'" }]

    [[package]]
    name = "psycopg"
    version = "3.2.3"
    source = { registry = "https://pypi.org/simple" }

    [package.optional-dependencies]
    binary = [{ name = "psycopg-binary", marker = "implementation_name != 'pypy'" }]

    [[package]]
    name = "psycopg-binary"
    version = "3.2.3"
    source = { git = "https://github.com/psycopg/psycopg?rev=main#0123456789abcdef0123456789abcdef01234567" }

    [[package]]
    name = "pytest"
    version = "8.3.4"
    source = { registry = "https://pypi.org/simple" }
    ''')

POETRY_LOCK = textwrap.dedent('''\
    [[package]]
    name = "flask"
    version = "3.1.0"
    optional = false
    groups = ["main"]
    files = []

    [[package]]
    name = "colorama"
    version = "0.4.6"
    optional = false
    groups = ["main", "dev"]
    markers = {main = "platform_system == \\"Windows\\"", dev = "sys_platform == \\"win32\\""}
    files = []

    [[package]]
    name = "pytest"
    version = "8.3.4"
    optional = false
    groups = ["dev"]
    files = []

    [[package]]
    name = "gunicorn"
    version = "23.0.0"
    optional = true
    groups = ["main"]
    markers = "sys_platform != \\"win32\\""
    files = []

    [package.dependencies]
    packaging = "*"

    [[package]]
    name = "packaging"
    version = "24.2"
    optional = true
    groups = ["main"]
    files = []

    [extras]
    server = ["gunicorn"]

    [metadata]
    lock-version = "2.1"
    python-versions = ">=3.9"
    content-hash = "abc"
    ''')

PYLOCK = textwrap.dedent('''\
    lock-version = "1.0"
    created-by = "uv"
    requires-python = ">=3.9"

    [[packages]]
    name = "flask"
    version = "3.1.0"
    index = "https://pypi.org/simple"

    [[packages]]
    name = "colorama"
    version = "0.4.6"
    marker = "sys_platform == 'win32'"
    index = "https://pypi.org/simple"

    [[packages]]
    name = "app"
    directory = { path = ".", editable = true }

    [[packages]]
    name = "mylib"
    version = "1.0"
    vcs = { type = "git", url = "https://example.org/mylib.git", commit-id = "0123456789abcdef0123456789abcdef01234567" }
    ''')


def write(base: Path, name: str, text: str) -> Path:
    """``text`` into ``base/name``."""
    (base / name).write_text(text)
    return base / name


def pyproject(deps: str, extras: str = "", name: str = "app", extra_text: str = "") -> str:
    """A pyproject.toml with those dependency lines (TOML array bodies)."""
    return (f'[project]\nname = "{name}"\nversion = "0.1"\ndescription = "x"\ndependencies = [{deps}]\n'
            + (f"[project.optional-dependencies]\n{extras}\n" if extras else "") + extra_text)


# --- which source --------------------------------------------------------------------------------

def test_detect_prefers_a_lock_then_requirements_txt_then_pyproject(tmp_path):
    write(tmp_path, "pyproject.toml", pyproject('"flask"'))
    assert detect(tmp_path) == "pyproject.toml"
    write(tmp_path, "requirements.txt", "flask\n")
    assert detect(tmp_path) == "requirements.txt"
    write(tmp_path, "poetry.lock", POETRY_LOCK)
    assert detect(tmp_path) == "poetry.lock"
    write(tmp_path, "uv.lock", UV_LOCK)
    assert detect(tmp_path) == "uv.lock"
    write(tmp_path, "pylock.toml", PYLOCK)
    assert detect(tmp_path) == "pylock.toml"
    assert resolve(tmp_path).kind == "pylock"


def test_no_source_found_names_what_was_looked_for(tmp_path):
    with pytest.raises(RequirementsError, match="no requirements found.*pylock.toml, uv.lock, poetry.lock, "
                                                "requirements.txt, pyproject.toml"):
        resolve(tmp_path)


def test_a_txt_is_installed_as_is_and_keeps_the_digest_of_its_bytes(tmp_path):
    data = b"-r base.txt\ntinylib==1.0  # pinned\n"
    write(tmp_path, "requirements-prod.txt", data.decode())
    req = resolve(tmp_path, "requirements-prod.txt")
    assert req.kind == "txt" and req.carried is None and req.text == data.decode()
    assert req.sha256 == hashlib.sha256(data).hexdigest()   # the venv keys of existing builds stay valid


# --- pyproject.toml --------------------------------------------------------------------------------

def test_pyproject_dependencies_and_the_extras_named(tmp_path):
    write(tmp_path, "pyproject.toml", pyproject(
        '"Flask>=3", "uvloop; sys_platform != \'win32\'"',
        'pg = ["psycopg[binary]>=3"]\nall = ["app[pg,redis]"]\nredis = ["redis"]\nDocs_Site = ["mkdocs"]'))
    plain = resolve(tmp_path, "pyproject.toml")
    assert plain.text == "Flask>=3\nuvloop; sys_platform != 'win32'\n" and plain.carried == plain.text
    full = resolve(tmp_path, "pyproject.toml", ["all", "docs-site"])
    assert full.text.splitlines() == ["Flask>=3", "mkdocs", "psycopg[binary]>=3", "redis",
                                      "uvloop; sys_platform != 'win32'"]
    assert full.sha256 == hashlib.sha256(full.text.encode()).hexdigest() != plain.sha256


def test_a_pyproject_edit_that_leaves_the_dependencies_alone_keeps_the_digest(tmp_path):
    write(tmp_path, "pyproject.toml", pyproject('"flask", "redis"'))
    before = resolve(tmp_path, "pyproject.toml").sha256
    write(tmp_path, "pyproject.toml", pyproject('"redis",\n  "flask"', extra_text='[tool.ruff]\nline-length = 99\n')
          .replace('version = "0.1"', 'version = "0.2"'))
    assert resolve(tmp_path, "pyproject.toml").sha256 == before
    write(tmp_path, "pyproject.toml", pyproject('"flask", "redis>=5"'))
    assert resolve(tmp_path, "pyproject.toml").sha256 != before


@pytest.mark.parametrize("text, extras, message", [
    (pyproject('"flask"', 'pg = ["psycopg"]'), ["mysql"], r"no optional-dependencies 'mysql' \(it has: pg\)"),
    ('[project]\nname = "app"\ndynamic = ["dependencies"]\n', [], "project.dependencies is dynamic"),
    ('[tool.poetry]\nname = "app"\n', [], r"no \[project\] table"),
    (pyproject('"flask", 3'), [], r"project.dependencies\[1\] is not a requirement"),
    (pyproject('"--index-url=https://evil.example"'), [], r"project.dependencies\[0\] is not a requirement"),
    ('[project]\nname = "app"\ndependencies = ["flask"\nversion = "1"\n', [], r"/pyproject.toml: not valid TOML: .*line 4"),
])
def test_a_bad_pyproject_is_one_line_naming_the_file_and_field(tmp_path, text, extras, message):
    write(tmp_path, "pyproject.toml", text)
    with pytest.raises(RequirementsError, match=message) as caught:
        resolve(tmp_path, "pyproject.toml", extras)
    assert "\n" not in str(caught.value)


def test_extras_do_not_apply_to_a_txt(tmp_path):
    write(tmp_path, "requirements.txt", "flask\n")
    with pytest.raises(RequirementsError, match="requirements_extras: requirements.txt has no extras"):
        resolve(tmp_path, None, ["pg"])


# --- uv.lock ---------------------------------------------------------------------------------------

def test_uv_lock_pins_the_project_dependencies_with_their_markers_never_the_project_nor_dev(tmp_path):
    write(tmp_path, "uv.lock", UV_LOCK)
    lines = resolve(tmp_path, "uv.lock").text.splitlines()
    assert lines == [
        "click==8.1.8",
        "colorama==0.4.6 ; sys_platform == 'win32'",
        "flask==3.1.0",
        # needed by flask on old Pythons, and by uvloop there only off Windows: both paths, simplified to one
        "importlib-metadata==8.5.0 ; python_full_version < '3.10'",
        "uvloop==0.21.0 ; sys_platform != 'win32'",
    ]
    assert not any(line.startswith(("app", "pytest")) for line in lines)


def test_uv_lock_extras_pull_their_packages_and_the_extras_of_those(tmp_path):
    write(tmp_path, "uv.lock", UV_LOCK)
    req = resolve(tmp_path, "uv.lock", ["pg"])
    assert "psycopg==3.2.3" in req.text.splitlines()
    assert ("psycopg-binary @ git+https://github.com/psycopg/psycopg@0123456789abcdef0123456789abcdef01234567 ; "
            "implementation_name != 'pypy'") in req.text.splitlines()
    with pytest.raises(RequirementsError, match=r"no extra 'mysql' \(it has: pg\)"):
        resolve(tmp_path, "uv.lock", ["mysql"])


def test_a_path_through_markers_is_a_conjunction(tmp_path):
    lock = UV_LOCK.replace('dependencies = [{ name = "importlib-metadata", marker = "python_full_version < \'3.10\'" }]',
                           'dependencies = [{ name = "pytest", marker = "python_full_version >= \'3.12\'" }]')
    write(tmp_path, "uv.lock", lock)
    assert ("pytest==8.3.4 ; (python_full_version >= '3.12') and (sys_platform != 'win32')"
            in resolve(tmp_path, "uv.lock").text.splitlines())


@pytest.mark.parametrize("change, message", [
    (('version = 1\n', 'version = 2\n'), "version = 2: not a uv.lock version"),
    (('source = { editable = "." }', 'source = { registry = "x" }'), "no entry for the project itself"),
    (('{ name = "click" },', '{ name = "klick" },'), "names 'klick': no such package"),
    (('version = "8.1.8"', 'version = "8.1.8; rm -rf /"'), r"package click.version is not a version"),
    (('marker = "sys_platform != \'win32\'"', 'marker = "x # y"'), "is not an environment marker"),
])
def test_a_bad_uv_lock_is_one_line(tmp_path, change, message):
    write(tmp_path, "uv.lock", UV_LOCK.replace(*change, 1))
    with pytest.raises(RequirementsError, match=message):
        resolve(tmp_path, "uv.lock")


# --- poetry.lock -----------------------------------------------------------------------------------

def test_poetry_lock_main_group_with_its_markers_and_the_extras_named(tmp_path):
    write(tmp_path, "poetry.lock", POETRY_LOCK)
    assert resolve(tmp_path, "poetry.lock").text.splitlines() == [
        'colorama==0.4.6 ; platform_system == "Windows"', "flask==3.1.0"]
    assert resolve(tmp_path, "poetry.lock", ["server"]).text.splitlines() == [
        'colorama==0.4.6 ; platform_system == "Windows"', "flask==3.1.0",
        'gunicorn==23.0.0 ; sys_platform != "win32"', "packaging==24.2"]


def test_an_old_poetry_lock_is_refused_with_what_to_do(tmp_path):
    write(tmp_path, "poetry.lock", POETRY_LOCK.replace('lock-version = "2.1"', 'lock-version = "2.0"'))
    with pytest.raises(RequirementsError, match="poetry.lock: lock-version 2.0 does not say which packages the main "
                                                "group needs: lock again with Poetry 2"):
        resolve(tmp_path)


# --- pylock.toml -----------------------------------------------------------------------------------

def test_pylock_lists_every_package_with_its_marker_but_the_project_directory(tmp_path):
    write(tmp_path, "pylock.toml", PYLOCK)
    assert resolve(tmp_path).text.splitlines() == [
        "colorama==0.4.6 ; sys_platform == 'win32'", "flask==3.1.0",
        "mylib @ git+https://example.org/mylib.git@0123456789abcdef0123456789abcdef01234567"]


def test_pylock_markers_on_extras_cannot_be_evaluated_by_pip(tmp_path):
    write(tmp_path, "pylock.toml", PYLOCK.replace("marker = \"sys_platform == 'win32'\"", "marker = \"'pg' in extras\""))
    with pytest.raises(RequirementsError, match=r"packages\[1\] \(colorama\).marker depends on extras"):
        resolve(tmp_path)


def test_an_unreadable_or_non_utf8_lock_is_one_line(tmp_path):
    write(tmp_path, "pylock.toml", "")
    (tmp_path / "pylock.toml").write_bytes(b'lock-version = "1.0"\n# \xff\n')
    with pytest.raises(RequirementsError, match=r"^\S*/pylock.toml:2: not UTF-8 text$"):
        resolve(tmp_path)
    with pytest.raises(RequirementsError, match=r"requirements file .*uv.lock cannot be read"):
        resolve(tmp_path, "uv.lock")


# --- the config ------------------------------------------------------------------------------------

@pytest.mark.parametrize("line, message", [
    ("requirements: setup.py", "requirements: must be requirements"),
    ("installer: conda", "installer: must be one of: auto, uv, pip"),
    ("requirements_extras: [pg, 'a b']", "requirements_extras: 'a b' is not an extra's name"),
])
def test_config_refuses_what_cannot_resolve(tmp_path, line, message):
    text = f"project: p\n{line}\nhosts:\n  a: {{transport: local, root: /tmp/x}}\n"
    with pytest.raises(ConfigError, match=message):
        load_config_text(text, tmp_path / "hosts.yml")


def test_config_resolves_installer_and_uv_per_host(tmp_path):
    text = ("project: p\ninstaller: pip\nroles: {fast: {installer: uv, uv: ~/bin/uv}}\nrequirements_extras: [pg]\n"
            "hosts:\n  a: {transport: local, root: /tmp/x}\n  b: {transport: local, root: /tmp/y, roles: [fast]}\n")
    config = load_config_text(text, tmp_path / "hosts.yml")
    assert config.requirements is None and config.requirements_extras == ("pg",)
    assert [(h.installer, h.uv) for h in config.hosts] == [("pip", None), ("uv", "~/bin/uv")]


# --- the text on the host --------------------------------------------------------------------------

def test_the_resolved_text_reaches_the_host_literally(tmp_path):
    text = "a==1 ; sys_platform == 'linux'\nb @ https://example.org/$HOME/`id`/$(id).whl\n"
    build = tmp_path / "builds" / "20260101000000"
    build.mkdir(parents=True)
    script = "B=20260101000000\n" + requirements_lines("pyproject.toml", text) + "echo done\n"
    proc = subprocess.run(["sh", "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout == "done\n", proc.stderr
    assert (build / RESOLVED_NAME).read_text() == text


def test_a_long_resolved_text_rides_compressed_and_arrives_whole(tmp_path):
    import sys
    text = "".join(f"package-{i:04d}==1.{i}.0 ; sys_platform == 'linux' and python_version >= '3.8'\n"
                   for i in range(1600))
    lines = requirements_lines("uv.lock", text, sys.executable)
    assert len(text) > 100_000 and len(lines) < len(text) / 5, len(lines)
    build = tmp_path / "builds" / "20260101000000"
    build.mkdir(parents=True)
    proc = subprocess.run(["sh", "-c", "B=20260101000000\n" + lines + "echo done\n"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout == "done\n", proc.stderr
    assert (build / RESOLVED_NAME).read_text() == text


def test_a_text_holding_the_end_line_is_refused():
    with pytest.raises(ValueError, match="end line"):
        prepare_script("/srv/app", "0123456789abcdef", "20260101000000", requirements="uv.lock",
                       venv="0123456789abcdef-py3.11", python="python3", pip_args=(), meta_incomplete="{}",
                       meta_complete="{}", install_timeout=60, requirements_text=f"a==1\n{REQUIREMENTS_END}\n")


def test_a_pyproject_without_a_project_table_names_the_whole_file_and_hints_poetry_only_for_poetry(tmp_path):
    write(tmp_path, "pyproject.toml", "[build-system]\nrequires = ['setuptools']\n[tool.black]\nline-length = 100\n")
    with pytest.raises(RequirementsError) as plain:
        resolve(tmp_path, "pyproject.toml")
    assert str(plain.value).startswith(str(tmp_path / "pyproject.toml") + ": no [project] table"), plain.value
    assert "Poetry" not in str(plain.value)
    write(tmp_path, "pyproject.toml", "[tool.poetry]\nname = 'app'\n")
    with pytest.raises(RequirementsError, match="a Poetry project: use poetry.lock"):
        resolve(tmp_path, "pyproject.toml")


def test_an_extra_marker_is_decided_here_so_the_chosen_extras_install_and_the_others_do_not():
    from releasetui.requirements import MARKER_FALSE, MARKER_TRUE, settle_extras
    assert settle_extras('psycopg2==2.9.9 ; extra == "pg"', ("pg",)) == f"psycopg2==2.9.9 ; {MARKER_TRUE}"
    assert settle_extras("redis==5.0 ; extra == 'cache' and python_version >= \"3.9\"", ("pg",)) == \
        f'redis==5.0 ; {MARKER_FALSE} and python_version >= "3.9"'
    # uv's conflict markers spell the extra extra-<len(project)>-<project>-<extra>
    assert settle_extras("torch==2.1 ; extra == 'extra-3-app-cpu'", ("cpu",)) == f"torch==2.1 ; {MARKER_TRUE}"
    assert settle_extras('flask==3.0 ; python_version >= "3.8"', ()) == 'flask==3.0 ; python_version >= "3.8"'


def test_a_poetry_extra_s_packages_are_installed_when_the_extra_is_chosen(tmp_path):
    write(tmp_path, "poetry.lock", """
[[package]]
name = "psycopg2"
version = "2.9.9"
optional = true
groups = ["main"]
markers = 'extra == "pg"'

[[package]]
name = "flask"
version = "3.0.0"
optional = false
groups = ["main"]

[extras]
pg = ["psycopg2"]

[metadata]
lock-version = "2.1"
""")
    chosen = resolve(tmp_path, "poetry.lock", ["pg"]).text
    assert 'psycopg2==2.9.9 ; python_version >= "0"' in chosen and "flask==3.0.0" in chosen, chosen
    assert "psycopg2" not in resolve(tmp_path, "poetry.lock").text


@pytest.mark.parametrize("source", ['{ path = "wheels/internal-2.0-py3-none-any.whl" }', '{ editable = "libs/internal" }',
                                    '{ directory = "libs/internal" }'])
def test_a_lock_dependency_from_a_local_path_is_refused_never_looked_up_by_name(tmp_path, source):
    write(tmp_path, "uv.lock", f"""
version = 1

[[package]]
name = "app"
version = "1.0"
source = {{ editable = "." }}
dependencies = [{{ name = "internal" }}]

[[package]]
name = "internal"
version = "2.0"
source = {source}
""")
    with pytest.raises(RequirementsError, match="a dependency from a local path"):
        resolve(tmp_path, "uv.lock")


def test_a_git_dependency_in_a_subdirectory_keeps_it(tmp_path):
    write(tmp_path, "uv.lock", """
version = 1

[[package]]
name = "app"
version = "1.0"
source = { editable = "." }
dependencies = [{ name = "sub" }]

[[package]]
name = "sub"
version = "0.1"
source = { git = "https://github.com/o/mono?subdirectory=pkgs%2Fsub&rev=main#0123456789abcdef0123456789abcdef01234567" }
""")
    assert resolve(tmp_path, "uv.lock").text == \
        "sub @ git+https://github.com/o/mono@0123456789abcdef0123456789abcdef01234567#subdirectory=pkgs/sub\n"


def test_a_pyproject_dependency_uv_takes_from_a_path_is_refused(tmp_path):
    write(tmp_path, "pyproject.toml", '[project]\nname = "app"\ndependencies = ["internal>=1", "flask"]\n'
                                      '[tool.uv.sources]\ninternal = { path = "libs/internal" }\n')
    with pytest.raises(RequirementsError, match=r"tool.uv.sources.internal takes it from path.*uv.lock"):
        resolve(tmp_path, "pyproject.toml")
