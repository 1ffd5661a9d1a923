"""What the machine running releasetui knows: the source to ship, who deploys, from which CI job, the clock."""

from __future__ import annotations

import getpass
import hashlib
import os
import socket
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional


class OperationError(Exception):
    """An operation cannot start (bad source, bad build id...): one line for the user, exit 2."""


@dataclass
class SourceInfo:
    """What is about to be shipped: its path, requirements hash and git state."""

    path: Path
    requirements_sha256: str
    git_commit: Optional[str]
    git_dirty: Optional[bool]
    git_ref: Optional[str] = None
    git_subject: Optional[str] = None


def _git(source: Path, *args: str, timeout: float = 30) -> Optional[str]:
    try:
        proc = subprocess.run(["git", "-C", str(source), *args], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def inspect_source(source: Path, requirements: str) -> SourceInfo:
    """Hash the requirements file and read the git commit of ``source``; OperationError if unusable."""
    if not source.is_dir():
        raise OperationError(f"source directory {source} does not exist")
    req = source / requirements
    try:
        digest = hashlib.sha256(req.read_bytes()).hexdigest()
    except OSError as exc:
        raise OperationError(f"requirements file {req} cannot be read: {exc.strerror or exc}") from None
    commit, dirty, subject = None, None, None
    if _git(source, "rev-parse", "--is-inside-work-tree") == "true":
        commit = _git(source, "rev-parse", "HEAD")
        if commit:
            status = _git(source, "status", "--porcelain", "--", ".")
            dirty = bool(status) if status is not None else None
            subject = _git(source, "log", "-1", "--format=%s", "HEAD")
    return SourceInfo(source, digest, commit, dirty, git_subject=subject)


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
    return f"{user}@{socket.gethostname()}"


def utc_now() -> datetime:
    """The current time in UTC (a seam for tests)."""
    return datetime.now(timezone.utc)


def iso(now: Optional[datetime] = None) -> str:
    """``2026-11-28T10:15:00Z``."""
    return (now or utc_now()).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_build_id(now: Optional[datetime] = None) -> str:
    """The build id for a deploy starting at ``now``: ``%Y%m%d%H%M%S`` in UTC."""
    return (now or utc_now()).astimezone(timezone.utc).strftime("%Y%m%d%H%M%S")


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
