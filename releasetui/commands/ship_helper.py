"""The ship helper: the Python a deploy's prepare script runs on each host to receive the build (and, with
``wheels: ship``, its wheelhouse) from stdin.  Text only here: :mod:`.prepare` puts it in its script."""

from __future__ import annotations

from typing import Optional

from .base import check_venv_key

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
        except Exception:  # StopIteration; on Python <= 3.11 a cut string raises SystemError (json.decoder unloaded)
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
            try:
                out = self.z.decompress(data, 1 << 20)
            except zlib.error:
                sys.exit("the stream is damaged (not gzip)")
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
                    space = data.find(b" ", at)
                    length = int(data[at:space]) if space > at and data[at:space].isdigit() else 0
                    if length <= space - at + 2:  # a record shorter than its own length field: never ends
                        sys.exit("the stream is damaged (a pax record)")
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
try:
    header = loads(stream.readline().decode("utf-8"))
    sent, link_from = set(header["sent"]), header["link_from"]
except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
    sys.exit("the stream is damaged (its header)")
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


__all__ = ["SHIP_PY", "WHEELS_PY", "ship_py"]
