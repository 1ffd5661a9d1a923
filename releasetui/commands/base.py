"""What every remote script shares: the shell preamble, quoting, step lines, locks and history.

Each phase of an operation is ONE script, run in one round trip.  A script
reports on stdout with tab-separated lines: ``@@step`` lines for progress
(they become events as they stream in) and tagged lines (``SWITCHED``,
``HEALTHY``...) that the parser beside each script's builder reads.  Every
value that reaches a shell goes through :func:`shlex.quote`; build ids, venv
keys and tokens are checked against strict patterns first; every script
``cd``s into the project root before anything else and only names paths
under it.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from typing import Iterable, NamedTuple, Optional

from ..metadata import META_FILE
from ..models import VENV_KEY_PATTERN, check_build_id, check_token

q = shlex.quote

STEP_PREFIX = "@@step\t"
LOST_LOCK_EXIT = 76      # the lock no longer carries this operation's token
REFUSED_EXIT = 65        # EX_DATAERR: the host refused the requested change
LOCK_INFO_LIMIT = 4096   # bytes of a lock's info.json ever read: a 5 MB file must not become a 5 MB message
META_LIMIT = 65536       # bytes of a build's metadata ever read
# The layout's directories releasetui writes and removes under: each must be a real directory, never a symlink
# (`rm -rf -- builds/X` would follow one out of the root).  `shared/` is left out: only read, and often a mount.
LAYOUT_DIRS = ("builds", "venvs", "wheels", "pins", "envs", "wheelhouses")


def check_venv_key(key: str) -> str:
    """Return ``key`` if it looks like ``<16 hex>-py<major>.<minor>``, else raise ValueError."""
    if not isinstance(key, str) or not VENV_KEY_PATTERN.fullmatch(key):
        raise ValueError(f"invalid venv key {key!r}")
    return key


def op_marker(token: str) -> str:
    """What a script of this operation carries in its command line, so a cleanup can find its processes."""
    return f"releasetui-op-{check_token(token)}"


PREAMBLE = r"""set -u
LC_ALL=C; export LC_ALL
umask 022
_nl='
'
# Every fork on a host is on the critical path of every host's phase (~1 ms each, ~80 in a deploy once), so the
# helpers below use shell builtins where they can: /proc/uptime for step times (monotonic; `date` only where
# there is no /proc), and a message is cleaned by tr/cut only when it holds something a step line cannot carry.
_mark() { _t=''; [ -r /proc/uptime ] && { read -r _t _ < /proc/uptime; } 2>/dev/null; case "$_t" in *[0-9].[0-9][0-9]) _t=$(( ${_t%.*} * 1000 + 1${_t#*.}0 - 1000 ));; *) _t=$(date +%s%3N);; esac; }
_clean() { tr -d '\000-\010\013-\037\177' | tr '\t\n\r' '   ' | cut -c1-400; }
_plain() { case "$1" in *[!A-Za-z0-9\ ./:,_=+@%\(\)\>-]*) return 1;; esac; [ ${#1} -le 400 ]; }
begin() { _step=$1; _mark; _step_start=$_t; printf '@@step\t%s\tstarted\t\t\n' "$1"; }
end() { _m=${2:-}; _plain "$_m" || _m=$(printf '%s' "$_m" | _clean); _mark; printf '@@step\t%s\t%s\t%s\t%s\n' "$_step" "$1" "$(( _t - _step_start ))" "$_m"; }
say() { printf '@@step\t%s\toutput\t\t%s\n' "$1" "$(printf '%s' "$2" | _clean)"; }
valid_id() { case "$1" in [0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]|[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]-[0-9][0-9]) return 0;; esac; return 1; }
current_id() { _c=$(readlink current 2>/dev/null || true); _c=${_c#builds/}; valid_id "$_c" && printf '%s' "$_c" || true; }
venv_used() { for _e in builds/*/env; do [ "$(readlink "$_e" 2>/dev/null)" = "../../venvs/$1" ] && return 0; done; return 1; }
# Sets _ld to the first layout directory that is a symlink (no script writes or removes through one).
layout_linked() { for _ld in LAYOUT_DIRS_WORDS; do [ -L "$_ld" ] && return 0; done; _ld=''; return 1; }
# History is appended only to a regular file: a FIFO there would hang the phase, a symlink could lead out of the root.
history_append() {
  if [ -L history.jsonl ] || { [ -e history.jsonl ] && [ ! -f history.jsonl ]; }; then
    say history 'history.jsonl is not a regular file: this operation is not recorded in it'; return 0
  fi
  if [ -s history.jsonl ] && [ -n "$(tail -c 1 history.jsonl)" ]; then echo >> history.jsonl; fi; printf '%s\n' "$1" >> history.jsonl
}
lock_info() {
  if [ -d deploy.lock ]; then
    # Only regular files are opened: a FIFO or a device in a lock would hang the script (and unlock with it).
    _lt=''; _ls=''; _li=''
    [ -f deploy.lock/token ] && _lt=$(head -c 64 deploy.lock/token 2>/dev/null | tr -dc '0-9a-f')
    [ -f deploy.lock/info.json ] && _ls=$(wc -c 2>/dev/null < deploy.lock/info.json | tr -dc 0-9) && _li=$(head -c 4096 deploy.lock/info.json 2>/dev/null | tr -d '\000-\037')
    printf 'LOCK\t%s\t%s\t%s\n' "$_lt" "$_ls" "$_li"
  elif [ -e deploy.lock ] || [ -L deploy.lock ]; then
    printf 'LOCK\t\t\t\tnot a directory\n'
  fi
}
""".replace("LAYOUT_DIRS_WORDS", " ".join(LAYOUT_DIRS))


# After builds are removed: the env files (envs/<digest>, written by deploys with `env:`) that no build links to
# any more.  A build's link is the only thing that keeps its env: while a build is there, so is the env it ran with.
ENV_GC = ("if [ -d envs ] && [ ! -L envs ]; then for _e in envs/*; do [ -f \"$_e\" ] || continue; "
          "find builds -maxdepth 6 -type l -lname \"*/envs/${_e#envs/}\" 2>/dev/null | grep -q . || "
          "rm -f -- \"$_e\"; done; fi\n")


# The temporary folder in the project root where a host builds a wheelhouse (`wheels: ship`, a `mktemp -d` prefix),
# and the shell that removes those of builders killed before their trap ran (run under the lock, where no other
# builder runs; no fork when there are none) by the next builder and by the release that ends a deploy.
TMP_PREFIX = ".releasetui-wheelhouse."
CLEAN_LEFTOVERS = f'for _w in {TMP_PREFIX}*; do [ -d "$_w" ] && [ ! -L "$_w" ] && rm -rf -- "$_w"; done\n'


def wheelhouse_gc(keys: Iterable[str], as_json: bool = True) -> str:
    """Shell that removes each planned wheelhouse (``wheelhouses/<venv key>``, shipped by ``wheels: ship``) that no
    build on the host still uses (the same test as a venv's: a wheelhouse is keyed like the venv it fills), adding
    ``wheelhouse:<key>`` to ``$_removed`` (a JSON list's items with ``as_json``, else words)."""
    lines = []
    for key in keys:
        k = check_venv_key(key)
        add = (f'_removed="$_removed${{_removed:+, }}\\"wheelhouse:{k}\\""' if as_json
               else f'_removed="$_removed wheelhouse:{k}"')
        lines.append(f"if [ -d wheelhouses/{q(k)} ] && ! venv_used {q(k)}; then rm -rf -- wheelhouses/{q(k)} && "
                     f"{add}; fi\n")
    return "".join(lines)


def enter_root(root: str, create: bool = False) -> str:
    """``cd`` into the project root (making the layout first for a deploy); a missing root says NOROOT."""
    if create:
        # Tests before mkdir: on every deploy but a host's first, the layout is there and no fork is needed.
        return (f"cd {q(root)} 2>/dev/null || {{ mkdir -p {q(root)} && cd {q(root)}; }} || exit 1\n"
                "[ -d builds ] && [ -d venvs ] && [ -d wheels ] && [ -d pins ] && [ -d shared ] || "
                "mkdir -p builds venvs wheels pins shared || exit 1\n")
    return f"cd {q(root)} 2>/dev/null || {{ echo NOROOT; exit 0; }}\n"


def owner_check(token: str) -> str:
    """Shell that stops the script (exit 76, ``LOSTLOCK`` and who holds it now) unless the lock carries ``token``."""
    check_token(token)
    return (f"TOKEN={token}\n"
            # Only a regular file is read (a FIFO or /dev/zero would never end), and only its first 18 bytes: `read`
            # would go through a 5 MB file byte by byte (seconds).  Ours: the token and nothing but newlines in
            # those bytes (the substitution drops them), as when `read` compared its first line and saw no second.
            "owns_lock() { _o=''; [ -d deploy.lock ] && [ -f deploy.lock/token ] && "
            "_o=$(head -c 18 deploy.lock/token 2>/dev/null); [ \"$_o\" = \"$TOKEN\" ]; }\n"
            f"owns_lock || {{ echo LOSTLOCK; lock_info; exit {LOST_LOCK_EXIT}; }}\n")


def record_worker(token: str) -> str:
    """Note this script's process group in the lock, so an interrupt or ``unlock`` can stop it (and pip, a restart...).

    The group is the login shell's sshd started (it may lead it, not this sh);
    :data:`STOP_WORKER` only signals it while a process there still carries
    the operation's marker, so a recycled group id is left alone.  It goes
    right after :func:`owner_check`, which has just seen the lock is ours
    (checking again was one more ``head`` on every host).
    """
    # The group from /proc/$$/stat (fields after the command's closing paren: state, ppid, pgrp), `ps` without /proc.
    return ("_pgid=''; [ -r /proc/$$/stat ] && { read -r _s < /proc/$$/stat; } 2>/dev/null && { _s=${_s##*) }; "
            "_s=${_s#* }; _s=${_s#* }; _pgid=${_s%% *}; }\n"
            "case \"$_pgid\" in ''|*[!0-9]*) _pgid=$(ps -o pgid= -p $$ 2>/dev/null | tr -d ' ');; esac\n"
            f"echo \"${{_pgid:-$$}} {op_marker(token)}\" > deploy.lock/worker.pid\n")


STOP_WORKER = r"""if [ -f deploy.lock/worker.pid ]; then
  read -r _pid _tok < deploy.lock/worker.pid || true
  case "$_pid" in ''|*[!0-9]*) ;; *)
    if [ "$_pid" != "$(ps -o pgid= -p $$ 2>/dev/null | tr -d ' ')" ] && [ -n "${_tok:-}" ] && ps -ww -eo pgid=,args= 2>/dev/null | awk -v g="$_pid" -v t="$_tok" '$1 == g && index($0, t) { f = 1 } END { exit !f }'; then
      kill -TERM "-$_pid" 2>/dev/null; sleep 0.2; kill -KILL "-$_pid" 2>/dev/null
    fi;;
  esac
fi
"""


def switch_to(target_var: str) -> str:
    """Point ``current`` at ``builds/$VAR`` atomically: a temporary symlink renamed over it (never a bare ``ln -sfn``)."""
    return f"ln -sfn \"builds/${target_var}\" current.releasetui-new && mv -Tf current.releasetui-new current"


def write_meta(build_var: str, meta_json: str, word: Optional[str] = None) -> str:
    """Replace a build's metadata atomically (a reader sees the old text or the new, never half); never through a
    ``builds`` that is a symlink (the read phase refuses one; this holds if it appears later).

    ``word``: the metadata as a shell word made by the caller (quoted parts around a variable the script set)."""
    return (f"{{ layout_linked || {{ printf '%s\\n' {word or q(meta_json)} > \"builds/${build_var}/{META_FILE}.tmp\" && "
            f"mv -f \"builds/${build_var}/{META_FILE}.tmp\" \"builds/${build_var}/{META_FILE}\"; }}; }}")


def refuse_linked_layout(release: bool = False) -> str:
    """Shell that stops a script (exit 65, ``REFUSED``) before it writes or removes through a layout directory
    that is a symlink; ``release``: it releases this operation's lock first (nothing was changed)."""
    free = "rm -rf -- deploy.lock; echo RELEASED; " if release else ""
    return (f"layout_linked && {{ printf 'REFUSED\\t%s\\n' \"$_ld is a symlink: releasetui never follows a link out "
            f"of the project root\"; {free}exit {REFUSED_EXIT}; }}\n")


def timed(command: str, seconds: float, kill_after: int = 5) -> str:
    """``command`` run by ``sh -c`` under GNU ``timeout`` (exit 124 when it ran out of time), stdin closed."""
    return f"timeout -k {int(kill_after)} {int(max(1, round(seconds)))} sh -c {q(command)} </dev/null"


def hook_run(name: str, command: str, timeout: float, build_var: Optional[str] = None) -> str:
    """Shell that runs one hook, its output streamed as ``output`` step lines while it runs; sets ``_rc``.

    The hook runs in ``builds/$<build_var>`` with that build's venv first on
    ``PATH`` (so ``python``, ``flask`` and ``pip`` are the build's own), else
    in the project root; its stdin is closed; it is bounded by ``timeout``
    (exit 124).  Its output goes to ``$_log`` and ``tail --pid`` streams it:
    a pipe would keep the script waiting on any daemon the hook leaves
    behind, a file does not.  The caller reads ``$_rc`` and the tail of
    ``$_log``.
    """
    run = timed(command, timeout)
    if build_var:
        run = (f'( cd "builds/${build_var}" && PATH="$PWD/env/bin:$PATH" && VIRTUAL_ENV="$PWD/env" && '
               f"export PATH VIRTUAL_ENV && exec {run} )")
    return (f"begin {name}\n"
            f"{run} >\"$_log\" 2>&1 &\n"
            "_hp=$!\n"
            "tail -s 0.1 -n +1 -f --pid=\"$_hp\" \"$_log\" 2>/dev/null | while IFS= read -r _l || [ -n \"$_l\" ]; do "
            f"say {name} \"$_l\"; done\n"
            "wait \"$_hp\"; _rc=$?\n")


def hook_failure(name: str, command: str, timeout: float) -> str:
    """Shell that sets ``_why`` for a failed hook: what ran, how it ended, and its last line of output."""
    secs = int(max(1, round(timeout)))
    return (f"if [ \"$_rc\" = 124 ] || [ \"$_rc\" = 137 ]; then _why={q(f'timed out after {secs}s')}; "
            "else _why=\"exit $_rc\"; fi\n"
            f"_why={q(f'{name} {chr(39)}{command[:80]}{chr(39)} failed: ')}\"$_why$(tail -n 1 \"$_log\" | _clean | "
            "sed 's/ *$//; s/^./: &/')\"\n")


def env_exports(env: dict) -> str:
    """``export NAME='value'`` lines for the hooks' environment."""
    return "".join(f"export {name}={q('' if value is None else str(value))}\n" for name, value in env.items())


def json_prefix(record: dict) -> str:
    """A JSON object without its closing brace, to which the script appends fields only it knows."""
    text = json.dumps(record, sort_keys=True)
    return text[:-1] + (", " if record else "")


# --- parsing ---------------------------------------------------------------------------------

@dataclass
class Tagged:
    """A script's output split into tagged lines (``TAG\\tfield...``) and everything else."""

    lines: list[list[str]] = field(default_factory=list)

    @classmethod
    def parse(cls, stdout: str) -> "Tagged":
        """Split ``stdout``; step lines are skipped (they were already reported as they streamed)."""
        tagged = cls()
        for line in stdout.splitlines():
            if line.startswith(STEP_PREFIX):
                continue
            tagged.lines.append(line.split("\t"))
        return tagged

    def has(self, tag: str) -> bool:
        """Whether any line carries ``tag``."""
        return any(parts[0] == tag for parts in self.lines)

    def first(self, tag: str) -> Optional[list[str]]:
        """The fields after ``tag`` on its first line, or None."""
        for parts in self.lines:
            if parts[0] == tag:
                return parts[1:]
        return None

    def all(self, tag: str) -> Iterable[list[str]]:
        """The fields after ``tag``, for every line that carries it."""
        return [parts[1:] for parts in self.lines if parts[0] == tag]

    def value(self, tag: str, default: str = "") -> str:
        """The first field after ``tag`` on its first line."""
        fields = self.first(tag)
        return fields[0] if fields else default


class Step(NamedTuple):
    """One ``@@step`` line: a step's name, its status, how long it took on the host (when known), its message."""

    name: str
    status: str
    seconds: Optional[float]
    message: str


def parse_step(line: str) -> Optional[Step]:
    """The :class:`Step` a ``@@step`` line reports, or None for any other line."""
    if not line.startswith(STEP_PREFIX):
        return None
    parts = line.split("\t")
    if len(parts) < 5:
        return None
    _, step, status, millis, message = parts[:5]
    return Step(step, status, int(millis) / 1000 if millis.isdigit() else None, message.strip())


def quoted_ids(ids: Iterable[str]) -> list[str]:
    """Build ids checked and ready for a shell (they are digits and '-' only, but quoted all the same)."""
    return [q(check_build_id(i)) for i in ids]
