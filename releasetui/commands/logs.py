"""Read-only scripts: tail the logs, read the history, read builds' manifests (for diffs)."""

from __future__ import annotations

import base64
import json
from typing import Optional, Sequence

from ..metadata import MANIFEST_FILE
from ..models import check_build_id
from ..requirements import RESOLVED_NAME
from ..text import clean_line
from .base import PREAMBLE, Tagged, enter_root, q
from .read import LISTING, parse_manifest

HISTORY_FILE = "history.jsonl"
HISTORY_READ_LIMIT = 4 << 20  # bytes of a host's history read at most (the newest ones)


def logs_script(root: str, files: Sequence[str], lines: int, follow: bool) -> str:
    """Tail the log files (relative ones under the project root).

    With ``follow`` the tail runs until the script's stdin closes: the caller
    keeps stdin open and closes it (or the channel) to stop, so no ``tail -F``
    is left behind on the host waiting for its next line.
    """
    if not files:
        return "echo 'no log files configured' >&2; exit 1\n"
    quoted = " ".join(q(f) for f in files)
    if any(not f.startswith("/") for f in files):
        enter = f"cd {q(root)} || {{ echo 'project root missing: relative log paths cannot be read' >&2; exit 1; }}\n"
    else:
        enter = "cd /\n"
    # -q: no ==> file <== headers when several files are tailed; errors still go to stderr.
    if not follow:
        return enter + f"exec tail -q -n {int(lines)} -- {quoted} </dev/null\n"
    return enter + (f"tail -q -n {int(lines)} -F -- {quoted} </dev/null &\n"
                    "_tail=$!\n"
                    "cat >/dev/null\n"
                    "kill \"$_tail\" 2>/dev/null\n")


def history_script(root: str, lines: int) -> str:
    """The newest ``lines`` lines of the host's history (bounded in bytes too)."""
    return (PREAMBLE + enter_root(root)
            + f"[ -f {HISTORY_FILE} ] && tail -n {int(lines)} {HISTORY_FILE} | tail -c {HISTORY_READ_LIMIT} || true\n")


def parse_history(stdout: str) -> tuple[list[dict], int]:
    """(records, lines skipped): every line that is a JSON object is a record; the rest are counted, not fatal.

    A history written by hand or cut by a full disk must never stop a reader.
    """
    records, skipped = [], 0
    for line in stdout.splitlines():
        if not line.strip() or line.startswith("@@step\t") or line == "NOROOT":
            continue
        try:
            record = json.loads(line)
        except ValueError:
            skipped += 1
            continue
        if isinstance(record, dict):
            records.append(record)
        else:
            skipped += 1
    return records, skipped


def _manifest_lines(build: str, requirements: Optional[str]) -> str:
    """Print one build's stored manifest and (base64) requirements text; ``build`` is shell text (quoted or a var).

    The requirements are what the build's venv was made from: the text resolved from a lock or pyproject.toml
    when the deploy wrote one beside the metadata, else the build's ``requirements`` file.
    """
    own = q(requirements or "requirements.txt")
    return (f"if [ -d builds/{build} ]; then\n"
            f"  printf 'MANIFEST\\t%s\\t%s\\n' {build} "
            f"\"$(tr -d '\\n' < builds/{build}/{MANIFEST_FILE} 2>/dev/null)\"\n"
            f"  _rq=builds/{build}/{RESOLVED_NAME}; [ -f \"$_rq\" ] || _rq=builds/{build}/{own}\n"
            f"  [ -f \"$_rq\" ] && printf 'REQUIREMENTS\\t%s\\t%s\\n' {build} "
            f"\"$(head -c 262144 \"$_rq\" | base64 | tr -d '\\n')\"\n"
            f"else printf 'MISSING\\t%s\\n' {build}; fi\n")


def manifests_script(root: str, build_ids: Sequence[str], requirements: Optional[str]) -> str:
    """The stored manifest and requirements text of each build named (for ``diff``), in one round trip."""
    script = PREAMBLE + enter_root(root)
    for build_id in build_ids:
        script += _manifest_lines(q(check_build_id(build_id)), requirements)
    return script


def diff_script(root: str, build_ids: Sequence[str], requirements: Optional[str], current: bool = True) -> str:
    """``diff``'s one round trip: the listing (states, each build's metadata), then the stored manifest and
    requirements text of the current build (``current``) and of each build named.  Read-only, no lock."""
    script = PREAMBLE + enter_root(root) + LISTING
    if current:
        script += "_c=$(current_id)\nif [ -n \"$_c\" ]; then\n" + _manifest_lines('"$_c"', requirements) + "fi\n"
    for build_id in build_ids:
        script += _manifest_lines(q(check_build_id(build_id)), requirements)
    return script + "exit 0\n"


def parse_manifests(stdout: str) -> dict[str, dict]:
    """``{build id: {"manifest": dict or None, "requirements": text or None}}``; absent builds are left out.

    ``requirements`` is missing (or None) when the build has no requirements file or it could not be decoded.
    """
    tags = Tagged.parse(stdout)
    found: dict[str, dict] = {}
    for fields in tags.all("MANIFEST"):
        if fields:
            found.setdefault(fields[0], {})["manifest"] = parse_manifest("\t".join(fields[1:])) if len(fields) > 1 else None
    for fields in tags.all("REQUIREMENTS"):
        if fields:
            # No REQUIREMENTS line: the file is not in the build (None); an empty one is "".
            text: Optional[str] = None
            try:
                text = base64.b64decode(fields[1] if len(fields) > 1 else "").decode("utf-8", "replace")
            except ValueError:
                text = None
            found.setdefault(fields[0], {})["requirements"] = text
    return {k: v for k, v in found.items() if clean_line(k) == k}


PATCH_BYTES = 64 * 1024   # of each file, for ``diff -p``: enough for any source file worth reading in a terminal


def _safe_path(path: str) -> str:
    """A manifest path as a shell may use it: relative, no ``..``, no control characters (ValueError otherwise)."""
    parts = path.split("/")
    if not path or path.startswith("/") or ".." in parts or any(ord(c) < 32 for c in path):
        raise ValueError(f"not a path inside a build: {path!r}")
    return path


def contents_script(root: str, wanted: Sequence[tuple[str, str]], cap: int = PATCH_BYTES) -> str:
    """``diff -p``'s second round trip: the first ``cap`` bytes of each ``(build id, path)``, base64'd, read-only.

    Only a regular file that resolves inside its build is read: a link out of the build reads as missing.
    """
    lines = [PREAMBLE + enter_root(root).rstrip("\n"), "_top=$(pwd -P)"]
    for build_id, path in wanted:
        b, f = q(check_build_id(build_id)), q(_safe_path(path))
        lines.append(f"_r=$(readlink -f -- builds/{b}/{f} 2>/dev/null); case \"$_r\" in \"$_top\"/builds/{b}/*) "
                     f"if [ -f \"$_r\" ]; then printf 'CONTENT\\t%s\\t%s\\t%s\\t' {b} {f} \"$(wc -c < \"$_r\")\"; "
                     f"head -c {int(cap)} \"$_r\" | base64 | tr -d '\\n'; echo; "
                     f"else printf 'CONTENT\\t%s\\t%s\\t-1\\t\\n' {b} {f}; fi;; "
                     f"*) printf 'CONTENT\\t%s\\t%s\\t-1\\t\\n' {b} {f};; esac")
    return "\n".join(lines) + "\nexit 0\n"


def parse_contents(stdout: str) -> dict[tuple[str, str], tuple[int, bytes]]:
    """``{(build id, path): (size, first bytes)}``; a size of -1 means the file is not there (or not readable)."""
    found = {}
    for fields in Tagged.parse(stdout).all("CONTENT"):
        if len(fields) >= 3 and fields[2].lstrip("-").isdigit():
            try:
                data = base64.b64decode(fields[3]) if len(fields) > 3 and fields[3] else b""
            except ValueError:
                continue
            found[(fields[0], fields[1])] = (int(fields[2]), data)
    return found
