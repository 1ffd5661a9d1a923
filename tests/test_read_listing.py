"""The read script's listing of builds, run by a real ``sh`` on a root on disk: what it says about each build, and
that an ordinary build costs it no process (a host keeps several builds; every fork is CPU on every host)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from releasetui import commands
from releasetui.metadata import META_FILE

VENV = "0123456789abcdef-py3.11"
PLAIN = re.compile(r"[A-Za-z0-9 ./:,_=+@%()>-]{0,400}")


def expected_link(build: Path) -> str:
    """What the listing said before: the link's text; anything but a plain ../../venvs/ link cut and cleaned."""
    env = build / "env"
    if not env.is_symlink():
        return ""
    text = os.readlink(env).rstrip("\n")
    if text.startswith("../../venvs/") and PLAIN.fullmatch(text):
        return text
    return re.sub(r"[\x00-\x1f]", "", text.encode()[:200].decode("utf-8", "replace"))


def expected_meta(build: Path) -> str:
    path = build / META_FILE
    if not path.is_file():
        return ""
    return bytes(b for b in path.read_bytes()[:65536] if b > 31).decode("utf-8", "replace")


def make_builds(root: Path) -> None:
    """Ordinary builds and every odd case the listing must still report as it did."""
    (root / "venvs" / VENV).mkdir(parents=True)
    metas = {
        "20260101000001": '{"id": "20260101000001", "complete": true}\n',
        "20260101000002": '{"id": "20260101000002"}',                      # no newline at the end
        "20260101000003": "",                                              # empty
        "20260101000004": '{"a": 1}\n{"b": 2}\n',                          # two lines: joined
        "20260101000005": '{"a": "tab\there", "c": "\x01"}\n',             # control characters: removed
        "20260101000006": '{"big": "' + "x" * 70_000 + '"}\n',             # over the read limit
        "20260101000007": '{"who": "Jos\u00e9"}\n',                         # not ASCII
        "20260101000008": '{"a": 1}\n\n',                                  # an empty second line
        "20260101000009": '{"mid": "1000 bytes' + "y" * 5000 + '"}\n',    # over the shell's own read
        "20260101000010": "{}\n",
    }
    links = {
        "20260101000001": f"../../venvs/{VENV}",
        "20260101000002": f"../../venvs/{VENV}",
        "20260101000004": "../../venvs/bad\nname",                         # a newline in the link text
        "20260101000005": "/somewhere/else",
        "20260101000007": f"../../venvs/{VENV}/",
        "20260101000009": f"../../venvs/{VENV}",
        "20260101000010": f"../../venvs/{VENV}",
    }
    for build, meta in metas.items():
        path = root / "builds" / build
        path.mkdir(parents=True)
        (path / META_FILE).write_bytes(meta.encode())
        if build in links:
            (path / "env").symlink_to(links[build])
    (root / "builds" / "20260101000003" / "env").mkdir()                  # env a directory, not a link
    (root / "builds" / "20260101000011").mkdir()                          # no metadata, no env
    (root / "builds" / "not-a-build").mkdir()


def listing(root: Path, path_dir: Path = None) -> tuple[dict, str]:
    env = dict(os.environ)
    if path_dir is not None:
        env["PATH"] = f"{path_dir}:{env['PATH']}"
    out = subprocess.run(["sh", "-c", commands.read_script(str(root))], capture_output=True, text=True, env=env,
                         timeout=60).stdout
    builds = {}
    for line in out.splitlines():
        if line.startswith("BUILD\t"):
            fields = line.split("\t")
            builds[fields[1]] = ("\t".join(fields[2:3]), "\t".join(fields[3:]))
    return builds, out


def test_each_build_is_reported_as_before(tmp_path):
    root = tmp_path / "root"
    make_builds(root)
    builds, out = listing(root)
    wanted = {b.name: (expected_link(b), expected_meta(b)) for b in sorted((root / "builds").iterdir())
              if b.name.isdigit()}
    assert builds == wanted, out


def test_the_same_when_links_cannot_be_read_in_one_go(tmp_path):
    """Only newline-free links: the one readlink pairs each line with its link."""
    root = tmp_path / "root"
    make_builds(root)
    (root / "builds" / "20260101000004" / "env").unlink()
    (root / "builds" / "20260101000004" / "env").symlink_to("../../venvs/other")
    builds, out = listing(root)
    assert builds["20260101000004"][0] == "../../venvs/other"
    assert builds["20260101000005"][0] == "/somewhere/else" and builds["20260101000001"][0] == f"../../venvs/{VENV}"


def test_ordinary_builds_cost_no_process_each(tmp_path):
    """Eight ordinary builds: one readlink for all their links, no head or tr for any of their metadata."""
    root = tmp_path / "root"
    (root / "venvs" / VENV).mkdir(parents=True)
    for n in range(8):
        build = root / "builds" / f"2026010100000{n}"
        build.mkdir(parents=True)
        (build / "env").symlink_to(f"../../venvs/{VENV}")
        (build / META_FILE).write_text(f'{{"id": "2026010100000{n}", "complete": true}}\n')
    (root / "current").symlink_to("builds/20260101000007")
    shims, log = tmp_path / "shims", tmp_path / "calls"
    shims.mkdir()
    for tool in ("head", "tr", "readlink"):
        real = subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True, text=True).stdout.strip()
        (shims / tool).write_text(f'#!/bin/sh\necho {tool} >> {log}\nexec {real} "$@"\n')
        (shims / tool).chmod(0o755)
    builds, out = listing(root, shims)
    assert len(builds) == 8 and all(link == f"../../venvs/{VENV}" for link, _ in builds.values()), out
    calls = log.read_text().split()
    assert calls.count("readlink") <= 2 and "head" not in calls and "tr" not in calls, calls  # current + all envs


def test_a_metadata_file_that_is_a_symlink_to_a_huge_file_is_read_only_up_to_the_limit(tmp_path):
    root = tmp_path / "root"
    build = root / "builds" / "20260101000001"
    build.mkdir(parents=True)
    huge = tmp_path / "huge"
    huge.write_bytes(b"x" * 3_000_000)                 # no newline: `read` would take it all, byte by byte
    (build / META_FILE).symlink_to(huge)
    builds, out = listing(root)
    assert builds["20260101000001"][1] == "x" * 65536  # cut at the limit, as any large metadata is
    assert len(out) < 70_000
