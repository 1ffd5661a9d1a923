"""What the machine running releasetui knows: the source to ship, who deploys, from which CI job, the clock."""

from __future__ import annotations

import getpass
import os
import posixpath
import re
import shutil
import socket
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Optional, Sequence

from .. import clock
from ..gitrepo import git_text
from ..manifest import Manifest, ManifestError
from ..requirements import Requirements, RequirementsError, resolve as resolve_requirements
from ..text import clean_line


class OperationError(Exception):
    """An operation cannot start (bad source, bad build id...): one line for the user, exit 2."""


@dataclass
class SourceInfo:
    """What is about to be shipped: its path, requirements (resolved, with their digest) and git state."""

    path: Path
    requirements_sha256: str
    git_commit: Optional[str]
    git_dirty: Optional[bool]
    git_ref: Optional[str] = None
    git_subject: Optional[str] = None
    origin: Optional[Path] = None        # with --ref: the source directory whose repository the tree came from
    requirements: Optional[Requirements] = None


def source_requirements(source: Path, requirements: Optional[str], extras: Sequence[str] = ()) -> Requirements:
    """The requirements of ``source`` resolved, and their digest (the venv key's input): the one function the
    deploy, its dry run, ``diff`` and the TUI's confirmation all call; OperationError (one line) when unusable."""
    try:
        return resolve_requirements(source, requirements, extras)
    except RequirementsError as exc:
        raise OperationError(str(exc)) from None


def inspect_source(source: Path, requirements: Optional[str], git: bool = True,
                   extras: Sequence[str] = ()) -> SourceInfo:
    """Resolve the requirements (:func:`source_requirements`) and read the git commit of ``source``;
    OperationError if unusable."""
    if not source.is_dir():
        raise OperationError(f"source directory {source} does not exist")
    resolved = source_requirements(source, requirements, extras)
    digest = resolved.sha256
    commit, dirty, subject = None, None, None
    if git and git_text(source, "rev-parse", "--is-inside-work-tree") == "true":
        commit = git_text(source, "rev-parse", "HEAD")
        if commit:
            status = git_text(source, "status", "--porcelain", "--", ".")
            dirty = bool(status) if status is not None else None
            subject = git_text(source, "log", "-1", "--format=%s", "HEAD")
    return SourceInfo(source, digest, commit, dirty, git_subject=subject, requirements=resolved)


# What a ref may look like before it reaches git: no option ("-x"), no whitespace or control characters.
_REF_PATTERN = re.compile(r"^[^-\s\x00-\x1f\x7f][^\s\x00-\x1f\x7f]{0,199}$")


@dataclass
class RefSource:
    """The tree of one commit, extracted into a temporary directory to be shipped; :meth:`discard` removes it."""

    info: SourceInfo
    tmp: Path

    def discard(self) -> None:
        """Remove the temporary tree."""
        shutil.rmtree(self.tmp, ignore_errors=True)


def resolve_ref(source: Path, ref: str) -> tuple[str, str]:
    """``(commit, subject)`` of ``ref`` (a commit, tag or branch) in the repository holding ``source``."""
    if not isinstance(ref, str) or not _REF_PATTERN.fullmatch(ref):
        raise OperationError(f"--ref {clean_line(repr(ref), 60)}: not a git ref (a commit, tag or branch name)")
    if not source.is_dir():
        raise OperationError(f"source directory {source} does not exist")
    if git_text(source, "rev-parse", "--is-inside-work-tree") != "true":
        raise OperationError(f"--ref needs a git repository: {source} is not in one")
    commit = git_text(source, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if not commit:
        raise OperationError(f"--ref {ref}: no such commit, tag or branch in {source}'s repository")
    return commit, git_text(source, "log", "-1", "--format=%s", commit) or ""


def archive_ref(source: Path, ref: str, requirements: Optional[str], extras: Sequence[str] = ()) -> RefSource:
    """Extract exactly the tree of ``ref`` (``source``'s part of it) into a temporary directory, with ``git archive``.

    Not the working tree: uncommitted and untracked files are not in it.  Files
    get 0644/0755 (``tar.umask=0022``, a checkout's usual modes), so a build
    from a ref and one from a clean working tree of the same commit ship the
    same manifest.  ``export-ignore`` attributes are honoured, as by Capistrano.
    """
    commit, subject = resolve_ref(source, ref)
    prefix = git_text(source, "rev-parse", "--show-prefix") or ""
    tmp = Path(tempfile.mkdtemp(prefix="releasetui-ref-"))
    try:
        args = ["git", "-C", str(source), "-c", "tar.umask=0022", "archive", "--format=tar", commit]
        if prefix:
            args += ["--", prefix]
        with tempfile.TemporaryFile(dir=tmp) as tar_file:
            proc = subprocess.run(args, stdout=tar_file, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=600)
            if proc.returncode != 0:
                raise OperationError(f"git archive {ref} failed: "
                                     f"{clean_line(proc.stderr.decode('utf-8', 'replace'), 300)}")
            tar_file.seek(0)
            tree = tmp / "tree"
            tree.mkdir()
            with tarfile.open(fileobj=tar_file, mode="r:") as tar:
                if hasattr(tarfile, "tar_filter"):  # refuses members outside the tree, drops setuid bits
                    tar.extractall(tree, filter="tar")
                else:  # pragma: no cover - Python < 3.9.17 without extraction filters; git archive writes no '..'
                    tar.extractall(tree)
        path = tree / prefix if prefix else tree
        if not path.is_dir():
            raise OperationError(f"{prefix.rstrip('/')} does not exist in {ref} ({commit[:10]})")
        info = inspect_source(path, requirements, git=False, extras=extras)
        info.git_commit, info.git_dirty, info.git_ref, info.git_subject = commit, False, ref, subject
        info.origin = source
        return RefSource(info, tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def deployer_files(config, source: Path) -> list[str]:
    """rsync patterns for releasetui's own files when they live in the source (``init`` writes them there): the
    config, its stage files and schema, the excludes file.  They are the deployer's, not the app's: never shipped."""
    config_path = Path(config.path).resolve()
    own = [config_path, config_path.with_name("hosts.schema.json")]
    own += [Path(config.excludes_file).resolve()] if config.excludes_file is not None else []
    patterns = []
    root = Path(source).resolve()
    for path in own:
        if root in path.parents:
            patterns.append("/" + path.relative_to(root).as_posix())
    if root in config_path.parents:   # hosts.STAGE.yml beside hosts.yml
        folder = config_path.parent.relative_to(root).as_posix()
        patterns.append(("/" if folder == "." else f"/{folder}/") + f"{config_path.stem}.*{config_path.suffix}")
    return patterns


def source_manifest(config, info: SourceInfo) -> Manifest:
    """What a deploy of ``info`` ships under ``config`` (the deploy, its dry run and ``diff`` all ask here): the
    files the excludes allow, as git would commit them (a working tree in git), secrets held back unless included.

    Never the shared paths (each host has its own), never what ``excludes_file`` excludes.
    """
    if config.excludes_file is not None and not config.excludes_file.is_file():
        raise OperationError(f"{config.path}: excludes_file: no such file: {config.excludes_file}")
    shared = [f"/{p}" for p in (*config.shared.files, *config.shared.dirs)]
    try:
        manifest = Manifest.of(info.path, shared + deployer_files(config, info.path), config.excludes_file,
                               include=config.include,
                               git=info.git_ref is None)
    except ManifestError as exc:
        raise OperationError(str(exc)) from None
    req = info.requirements
    # A .txt is installed from the build's copy (its -r/-c includes beside it); a resolved text rides in the script.
    if req is not None and req.carried is None and posixpath.normpath(req.path) not in manifest.files:
        why = "git ignores it, or " if manifest.git else ""
        raise OperationError(f"{req.path} would not ship ({why}excludes_file or shared leaves it out): "
                             "each host installs from the build's copy")
    return manifest


def ci_job_url(environ: Optional[dict] = None) -> Optional[str]:
    """The URL of the CI job running releasetui (CircleCI, GitHub Actions, GitLab), when there is one."""
    env = os.environ if environ is None else environ
    if env.get("CIRCLE_BUILD_URL"):
        return env["CIRCLE_BUILD_URL"]
    if env.get("GITHUB_RUN_ID") and env.get("GITHUB_REPOSITORY"):
        server = env.get("GITHUB_SERVER_URL") or "https://github.com"
        return f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
    if env.get("CI_JOB_URL"):
        return env["CI_JOB_URL"]
    return None


def deployer_identity(environ: Optional[dict] = None) -> str:
    """Who deploys: CircleCI's user and build number when set, else ``$USER@hostname``."""
    env = os.environ if environ is None else environ
    if env.get("CIRCLE_USERNAME") or env.get("CIRCLE_BUILD_NUM"):
        user = env.get("CIRCLE_USERNAME") or "circleci"
        build = env.get("CIRCLE_BUILD_NUM")
        return f"{user} (CircleCI build {build})" if build else f"{user} (CircleCI)"
    if env.get("GITHUB_ACTIONS") == "true":
        return f"{env.get('GITHUB_ACTOR') or 'github'} (GitHub Actions run {env.get('GITHUB_RUN_ID', '?')})"
    if env.get("GITLAB_CI") == "true":
        return f"{env.get('GITLAB_USER_LOGIN') or 'gitlab'} (GitLab job {env.get('CI_JOB_ID', '?')})"
    user = env.get("USER") or env.get("LOGNAME")
    if not user:
        try:
            user = getpass.getuser()
        except Exception:
            user = "unknown"
    return f"{user}@{this_machine()}"


def this_machine() -> str:
    """This machine's name, as locks and history record where an operation ran (and a stale lock is judged)."""
    return socket.gethostname()


def utc_now() -> datetime:
    """The current time in UTC, through :mod:`releasetui.clock` (the one seam tests set)."""
    return clock.now()


def iso(now: Optional[datetime] = None) -> str:
    """``2026-11-28T10:15:00Z``."""
    return clock.iso(now)


def new_build_id(now: Optional[datetime] = None) -> str:
    """The build id for a deploy starting at ``now``: ``%Y%m%d%H%M%S`` in UTC."""
    return clock.build_id_at(now)


def pid_alive(pid: int) -> bool:
    """Whether a process with that pid exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True
