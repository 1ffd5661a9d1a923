"""The scripts that end an operation on a host: release (abort), prune, pin, unmark, unlock.

Each acts only while the lock carries the operation's token (``unlock``
instead checks it still removes the lock it showed), records in history what
it actually did, and never removes a lock it does not own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

from ..models import check_build_id
from .base import (CLEAN_LEFTOVERS, ENV_GC, PREAMBLE, STOP_WORKER, Tagged, check_venv_key, enter_root, json_prefix, owner_check, q,
                   refuse_linked_layout, wheelhouse_gc, write_meta)


def release_script(root: str, token: str, remove_build: Optional[str] = None, history: Optional[str] = None,
                   meta: Optional[str] = None) -> str:
    """Abort on one host: stop what this operation still runs there, remove its partial build, release the lock.

    ``meta`` instead keeps the (complete) build and rewrites its metadata
    (a deploy whose build was finished here but failed elsewhere marks it failed).
    When the lock is no longer this operation's, nothing is touched
    (``LOSTLOCK``): the partial build stays for prune, and the other lock stays.
    """
    script = PREAMBLE + enter_root(root) + owner_check(token) + STOP_WORKER + CLEAN_LEFTOVERS
    if remove_build:
        # Through a `builds` that is a symlink nothing is removed or written; the lock is still released.
        script += "layout_linked || "
        b = q(check_build_id(remove_build))
        if meta:
            script += (f"{{ if [ -d builds/{b} ] && [ -e builds/{b}/env ]; then printf '%s\\n' {q(meta)} > "
                       f"builds/{b}/.releasetui-build.json.tmp && mv -f builds/{b}/.releasetui-build.json.tmp "
                       f"builds/{b}/.releasetui-build.json; elif [ \"$(current_id)\" != {b} ]; then "
                       f"rm -rf -- builds/{b} && echo REMOVEDBUILD; fi; }}\n")
        else:
            script += (f"{{ if [ \"$(current_id)\" != {b} ] && [ -d builds/{b} ]; then rm -rf -- builds/{b} && "
                       "echo REMOVEDBUILD; fi; }\n")
    if history:
        script += f"history_append {q(history)}\n"
    return script + "rm -rf -- deploy.lock && echo RELEASED\n"


def prune_script(root: str, token: str, builds: Sequence[str], venvs: Sequence[str], history: dict,
                 wheelhouses: Sequence[str] = ()) -> str:
    """Remove the planned builds, venvs and wheelhouses under this operation's lock, record what was ACTUALLY
    removed, release.

    Each removal is re-checked on the host (never current, never pinned);
    ``history`` is the record without its ``removed`` list, which only the
    script knows.
    """
    ids = [check_build_id(b) for b in builds]
    keys = [check_venv_key(v) for v in venvs]
    lines = [PREAMBLE + enter_root(root) + owner_check(token) + refuse_linked_layout(release=True), "begin prune",
             "_removed=''"]
    # Ids and keys match strict patterns (digits, hex, '-', '.'), so they may appear in the JSON text as they are.
    for b in ids:
        lines.append(f"if [ \"$(current_id)\" != {q(b)} ] && [ ! -e pins/{q(b)} ] && [ -d builds/{q(b)} ]; then "
                     f"rm -rf -- builds/{q(b)} && _removed=\"$_removed${{_removed:+, }}\\\"{b}\\\"\"; fi")
    for v in keys:
        lines.append(f"if [ -d venvs/{q(v)} ] && ! venv_used {q(v)}; then rm -rf -- venvs/{q(v)} && "
                     f"_removed=\"$_removed${{_removed:+, }}\\\"venv:{v}\\\"\"; fi")
    lines += [
        wheelhouse_gc(wheelhouses).rstrip("\n"),
        ENV_GC.rstrip("\n"),
        "end ok \"removed: $(printf '%s' \"${_removed:-nothing}\" | tr -d '\"')\"",
        f"history_append \"$(printf '%s' {q(json_prefix(history))})\\\"removed\\\": [$_removed]}}\"",
        "printf 'REMOVED\\t%s\\n' \"$(printf '%s' \"$_removed\" | tr -d '\",')\"",
        "rm -rf -- deploy.lock && echo RELEASED",
    ]
    return "\n".join(lines) + "\n"


def pin_script(root: str, token: str, build_id: str, pin: bool, history: str) -> str:
    """Pin (never pruned) or unpin a build under this operation's lock, record it, release."""
    b = q(check_build_id(build_id))
    action = (f"[ -d builds/{b} ] || {{ echo \"REFUSED\tno build {build_id} here\"; rm -rf -- deploy.lock; exit 65; }}\n"
              f"mkdir -p pins && : > pins/{b}" if pin else f"rm -f -- pins/{b}")
    return (PREAMBLE + enter_root(root) + owner_check(token) + refuse_linked_layout(release=True) + action
            + " || exit 1\n"
            + f"history_append {q(history)}\nrm -rf -- deploy.lock && echo RELEASED\n")


def hold_script(root: str, token: str, history: str) -> str:
    """Keep the lock this operation just took (a manual ``lock``): record it in history and leave it in place.

    The lock's info carries no pid, so it is never STALE: only ``unlock`` releases it.
    """
    return PREAMBLE + enter_root(root) + owner_check(token) + f"history_append {q(history)}\necho HELD\n"


def unmark_script(root: str, token: str, build_id: str, meta: Optional[str], history: str) -> str:
    """Rewrite a build's metadata without its marks (``meta``: planned from the state read under this
    operation's lock) atomically, record it, release.  With ``meta`` None the build carries no mark on this
    host: only the lock is released."""
    b = check_build_id(build_id)
    if meta is None:
        return PREAMBLE + enter_root(root) + owner_check(token) + "rm -rf -- deploy.lock && echo RELEASED\n"
    return (PREAMBLE + enter_root(root) + owner_check(token) + f"M={q(b)}\n"
            f"[ -d \"builds/$M\" ] && [ -e \"builds/$M/env\" ] || {{ echo \"REFUSED\tno build {b} here\"; "
            "rm -rf -- deploy.lock; exit 65; }\n"
            + write_meta("M", meta) + " || exit 1\n"
            + f"history_append {q(history)}\nrm -rf -- deploy.lock && echo RELEASED\n")


def unlock_script(root: str, expected_token: str, history: str) -> str:
    """Remove the lock that was shown to the person (whatever state it is in: a directory, a file, huge), record it.

    ``expected_token`` is the token read before asking ('' for a lock without
    one): if the lock has changed since, it is left alone (``CHANGED``).
    Whatever the lock's operation still runs on the host is stopped first.
    """
    token = "".join(c for c in expected_token if c in "0123456789abcdef")[:16]
    return PREAMBLE + enter_root(root) + f"""if [ ! -e deploy.lock ] && [ ! -L deploy.lock ]; then echo NOTLOCKED; exit 0; fi
lock_info
_tok=''
[ -d deploy.lock ] && [ -f deploy.lock/token ] && _tok=$(head -c 64 deploy.lock/token 2>/dev/null | tr -dc '0-9a-f')
if [ "$_tok" != {q(token)} ]; then echo CHANGED; exit 0; fi
[ -d deploy.lock ] && {{
{STOP_WORKER}}}
rm -rf -- deploy.lock || exit 1
history_append {q(history)}
echo UNLOCKED
"""


@dataclass
class FinishReport:
    """What a finishing script (release, prune, pin, unmark, lock, unlock) printed about how it ended."""

    released: bool = False        # our lock is gone
    lost_lock: bool = False       # the lock was no longer ours: nothing done
    removed_build: bool = False   # the partial build was removed
    removed: list[str] = field(default_factory=list)   # what prune removed (ids, venv:KEY, ...)
    refused: Optional[str] = None  # the script refused, and why
    not_locked: bool = False      # unlock: there was no lock
    changed: bool = False         # unlock: the lock changed since it was read
    unlocked: bool = False        # unlock: removed
    held: bool = False            # lock: now held
    noroot: bool = False          # the project root is not there


def parse_finish(stdout: str) -> FinishReport:
    """The tags every finishing script may print."""
    tags = Tagged.parse(stdout)
    return FinishReport(
        released=tags.has("RELEASED"), lost_lock=tags.has("LOSTLOCK"), removed_build=tags.has("REMOVEDBUILD"),
        removed=tags.value("REMOVED").split(), refused=tags.value("REFUSED") or None,
        not_locked=tags.has("NOTLOCKED"), changed=tags.has("CHANGED"), unlocked=tags.has("UNLOCKED"),
        held=tags.has("HELD"), noroot=tags.has("NOROOT"))
