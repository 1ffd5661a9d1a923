"""What ships: what git would commit (inside a work tree), never a file that looks like a secret unless included,
and ``diff`` agreeing with the deploy.  Real git, real hosts (``local`` transport, and one loopback sshd run)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from releasetui import shipping
from releasetui.config import load_config
from releasetui.manifest import select_files

from .support.helpers import Project, events

SECRET = "local-do-not-ship"
HELD = "held back"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com",
                           "-c", "protocol.file.allow=always", *args],
                          capture_output=True, text=True, check=True).stdout.strip()


def make_repo(p: Project) -> None:
    """The sample app as a git work tree: a git-ignored .env holding a secret and an ignored build/ folder, a
    tracked file deleted from the working tree, an untracked file git would add, one excluded by .git/info/exclude."""
    git(p.source, "init", "-q")
    (p.source / ".gitignore").write_text(".env\nbuild/\n")
    (p.source / "gone.py").write_text("deleted after the commit\n")
    git(p.source, "add", "-A")
    git(p.source, "commit", "-q", "-m", "First")
    (p.source / "gone.py").unlink()
    (p.source / ".env").write_text(f"SECRET={SECRET}\n")
    (p.source / "build").mkdir()
    (p.source / "build" / "bundle.js").write_text("generated\n")
    (p.source / "extra.py").write_text("untracked, not ignored\n")
    (p.source / "scratch").mkdir()
    (p.source / "scratch" / "notes.md").write_text("ignored by .git/info/exclude\n")
    (p.source / ".git" / "info" / "exclude").write_text("scratch/\n")


def shipped(p: Project, host: str) -> set:
    """The files of the host's current build, as its manifest lists them."""
    build = p.roots[host] / "builds" / p.current(host)
    return set(json.loads((build / ".releasetui-manifest.json").read_text())["files"])


def no_secret_in(*procs: subprocess.CompletedProcess) -> None:
    for proc in procs:
        assert SECRET not in proc.stdout and SECRET not in proc.stderr, proc.stdout + proc.stderr


# --- the rule, pure ------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [".env", "config/.env.prod", ".ENV.local", "prod.env", "certs/site.key", "tls.pem",
                                  "id_rsa", "home/id_ed25519.pub", "id_ecdsa", "store.p12", "cert.pfx",
                                  "credentials-prod.json", "app.keystore", ".netrc", ".pgpass", "config/secrets.yml"])
def test_names_that_look_like_secrets(path):
    assert shipping.looks_like_secret(path)


@pytest.mark.parametrize("path", ["app.py", "environment.py", "env/x", "keys.py", "docs/pem.md", "README.env.md",
                                  "credentials.py", "static/monkey.png"])
def test_names_that_do_not(path):
    assert not shipping.looks_like_secret(path)


def test_choose_keeps_gits_files_holds_back_secrets_and_include_lifts_both():
    candidates = [("a.py", False), (".env", False), (".env.example", False), ("build", True),
                  ("build/x.js", False), ("certs", True), ("certs/a.pem", False), ("empty", True)]
    outside = shipping.choose(candidates, None)
    assert [n for n, _ in outside.names] == ["a.py", "build", "build/x.js", "certs", "empty"]
    assert outside.held_back == [".env", ".env.example", "certs/a.pem"]
    inside = shipping.choose(candidates, {"a.py", ".env.example", "certs/a.pem"}, include=[".env.example", "build"])
    assert [n for n, _ in inside.names] == ["a.py", ".env.example", "build", "build/x.js"]
    assert inside.held_back == ["certs/a.pem"], "a git-ignored .env is not shipped, nor reported as held back"
    globbed = shipping.choose(candidates, None, include=["certs/*.pem", ".env*"])
    assert globbed.held_back == []
    assert shipping.choose([("x/a.pem", False)], None, include=["*.pem"]).held_back == ["x/a.pem"], \
        "a glob is relative to source: * stays in one folder"
    assert shipping.choose([("x/a.pem", False)], None, include=["**/*.pem"]).held_back == []


def test_the_held_back_line_names_files_once_and_groups_the_rest():
    assert shipping.held_back_line([".env"]) == ("held back 1 file that looks like a secret: .env "
                                                 "(name them under include: to ship them)")
    many = shipping.held_back_line([f"k{i:02}.pem" for i in range(13)])
    assert many.startswith("held back 13 files that look like secrets: k00.pem, k01.pem,")
    assert "k09.pem and 3 more (name them" in many


def test_a_submodule_ships_what_it_would_commit(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    git(lib, "init", "-q")
    (lib / "lib.py").write_text("x = 1\n")
    git(lib, "add", "-A")
    git(lib, "commit", "-q", "-m", "lib")
    app = tmp_path / "app"
    app.mkdir()
    git(app, "init", "-q")
    (app / "app.py").write_text("import lib\n")
    git(app, "submodule", "-q", "add", str(lib), "vendor/lib")
    git(app, "commit", "-q", "-m", "app")
    (app / "vendor" / "lib" / "local.log").write_text("untracked in the submodule\n")
    (app / "vendor" / "lib" / ".gitignore").write_text("*.log\n")
    names = [name for name, _ in select_files(app).names]
    assert sorted(names) == [".gitmodules", "app.py", "vendor", "vendor/lib", "vendor/lib/.gitignore",
                             "vendor/lib/lib.py"]


# --- deploys ---------------------------------------------------------------------------------------

def test_a_git_source_ships_what_git_would_commit(local_project, tmp_path):
    p = local_project
    make_repo(p)
    (p.source / "keep.local").write_text("ignored by the global excludes file\n")
    (tmp_path / "global-ignore").write_text("*.local\n")
    (tmp_path / "gitconfig").write_text(f"[core]\n\texcludesFile = {tmp_path / 'global-ignore'}\n")
    proc = p.cli("--headless", "deploy", "--json", env={"GIT_CONFIG_GLOBAL": str(tmp_path / "gitconfig")})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    no_secret_in(proc)
    # notes.tmp is untracked and not ignored by git, but excludes_file (*.tmp) still applies on top.
    assert shipped(p, "box") == {".gitignore", "app.py", "requirements.txt", "static", "static/big.txt",
                                 "extra.py"}
    live = p.roots["box"] / "current"
    assert not (live / ".env").exists() and not (live / "build").exists()
    assert not any(HELD in e["message"] for e in events(proc)), "an ignored .env is not shipped, not held back"
    source_line = next(e["message"] for e in events(proc) if e["message"].startswith("source "))
    assert "files as git would commit them" in source_line


def test_a_plain_folder_holds_back_what_looks_like_a_secret_and_says_so_in_one_line(local_project):
    p = local_project
    (p.source / ".env").write_text(f"SECRET={SECRET}\n")
    (p.source / ".env.example").write_text("SECRET=\n")
    (p.source / "id_rsa").write_text(f"-----BEGIN OPENSSH PRIVATE KEY----- {SECRET}\n")
    (p.source / "certs").mkdir()
    (p.source / "certs" / "site.key").write_text(f"{SECRET}\n")
    line = ("held back 4 files that look like secrets: .env, .env.example, certs/site.key, id_rsa "
            "(name them under include: to ship them)")
    dry = p.cli("--headless", "deploy", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert dry.stdout.count(HELD) == 1 and line in dry.stdout
    proc = p.cli("--headless", "deploy", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    held = [e for e in events(proc) if HELD in e["message"]]
    assert [(e["host"], e["step"], e["status"], e["message"]) for e in held] == [(None, "source", "skipped", line)]
    assert shipped(p, "box") == {"app.py", "requirements.txt", "static", "static/big.txt", "certs"}
    p.set("include", "[.env.example, 'certs/*.key']")
    p.write_app("v2")
    human = p.cli("--headless", "deploy")
    assert human.returncode == 0, human.stdout + human.stderr
    assert human.stdout.count(HELD) == 1
    assert "held back 2 files that look like secrets: .env, id_rsa (name them" in human.stdout
    assert shipped(p, "box") >= {".env.example", "certs/site.key"} and ".env" not in shipped(p, "box")
    no_secret_in(dry, proc, human)


def test_diff_agrees_with_the_deploy_on_a_git_source(local_project):
    p = local_project
    make_repo(p)
    first = p.cli("--headless", "deploy")
    assert first.returncode == 0, first.stdout + first.stderr
    # Changes a deploy would ship (a tracked edit), would not (ignored files) and would hold back (a key).
    p.write_app("v2")
    (p.source / "build" / "more.js").write_text("generated\n")
    (p.source / ".env").write_text(f"SECRET={SECRET}-2\n")
    (p.source / "site.key").write_text(f"{SECRET}\n")
    proc = p.cli("--headless", "diff", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    group = json.loads(proc.stdout)["groups"][0]
    assert group["files"] == {"added": [], "removed": [], "changed": ["app.py"]}
    assert group["to"]["held_back"] == ["site.key"]
    text = p.cli("--headless", "diff")
    assert "held back 1 file that looks like a secret: site.key" in text.stdout
    assert "build/" not in text.stdout and ".env" not in text.stdout
    no_secret_in(proc, text)
    second = p.cli("--headless", "deploy")
    assert second.returncode == 0, second.stdout + second.stderr
    again = p.cli("--headless", "diff", "--json")
    assert json.loads(again.stdout)["groups"][0]["files"] == {"added": [], "removed": [], "changed": []}, \
        "what diff said is what the deploy shipped"


@pytest.mark.ssh
def test_over_ssh_a_git_source_and_a_ref_keep_secrets_home(ssh_project):
    p = ssh_project
    make_repo(p)
    (p.source / "config").mkdir()
    (p.source / "config" / "prod.pem").write_text(f"{SECRET}\n")
    git(p.source, "add", "config/prod.pem")
    git(p.source, "commit", "-q", "-m", "A committed key")
    proc = p.cli("--headless", "deploy", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = ("held back 1 file that looks like a secret: config/prod.pem (name them under include: to ship them)")
    assert [e["message"] for e in events(proc) if HELD in e["message"]] == [line]
    for host in ("web1", "web2"):
        assert shipped(p, host) == {".gitignore", "app.py", "requirements.txt", "static", "static/big.txt",
                                    "extra.py"}
    ref = p.cli("--headless", "deploy", "--ref", "HEAD", "--json")
    assert ref.returncode == 0, ref.stdout + ref.stderr
    assert [e["message"] for e in events(ref) if HELD in e["message"]] == [line]
    for host in ("web1", "web2"):
        assert "config/prod.pem" not in shipped(p, host) and "gone.py" in shipped(p, host)
    no_secret_in(proc, ref)


def test_include_is_read_from_the_config(local_project):
    p = local_project
    p.set("include", "[./.env.example, certs/]")
    assert load_config(p.config).include == (".env.example", "certs/")


def test_a_requirements_file_git_ignores_is_refused_before_any_host_is_touched(local_project):
    p = local_project
    make_repo(p)
    (p.source / ".gitignore").write_text(".env\nbuild/\nrequirements.txt\n")
    git(p.source, "rm", "-q", "--cached", "requirements.txt")
    proc = p.cli("--headless", "deploy")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr == ("releasetui: requirements.txt would not ship (git ignores it, or excludes_file or shared "
                           "leaves it out): each host installs from the build's copy\n")
    assert p.builds("box") == []
    p.set("include", "[requirements.txt]")
    ok = p.cli("--headless", "deploy")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "requirements.txt" in shipped(p, "box")


def test_the_deployer_s_own_files_in_the_source_never_ship(tmp_path):
    """`init` writes hosts.yml (and its schema) into the app: with `source: .` they are the deployer's, not the app's."""
    from releasetui.config import load_config
    from releasetui.operations.source import inspect_source, source_manifest
    app = tmp_path / "app"
    (app / "pkg").mkdir(parents=True)
    (app / "pkg" / "__init__.py").write_text("")
    (app / "requirements.txt").write_text("")
    (app / "rsync_excludes").write_text("*.tmp\n")
    (app / "hosts.schema.json").write_text("{}")
    (app / "hosts.staging.yml").write_text("hosts: {}\n")
    (app / "hosts.yml").write_text(f"project: x\nsource: .\nexcludes_file: rsync_excludes\n"
                                   f"hosts:\n  box: {{transport: local, root: {tmp_path / 'root'}}}\n")
    config = load_config(app / "hosts.yml")
    info = inspect_source(config.source, "requirements.txt", git=False)
    shipped = set(source_manifest(config, info).files)
    assert {"pkg/__init__.py", "requirements.txt"} <= shipped, shipped
    assert not shipped & {"hosts.yml", "hosts.staging.yml", "hosts.schema.json", "rsync_excludes"}, shipped
