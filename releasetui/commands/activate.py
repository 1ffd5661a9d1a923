"""Phase 5 on each host: switch, restart, after-hooks, health; then wait for the fleet's verdict.

ONE script per host per operation.  It switches ``current`` atomically,
restarts (bounded by ``restart_timeout``), runs the after-hooks, polls the
health check, and says ``HEALTHY`` or ``UNHEALTHY``.  An unhealthy host
switches itself back at once (restart again, build marked failed).  A healthy
one then waits on stdin for the fleet's verdict: ``COMMIT`` (every host is
healthy: record history, prune, release the lock) or anything else, EOF
included (another host failed, the operator pressed Ctrl-C twice, or
releasetui died): switch back.  A one-host operation sends its verdict up
front, so it costs no extra round trip.

:func:`switch_back_script` does the same switch back from outside, after a
host's activate script was stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from ..config import HealthCheck, Hook
from ..models import check_build_id
from ..text import clean_line
from .base import (ENV_GC, PREAMBLE, STOP_WORKER, Tagged, check_venv_key, enter_root, env_exports, hook_failure,
                   hook_run, json_prefix, op_marker, owner_check, q, record_worker, refuse_linked_layout, switch_to,
                   timed, wheelhouse_gc, write_meta)
from .sudo import sudo_command, sudo_noninteractive

BUILD_PLACEHOLDER = "{build_id}"

HEALTH_PY = r"""
import sys, time, subprocess, urllib.request, urllib.error
kind, target, expect, timeout, interval = sys.argv[1:6]
deadline = time.monotonic() + float(timeout)
last = "no attempt"
while True:
    try:
        if kind == "url":
            try:
                with urllib.request.urlopen(target, timeout=max(1.0, float(interval) * 4)) as resp:
                    status, body = resp.status, resp.read(65536).decode("utf-8", "replace")
            except urllib.error.HTTPError as exc:
                status, body = exc.code, ""
            if expect.isdigit():
                ok = status == int(expect)
            else:
                ok = 200 <= status < 400 and (not expect or expect in body)
            last = "HTTP %s%s" % (status, "" if ok or not expect or expect.isdigit() else ", body lacks %r" % expect)
        else:
            proc = subprocess.run(["sh", "-c", target], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  universal_newlines=True, timeout=float(timeout))
            ok = proc.returncode == 0 and (not expect or expect in proc.stdout)
            last = "exit %s" % proc.returncode
    except Exception as exc:
        ok, last = False, "%s: %s" % (type(exc).__name__, exc)
    if ok:
        print(last)
        sys.exit(0)
    if time.monotonic() + float(interval) > deadline:
        print(last)
        sys.exit(1)
    time.sleep(float(interval))
"""


KEEP_GOING = "trap ':' PIPE\n"

# The verdict releasetui sends each waiting host on stdin, one line (the script below reads it).
VERDICT_COMMIT = "COMMIT"
VERDICT_BACK = "BACK "


def verdict_line(commit: bool, reason: str = "") -> bytes:
    """The one line that ends a host's wait: ``COMMIT``, or ``BACK REASON`` (the reason recorded as its why)."""
    if commit:
        return (VERDICT_COMMIT + "\n").encode()
    return (VERDICT_BACK + " ".join(reason.split())).encode() + b"\n"


def strip_verdict(why: str) -> str:
    """A host's why without the words its script wrapped around the verdict it was sent."""
    for said in ("switched back: ", VERDICT_BACK):
        why = why[len(said):] if why.startswith(said) else why
    return why



def restart_lines(restart: Optional[str], timeout: float, step: str = "restart") -> str:
    """Run the restart command bounded by ``timeout``; sets ``_ok`` (1/0) and ``_why``.

    A restart that runs out of time is a failed restart, like one that exits
    non-zero: the caller switches back.
    """
    if not restart:
        return f"begin {step}; end skipped 'no restart command configured'; _ok=1\n"
    secs = int(max(1, round(timeout)))
    sudo = sudo_command(restart)
    program = sudo[1] if sudo else "sudo"
    return (
        f"begin {step}\n"
        f"{timed(sudo_noninteractive(restart), timeout)} >\"$_log\" 2>&1; _rc=$?\n"
        "if [ \"$_rc\" = 0 ]; then end ok; _ok=1\n"
        f"elif [ \"$_rc\" = 124 ] || [ \"$_rc\" = 137 ]; then _why='restart timed out after {secs}s'; end failed \"$_why\"; _ok=0\n"
        "else _out=$(tail -n 3 \"$_log\" | _clean); _out=${_out% }; "
        "_why=\"restart failed (exit $_rc)${_out:+: $_out}\"; end failed \"$_why\"; "
        "cat \"$_log\" >&2; _ok=0\n"
        # Only a failed restart can be sudo asking for a password: a restart that worked costs no extra fork.
        "  case \"$(cat \"$_log\")\" in *'a password is required'*|*'a terminal is required'*) "
        f"printf 'SUDO\\t%s\\t%s\\n' \"$(id -un)\" \"$(command -v {q(program)} 2>/dev/null || true)\";; esac\n"
        "fi\n"
    )


def hook_lines(hooks: Sequence[Hook], env: dict) -> str:
    """Run each after-hook inside the build just switched to (its venv first on PATH), bounded by its timeout.

    Its output streams back as ``output`` steps.  A failing hook counts as a
    failed restart: ``_ok=0``, so the health check is skipped and the host
    switches back.
    """
    if not hooks:
        return ""
    lines = [env_exports(env).rstrip("\n")]
    for hook in hooks:
        lines += [
            "if [ \"$_ok\" = 1 ]; then",
            hook_run(hook.name, hook.command, hook.timeout, "T").rstrip("\n"),
            "  if [ \"$_rc\" = 0 ]; then end ok " + q(hook.command[:200]) + "; else",
            hook_failure(hook.name, hook.command, hook.timeout).rstrip("\n"),
            "  end failed \"$_why\"; _ok=0; fi",
            "fi",
        ]
    return "\n".join(lines) + "\n"


def health_lines(health: Optional[HealthCheck], python: str, build_id: str) -> str:
    """Poll the health check until healthy or its timeout; ``{build_id}`` becomes the build just switched to.

    Why the placeholder: a graceful reload answers with the OLD workers for a
    moment, so a check that only wants "200" could pass before the new build
    serves at all; expecting the build id proves the new build answers.
    """
    if health is None:
        return ""
    kind, target = ("url", health.url) if health.url else ("command", health.command)
    expect = "" if health.expect is None else str(health.expect)
    target = (target or "").replace(BUILD_PLACEHOLDER, build_id)
    expect = expect.replace(BUILD_PLACEHOLDER, build_id)
    return (
        "if [ \"$_ok\" = 1 ]; then\n"
        "  begin health\n"
        f"  if _h=$({q(python)} -I -S -c {q(HEALTH_PY)} {q(kind)} {q(target)} {q(expect)} "
        f"{q(str(health.timeout))} {q(str(health.interval))} 2>&1 </dev/null); then end ok \"$_h\"\n"
        f"  else _why=\"unhealthy after {health.timeout:g}s: $(printf '%s' \"$_h\" | tail -n 1 | _clean)\"; "
        "end failed \"$_why\"; _ok=0; fi\n"
        "fi\n"
    )


@dataclass(frozen=True)
class ActivateRecords:
    """What an activate script writes, prepared by the caller.

    ``history`` is the history record every ending shares (event, from, to, who...); the script adds what
    only it knows (:func:`record_lines`): the outcome (``ok``, ``failed``, ``switched-back``, ``interrupted``),
    the reason in its own words, and the duration up to the moment it records.
    """

    history: dict                            # the record, without outcome, reason or duration
    failed_meta: Optional[str] = None        # the target's metadata marked failed (this host failed)
    back_meta: Optional[str] = None          # ... marked failed because another host failed (deploys only)
    # (build id, metadata) written when the fleet commits: a rollback marks the build it left ``rolled-away``
    # and clears that mark from its target.
    commit_metas: tuple = ()
    switch_failed_meta: Optional[str] = None # ... marked failed because its switch failed (else ``failed_meta``)


# `_json` escapes a text for a JSON string (control characters are gone already: `_clean`).
RECORD_SH = r"""_json() { printf '%s' "$1" | _clean | sed 's/\\/\\\\/g; s/"/\\"/g'; }
_record() {
  _mark; _d=$(( _t - _t0 )); [ "$_d" -ge 0 ] || _d=0
  _x="\"duration\": $(( _d / 1000 )).$(printf '%03d' $(( _d % 1000 ))), \"outcome\": \"$2\""
  [ -z "${3:-}" ] || _x="$_x, \"reason\": \"$(_json "$3")\""
  [ -z "${4:-}" ] || _x="$_x, \"interrupted_by\": \"$(_json "$4")\""
  history_append "$1$_x}"
}
"""


def record_lines(elapsed: float) -> str:
    """Shell: ``_record PREFIX OUTCOME [REASON [BY]]`` appends a history line: the record PREFIX (see
    :func:`~releasetui.commands.base.json_prefix`) completed with its outcome, reason, who interrupted it and
    ``duration``, the seconds since the operation started, to the millisecond.

    ``elapsed`` is how long the operation had run (on the operator's monotonic clock) when this script was
    built to start; the script adds its own monotonic count (``_mark``), so the duration covers everything up
    to the record (restart, hooks, health, switch-back, commit) and no two machines' wall clocks are compared.
    """
    return f"_mark; _t0=$(( _t - {int(max(0.0, elapsed) * 1000)} ))\n" + RECORD_SH


def activate_script(root: str, token: str, *, target: str, previous: Optional[str], restart: Optional[str],
                    restart_timeout: float, python: str, health: Optional[HealthCheck], hooks: Sequence[Hook],
                    hook_env: dict, records: ActivateRecords, verdict_timeout: float,
                    prune_builds: Sequence[str] = (), prune_venvs: Sequence[str] = (), decided: bool = False,
                    elapsed: float = 0.0, prune_wheelhouses: Sequence[str] = ()) -> str:
    """The activate script for one host (see the module docstring).

    ``decided``: this host is the whole operation, so it commits as soon as
    it is healthy instead of waiting for a verdict on stdin (a verdict sent
    with the script would wait a round trip for sshd to open the channel's
    window).  Only for an operation on one host.

    ``prune_*`` were planned from the state read under this operation's
    lock; they are removed only on ``COMMIT``, each re-checked on the host
    (never current, never pinned).

    History (:func:`record_lines`; ``elapsed``: seconds the operation had run when this script starts): ``ok``
    once committed and pruned; a host that failed records ``failed`` and its own words once it is back; a
    ``BACK interrupted by WHO`` verdict records ``interrupted`` by WHO, any other ``switched-back``.
    """
    check_build_id(target)
    if previous:
        check_build_id(previous)
    # Ids and keys are checked against their patterns (digits, hex, '-', '.'), so they are safe in the text too.
    builds = [check_build_id(b) for b in prune_builds]
    venvs = [check_venv_key(v) for v in prune_venvs]
    prune = ""
    if builds or venvs or prune_wheelhouses:
        prune = ("begin prune\n_removed=''\nif ! layout_linked; then\n"
                 + "".join(f"if [ \"$(current_id)\" != {q(b)} ] && [ ! -e pins/{q(b)} ] && [ -d builds/{q(b)} ]; then "
                           f"rm -rf -- builds/{q(b)} && _removed=\"$_removed {b}\"; fi\n" for b in builds)
                 + "".join(f"if ! venv_used {q(v)}; then rm -rf -- venvs/{q(v)} && _removed=\"$_removed venv:{v}\"; fi\n"
                           for v in venvs)
                 + wheelhouse_gc(prune_wheelhouses, as_json=False)
                 + ENV_GC + "fi\nend ok \"removed:${_removed:- nothing}\"\nprintf 'REMOVED\\t%s\\n' \"$_removed\"\n")
    # Refused before the switch (nothing changed): the lock is released like after any other failure.
    refuse_lines = (
        refuse_linked_layout(release=True) +
        "[ -d \"builds/$T\" ] && [ -e \"builds/$T/env/bin/python\" ] || { echo \"REFUSED\tbuild $T has no venv on "
        "this host\"; rm -rf -- deploy.lock; echo RELEASED; exit 65; }\n")
    switch_meta = records.switch_failed_meta or records.failed_meta
    marker = f": {op_marker(token)}\n"
    back = switch_back_lines(previous, restart, restart_timeout, on_fail="_finish_record; ")
    marks = "".join(f"    M={q(check_build_id(b))}; [ -d \"builds/$M\" ] && {{ {write_meta('M', meta)} || "
                    f"say mark \"could not rewrite the metadata of $M\"; }}\n" for b, meta in records.commit_metas)
    return marker + PREAMBLE + KEEP_GOING + record_lines(elapsed) + enter_root(root) + owner_check(token) + \
        record_worker(token) + f"""T={q(target)}
_pre={q(json_prefix(records.history))}; _oc=''; _reason=''; _by=''
_finish_record() {{ _record "$_pre" "$_oc" "$_reason" "$_by"; }}
_log=$(mktemp) || exit 1
trap 'rm -f "$_log"' EXIT
_ok=1; _why=''
{refuse_lines}begin switch
if [ "$(current_id)" = "$T" ]; then end skipped "$T is already current"; else
  if ! {{ {switch_to("T")}; }} 2>"$_log"; then
    # Nothing switched here: end as every failure ends (the build marked failed, recorded, the lock released).
    _why="could not switch: $(head -c 400 "$_log" | _clean)"; _why=${{_why% }}; end failed "$_why"
    [ -L current.releasetui-new ] && rm -f current.releasetui-new
    printf 'SWITCHFAILED\t%s\n' "$_why"
    _record "$_pre" failed "$_why"
    {write_meta("T", switch_meta) if switch_meta else ":"}
    rm -rf -- deploy.lock; echo RELEASED; exit 1
  fi
  end ok "current -> builds/$T"
fi
printf 'SWITCHED\\t%s\\n' "$T"
{restart_lines(restart, restart_timeout)}{hook_lines(hooks, hook_env)}{health_lines(health, python, target)}if [ "$_ok" = 1 ]; then
  echo HEALTHY
  {f"_verdict={VERDICT_COMMIT}" if decided else f"_verdict=$(timeout {int(max(1, round(verdict_timeout)))} head -n 1 2>/dev/null || true)"}
  if [ "$_verdict" = {VERDICT_COMMIT} ]; then
    owns_lock || {{ echo LOSTLOCK; lock_info; exit 76; }}
{marks}{prune}    _record "$_pre" ok
    rm -rf -- deploy.lock; echo COMMITTED; exit 0
  fi
  _verdict=${{_verdict#{VERDICT_BACK}}}
  _why="switched back: ${{_verdict:-no verdict from releasetui}}"
  echo "BACK\t$_why"
  case "$_verdict" in "interrupted by "*) _oc=interrupted; _by=${{_verdict#interrupted by }};; *) _oc=switched-back;; esac
  _reason=$_why
  {write_meta("T", records.back_meta) if records.back_meta else ":"}
else
  printf 'UNHEALTHY\\t%s\\n' "$_why"
  _oc=failed; _reason=$_why
  {write_meta("T", records.failed_meta) if records.failed_meta else ":"}
fi
{back}_finish_record
rm -rf -- deploy.lock
echo RELEASED
[ "$_ok" = 1 ] && exit 0 || exit 1
"""


def switch_back_lines(previous: Optional[str], restart: Optional[str], restart_timeout: float,
                      on_fail: str = "") -> str:
    """Shell that puts ``current`` back on ``previous`` (when it is on ``$T``) and restarts it; ``on_fail`` runs
    before it gives up when the switch back itself fails."""
    if not previous:
        return "echo NOPREVIOUS\n"
    return (f"P={q(previous)}\n"
            "if [ \"$(current_id)\" = \"$P\" ]; then printf 'BACKON\\t%s\\n' \"$P\"; else\n"
            "begin switch-back\n"
            f"{switch_to('P')} || {{ end failed 'could not switch back'; {on_fail}echo BACKFAILED; exit 1; }}\n"
            "end ok \"current -> builds/$P\"\n"
            "printf 'BACKON\\t%s\\n' \"$P\"\n"
            + restart_lines(restart, restart_timeout, "restart").replace("_ok=", "_rok=")
            + "[ \"$_rok\" = 1 ] || echo BACKRESTARTFAILED\nfi\n")


def switch_back_script(root: str, token: str, *, target: str, previous: Optional[str], restart: Optional[str],
                       restart_timeout: float, history: dict, meta: Optional[str] = None,
                       outcome: str = "switched-back", reason: str = "", by: Optional[str] = None,
                       elapsed: float = 0.0) -> str:
    """Stop this operation's activate script on the host, put ``previous`` back if ``target`` is live, release.

    Used when the operator stops waiting (a second Ctrl-C) or a host's
    activate script could not finish.  Acts only under this operation's lock.
    ``history`` is recorded with ``outcome``, ``reason``, ``by`` and its duration (:func:`record_lines`).
    """
    check_build_id(target)
    finish = f"_record {q(json_prefix(history))} {q(outcome)} {q(reason)} {q(by or '')}"
    return PREAMBLE + KEEP_GOING + record_lines(elapsed) + enter_root(root) + owner_check(token) + STOP_WORKER + \
        f"""T={q(target)}
_log=$(mktemp) || exit 1
trap 'rm -f "$_log"' EXIT
if [ "$(current_id)" = "$T" ]; then
{switch_back_lines(previous, restart, restart_timeout, on_fail=finish + "; ")}fi
{finish}
{write_meta("T", meta) if meta else ":"}
rm -rf -- deploy.lock
echo RELEASED
"""


@dataclass
class ActivateReport:
    """What an activate (or switch-back) script said."""

    switched: bool = False
    healthy: Optional[bool] = None
    committed: bool = False
    back_on: Optional[str] = None
    back_failed: bool = False
    back_restart_failed: bool = False
    no_previous: bool = False
    lost_lock: bool = False
    refused: Optional[str] = None
    switch_failed: Optional[str] = None      # why `current` could not be replaced (nothing switched)
    why: str = ""
    removed: tuple = ()
    sudo_user: Optional[str] = None          # sudo asked this user for a password
    sudo_program: Optional[str] = None       # the full path of the program sudo was to run, as found on the host
    released: bool = False


def parse_activate(stdout: str) -> ActivateReport:
    """Read the tags of :func:`activate_script` / :func:`switch_back_script` output."""
    tags = Tagged.parse(stdout)
    report = ActivateReport()
    report.switched = tags.has("SWITCHED")
    if tags.has("HEALTHY"):
        report.healthy = True
    if tags.has("UNHEALTHY"):
        report.healthy = False
        report.why = tags.value("UNHEALTHY")
    if tags.has("BACK"):
        report.why = tags.value("BACK")
    if tags.has("SWITCHFAILED"):
        report.healthy = False
        report.switch_failed = clean_line(tags.value("SWITCHFAILED"), 400) or "could not switch"
        report.why = report.switch_failed
    report.committed = tags.has("COMMITTED")
    report.back_on = tags.value("BACKON") or None
    report.back_failed = tags.has("BACKFAILED")
    report.back_restart_failed = tags.has("BACKRESTARTFAILED")
    report.no_previous = tags.has("NOPREVIOUS")
    report.lost_lock = tags.has("LOSTLOCK")
    report.refused = tags.value("REFUSED") or None
    report.removed = tuple(tags.value("REMOVED").split())
    sudo = tags.first("SUDO")
    if sudo:
        report.sudo_user = clean_line(sudo[0], 64) or None
        report.sudo_program = clean_line(sudo[1], 300) if len(sudo) > 1 and sudo[1] else None
    report.released = tags.has("RELEASED") or tags.has("COMMITTED")
    return report
