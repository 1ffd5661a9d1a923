"""Phase 1 of every operation: read a host's state, taking its lock first when the operation will change it.

One round trip: optionally create the layout, take the lock (``mkdir`` is
atomic; the token and who/where/since go inside), then list everything
under the lock: current, each build with its metadata, venvs, pins, the
host's Python, shared files that are missing, and (for a deploy) the current
build's manifest.  :func:`parse_read` turns that listing into a
:class:`~releasetui.models.HostState`; build states are decided by
:func:`releasetui.metadata.read_build`, the one reader of metadata.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Optional, Sequence

from ..metadata import MANIFEST_FILE, META_FILE, read_build, read_meta
from ..models import BUILD_ID_PATTERN, TOKEN_PATTERN, VENV_KEY_PATTERN, HostState, LockInfo, Move, check_token
from ..text import clean_line
from .base import LAYOUT_DIRS, LOCK_INFO_LIMIT, META_LIMIT, PREAMBLE, Tagged, enter_root, q

# How much of history.jsonl the read looks at, and how many committed switches it reports from there.
HISTORY_TAIL = 262144
MOVES = 12
# Metadata larger than this is read by head and tr, not by the shell's `read` (one system call per byte).
BIG_META = 4096
# A record's time: whole seconds, or with a fraction.
WHEN_PATTERN = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?Z$")

LISTING = r"""_cut() { printf '%s' "$1" | head -c 200 | tr -d '\000-\037'; }
_cur=$(readlink current 2>/dev/null || true)
# A plain `builds/<id>` link or env link is printed as it is; anything else is cut and cleaned (a fork or two).
_c=${_cur#builds/}; _cid=''
if valid_id "$_c"; then _cid=$_c; printf 'CURRENT\t%s\t%s\n' "$_c" "$_cur"
else printf 'CURRENT\t\t%s\n' "$(_cut "$_cur")"; fi
# Something at `current` that is not a link (a directory copied there by hand) cannot be replaced by a switch; and
# a layout directory that is a link would lead removals and writes out of the root. Builtin tests: no fork unless found.
if [ ! -L current ] && [ -e current ]; then
  if [ -d current ]; then _k=directory; elif [ -f current ]; then _k=file; else _k='special file'; fi
  printf 'CURRENTNOTLINK\t%s\n' "$_k"
fi
for _d in LINKED_DIRS; do [ -L "$_d" ] && printf 'LINKEDDIR\t%s\t%s\n' "$_d" "$(_cut "$(readlink "$_d")")"; done
# Each build costs no fork in the common case (a host keeps several; forks were ~2/3 of this script's CPU): one
# readlink reads every env link (GNU readlink takes many; a link whose text holds a newline breaks the pairing of
# lines and links, and then each is read alone), and a metadata file of one printable line is read by the shell's
# own `read`; anything else (larger than BIG_META bytes, found by one find, several lines, control or non-ASCII
# bytes) goes through head and tr as before.
_ids=''; _lids=' '; set --
for _d in builds/*; do
  _id=${_d#builds/}
  [ -d "$_d" ] && valid_id "$_id" || continue
  _ids="$_ids $_id"; [ -L "$_d/env" ] && { _lids="$_lids$_id "; set -- "$@" "$_d/env"; }
done
_links=''; _each=1
if [ $# -gt 0 ] && _links=$(readlink -- "$@" 2>/dev/null); then
  _n=1; _t=$_links
  while :; do case "$_t" in *"$_nl"*) _t=${_t#*"$_nl"}; _n=$(( _n + 1 ));; *) break;; esac; done
  [ "$_n" = $# ] && _each=0
fi
_rest=$_links$_nl
# Read whole by `read` only when small: a large one, or a symlink (find measures the link, `read` its target), is cut.
_big=$(find builds -mindepth 2 -maxdepth 2 -name META_FILE \( -type l -o -size +BIG_METAc \) -print 2>/dev/null)
for _id in $_ids; do
  _d=builds/$_id; _e=''
  case "$_lids" in *" $_id "*)
    if [ "$_each" = 0 ]; then _e=${_rest%%"$_nl"*}; _rest=${_rest#*"$_nl"}
    else _e=$(readlink "$_d/env" 2>/dev/null || true); fi;;
  esac
  case "$_e" in '') ;; ../../venvs/*) _plain "$_e" || _e=$(_cut "$_e");; *) _e=$(_cut "$_e");; esac
  _meta=''
  if [ -f "$_d/META_FILE" ]; then
    _more=''; _one=1
    case "$_nl$_big$_nl" in *"$_nl$_d/META_FILE$_nl"*) _one=0;; *)
      { IFS= read -r _meta; IFS= read -r _more && _one=0; } < "$_d/META_FILE" 2>/dev/null
      case "$_meta$_more" in *[![:print:]]*) _one=0;; esac; [ -z "$_more" ] || _one=0;;
    esac
    [ "$_one" = 1 ] || _meta=$(head -c META_LIMIT "$_d/META_FILE" 2>/dev/null | tr -d '\000-\037')
  fi
  printf 'BUILD\t%s\t%s\t%s\n' "$_id" "$_e" "$_meta"
done
for _v in venvs/*/; do
  [ -d "$_v" ] || continue; _v=${_v#venvs/}; _v=${_v%/}
  if [ -f "venvs/$_v/.releasetui-complete" ]; then printf 'VENV\t%s\t1\n' "$_v"; else printf 'VENV\t%s\t0\n' "$_v"; fi
done
# Wheelhouses shipped by `wheels: ship`, keyed like venvs (each appears whole: it is renamed into place once written).
for _w in wheelhouses/*/; do [ -d "$_w" ] || continue; _w=${_w#wheelhouses/}; printf 'WHEELHOUSE\t%s\n' "${_w%/}"; done
for _p in pins/*; do _p=${_p#pins/}; valid_id "$_p" && [ -e "pins/$_p" ] && printf 'PIN\t%s\n' "$_p"; done
# The last committed switches (which build was live before which: the default rollback target, what prune keeps).
# Only the file's tail is read, only from a regular file (a FIFO would hang the read), each line cut short.
if [ -f history.jsonl ] && [ ! -L history.jsonl ]; then
  tail -c HISTORY_TAIL history.jsonl | tr -d '\000-\011\013-\037' | awk '/"event": "(deploy|rollback)"/ && /"outcome": "ok"/ { l[n++ % MOVES] = substr($0, 1, 2000) } END { for (i = (n > MOVES ? n - MOVES : 0); i < n; i++) print "HIST\t" l[i % MOVES] }'
fi
""".replace("LINKED_DIRS", " ".join(LAYOUT_DIRS)).replace("HISTORY_TAIL", str(HISTORY_TAIL)).replace("MOVES", str(MOVES)).replace("META_LIMIT", str(META_LIMIT)).replace("BIG_META", str(BIG_META)).replace("META_FILE", META_FILE)


@dataclass(frozen=True)
class LockRequest:
    """The lock an operation takes in its read: its token and the JSON of who/where/since/what."""

    token: str
    info_json: str


def read_script(root: str, *, lock: Optional[LockRequest] = None, create: bool = False,
                python: Optional[str] = None, manifest: bool = False, shared_files: Sequence[str] = (),
                env_digest: Optional[str] = None, platform: bool = False) -> str:
    """The phase-1 script: (layout,) lock, listing.  Read-only when ``lock`` is None and not ``create``.

    The lock is taken BEFORE the listing, so what an operation plans from was
    read under its own lock.  When another operation holds it the listing
    still runs (the refusal can say what is live) and ``LOCK`` names the holder.
    """
    script = PREAMBLE
    if python:
        # `--version` starts no site machinery: ~2 ms, where `-c 'import sys...'` costs a full start-up (~20 ms).
        # Before the root is entered (and made): a dry run on a host with no root yet still learns its interpreter.
        # In the root, as the prepare script runs it: a relative path or a pyenv/asdf shim answers there.
        script += f"printf 'PYTHON\\t%s\\n' \"$(cd {q(root)} 2>/dev/null; {q(python)} --version 2>&1 </dev/null)\"\n"
    if platform:  # what a wheel must be built for (`wheels: ship`): the OS and machine, as Python's platform says,
        # and " musl" where the C library is musl (Alpine): manylinux wheels built on glibc do not install there.
        script += ("_libc=''; for _f in /lib/ld-musl-*.so.1; do [ -e \"$_f\" ] && _libc=' musl'; done\n"
                   "printf 'PLATFORM\\t%s%s\\n' \"$(uname -sm 2>/dev/null)\" \"$_libc\"\n")
    script += enter_root(root, create=create)
    if lock is not None:
        check_token(lock.token)
        info_line = lock.info_json + "\n"  # as printf writes it: what `wc -c` would count
        script += (
            "if mkdir deploy.lock 2>/dev/null; then\n"
            f"  if printf '%s' {lock.token} > deploy.lock/token && printf '%s\\n' {q(lock.info_json)} > deploy.lock/info.json; "
            f"then printf 'LOCKTAKEN\\t%s\\n' {lock.token}; else rm -rf -- deploy.lock; echo 'cannot write the lock' >&2; exit 1; fi\n"
            # What we just wrote needs no reading back (six forks saved on every host of every operation).
            f"  printf 'LOCK\\t%s\\t%s\\t%s\\n' {lock.token} {len(info_line.encode())} {q(info_line.rstrip(chr(10)))}\n"
            "else lock_info\nfi\n")
    else:
        script += "lock_info\n"
    script += LISTING
    for path in shared_files:
        script += f"[ -e shared/{q(path)} ] || printf 'SHAREDMISSING\\t%s\\n' {q(path)}\n"
    if env_digest:  # the app's env file this deploy would write: already there, or to be sent
        script += f"[ -f envs/{q(env_digest)} ] && [ ! -L envs ] && echo ENVHERE\n"
    if manifest:
        script += (f"[ -n \"$_cid\" ] && [ -f \"builds/$_cid/{MANIFEST_FILE}\" ] && "
                   f"printf 'MANIFEST\\t%s\\t%s\\n' \"$_cid\" \"$(tr -d '\\n' < \"builds/$_cid/{MANIFEST_FILE}\")\"\n")
    return script + "exit 0\n"


def parse_read(host: str, stdout: str, token: Optional[str] = None) -> HostState:
    """Turn the output of :func:`read_script` into a :class:`HostState` (``token``: the lock we asked for)."""
    tags = Tagged.parse(stdout)
    state = HostState(name=host)
    version = re.search(r"Python ([0-9]+\.[0-9]+(?:\.[0-9]+)?)", tags.value("PYTHON"))
    state.python_version = version.group(1) if version else None
    platform = tags.value("PLATFORM").strip()
    state.platform = clean_line(platform, 80) if platform else None
    if tags.has("NOROOT"):
        state.initialized = False
        return state
    current = tags.first("CURRENT") or ["", ""]
    state.current = current[0] if BUILD_ID_PATTERN.fullmatch(current[0]) else None
    if not state.current and len(current) > 1 and current[1]:
        state.problems.append(f"current points at {clean_line(current[1], 80)!r}, which is not a build")
    kind = tags.value("CURRENTNOTLINK")
    if kind:
        state.current_not_link = kind if kind in ("directory", "file") else "special file"
        state.problems.append(f"current is a {state.current_not_link}, not a link to a build")
    for fields in tags.all("LINKEDDIR"):
        if fields and fields[0] in LAYOUT_DIRS:
            state.linked_dirs[fields[0]] = clean_line(fields[1] if len(fields) > 1 else "", 120)
            state.problems.append(f"{fields[0]} is a symlink (to {state.linked_dirs[fields[0]]!r}), not a directory")
    lock = tags.first("LOCK")
    if lock is not None:
        state.lock = parse_lock(lock)
        state.locked_by_us = bool(token and tags.value("LOCKTAKEN") == token and state.lock.token == token)
    complete_venvs = []
    for fields in tags.all("VENV"):
        if fields and VENV_KEY_PATTERN.fullmatch(fields[0]):
            if fields[1:2] == ["1"]:
                state.venvs.append(fields[0])
                complete_venvs.append(fields[0])
    state.wheelhouses = [f[0] for f in tags.all("WHEELHOUSE") if f and VENV_KEY_PATTERN.fullmatch(f[0])]
    pins = {f[0] for f in tags.all("PIN") if f and BUILD_ID_PATTERN.fullmatch(f[0])}
    for fields in tags.all("BUILD"):
        if len(fields) >= 2 and BUILD_ID_PATTERN.fullmatch(fields[0]):
            meta = "\t".join(fields[2:]) if len(fields) > 2 else ""
            build = read_build(fields[0], meta, fields[1], complete_venvs, fields[0] in pins)
            state.builds.append(build)
            if build.complete:
                state.metas[build.id] = read_meta(meta)
    state.builds.sort(key=lambda b: b.id)
    for build in state.builds:
        build.current = build.id == state.current
    state.shared_missing = [f[0] for f in tags.all("SHAREDMISSING") if f]
    state.env_here = tags.has("ENVHERE")
    state.moves = [m for m in (parse_move("\t".join(f)) for f in tags.all("HIST")) if m is not None]
    manifest = tags.first("MANIFEST")
    if manifest and len(manifest) >= 2 and manifest[0] == state.current:
        state.current_manifest = parse_manifest("\t".join(manifest[1:]))
    return state


def parse_move(line: str) -> Optional[Move]:
    """One history record of a committed deploy or rollback as a :class:`Move`; None for anything else.

    The file is the host's, not to be trusted: only well-formed ids, times and tokens are kept.
    """
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("event") not in ("deploy", "rollback") or \
            record.get("outcome", "ok") != "ok":
        return None
    when = record.get("when")
    if not isinstance(when, str) or not WHEN_PATTERN.fullmatch(when):
        return None
    ids = []
    for key in ("from", "to"):
        value = record.get(key)
        ids.append(value if isinstance(value, str) and BUILD_ID_PATTERN.fullmatch(value) else None)
    if ids[1] is None:
        return None
    op = record.get("op")
    return Move(record["event"], when, ids[0], ids[1], op if isinstance(op, str) and TOKEN_PATTERN.fullmatch(op) else None)


def parse_lock(fields: list[str]) -> LockInfo:
    """A ``LOCK`` line: token, size of info.json, its first bytes, and (when it is not a directory) why."""
    token, size, text = (fields + ["", "", ""])[:3]
    damage = fields[3] if len(fields) > 3 and fields[3] else None
    if damage:
        return LockInfo(damaged=f"deploy.lock is {clean_line(damage, 40)}")
    too_big = size.isdigit() and int(size) > LOCK_INFO_LIMIT
    lock = LockInfo.from_text("" if too_big else text,
                              damaged=f"lock information of {size} bytes (not read)" if too_big else None)
    # The token file is the authority (info.json is only for people).
    lock.token = token if len(token) == 16 else None
    if lock.token is None and not lock.damaged:
        lock.damaged = "no owner token (taken by an older releasetui, or damaged)"
    return lock


def parse_manifest(text: str) -> Optional[dict]:
    """A stored manifest (path -> [kind, mode, sha256, size, link target, ...]), or None if unreadable."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        return None
    return {path: entry for path, entry in files.items() if isinstance(path, str) and isinstance(entry, list)
            and len(entry) >= 5}
