"""``diff``: what a deploy or a rollback would change, read without copying any build around.

One read-only round trip per host (its listing plus the stored manifest and
requirements text of the builds compared, :func:`releasetui.commands.diff_script`);
none for the local source (its manifest is computed here, as a deploy would).
The commits between the two ends come from the local git repository, when it
has both.  The comparing itself is :mod:`releasetui.diffing`'s (pure).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from .. import commands
from ..config import HostConfig
from ..diffing import ENV_UNKNOWN, SOURCE, Commit, DiffReport, DiffSide, build_diff, file_patch
from ..executors import HostUnreachable
from ..models import HostState, check_build_id
from ..gitrepo import run_git
from ..secrets import SecretError, resolve as resolve_env
from ..text import clean_line
from .context import OperationContext
from .source import OperationError, RefSource, archive_ref, inspect_source, source_manifest

CURRENT = "current"
COMMIT_LIMIT = 200
# The "from" side of a host nothing was deployed to yet: a first deploy adds every file and requirement.
NOTHING = DiffSide("nothing deployed", manifest={}, requirements="")


def _ends(from_id: Optional[str], to_id: Optional[str]) -> tuple[Optional[str], Optional[str]]:
    """Validated ends: ``None`` = current (from) or the source (to); the word ``current`` is accepted for both."""
    def check(value: Optional[str]) -> Optional[str]:
        return value if value in (None, CURRENT) else check_build_id(value)
    return check(from_id) or CURRENT, check(to_id)


def local_side(ctx: OperationContext, source: Optional[Path],
               ref: Optional[str]) -> tuple[DiffSide, Optional[RefSource]]:
    """What a deploy would ship now (the working tree, or exactly ``ref``'s tree), as a diff side; no host touched."""
    config = ctx.config
    path = Path(source) if source else config.source
    tree = archive_ref(path, ref, config.requirements, config.requirements_extras) if ref else None
    try:
        info = tree.info if tree else inspect_source(path, config.requirements, extras=config.requirements_extras)
        manifest = source_manifest(config, info)
        requirements: Optional[str] = info.requirements.text if info.requirements else None
    except BaseException:
        if tree:
            tree.discard()
        raise
    side = DiffSide(ref or SOURCE, None, manifest.files, requirements, info.git_commit, info.git_subject,
                    info.git_dirty, held_back=tuple(manifest.held_back), path=str(info.path),
                    env_digest=local_env_digest(config))
    return side, tree


def local_env_digest(config) -> Optional[str]:
    """The digest of the env file a deploy would write now (None without ``env:``, or when a secret is not set
    here: the diff then says the env is unknown rather than changed)."""
    if config.env is None:
        return None
    try:
        env = resolve_env(config.env, config.path.parent)
    except SecretError:
        return ENV_UNKNOWN
    return env.digest if env else None


def commit_log(repo: Path, old: DiffSide, new: DiffSide,
               limit: int = COMMIT_LIMIT) -> tuple[Optional[list], Optional[str]]:
    """The commits between the two ends (``+`` shipped, ``-`` taken away), or None and why they are unknown."""
    if not old.commit or not new.commit:
        unknown = old if not old.commit else new
        return None, f"unknown: {unknown.label} was not deployed from a git checkout"
    if old.commit == new.commit:
        return [], None
    inside = run_git(repo, "rev-parse", "--is-inside-work-tree")
    if inside is None or inside.stdout.strip() != "true":
        return None, f"unknown: {repo} is not in a git repository"
    for side in (old, new):
        found = run_git(repo, "cat-file", "-e", f"{side.commit}^{{commit}}")
        if found is None or found.returncode != 0:
            return None, (f"unknown: commit {side.commit[:10]} ({side.label}) is not in the local repository "
                          f"{repo} (git fetch?)")
    log = run_git(repo, "log", "--left-right", f"--max-count={int(limit)}", "--format=%m%x09%H%x09%s",
               f"{old.commit}...{new.commit}")
    if log is None or log.returncode != 0:
        return None, "unknown: git log failed"
    commits = []
    for line in log.stdout.splitlines():
        parts = line.split("\t", 2)
        if len(parts) == 3 and parts[0] in ("<", ">"):
            commits.append(Commit(parts[1], clean_line(parts[2], 200), "-" if parts[0] == "<" else "+"))
    return commits, None


def _build_side(state: HostState, build_id: str, found: dict) -> DiffSide:
    build = state.build(build_id)
    stored = found.get(build_id, {})
    return DiffSide(build_id, build_id, stored.get("manifest"), stored.get("requirements"),
                    build.git_commit if build else None, build.git_subject if build else None,
                    build.git_dirty if build else None, current=build_id == state.current,
                    env_digest=build.env_digest if build else None)


def diff(ctx: OperationContext, hosts: Sequence[HostConfig], from_id: Optional[str] = None,
         to_id: Optional[str] = None, source: Optional[Path] = None, ref: Optional[str] = None,
         patch: bool = False) -> DiffReport:
    """Compare ``from_id`` (default: each host's current build) with ``to_id`` (default: what a deploy would ship
    now, from ``source`` or ``ref``) on every host; hosts with the same result are grouped."""
    old_id, new_id = _ends(from_id, to_id)
    if new_id is not None and ref:
        raise OperationError("--ref names what a deploy would ship: give either --ref or a build to compare with")
    local, tree = local_side(ctx, source, ref) if new_id is None else (None, None)
    named = sorted({i for i in (old_id, new_id) if i not in (None, CURRENT)})
    repo = Path(source) if source else ctx.config.source
    try:
        def read(host: HostConfig) -> tuple[HostState, dict]:
            ctx.connect(host)
            run = ctx.executor(host).run(commands.diff_script(host.root, named, ctx.config.requirements),
                                         mutating=False, timeout=ctx.config.script_timeout)
            if not run.ok:
                raise RuntimeError(f"reading the host failed: {run.error_text()}")
            return commands.parse_read(host.name, run.stdout), commands.parse_manifests(run.stdout)

        diffs, errors, unreachable = {}, {}, []
        logs: dict = {}
        outcomes = ctx.runner.map(list(hosts), read)
        for host in hosts:
            outcome = outcomes[host.name]
            if not outcome.ok:
                if isinstance(outcome.error, HostUnreachable):
                    unreachable.append(host.name)
                    errors[host.name] = f"unreachable: {clean_line(str(outcome.error), 200)}"
                else:
                    errors[host.name] = clean_line(str(outcome.error), 300)
                continue
            state, found = outcome.value
            sides = []
            for end in (old_id, new_id):
                if end is None:
                    sides.append(local)
                elif end == CURRENT:
                    sides.append(_build_side(state, state.current, found) if state.current else NOTHING)
                elif state.build(end) is None or end not in found:
                    sides.append(None)
                    errors[host.name] = f"build {end} does not exist there"
                else:
                    sides.append(_build_side(state, end, found))
            if None in sides:
                continue
            old, new = sides
            key = (old.commit, new.commit)
            if old is NOTHING or new is NOTHING:
                logs[key] = (None, None)   # a first deploy: every commit is new, none worth listing
            elif key not in logs:
                logs[key] = commit_log(repo, old, new)
            commits, note = logs[key]
            diffs[host.name] = build_diff(old, new, commits, note, ctx.config.requirements or "requirements")
        to_label = new_id or (local.label if local else SOURCE)
        report = DiffReport.grouped(old_id, to_label, diffs, errors, unreachable)
        if patch:
            add_patches(ctx, report, {h.name: h for h in hosts})
        return report
    finally:
        if tree:
            tree.discard()


PATCH_FILES = 50   # files shown with -p in one group; the rest are named only (the list above has them all)


def _local_contents(side: DiffSide, path: str) -> tuple[int, bytes]:
    """``(size, first bytes)`` of a source file, as :func:`commands.parse_contents` gives a host's."""
    try:
        with open(Path(side.path or ".") / path, "rb") as handle:
            data = handle.read(commands.PATCH_BYTES)
            size = len(data) + len(handle.read(1))
        return size, data
    except OSError:
        return -1, b""


def add_patches(ctx: OperationContext, report: DiffReport, hosts: dict) -> None:
    """``diff -p``: each group's file contents, read on ONE of its hosts (one more round trip) and here."""
    for diff, names in report.groups:
        if not diff.files_total:
            continue
        paths = sorted(diff.added + diff.removed + diff.changed)[:PATCH_FILES]
        wanted = [(side.build_id, p) for side in (diff.old, diff.new) if side.build_id and side.manifest is not None
                  for p in paths if p in side.manifest]
        found = {}
        if wanted:
            run = ctx.executor(hosts[names[0]]).run(commands.contents_script(hosts[names[0]].root, wanted),
                                                    mutating=False, timeout=ctx.config.script_timeout)
            found = commands.parse_contents(run.stdout)

        def contents(side: DiffSide, path: str) -> Optional[tuple[int, bytes]]:
            if side.manifest is None or path not in side.manifest:
                return None
            return found.get((side.build_id, path)) if side.build_id else _local_contents(side, path)

        diff.patches = {p: file_patch(p, contents(diff.old, p), contents(diff.new, p)) for p in paths}


__all__ = ["CURRENT", "commit_log", "diff", "local_side"]
