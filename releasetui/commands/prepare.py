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
                   refuse_linked_layout, timed, write_meta)

# Runs on the host with its own Python (3.6 or newer, run with -I -S: only the standard library, no user
# site or environment, and ~10 ms less start-up per host), reading the stream on stdin.  Prints
# NEED<TAB>path for files it could not link (the caller sends them in a second stream) and
# SHIPPED<TAB>received<TAB>linked<TAB>bytes when the build's files are all in place, then (on stderr, for the
# step line, so the shell needs no awk) the same in words.
#
# Every host pays its start on every deploy, so it imports only what is built into the interpreter or cheap to
# load: zlib instead of gzip, the C JSON scanner and encoder instead of json (which imports re: ~6 ms), the
# built-in SHA-256 instead of hashlib (which loads OpenSSL: ~2 ms; hashlib only for large files, where OpenSSL is
# faster), and its own reader of the tar stream (manifest.py writes it with tarfile; tarfile's import alone costs
# ~8 ms).  The reader takes what tarfile writes in PAX format (ustar headers, "x" records for long or non-ASCII
# names) and refuses everything else.
SHIP_PY = r"""
import os, stat, sys, zlib
try:
    import _json
    class _Ctx(object):
        strict, object_hook, object_pairs_hook, parse_float, parse_int, parse_constant = True, None, None, float, int, float
        memo = {}
    _scan = _json.make_scanner(_Ctx())
    def _fail(*args):
        raise TypeError("not JSON")
    _encode = _json.make_encoder(None, _fail, _json.encode_basestring_ascii, None, ": ", ", ", True, False, True)
    _compact = _json.make_encoder(None, _fail, _json.encode_basestring_ascii, None, ":", ",", True, False, True)
    def loads(text):
        try:
            value, end = _scan(text, 0)
        except StopIteration:
            raise ValueError("not JSON")
        if text[end:].strip():
            raise ValueError("extra data after the JSON")
        return value
    def dumps(value, compact=False):
        return "".join((_compact if compact else _encode)(value, 0))
except (ImportError, AttributeError, TypeError):  # not CPython: the json module does the same
    import json
    loads = json.loads
    def dumps(value, compact=False):
        return json.dumps(value, sort_keys=True, separators=(",", ":") if compact else None)
try:
    from _sha256 import sha256 as _small_sha
except ImportError:
    try:
        from _sha2 import sha256 as _small_sha
    except ImportError:
        _small_sha = None
def sha256(size=0):
    if _small_sha is not None and size < (1 << 20):
        return _small_sha()
    import hashlib
    return hashlib.sha256()
def _hex(data):
    digest = sha256(len(data))
    digest.update(data)
    return digest.hexdigest()
dest, resume = sys.argv[1], sys.argv[2] == "1"
source = sys.stdin.buffer
if sys.argv[3:4] == ["b64"]:  # the stream came inside the script (a here-document), base64'd
    import binascii, io
    source = io.BytesIO(binascii.a2b_base64(source.read()))
if sys.argv[3:4] and sys.argv[3].startswith("env="):
    # The app's env file comes first, on one line (never in the script: a command line is visible in ps);
    # written 0600 under envs/<digest>, atomically, after checking it is the file meant.
    digest, env_line = sys.argv[3][4:], source.readline()
    try:
        text = loads(env_line.decode("utf-8"))["content"].encode("utf-8")
    except (ValueError, TypeError, KeyError, AttributeError):
        text = None
    if text is None or len(digest) != 16 or _hex(text)[:16] != digest or os.path.islink("envs"):
        sys.stderr.write("the env file did not arrive whole\n")
        sys.exit(1)
    os.makedirs("envs", 0o700, exist_ok=True)
    tmp = os.path.join("envs", ".%s.%d" % (digest, os.getpid()))
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
        out.write(text)
    os.rename(tmp, os.path.join("envs", digest))
# RECEIVE_WHEELS

class Unzip(object):
    # The gzip'd rest of the stdin, inflated as it is read (at most 1 MiB ahead: a bomb stays small).
    def __init__(self, raw):
        self.raw, self.z, self.buf, self.pos = raw, zlib.decompressobj(31), b"", 0
    def fill(self, need):
        parts, have = [self.buf[self.pos:]], len(self.buf) - self.pos
        while have < need and not self.z.eof:
            data = self.z.unconsumed_tail or self.raw.read(1 << 16)
            if not data:
                break
            out = self.z.decompress(data, 1 << 20)
            parts.append(out)
            have += len(out)
        self.buf, self.pos = b"".join(parts), 0
    def read(self, n):
        if len(self.buf) - self.pos < n:
            self.fill(n)
        out = self.buf[self.pos:self.pos + n]
        self.pos += len(out)
        return out
    def readline(self):
        while True:
            end = self.buf.find(b"\n", self.pos)
            if end >= 0 or self.z.eof:
                break
            before = len(self.buf) - self.pos
            self.fill(before + (1 << 16))
            if len(self.buf) - self.pos == before:
                break
        return self.read(end + 1 - self.pos if end >= 0 else len(self.buf) - self.pos)

def exact(n):
    data = stream.read(n)
    if len(data) != n:
        sys.exit("the stream ended early")
    return data

def number(field):
    if field[:1] in (b"\x80", b"\xff"):  # base-256, for sizes octal cannot hold
        value = int.from_bytes(field[1:], "big")
        return value - (1 << (8 * len(field) - 8)) if field[:1] == b"\xff" else value
    text = field.replace(b"\x00", b" ").strip()
    return int(text, 8) if text else 0

def text_of(field):
    return field.split(b"\x00", 1)[0].decode("utf-8", "surrogateescape")

def members():
    # (name, kind, size, link target) of each member; the caller reads its size bytes (members() skips the padding).
    extended = {}
    while True:
        block = stream.read(512)
        if not block or block == bytes(512):
            return
        if len(block) < 512:
            sys.exit("the stream ended early")
        try:
            checksum = number(block[148:156])
        except ValueError:
            checksum = -1
        if checksum not in (sum(block[:148]) + 256 + sum(block[156:]),):
            sys.exit("the stream is damaged (a tar header's checksum)")
        kind, size = block[156:157], number(block[124:136])
        name, link = text_of(block[:100]), text_of(block[157:257])
        if block[257:263] == b"ustar\x00" and block[345:500].strip(b"\x00"):
            name = text_of(block[345:500]) + "/" + name
        if kind in (b"x", b"g", b"L", b"K"):  # metadata about the next member (or all: "g", ignored)
            data = exact(size)
            exact(-size % 512)
            if kind == b"L":
                extended["path"] = text_of(data)
            elif kind == b"K":
                extended["linkpath"] = text_of(data)
            elif kind == b"x":
                at = 0
                while at < len(data):
                    space = data.index(b" ", at)
                    length = int(data[at:space])
                    key, _, value = data[space + 1:at + length - 1].partition(b"=")
                    extended[key.decode("ascii", "replace")] = value.decode("utf-8", "surrogateescape")
                    at += length
            continue
        name = extended.get("path", name)
        link = extended.get("linkpath", link)
        if "size" in extended:
            size = int(extended["size"])
        extended = {}
        kind = "f" if kind in (b"0", b"\x00", b"7") else "l" if kind == b"2" else "?"
        if kind == "l":
            size = 0
        yield name, kind, size, link
        exact(-size % 512)

stream = Unzip(source)
header = loads(stream.readline().decode("utf-8"))
sent, link_from = set(header["sent"]), header["link_from"]
old = {}
if link_from:
    try:
        mpath = os.path.join(link_from, ".releasetui-manifest.json")
        if stat.S_ISREG(os.lstat(mpath).st_mode):  # never open a FIFO planted there
            with open(mpath, "rb") as handle:
                old = loads(handle.read().decode("utf-8")).get("files", {})
    except (OSError, ValueError, AttributeError, UnicodeDecodeError):
        old = {}
if "files" in header:
    files = header["files"]
else:
    # Only what differs from the build we link from: rebuild the manifest, and prove it is the one intended.
    base = header["base"]
    try:
        removed = set(base["removed"])
        files = {p: list(e[:5]) for p, e in old.items() if p not in removed}
    except (TypeError, AttributeError):
        files = {}
    files.update(base["changed"])
    if _hex(dumps(files, True).encode("utf-8")) != base["digest"]:
        print("FULLMANIFEST")
        sys.exit(4)

def safe(path):
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        sys.exit("refusing unsafe path %r" % path)
    parent = "/".join(parts[:-1])
    if parent and files.get(parent, [None])[0] != "d":
        sys.exit("refusing %r: its parent is not a directory of the build" % path)
    return os.path.join(dest, path)

def sha_of(path, size):
    digest = sha256(size)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()

if not resume:
    os.mkdir(dest, 0o755)
for path in sorted(p for p, e in files.items() if e[0] == "d"):
    target = safe(path)
    if not os.path.isdir(target):
        os.mkdir(target, 0o700)
received = nbytes = 0
arrived = set()
for name, kind, size, link in members():
    entry = files.get(name)
    if entry is None or name not in sent:
        sys.exit("refusing %r: not in the manifest" % name)
    target = safe(name)
    if os.path.lexists(target):
        os.unlink(target)
    if entry[0] == "l" and kind == "l":
        os.symlink(entry[4], target)
    elif entry[0] == "f" and kind == "f":
        digest, left = sha256(size), size
        with open(target, "wb") as out:
            while left:
                chunk = exact(min(left, 1 << 20))
                digest.update(chunk)
                out.write(chunk)
                left -= len(chunk)
        nbytes += size
        if digest.hexdigest() != entry[2]:
            sys.exit("%s arrived damaged (checksum mismatch)" % name)
        os.chmod(target, entry[1])
    else:
        sys.exit("refusing %r: not what the manifest says it is" % name)
    received += 1
    arrived.add(name)
if arrived != sent:
    sys.exit("the stream ended early: %d of %d files arrived" % (len(arrived), len(sent)))
need, linked, seen = [], 0, {}
for path, entry in sorted(files.items()):
    if entry[0] != "f" or path in sent:
        continue
    target = safe(path)
    if resume and os.path.lexists(target):  # a fresh build holds only what just arrived
        continue
    source = os.path.join(link_from, path) if link_from else None
    ok = False
    if source:
        try:
            info = os.lstat(source)
        except OSError:
            info = None
        if info is not None and stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == entry[1] and info.st_size == entry[3]:
            mine = old.get(path) or []
            # Unchanged since it was written (same inode and mtime as recorded) -> the recorded hash holds.
            if len(mine) >= 7 and mine[2] == entry[2] and mine[5] == info.st_ino and mine[6] == info.st_mtime_ns:
                ok = True
            else:
                ok = sha_of(source, info.st_size) == entry[2]
    if ok:
        os.link(source, target)
        seen[path] = info  # a hard link: the same inode, and linking changes no mtime
        linked += 1
    else:
        need.append(path)
if need:
    for path in need:
        print("NEED\t" + path)
    sys.exit(3)
record = {}
for path, entry in files.items():
    info = seen.get(path) or os.lstat(safe(path))
    record[path] = list(entry[:5]) + [info.st_ino, info.st_mtime_ns]
for path in sorted((p for p, e in files.items() if e[0] == "d"), reverse=True):
    os.chmod(safe(path), files[path][1])
with open(os.path.join(dest, ".releasetui-manifest.json"), "w") as handle:
    handle.write(dumps({"format": 1, "files": record}))
print("SHIPPED\t%d\t%d\t%d" % (received, linked, nbytes))
sys.stdout.flush()
sys.stderr.write("received %d files (%d bytes), linked %d unchanged\n" % (received, nbytes, linked))
"""
# Put in SHIP_PY's place of ``# RECEIVE_WHEELS`` when the wheelhouse comes with the build (``wheels: ship``): it
# follows the env file's line on stdin as one JSON line ({"wheels": [[name, size, sha256], ...]}) and the files'
# bytes one after another.  Written under a hidden name, checked, then renamed to wheelhouses/<key> whole.
WHEELS_PY = r'''
import shutil
key, allowed = KEY, set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._+!-")
if os.path.islink("wheelhouses"):
    sys.stderr.write("wheelhouses is a symlink: refused\n")
    sys.exit(1)
os.makedirs("wheelhouses", 0o755, exist_ok=True)
for name in os.listdir("wheelhouses"):
    if name.startswith("." + key + "."):  # left by a deploy killed while it received this wheelhouse
        shutil.rmtree(os.path.join("wheelhouses", name), ignore_errors=True)
tmp = os.path.join("wheelhouses", ".%s.%d" % (key, os.getpid()))
os.mkdir(tmp, 0o755)
count = nwheel = 0
for name, length, sha in loads(source.readline(1 << 20).decode("utf-8"))["wheels"]:
    if not (isinstance(name, str) and name.endswith(".whl") and not name.startswith(".") and set(name) <= allowed
            and isinstance(length, int) and length >= 0):
        sys.stderr.write("refusing wheel %r\n" % (name,))
        sys.exit(1)
    digest, left = sha256(length), length
    with open(os.path.join(tmp, name), "xb") as out:
        while left:
            chunk = source.read(min(left, 1 << 20))
            if not chunk:
                sys.stderr.write("the wheelhouse did not arrive whole\n")
                sys.exit(1)
            digest.update(chunk)
            out.write(chunk)
            left -= len(chunk)
    if digest.hexdigest() != sha:
        sys.stderr.write("%s arrived damaged (checksum mismatch)\n" % name)
        sys.exit(1)
    count, nwheel = count + 1, nwheel + length
final = os.path.join("wheelhouses", key)
if os.path.isdir(final) and not os.path.islink(final):
    shutil.rmtree(final)
os.rename(tmp, final)
print("WHEELHOUSE\t%s\t%d\t%d" % (key, count, nwheel))
'''


def ship_py(wheelhouse: Optional[str] = None) -> str:
    """The ship helper; with ``wheelhouse`` (a venv key) it first receives that wheelhouse from stdin."""
    if wheelhouse is None:
        return SHIP_PY
    return SHIP_PY.replace("# RECEIVE_WHEELS\n", WHEELS_PY.replace("KEY", repr(check_venv_key(wheelhouse)), 1))


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
{write_meta("B", meta_complete, _meta_word(meta_complete))} || exit 1
echo COMPLETE
"""


REQUIREMENTS_END = "RELEASETUI_REQUIREMENTS_END"
# Where the complete metadata says which installer made the build's venv (the script knows, the caller does not).
INSTALLER_SLOT = "@releasetui-installer@"
UV_PLACES = ('"$HOME/.local/bin/uv"', '"$HOME/.cargo/bin/uv"')


def _meta_word(meta_complete: str) -> Optional[str]:
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


__all__ = ["EXEC_REQUEST_LIMIT", "INLINE_PAYLOAD_LIMIT", "INSTALLER_SLOT", "SHIP_PY", "WHEELS_PY", "find_uv", "fits_one_packet",
           "inline_payload", "prepare_script", "parse_prepare", "requirements_lines", "shared_links", "ship_py", "timed",
           "venv_lines"]
