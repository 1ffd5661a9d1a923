"""A build's metadata: the one writer and the one reader.

Every build directory carries ``.releasetui-build.json``, written by the
deploy that made it: first with ``complete: false``, then, once its files and
venv are in place, with ``complete: true``.  :func:`read_build` is the only
place that decides whether a build is complete, failed, incomplete or
damaged; the listing, every renderer and every switch go through it (the
remote scripts never decide by grepping the text).
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable, Optional

from .models import BUILD_ID_PATTERN, SHA256_PATTERN, VENV_KEY_PATTERN, BuildInfo
from .text import clean_line

META_FILE = ".releasetui-build.json"
MANIFEST_FILE = ".releasetui-manifest.json"
META_FORMAT = 2
CREATED_PATTERN = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")
COMMIT_PATTERN = re.compile(r"^[0-9a-f]{7,64}$")
# The fields a finished build must have, with the check each value must pass.
_REQUIRED = {
    "id": lambda v: isinstance(v, str) and bool(BUILD_ID_PATTERN.fullmatch(v)),
    "complete": lambda v: isinstance(v, bool),
    "created_at": lambda v: isinstance(v, str) and bool(CREATED_PATTERN.fullmatch(v)),
    "requirements_sha256": lambda v: isinstance(v, str) and bool(SHA256_PATTERN.fullmatch(v)),
    "python_version": lambda v: isinstance(v, str) and 0 < len(v) <= 20,
    "venv": lambda v: isinstance(v, str) and bool(VENV_KEY_PATTERN.fullmatch(v)),
}
_OPTIONAL_TEXT = {"project": 100, "deployed_by": 200, "git_ref": 200, "git_subject": 300, "failure": 500,
                  "source": 500, "rolled_away_note": 300, "installer": 20}


def meta_json(meta: dict) -> str:
    """The one-line, key-sorted JSON written as a build's metadata."""
    return json.dumps(meta, sort_keys=True, ensure_ascii=True)


def new_meta(build_id: str, *, project: str, created_at: str, requirements_sha256: str, python_version: str,
             venv: str, deployed_by: str, git_commit: Optional[str] = None, git_dirty: Optional[bool] = None,
             git_ref: Optional[str] = None, git_subject: Optional[str] = None, source: Optional[str] = None) -> dict:
    """The metadata of a build being made (``complete: false``); ``complete_meta`` finishes it."""
    return {"format": META_FORMAT, "id": build_id, "project": project, "created_at": created_at,
            "requirements_sha256": requirements_sha256, "python_version": python_version, "venv": venv,
            "deployed_by": deployed_by, "git_commit": git_commit, "git_dirty": git_dirty, "git_ref": git_ref,
            "git_subject": git_subject, "source": source, "complete": False, "failed": False, "failure": None}


def complete_meta(meta: dict) -> dict:
    """The same metadata, finished."""
    return {**meta, "complete": True}


def failed_meta(meta: dict, failure: str) -> dict:
    """The same metadata, marked failed (after a switch whose restart, hook or health check failed)."""
    return {**meta, "complete": True, "failed": True, "failure": failure[:500]}


def rolled_away_meta(meta: dict, note: str) -> dict:
    """The same metadata, marked ``rolled-away``: the fleet was rolled back away from this build (``note`` says when,
    to which build, by whom)."""
    return {**meta, "rolled_away": True, "rolled_away_note": note[:300]}


def without_rolled_away(meta: dict) -> dict:
    """The same metadata without its ``rolled-away`` mark (a rollback to it committed: it is live and healthy)."""
    return {k: v for k, v in meta.items() if k not in ("rolled_away", "rolled_away_note")}


def unmarked_meta(meta: dict) -> dict:
    """The same metadata without its ``rolled-away`` and ``failed`` marks (``unmark``)."""
    clean = without_rolled_away(meta)
    if clean.get("failed"):
        clean.update(failed=False, failure=None)
    return clean


def _problem(meta: Any, build_id: str) -> Optional[str]:
    """Why a complete build's metadata is not what releasetui writes (None when it is)."""
    if not isinstance(meta, dict):
        return "metadata is not a JSON object"
    for key, check in _REQUIRED.items():
        if key not in meta:
            return f"metadata lacks {key!r}"
        if not check(meta[key]):
            return f"metadata {key!r} is not what releasetui writes"
    if meta["id"] != build_id:
        return f"metadata names another build ({clean_line(meta['id'], 20)})"
    for key in ("failed", "rolled_away"):
        if key in meta and not isinstance(meta[key], bool):
            return f"metadata {key!r} is not true or false"
    if meta.get("git_dirty") is not None and not isinstance(meta["git_dirty"], bool):
        return "metadata 'git_dirty' is not true or false"
    commit = meta.get("git_commit")
    if commit is not None and not (isinstance(commit, str) and COMMIT_PATTERN.fullmatch(commit)):
        return "metadata 'git_commit' is not a commit id"
    for key in _OPTIONAL_TEXT:
        if meta.get(key) is not None and not isinstance(meta[key], str):
            return f"metadata {key!r} is not text"
    return None


def _text(meta: dict, key: str) -> Optional[str]:
    value = meta.get(key)
    return clean_line(value, _OPTIONAL_TEXT.get(key, 100)) if isinstance(value, str) else None


def read_build(build_id: str, meta_text: str, env_target: str = "", complete_venvs: Iterable[str] = (),
               pinned: bool = False) -> BuildInfo:
    """THE decision of a build's state, from its metadata text and what the listing saw beside it.

    * no metadata yet: ``incomplete`` (a deploy still shipping, or one that was killed);
    * metadata that says ``complete: false``: ``incomplete``;
    * metadata that says complete but is not what releasetui writes (truncated, wrong types, another
      build's id), or whose venv link or venv is missing: ``damaged`` (never switchable);
    * otherwise ``complete``; ``failed`` when a switch to it failed; ``rolled-away`` when a rollback left it.
    """
    build = BuildInfo(id=build_id, pinned=pinned)
    if not meta_text.strip():
        return build
    try:
        meta = json.loads(meta_text)
    except ValueError:
        build.damaged = "metadata is not valid JSON (truncated?)"
        return build
    if not isinstance(meta, dict):
        build.damaged = "metadata is not a JSON object"
        return build
    # Whatever else is wrong, what can be shown is shown (checked and cut short).
    build.created_at = meta["created_at"] if isinstance(meta.get("created_at"), str) and \
        CREATED_PATTERN.fullmatch(meta["created_at"]) else None
    sha = meta.get("requirements_sha256")
    build.requirements_sha256 = sha if isinstance(sha, str) and SHA256_PATTERN.fullmatch(sha) else None
    commit = meta.get("git_commit")
    build.git_commit = commit if isinstance(commit, str) and COMMIT_PATTERN.fullmatch(commit) else None
    build.git_dirty = meta.get("git_dirty") if isinstance(meta.get("git_dirty"), bool) else None
    build.deployed_by = _text(meta, "deployed_by")
    build.git_ref = _text(meta, "git_ref")
    build.git_subject = _text(meta, "git_subject")
    build.failure = _text(meta, "failure")
    digest = meta.get("env_digest")
    build.env_digest = digest if isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{16}", digest) else None
    build.rolled_away_note = _text(meta, "rolled_away_note")
    build.installer = meta["installer"] if meta.get("installer") in ("uv", "pip") else None
    python = meta.get("python_version")
    build.python_version = clean_line(python, 20) if isinstance(python, str) else None
    venv = meta.get("venv")
    build.venv = venv if isinstance(venv, str) and VENV_KEY_PATTERN.fullmatch(venv) else None
    if meta.get("complete") is not True:
        if "complete" in meta and not isinstance(meta["complete"], bool):
            build.damaged = "metadata 'complete' is not true or false"
        return build
    problem = _problem(meta, build_id)
    if problem is None:
        expected = f"../../venvs/{meta['venv']}"
        if env_target.rstrip("/") != expected:
            problem = "its env link is missing" if not env_target else "its env link points elsewhere"
        elif meta["venv"] not in set(complete_venvs):
            problem = f"its venv venvs/{meta['venv']} is missing or unfinished"
    if problem:
        build.damaged = problem
        return build
    build.complete = True
    build.failed = meta.get("failed") is True
    build.rolled_away = meta.get("rolled_away") is True
    return build


def read_meta(meta_text: str) -> Optional[dict]:
    """A build's metadata as a dict (what a mark is written onto), or None when it is not a JSON object."""
    try:
        meta = json.loads(meta_text)
    except ValueError:
        return None
    return meta if isinstance(meta, dict) else None
