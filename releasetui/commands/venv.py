"""How a prepare script gives a build its venv: the resolved requirements written beside the build, the
installer chosen (uv or pip, :func:`venv_lines`), and the venv made or reused under its key."""

from __future__ import annotations

from typing import Optional, Sequence

from ..requirements import RESOLVED_NAME
from .base import check_venv_key, q

REQUIREMENTS_END = "RELEASETUI_REQUIREMENTS_END"
# Where the complete metadata says which installer made the build's venv (the script knows, the caller does not).
INSTALLER_SLOT = "@releasetui-installer@"
UV_PLACES = ('"$HOME/.local/bin/uv"', '"$HOME/.cargo/bin/uv"')


def installer_meta_word(meta_complete: str) -> Optional[str]:
    """The complete metadata as a shell word with ``$_inst`` (``uv`` or ``pip``) in the installer slot."""
    if INSTALLER_SLOT not in meta_complete:
        return None
    before, after = meta_complete.split(INSTALLER_SLOT, 1)
    return f'{q(before)}"$_inst"{q(after)}'


# Resolved requirements longer than this ride compressed: the whole script is one `sh -c` argument, and Linux
# refuses an argument over 128 KiB (a 1,600-line lock with markers is ~145 KiB; gzip makes it ~10 times smaller).
REQUIREMENTS_PLAIN_BYTES = 4096


def requirements_lines(requirements: str, text: Optional[str], python: str = "python3",
                       target: Optional[str] = None) -> str:
    """Shell that puts the build's requirements in place: the resolved ``text`` written beside its metadata (a
    quoted here-document: nothing in it is expanded; gzip'd and base64'd, unpacked by the host's ``python``, when
    longer than :data:`REQUIREMENTS_PLAIN_BYTES`), else a check that the build's own ``requirements`` is there.

    ``target``: where ``text`` is written instead (a shell word), e.g. the wheelhouse builder's temporary folder."""
    if text is None:
        return (f"[ -f \"builds/$B\"/{q(requirements)} ] || {{ printf 'requirements file %s is missing from the "
                f"build\\n' {q(requirements)} >&2; exit 1; }}\n")
    body = text if text.endswith("\n") or not text else text + "\n"
    target = target or f"\"builds/$B/{RESOLVED_NAME}\""
    if len(body.encode("utf-8")) <= REQUIREMENTS_PLAIN_BYTES:
        return f"cat > {target} <<'{REQUIREMENTS_END}' || exit 1\n{body}{REQUIREMENTS_END}\n"
    import base64
    import gzip
    packed = base64.encodebytes(gzip.compress(body.encode("utf-8"), mtime=0)).decode("ascii")
    unpack = q("import sys, zlib, binascii; sys.stdout.buffer.write(zlib.decompress("
               "binascii.a2b_base64(sys.stdin.buffer.read()), 31))")
    return f"{q(python)} -I -S -c {unpack} > {target} <<'{REQUIREMENTS_END}' || exit 1\n{packed}{REQUIREMENTS_END}\n"


def find_uv(uv: Optional[str]) -> str:
    """Shell that sets ``_uv`` to the uv executable on the host (empty when there is none): ``uv`` as configured
    (a path, ``~/...``, or a command name looked up on PATH), else ``uv`` on PATH, ~/.local/bin, ~/.cargo/bin."""
    if uv is None:
        places = ('"$(command -v uv 2>/dev/null)"',) + UV_PLACES
    elif uv.startswith("~/"):
        places = (f'"$HOME"/{q(uv[2:])}',)
    elif "/" in uv:
        places = (q(uv),)
    else:
        places = (f'"$(command -v {q(uv)} 2>/dev/null)"',)
    return (f"_uv=; for _c in {' '.join(places)}; do "
            'if [ -n "$_c" ] && [ -f "$_c" ] && [ -x "$_c" ]; then _uv=$_c; break; fi; done\n')


# The pip options `uv pip install` takes the same way; any other (--timeout, --retries, --prefer-binary...) is
# pip's own, and uv refuses it.
UV_OPTIONS = ("-i", "--index-url", "--extra-index-url", "-f", "--find-links", "--no-index", "--only-binary",
              "--no-binary", "--no-build-isolation", "--require-hashes", "--no-deps", "--upgrade", "-U")


def uv_takes(pip_args: Sequence[str]) -> bool:
    """Whether ``uv pip install`` accepts every option of ``pip_args`` (``auto`` then may use uv)."""
    return all(not arg.startswith("-") or arg.split("=", 1)[0] in UV_OPTIONS for arg in pip_args)


def venv_lines(python: str, req: str, pip_args: Sequence[str], install_timeout: float, installer: str = "auto",
               uv: Optional[str] = None, wheelhouse: Optional[str] = None) -> str:
    """Shell that gives the build its venv: reused while its key (requirements digest + Python) is unchanged, else
    made and filled by uv or pip, as ``installer`` says (``auto``: uv when the host has it, else pip).

    ``wheelhouse`` (a venv key, ``wheels: ship``): filled with ``--no-index`` from the shipped
    ``wheelhouses/<key>`` only (no ``pip wheel``, no ``pip_args``: the host never reaches an index).

    Sets ``_inst`` (``uv`` or ``pip``: what made the venv, kept in its ``.releasetui-complete`` marker) and
    prints ``INSTALLER<TAB>uv|pip``.  ``installer: uv`` on a host without uv fails its prepare in one line;
    ``auto`` with ``pip_args`` only pip takes (:func:`uv_takes`) is pip, so a config that worked stays working.
    """
    if installer not in ("auto", "uv", "pip"):
        raise ValueError(f"installer must be auto, uv or pip, not {installer!r}")
    if installer == "auto" and not wheelhouse and not uv_takes(pip_args):
        installer = "pip"
    extra = " ".join(q(a) for a in pip_args)
    pip_timeout = int(max(30, install_timeout - 30))
    where = f"uv: {uv}" if uv else "uv on PATH, ~/.local/bin/uv, ~/.cargo/bin/uv"
    missing = q(f"installer is uv, but this host has no uv (looked for {where})")
    choose = {"pip": "_inst=pip\n",
              "auto": find_uv(uv) + 'if [ -n "$_uv" ]; then _inst=uv; else _inst=pip; fi\n',
              "uv": find_uv(uv) + f'if [ -z "$_uv" ]; then end failed {missing}; printf \'%s\\n\' {missing} >&2; '
                                  'exit 1; fi\n_inst=uv\n'}
    fail = 'cat "$_log" >&2; rm -rf -- "$V"; exit 1'
    # Where pip and uv install from: the host's own wheel cache (filled by `pip wheel` there), or the shipped wheelhouse.
    wheel_dir = "wheelhouses/" + check_venv_key(wheelhouse) if wheelhouse else "wheels"
    if wheelhouse:
        fill = f'[ -d "$_wh" ] || {{ end failed "the wheelhouse $_wh is missing"; {fail}; }}\n'
        uv_source = f'--no-index --find-links "$_wh" -r {q(req)}'
    else:
        fill = (f'if ! timeout -k 10 {pip_timeout} "$@" wheel -q --disable-pip-version-check --wheel-dir "$_wh" '
                f'--find-links "$_wh" -r {q(req)} {extra} >"$_log" 2>&1 </dev/null; then\n'
                f'      end failed "pip wheel: $(tail -n 3 "$_log")"; {fail}\n    fi\n')
        uv_source = f'--find-links "$_wh" -r {q(req)} {extra}'
    return f"""begin venv
if [ -f "$V/.releasetui-complete" ]; then
  case "$(head -c 8 "$V/.releasetui-complete")" in uv*) _inst=uv ;; *) _inst=pip ;; esac
  end ok "reused $V (made by $_inst)"
else
  rm -rf -- "$V"
  [ -n "${{_log:-}}" ] || _log=$(mktemp) || exit 1
  _wh={q(wheel_dir)}
  {choose[installer]}  if [ "$_inst" = uv ]; then
    _made="uv $("$_uv" --version 2>/dev/null </dev/null | sed -n '1s/^uv \\([^ ]*\\).*/\\1/p')"
    if ! "$_uv" venv -q --no-project --no-python-downloads --python {q(python)} "$V" >"$_log" 2>&1 </dev/null; then
      end failed "uv venv: $(tail -n 3 "$_log")"; {fail}
    fi
    # Its cache beside the venvs: on their filesystem (uv hard-links from it), writable without a home directory.
    {fill + "    " if wheelhouse else ""}if ! timeout -k 10 {pip_timeout} "$_uv" pip install -q --cache-dir wheels/uv-cache --python "$V/bin/python" {uv_source} >"$_log" 2>&1 </dev/null; then
      end failed "uv pip install: $(tail -n 3 "$_log")"; {fail}
    fi
  else
    _made=pip
    # The host's own pip, pointed at a pip-less venv (pip >= 22.3), saves ensurepip's ~5 s per new venv.
    if {q(python)} -m pip --help 2>/dev/null </dev/null | grep -q -- '--python <python>'; then
      _venv_args=--without-pip; set -- {q(python)} -m pip --python "$V/bin/python"
    else
      _venv_args=; set -- "$V/bin/python" -m pip
    fi
    if ! {q(python)} -m venv $_venv_args "$V" >"$_log" 2>&1 </dev/null; then end failed "venv: $(tail -n 3 "$_log")"; cat "$_log" >&2; exit 1; fi
    {fill}    if ! timeout -k 10 {pip_timeout} "$@" install -q --disable-pip-version-check --no-index --find-links "$_wh" -r {q(req)} >"$_log" 2>&1 </dev/null; then
      end failed "pip install: $(tail -n 3 "$_log")"; {fail}
    fi
  fi
  printf '%s\\n' "$_inst" > "$V/.releasetui-complete" || exit 1
  end ok "built $V with $_made{' from the shipped ' + wheel_dir if wheelhouse else ''}"
fi
printf 'INSTALLER\\t%s\\n' "$_inst"
"""


__all__ = ["INSTALLER_SLOT", "REQUIREMENTS_END", "REQUIREMENTS_PLAIN_BYTES", "UV_OPTIONS", "find_uv",
           "installer_meta_word", "requirements_lines", "uv_takes", "venv_lines"]
