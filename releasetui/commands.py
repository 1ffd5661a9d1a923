"""Pure builders of the shell scripts run on a host.

Nothing here touches the network or the disk: every function returns text (or
an argv list for rsync) so the scripts can be read, tested as strings and
printed by ``--dry-run``.  Each phase of an operation is ONE script, run in
one round trip; its progress comes back as ``@@step`` lines on stdout.

Every value that reaches a shell goes through :func:`shlex.quote`; build ids
and venv keys are checked against strict patterns first; every path is
relative to the project root, which the script ``cd``s into before anything
else, so nothing outside it is ever written or removed.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Iterable, Optional, Sequence

from .config import HealthCheck, HostConfig
from .models import VENV_KEY_PATTERN, check_build_id

q = shlex.quote

META_FILE = ".releasetui-build.json"
STEP_PREFIX = "@@step\t"
LOCKED_EXIT = 75  # EX_TEMPFAIL: another operation holds the lock
REFUSED_EXIT = 65  # EX_DATAERR: the requested build cannot be chosen
ALWAYS_EXCLUDED = ("/" + META_FILE, "/env", "/.git/")


def check_venv_key(key: str) -> str:
    """Return ``key`` if it looks like ``<16 hex>-py<major>.<minor>``, else raise ValueError."""
    if not VENV_KEY_PATTERN.fullmatch(key):
        raise ValueError(f"invalid venv key {key!r}")
    return key


def venv_key(requirements_sha256: str, python_version: str) -> str:
    """The venv directory name for a requirements hash and a host interpreter (``3.11.7`` -> ``py3.11``)."""
    major_minor = ".".join(python_version.split(".")[:2])
    return check_venv_key(f"{requirements_sha256[:16]}-py{major_minor}")


def meta_json(meta: dict) -> str:
    """The one-line, key-sorted JSON written as a build's metadata.

    Its exact spelling (``"complete": true``) is what the remote scripts grep
    for, so it must always come from here.
    """
    return json.dumps(meta, sort_keys=True)


PREAMBLE = r"""set -u
LC_ALL=C; export LC_ALL
umask 022
_now() { date +%s%3N; }
_clean() { tr '\t\n\r' '   ' | cut -c1-400; }
begin() { _step=$1; _step_start=$(_now); printf '@@step\t%s\tstarted\t\t\n' "$1"; }
end() { printf '@@step\t%s\t%s\t%s\t%s\n' "$_step" "$1" "$(( $(_now) - _step_start ))" "$(printf '%s' "${2:-}" | _clean)"; }
is_complete() { grep -q '"complete": true' "builds/$1/.releasetui-build.json" 2>/dev/null; }
is_failed() { grep -q '"failed": true' "builds/$1/.releasetui-build.json" 2>/dev/null; }
valid_id() { case "$1" in [0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]|[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]-[0-9][0-9]) return 0;; esac; return 1; }
venv_used() { for _e in builds/*/env; do [ "$(readlink "$_e" 2>/dev/null)" = "../../venvs/$1" ] && return 0; done; return 1; }
current_id() { _c=$(readlink current 2>/dev/null || true); _c=${_c#builds/}; valid_id "$_c" && printf '%s' "$_c" || true; }
"""

LISTING = r"""printf 'CURRENT\t%s\n' "$(current_id)"
if [ -d deploy.lock ]; then printf 'LOCK\t%s\n' "$(tr -d '\n' < deploy.lock/info.json 2>/dev/null || true)"; fi
for _d in builds/*; do
  _id=${_d#builds/}
  [ -d "$_d" ] && valid_id "$_id" || continue
  printf 'BUILD\t%s\t%s\t%s\n' "$_id" "$(readlink "builds/$_id/env" 2>/dev/null || true)" "$(tr -d '\n' < "builds/$_id/.releasetui-build.json" 2>/dev/null || true)"
done
for _v in venvs/*/; do [ -d "$_v" ] || continue; _v=${_v#venvs/}; printf 'VENV\t%s\n' "${_v%/}"; done
"""


def worker_token(build_id: str) -> str:
    """The marker an install script carries in its command line (see :data:`STOP_WORKER`)."""
    return f"releasetui-install-{check_build_id(build_id)}"


# Stops what a deploy left running under the lock (its install script and pip) by process group, but only
# while some process of that group still carries the install's token: a recycled group id is left alone.
STOP_WORKER = r"""if [ -f deploy.lock/worker.pid ]; then
  read -r _pid _tok < deploy.lock/worker.pid || true
  case "$_pid" in ''|*[!0-9]*) ;; *)
    if [ -n "${_tok:-}" ] && ps -ww -eo pgid=,args= 2>/dev/null | awk -v g="$_pid" -v t="$_tok" '$1 == g && index($0, t) { f = 1 } END { exit !f }'; then
      kill -TERM "-$_pid" 2>/dev/null; sleep 0.2
    fi;;
  esac
fi
"""


def _enter_root(root: str, create: bool = False) -> str:
    if create:
        return (f"mkdir -p {q(root)} || exit 1\ncd {q(root)} || exit 1\n"
                "mkdir -p builds venvs wheels || exit 1\n")
    return f"cd {q(root)} 2>/dev/null || {{ echo NOROOT; exit 0; }}\n"


def _python_version(python: str) -> str:
    return (f"printf 'PYTHON\\t%s\\n' \"$({q(python)} -c 'import sys; print(\"%d.%d.%d\" % sys.version_info[:3])' "
            "2>/dev/null || true)\"\n")


def _take_lock(lock_json: str) -> str:
    """Atomically take the lock (``mkdir``) or report who holds it and exit 75."""
    return (
        "if mkdir deploy.lock 2>/dev/null; then\n"
        f"  printf '%s\\n' {q(lock_json)} > deploy.lock/info.json\n"
        "else\n"
        "  printf 'LOCKED\\t%s\\n' \"$(tr -d '\\n' < deploy.lock/info.json 2>/dev/null || true)\"\n"
        f"  exit {LOCKED_EXIT}\n"
        "fi\n"
    )


def state_script(root: str, python: Optional[str] = None) -> str:
    """Read-only: list the host's builds (with metadata), venvs, current build and lock, in one round trip."""
    script = PREAMBLE + _enter_root(root) + LISTING
    if python:
        script += _python_version(python)
    return script


def prepare_script(root: str, lock_json: str, python: str) -> str:
    """Deploy phase 1: create the layout, take the lock, then list the state and the host's Python version."""
    return (PREAMBLE + _enter_root(root, create=True) + "printf 'CURRENT\\t%s\\n' \"$(current_id)\"\n"
            + _take_lock(lock_json) + LISTING + _python_version(python))


def release_lock_script(root: str, remove_build: Optional[str] = None) -> str:
    """Abort path of a deploy: remove its partial build (if any) and release the lock."""
    script = PREAMBLE + _enter_root(root) + STOP_WORKER
    if remove_build:
        check_build_id(remove_build)
        script += (
            f"if ! is_complete {q(remove_build)} || [ \"$(current_id)\" != {q(remove_build)} ]; then\n"
            f"  rm -rf -- builds/{q(remove_build)}\nfi\n"
        )
    script += "rm -rf -- deploy.lock\n"
    return script


def unlock_script(root: str, history_json: str) -> str:
    """Remove a lock left behind (by a killed deploy, say) and record it in history; print who held it."""
    return (
        PREAMBLE + _enter_root(root)
        + "if [ ! -d deploy.lock ]; then echo 'NOTLOCKED'; exit 0; fi\n"
        + "printf 'LOCK\\t%s\\n' \"$(tr -d '\\n' < deploy.lock/info.json 2>/dev/null || true)\"\n"
        + STOP_WORKER
        + "rm -rf -- deploy.lock || exit 1\n"
        + f"printf '%s\\n' {q(history_json)} >> history.jsonl\n"
    )


def install_script(
    root: str,
    build_id: str,
    requirements: str,
    key: str,
    python: str,
    pip_args: Sequence[str],
    meta_incomplete: str,
    meta_complete: str,
) -> str:
    """Deploy phase 2: give the rsynced build its venv (reused when the key exists) and mark it complete.

    A venv is built in place and only counts once its ``.releasetui-complete``
    marker exists, so a venv half-made by a killed deploy is rebuilt, never used.
    """
    check_build_id(build_id)
    check_venv_key(key)
    build = f"builds/{build_id}"
    req = f"{build}/{requirements}"
    venv = f"venvs/{key}"
    extra = " ".join(q(a) for a in pip_args)
    return f": {worker_token(build_id)}\n" + PREAMBLE + _enter_root(root) + f"""B={q(build)}
V={q(venv)}
[ -d "$B" ] || {{ echo "build directory $B is missing" >&2; exit 1; }}
# Lets an interrupted deploy's cleanup stop this script (and pip) instead of leaving it running.
# Its process group (the login shell sshd started may lead it, not this sh) and a token that is in this
# script's command line, so a later cleanup signals this group only while it is still this install.
_pgid=$(ps -o pgid= -p $$ 2>/dev/null | tr -d ' ')
[ -d deploy.lock ] && echo "${{_pgid:-$$}} {worker_token(build_id)}" > deploy.lock/worker.pid
printf '%s\\n' {q(meta_incomplete)} > "$B/.releasetui-build.json.tmp" && mv -f "$B/.releasetui-build.json.tmp" "$B/.releasetui-build.json" || exit 1
[ -f {q(req)} ] || {{ printf 'requirements file %s is missing from the build\\n' {q(requirements)} >&2; exit 1; }}
_log=$(mktemp) || exit 1
trap 'rm -f "$_log"' EXIT
begin venv
if [ -f "$V/.releasetui-complete" ]; then
  end ok "reused $V"
else
  rm -rf -- "$V"
  # The host's own pip, pointed at a pip-less venv (pip >= 22.3), saves ensurepip's ~5 s per new venv.
  if {q(python)} -m pip --help 2>/dev/null | grep -q -- '--python <python>'; then
    _venv_args=--without-pip; set -- {q(python)} -m pip --python "$V/bin/python"
  else
    _venv_args=; set -- "$V/bin/python" -m pip
  fi
  if ! {q(python)} -m venv $_venv_args "$V" >"$_log" 2>&1 </dev/null; then end failed "venv: $(tail -n 3 "$_log")"; cat "$_log" >&2; exit 1; fi
  if ! "$@" wheel -q --disable-pip-version-check --wheel-dir wheels --find-links wheels -r {q(req)} {extra} >"$_log" 2>&1 </dev/null; then
    end failed "pip wheel: $(tail -n 3 "$_log")"; cat "$_log" >&2; rm -rf -- "$V"; exit 1
  fi
  if ! "$@" install -q --disable-pip-version-check --no-index --find-links wheels -r {q(req)} >"$_log" 2>&1 </dev/null; then
    end failed "pip install: $(tail -n 3 "$_log")"; cat "$_log" >&2; rm -rf -- "$V"; exit 1
  fi
  touch "$V/.releasetui-complete"
  end ok "built $V"
fi
ln -sfn ../../{q(venv)} "$B/env" || exit 1
printf '%s\\n' {q(meta_complete)} > "$B/.releasetui-build.json.tmp" && mv -f "$B/.releasetui-build.json.tmp" "$B/.releasetui-build.json" || exit 1
echo COMPLETE
"""


def _switch_to(target_var: str) -> str:
    """Point ``current`` at ``builds/$TARGET`` atomically: a temporary symlink renamed over it."""
    return (
        f"ln -sfn \"builds/${target_var}\" current.releasetui-new && mv -Tf current.releasetui-new current"
    )


def _restart(restart: Optional[str]) -> str:
    if not restart:
        return "begin restart; end skipped 'no restart command configured'\n_restart_ok=1\n"
    return (
        "begin restart\n"
        f"if sh -c {q(restart)} >\"$_log\" 2>&1 </dev/null; then end ok; _restart_ok=1; "
        "else end failed \"$(tail -n 3 \"$_log\")\"; cat \"$_log\" >&2; _restart_ok=0; fi\n"
    )


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
            proc = subprocess.run(["sh", "-c", target], capture_output=True, text=True, timeout=float(timeout))
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


BUILD_PLACEHOLDER = "{build_id}"


def _health(health: Optional[HealthCheck], python: str, build_id: str = "") -> str:
    """The health poll; ``{build_id}`` in the url, command or expected text becomes the build just switched to.

    Why: a graceful reload answers with the OLD workers for a moment, so a
    check that only wants "200" can pass before the new build serves at all;
    expecting the build id proves the new build itself is answering.
    """
    if health is None:
        return "_healthy=1\n"
    kind, target = ("url", health.url) if health.url else ("command", health.command)
    expect = "" if health.expect is None else str(health.expect)
    target = (target or "").replace(BUILD_PLACEHOLDER, build_id)
    expect = expect.replace(BUILD_PLACEHOLDER, build_id)
    return (
        "begin health\n"
        f"if _h=$({q(python)} -c {q(HEALTH_PY)} {q(kind)} {q(target)} {q(expect)} "
        f"{q(str(health.timeout))} {q(str(health.interval))} 2>&1 </dev/null); then end ok \"$_h\"; _healthy=1; "
        "else end failed \"unhealthy after {t}s: $_h\"; _healthy=0; fi\n".format(t=health.timeout)
    )


def activate_script(
    root: str,
    build_id: str,
    previous: Optional[str],
    restart: Optional[str],
    history_json: str,
    python: str = "python3",
    health: Optional[HealthCheck] = None,
    failed_meta: Optional[str] = None,
    health_failed_history: Optional[str] = None,
    prune_builds: Iterable[str] = (),
    prune_venvs: Iterable[str] = (),
) -> str:
    """Deploy phase 3 on one host (lock already held): switch, restart, check health, prune, release the lock.

    When the restart fails or the health check does, the same script
    switches back to ``previous``, restarts again and rewrites the build's
    metadata as failed, so the default rollback never picks it; it exits 1.
    """
    check_build_id(build_id)
    if previous:
        check_build_id(previous)
    prune_builds = [check_build_id(b) for b in prune_builds]
    prune_venvs = [check_venv_key(v) for v in prune_venvs]
    lines = [
        PREAMBLE + _enter_root(root),
        f"TARGET={q(build_id)}",
        "trap 'rm -f \"${_log:-}\"; rm -rf -- deploy.lock' EXIT",
        "_log=$(mktemp) || exit 1",
        "is_complete \"$TARGET\" || { echo \"build $TARGET is not complete\" >&2; exit 1; }",
        "begin switch",
        _switch_to("TARGET") + " || { end failed 'could not replace the current symlink'; exit 1; }",
        "end ok \"current -> builds/$TARGET\"",
        f"printf '%s\\n' {q(history_json)} >> history.jsonl",
        _restart(restart).rstrip("\n"),
    ]
    if health is None:
        lines.append("_healthy=$_restart_ok")
    else:
        lines += [
            "if [ \"$_restart_ok\" = 1 ]; then",
            _health(health, python, build_id).rstrip("\n"),
            "else",
            "  begin health; end failed 'restart failed: not polled'; _healthy=0",
            "fi",
        ]
    # A build whose restart fails (it cannot even start) or that stays unhealthy never stays current:
    # switch back to the build it replaced, restart that, and mark this one failed.
    back = []
    if previous:
        back = [
            f"  PREV={q(previous)}",
            "  begin switch-back",
            "  " + _switch_to("PREV") + " || { end failed 'could not switch back'; exit 1; }",
            "  end ok \"current -> builds/$PREV\"",
            "  " + _restart(restart).rstrip("\n").replace("\n", "\n  "),
        ]
    lines += ["if [ \"$_healthy\" != 1 ]; then", *back]
    if failed_meta:
        lines.append(f"  printf '%s\\n' {q(failed_meta)} > \"builds/$TARGET/.releasetui-build.json.tmp\" && "
                     "mv -f \"builds/$TARGET/.releasetui-build.json.tmp\" \"builds/$TARGET/.releasetui-build.json\"")
    if health_failed_history:
        lines.append(f"  printf '%s\\n' {q(health_failed_history)} >> history.jsonl")
    lines += ["  echo UNHEALTHY", "  exit 1", "fi"]
    lines.append(_prune_lines(prune_builds, prune_venvs, keep=[build_id] + ([previous] if previous else [])))
    lines.append("echo SWITCHED")
    return "\n".join(lines) + "\n"


def _prune_lines(builds: Sequence[str], venvs: Sequence[str], keep: Sequence[str]) -> str:
    if not builds and not venvs:
        return ""
    out = ["begin prune", "_removed=''"]
    for build in builds:
        if build in keep:
            continue
        # Re-checked on the host: whatever the plan said, current is never removed.
        out.append(f"if [ \"$(current_id)\" != {q(build)} ] && [ -d builds/{q(build)} ]; then "
                   f"rm -rf -- builds/{q(build)} && _removed=\"$_removed {build}\"; fi")
    for venv in venvs:
        out.append(f"if ! venv_used {q(venv)}; then "
                   f"rm -rf -- venvs/{q(venv)} && _removed=\"$_removed venv:{venv}\"; fi")
    out.append("end ok \"removed:${_removed:- nothing}\"")
    out.append("printf 'REMOVED\\t%s\\n' \"$_removed\"")
    return "\n".join(out)


def rollback_script(
    root: str,
    build_id: Optional[str],
    restart: Optional[str],
    lock_json: str,
    who: str,
    when: str,
    host: str = "",
    mark_failed: Optional[tuple[str, str]] = None,
) -> str:
    """Roll back in ONE round trip: take the lock, pick or check the target, switch, restart, record, unlock.

    With no ``build_id`` the target is the newest complete, not failed build
    older than current, by id.  A target that is unknown or incomplete is
    refused (exit 65) with the ids that could be chosen.  ``mark_failed``
    (build id, metadata JSON) rewrites that build's metadata once switched
    away from it: a deploy taking back a build that failed on another host.
    """
    if build_id is not None:
        check_build_id(build_id)
    mark = ""
    if mark_failed is not None:
        failed_id = check_build_id(mark_failed[0])
        mark = (f"if [ -d builds/{q(failed_id)} ]; then printf '%s\\n' {q(mark_failed[1])} > builds/{q(failed_id)}/.releasetui-build.json.tmp"
                f" && mv -f builds/{q(failed_id)}/.releasetui-build.json.tmp builds/{q(failed_id)}/.releasetui-build.json; fi\n")
    pick = (
        f"TARGET={q(build_id)}\n" if build_id else
        "TARGET=''\n"
        "[ -n \"$CUR\" ] && for _d in builds/*; do _id=${_d#builds/}; [ -d \"$_d\" ] && valid_id \"$_id\" || continue\n"
        "  [ \"$_id\" = \"$CUR\" ] && break\n"
        "  if is_complete \"$_id\" && ! is_failed \"$_id\"; then TARGET=$_id; fi\n"
        "done\n"
    )
    return PREAMBLE + _enter_root(root) + """CUR=$(current_id)
printf 'FROM\\t%s\\n' "$CUR"
""" + _take_lock(lock_json) + f"""trap 'rm -f "${{_log:-}}"; rm -rf -- deploy.lock' EXIT
_log=$(mktemp) || exit 1
{pick}candidates() {{ _c=''; for _d in builds/*; do _id=${{_d#builds/}}; [ -d "$_d" ] && valid_id "$_id" && is_complete "$_id" && _c="$_c $_id"; done; printf 'CANDIDATES\\t%s\\n' "$_c"; }}
if [ -z "$TARGET" ]; then
  if [ -z "$CUR" ]; then echo "nothing is current on this host yet" >&2; else echo "no complete build older than $CUR" >&2; fi
  candidates; exit {REFUSED_EXIT}
fi
if [ ! -d "builds/$TARGET" ]; then echo "no build $TARGET on this host" >&2; candidates; exit {REFUSED_EXIT}; fi
if ! is_complete "$TARGET"; then echo "build $TARGET is incomplete" >&2; candidates; exit {REFUSED_EXIT}; fi
printf 'TO\\t%s\\n' "$TARGET"
if [ "$TARGET" = "$CUR" ]; then begin switch; end skipped "$TARGET is already current"; echo SWITCHED; exit 0; fi
begin switch
{_switch_to("TARGET")} || {{ end failed 'could not replace the current symlink'; exit 1; }}
end ok "current -> builds/$TARGET"
{mark}printf '{{"event": "rollback", "from": "%s", "host": %s, "to": "%s", "when": "%s", "who": %s}}\\n' "$CUR" {q(json.dumps(host))} "$TARGET" {q(when)} {q(json.dumps(who))} >> history.jsonl
{_restart(restart)}[ "$_restart_ok" = 1 ] || exit 1
echo SWITCHED
"""


def prune_script(root: str, builds: Sequence[str], venvs: Sequence[str], lock_json: str, history_json: str, keep: Sequence[str]) -> str:
    """Remove the given builds and venvs under the lock; current and ``keep`` are never removed."""
    builds = [check_build_id(b) for b in builds]
    venvs = [check_venv_key(v) for v in venvs]
    keep = [check_build_id(k) for k in keep]
    return (
        PREAMBLE + _enter_root(root) + _take_lock(lock_json)
        + "trap 'rm -rf -- deploy.lock' EXIT\n"
        + (_prune_lines(builds, venvs, keep) or "printf 'REMOVED\\t\\n'") + "\n"
        + f"printf '%s\\n' {q(history_json)} >> history.jsonl\n"
    )


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


def rsync_argv(
    host: HostConfig,
    source: Path,
    build_id: str,
    link_dest: Optional[str],
    excludes_file: Optional[Path],
    remote_shell: Optional[Sequence[str]] = None,
) -> list[str]:
    """The local ``rsync`` command that copies ``source`` into ``builds/<build_id>/`` on the host.

    ``--link-dest`` at the current build makes unchanged files hard links:
    no copy, no disk.  ``remote_shell`` is rsync's ``-e`` for ssh hosts (the relay through the kept-open
    connection, see :mod:`releasetui.rsync_relay`).
    """
    check_build_id(build_id)
    root = host.root.rstrip("/")
    dest_dir = f"{root}/builds/{build_id}/"
    # Compared by checksum, not size+mtime: a same-size edit within the same second would otherwise be
    # hard-linked from the old build, and fresh CI checkouts (new mtimes) would never link at all.
    # Times, owners and devices are not copied, so identical content links whatever its mtime.
    argv = ["rsync", "-rlp", "--checksum", "--delete", "--partial-dir=.rsync-partial"]
    for pattern in ALWAYS_EXCLUDED:
        argv.append(f"--exclude={pattern}")
    if excludes_file is not None:
        argv.append(f"--exclude-from={excludes_file}")
    if link_dest:
        check_build_id(link_dest)
        argv.append(f"--link-dest={root}/builds/{link_dest}/")
    src = str(source).rstrip("/") + "/"
    if host.transport == "local":
        argv += [src, dest_dir]
    else:
        argv += ["-e", " ".join(q(a) for a in (remote_shell or ["ssh"])), "--protect-args"]
        target = f"{host.user}@{host.address}" if host.user else host.address
        argv += [src, f"{target}:{dest_dir}"]
    return argv
