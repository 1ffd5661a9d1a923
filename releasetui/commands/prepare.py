"""Phase 3 of a deploy, on each host: receive the build, link what is unchanged, give it its venv, mark it complete.

ONE script, fed ONE stream on stdin (see :mod:`releasetui.manifest`): the
host's interpreter unpacks it with :data:`SHIP_PY` into ``builds/<id>/``,
hard-linking every file the stream does not carry from the current build
(after checking each is still what its manifest says), then the shell gives
the build its venv (reused while the requirements hash is unchanged), links
the shared files, and writes ``complete: true`` last.  Every step runs only
while the lock still carries this operation's token.
"""

from __future__ import annotations

import posixpath
from typing import Optional, Sequence

from ..models import check_build_id
from ..requirements import RESOLVED_NAME
from .base import (PREAMBLE, Tagged, check_venv_key, enter_root, op_marker, owner_check, q, record_worker,
                   refuse_linked_layout, write_meta)
from .ship_helper import ship_py
from .venv import REQUIREMENTS_END, installer_meta_word, requirements_lines, venv_lines


def env_link(build_var: str, path: str, digest: str) -> str:
    """Shell that links the build's env file (``.env``) to ``envs/<digest>``: the env this build runs with, kept
    with it, so a rollback to it brings its env back."""
    if len(digest) != 16 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError("an env digest is 16 hex digits")
    link = posixpath.join(*([".."] * (path.count("/") + 2)), "envs", digest)
    parent = posixpath.dirname(path)
    return ((f"mkdir -p \"builds/${build_var}\"/{q(parent)} || exit 1\n" if parent else "")
            + f"[ -f envs/{digest} ] && [ ! -L envs ] || {{ end failed {q('env file envs/' + digest + ' is missing')}; "
            "exit 1; }\n"
            + f"ln -sfn {q(link)} \"builds/${build_var}\"/{q(path)} || exit 1\n")


def shared_links(build_var: str, files: Sequence[str], dirs: Sequence[str]) -> str:
    """Shell that replaces each shared path in the build with a relative symlink into ``shared/``.

    A shared file must already exist on the host (``.env`` holds secrets we
    never ship): its absence fails the deploy before anything switches.
    Shared folders are made when missing.
    """
    lines = []
    for path, is_dir in [(f, False) for f in files] + [(d, True) for d in dirs]:
        depth = path.count("/") + 2  # builds/<id>/<path...>
        link = posixpath.join(*([".."] * depth), "shared", path)
        parent = posixpath.dirname(path)
        if is_dir:
            lines.append(f"mkdir -p shared/{q(path)} || exit 1")
        else:
            lines.append(f"[ -e shared/{q(path)} ] || {{ end failed {q('shared file ' + path + ' is missing under ROOT/shared')}; exit 1; }}")
        if parent:
            lines.append(f"mkdir -p \"builds/${build_var}\"/{q(parent)} || exit 1")
        lines.append(f"rm -rf -- \"builds/${build_var}\"/{q(path)} && ln -s {q(link)} \"builds/${build_var}\"/{q(path)} || exit 1")
    if not lines:
        return ""
    return "begin shared\n" + "\n".join(lines) + f"\nend ok {q('linked ' + ', '.join(list(files) + list(dirs)))}\n"


# The most of the shipping stream a script carries inside itself (base64, in a here-document); a larger stream
# goes on stdin.  The bound is the whole exec request, not the stream: RFC 4253 only obliges a server to take
# packets of 32768 bytes (OpenSSH takes 256 KiB, Dropbear about the minimum), and a Linux argument 128 KiB.
INLINE_PAYLOAD_LIMIT = 24 * 1024
EXEC_REQUEST_LIMIT = 30_000   # bytes of `sh -c '<script>'`, leaving room for the packet's own fields
PAYLOAD_END = "RELEASETUI_PAYLOAD_END"


def fits_one_packet(script: str) -> bool:
    """Whether ``script`` sent as one exec request (``sh -c`` + the quoted script) stays within any SSH server's limit."""
    return len(("sh -c " + q(script)).encode("utf-8")) <= EXEC_REQUEST_LIMIT


def inline_payload(data: bytes) -> Optional[str]:
    """``data`` as base64 lines for :func:`prepare_script`'s ``inline``, or None when it is too big to carry."""
    import base64
    text = base64.encodebytes(data).decode("ascii")
    return text if len(text) <= INLINE_PAYLOAD_LIMIT else None


def prepare_script(root: str, token: str, build_id: str, *, requirements: str, venv: str, python: str,
                   pip_args: Sequence[str], meta_incomplete: str, meta_complete: str, install_timeout: float,
                   resume: bool = False, shared_files: Sequence[str] = (), shared_dirs: Sequence[str] = (),
                   inline: Optional[str] = None, env: Optional[tuple[str, str]] = None, env_in: bool = False,
                   requirements_text: Optional[str] = None, installer: str = "auto", uv: Optional[str] = None,
                   wheelhouse: Optional[str] = None, wheels_in: bool = False) -> str:
    """The deploy's prepare script for one host; the shipping stream is ``inline`` (base64) or its stdin.

    ``wheelhouse`` (a venv key, ``wheels: ship``): a new venv installs from ``wheelhouses/<key>`` with
    ``--no-index`` and no ``pip wheel``; ``wheels_in``: that wheelhouse arrives on stdin, before the stream.

    Why inline: sshd opens a session channel's window only once the command
    has started, so a stream sent on stdin leaves a round trip after the
    script; one carried in the script arrives with it.  A venv is built in
    place and only counts once its ``.releasetui-complete`` marker exists, so
    a venv half-made by a killed deploy is rebuilt, never used.

    ``requirements_text``: what a lock or pyproject.toml resolved to, carried in the script and written beside
    the build's metadata (:data:`~releasetui.requirements.RESOLVED_NAME`), installed instead of ``requirements``.
    ``installer`` and ``uv``: see :func:`venv_lines`.  ``meta_complete`` may hold :data:`INSTALLER_SLOT`, where
    the script writes which installer made the venv.
    """
    if inline is not None and (PAYLOAD_END in inline or "'" in inline):
        raise ValueError("an inline payload is base64 text")
    if env_in and (inline is not None or env is None):
        raise ValueError("an env file arrives on stdin, before the stream, never inside the script")
    if wheels_in and (inline is not None or wheelhouse is None):
        raise ValueError("a wheelhouse arrives on stdin, before the stream, never inside the script")
    check_build_id(build_id)
    check_venv_key(venv)
    if requirements_text is not None and REQUIREMENTS_END in requirements_text.splitlines():
        raise ValueError("the requirements text holds the here-document's end line")
    req = posixpath.join("builds", build_id, RESOLVED_NAME if requirements_text is not None else requirements)
    start = f": {op_marker(token)}\n" + PREAMBLE + enter_root(root) + owner_check(token) + refuse_linked_layout()
    return start + record_worker(token) + f"""B={q(build_id)}
V={q('venvs/' + venv)}
# A log file only when a venv is made (mktemp and rm are two processes on every host of every deploy).
_log=''
trap '[ -z "$_log" ] || rm -f "$_log"' EXIT
begin ship
{'' if resume else '[ -e "builds/$B" ] && { end failed "builds/$B already exists"; exit 1; }'}
# Its tagged lines go straight to stdout (fd 3); its stderr, kept in _err, is either the one-line summary or why it
# failed.
if {{ _err=$({q(python)} -I -S -W ignore -c {q(ship_py(wheelhouse if wheels_in else None))} "builds/$B" {'1' if resume else '0'}{stream_from(inline, env[1] if env_in else None)}
  end ok "${{_err%%"$_nl"*}}"
else
  _rc=$?
  if [ "$_rc" = 3 ]; then end ok "some files must be sent again"; exit 3; fi
  if [ "$_rc" = 4 ]; then end skipped "the build to link from differs from what was read: the manifest comes whole"; exit 4; fi
  end failed "$(printf '%s\n' "$_err" | tail -n 2)"; printf '%s\n' "$_err" >&2; exit 1
fi
printf '%s\\n' {q(meta_incomplete)} > "builds/$B/.releasetui-build.json" || exit 1
{requirements_lines(requirements, requirements_text, python)}{shared_links("B", shared_files, shared_dirs)}{env_link("B", *env) if env else ""}{venv_lines(python, req, pip_args, install_timeout, installer, uv, wheelhouse)}ln -sfn ../../"$V" "builds/$B/env" || exit 1
owns_lock || {{ echo LOSTLOCK; lock_info; exit 76; }}
{write_meta("B", meta_complete, installer_meta_word(meta_complete))} || exit 1
echo COMPLETE
"""


def stream_from(inline: Optional[str], env_digest: Optional[str] = None) -> str:
    """The end of the ship helper's command line (inside ``{ _err=$(...`` in the prepare script): its stream from a
    here-document, or from the script's stdin (then, with ``env_digest``, after the env file's line)."""
    if inline is None:
        return (f" env={env_digest}" if env_digest else "") + ' 2>&1 >&3 3>&-); } 3>&1; then'
    return f" b64 2>&1 >&3 3>&- <<'{PAYLOAD_END}'\n{inline.rstrip(chr(10))}\n{PAYLOAD_END}\n); }} 3>&1; then"


def parse_prepare(stdout: str) -> dict:
    """``{"complete", "need": [paths], "lost_lock", "shipped": (received, linked, bytes) or None, "full_manifest",
    "installer": "uv" | "pip" | None,
    "wheelhouse": (wheels, bytes) or None}``.

    ``full_manifest``: the host could not rebuild the manifest from the delta it was sent (nothing was written).
    """
    tags = Tagged.parse(stdout)
    shipped = tags.first("SHIPPED")
    numbers: Optional[tuple] = None
    if shipped and len(shipped) >= 3 and all(x.isdigit() for x in shipped[:3]):
        numbers = tuple(int(x) for x in shipped[:3])
    installer = (tags.first("INSTALLER") or [None])[0]
    wheels = tags.first("WHEELHOUSE")
    received = tuple(int(x) for x in wheels[1:3]) if wheels and len(wheels) >= 3 and all(
        x.isdigit() for x in wheels[1:3]) else None
    return {"wheelhouse": received, "complete": tags.has("COMPLETE"), "need": [f[0] for f in tags.all("NEED") if f],
            "lost_lock": tags.has("LOSTLOCK"), "shipped": numbers, "full_manifest": tags.has("FULLMANIFEST"),
            "installer": installer if installer in ("uv", "pip") else None}


__all__ = ["EXEC_REQUEST_LIMIT", "INLINE_PAYLOAD_LIMIT", "fits_one_packet", "inline_payload", "prepare_script",
           "parse_prepare", "shared_links"]
