"""The ship helper's own reader of the shipping stream (gzip'd header line + tar), run by a real interpreter.

The helper runs on every host on every deploy, so it reads the tar that
``manifest.py`` writes (tarfile, PAX format) without importing tarfile, gzip,
json or hashlib; these tests hold it to what tarfile's reader did: every kind
of member the client writes arrives as the manifest says, anything else is
refused in one line, never with a traceback.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

from releasetui.commands import SHIP_PY
from releasetui.manifest import Manifest

LONG = "deep/" + "d" * 120 + "/file-with-a-name-longer-than-a-ustar-header-holds.txt"


def ship(root: Path, stream: bytes, build: str = "B", *flags: str) -> subprocess.CompletedProcess:
    """The helper as the prepare script runs it, in ``root`` (which holds ``builds/``)."""
    (root / "builds").mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-I", "-S", "-W", "ignore", *flags, "-c", SHIP_PY, f"builds/{build}", "0"],
                          cwd=root, input=stream, capture_output=True, timeout=60)


def make_app(app: Path) -> None:
    """Every kind of entry a build holds: modes, an empty file, a symlink, a long and a non-ASCII path."""
    (app / "bin").mkdir(parents=True)
    (app / "bin" / "run").write_text("#!/bin/sh\necho run\n")
    (app / "bin" / "run").chmod(0o755)
    (app / "secret.cfg").write_text("only me\n")
    (app / "secret.cfg").chmod(0o600)
    (app / "empty").write_bytes(b"")
    (app / "link").symlink_to("bin/run")
    (app / "café.txt").write_text("non-ASCII name\n")
    (app / LONG).parent.mkdir(parents=True)
    (app / LONG).write_bytes(os.urandom(70_000))


def payload(manifest: Manifest, paths=None) -> bytes:
    return b"".join(manifest.payload(manifest.to_send(None) if paths is None else paths, None).chunks())


def test_every_kind_of_member_arrives_as_its_manifest_says(tmp_path):
    app = tmp_path / "app"
    make_app(app)
    manifest = Manifest.of(app, git=False)
    proc = ship(tmp_path, payload(manifest))
    assert proc.returncode == 0, proc.stderr
    build = tmp_path / "builds" / "B"
    for path, entry in manifest.files.items():
        info = os.lstat(build / path)
        if entry[0] == "l":
            assert stat.S_ISLNK(info.st_mode) and os.readlink(build / path) == entry[4]
        elif entry[0] == "f":
            assert (build / path).read_bytes() == (app / path).read_bytes()
            assert stat.S_IMODE(info.st_mode) == entry[1], path
        else:
            assert stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) == entry[1]
    text = (build / ".releasetui-manifest.json").read_text()
    written = json.loads(text)
    assert text == json.dumps(written, sort_keys=True), "written as the json module writes it"
    assert {path: entry[:5] for path, entry in written["files"].items()} == manifest.files
    assert f"SHIPPED\t{manifest.file_count()}\t0\t".encode() in proc.stdout


def test_it_starts_without_the_heavy_modules(tmp_path):
    """tarfile, gzip, json (re) and hashlib (OpenSSL) cost ~13 ms of every host's start on every deploy."""
    app = tmp_path / "app"
    make_app(app)
    proc = ship(tmp_path, payload(Manifest.of(app, git=False)), "B", "-X", "importtime")
    assert proc.returncode == 0, proc.stderr
    imported = {line.split("|")[-1].strip() for line in proc.stderr.decode().splitlines() if "|" in line}
    assert not imported & {"tarfile", "gzip", "json", "re", "hashlib", "shutil"}, imported


def raw_stream(header: dict, tar_bytes: bytes) -> bytes:
    return gzip.compress(json.dumps(header).encode() + b"\n" + tar_bytes)


def one_member(info: tarfile.TarInfo, data: bytes = b"") -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(data) if data else None)
    return out.getvalue()


def file_header(name: str, data: bytes) -> dict:
    return {"files": {name: ["f", 0o644, hashlib.sha256(data).hexdigest(), len(data), None]}, "sent": [name],
            "link_from": None}


def test_a_cut_stream_fails_in_one_line(tmp_path):
    app = tmp_path / "app"
    make_app(app)
    whole = payload(Manifest.of(app, git=False))
    for n, cut in enumerate((len(whole) // 3, len(whole) // 2)):
        proc = ship(tmp_path, whole[:cut], f"cut{n}")
        assert proc.returncode not in (0, 3, 4) and b"Traceback" not in proc.stderr, proc.stderr
        assert b"ended early" in proc.stderr, proc.stderr
    info = tarfile.TarInfo("a.txt")
    info.size = 4
    tar = one_member(info, b"data")
    proc = ship(tmp_path, raw_stream(file_header("a.txt", b"data"), tar[:512 + 2]), "short")
    assert proc.returncode == 1 and b"ended early" in proc.stderr and b"Traceback" not in proc.stderr


def test_a_damaged_header_or_a_member_of_another_kind_is_refused(tmp_path):
    info = tarfile.TarInfo("a.txt")
    info.size = 4
    tar = bytearray(one_member(info, b"data"))
    tar[140] ^= 1  # inside the mtime: only the header's checksum can tell
    proc = ship(tmp_path, raw_stream(file_header("a.txt", b"data"), bytes(tar)), "damaged")
    assert proc.returncode == 1 and b"checksum" in proc.stderr and b"Traceback" not in proc.stderr, proc.stderr
    for kind in (tarfile.LNKTYPE, tarfile.DIRTYPE, tarfile.FIFOTYPE):
        info = tarfile.TarInfo("a.txt")
        info.type, info.linkname = kind, "other"
        proc = ship(tmp_path, raw_stream(file_header("a.txt", b"data"), one_member(info)), f"kind{kind.decode()}")
        assert proc.returncode == 1 and b"refusing 'a.txt" in proc.stderr, (kind, proc.stderr)
        assert not (tmp_path / "builds" / f"kind{kind.decode()}" / "a.txt").exists()


def test_a_path_escaping_the_build_is_refused_also_through_a_long_name(tmp_path):
    evil = "../" * 40 + "evil"  # longer than a ustar name: it arrives in a PAX record
    info = tarfile.TarInfo(evil)
    info.size = 4
    proc = ship(tmp_path, raw_stream(file_header(evil, b"evil"), one_member(info, b"evil")))
    assert proc.returncode == 1 and b"refusing" in proc.stderr
    assert not (tmp_path / "evil").exists() and not (tmp_path / "builds" / "evil").exists()
    # Under a symlink of the build: its parent is not a directory of the build.
    outside = tmp_path / "outside"
    outside.mkdir()
    header = {"files": {"l": ["l", 0o777, None, 0, str(outside)], "l/x": ["f", 0o644, hashlib.sha256(b"x").hexdigest(), 1,
                                                                    None]}, "sent": ["l", "l/x"], "link_from": None}
    link = tarfile.TarInfo("l")
    link.type, link.linkname = tarfile.SYMTYPE, str(outside)
    inner = tarfile.TarInfo("l/x")
    inner.size = 1
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(link)
        tar.addfile(inner, io.BytesIO(b"x"))
    proc = ship(tmp_path, raw_stream(header, out.getvalue()), "C")
    assert proc.returncode == 1 and b"parent is not a directory" in proc.stderr and not (outside / "x").exists()


def test_a_stream_that_is_not_gzip_or_whose_header_is_cut_fails_in_one_line(tmp_path):
    for name, stream in (("garbage", b"this is not gzip at all" * 10),
                         ("cut-header", gzip.compress(b'{"sent": ["a.txt'))):
        proc = ship(tmp_path, stream, name)
        assert proc.returncode == 1 and b"damaged" in proc.stderr and b"Traceback" not in proc.stderr, proc.stderr


def test_a_cut_manifest_in_the_build_linked_from_asks_for_the_whole_manifest(tmp_path):
    old = tmp_path / "builds" / "OLD"
    old.mkdir(parents=True)
    (old / ".releasetui-manifest.json").write_text('{"files": {"a.txt": ["f", 420, "ab')  # cut mid-string
    header = {"sent": [], "link_from": "builds/OLD", "base": {"removed": [], "changed": {}, "digest": "0" * 64}}
    proc = ship(tmp_path, raw_stream(header, b"\0" * 1024), "NEW")
    assert proc.returncode == 4 and b"FULLMANIFEST" in proc.stdout and b"Traceback" not in proc.stderr, proc.stderr


def test_a_pax_record_that_never_ends_is_refused_not_looped_on(tmp_path):
    info = tarfile.TarInfo("././@PaxHeader")
    info.type = tarfile.XHDTYPE
    info.size = 6
    tar = one_member(info, b"0 a=b\n")[:-1024] + one_member(tarfile.TarInfo("a.txt"))
    proc = ship(tmp_path, raw_stream(file_header("a.txt", b""), tar), "pax")
    assert proc.returncode == 1 and b"pax record" in proc.stderr and b"Traceback" not in proc.stderr, proc.stderr
