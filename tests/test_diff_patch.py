"""``diff -p``: each changed file's unified diff, read on one host of each group and here, capped and safe for a
terminal; never a file outside its build."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from releasetui.commands import contents_script, parse_contents
from releasetui.diffing import file_patch

from .support.helpers import deploy_ok


@pytest.mark.ssh
def test_diff_p_shows_what_changed_inside_each_file_over_ssh(ssh_project):
    p = ssh_project
    (p.source / "logo.bin").write_bytes(b"\x89PNG\0\1\2")
    v1 = deploy_ok(p)
    p.write_app("v2")
    (p.source / "logo.bin").write_bytes(b"\x89PNG\0\3\4")
    (p.source / "new.txt").write_text("hello\n\x1b[2Jnot a terminal command\n")
    proc = p.cli("--headless", "diff", "-p")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = proc.stdout
    assert "  --- a/app.py" in text and "  -VERSION = 'v1'" in text and "  +VERSION = 'v2'" in text
    assert "  +++ b/new.txt" in text and "  +hello" in text and "\x1b" not in text and "?[2J" in text
    assert "  --- a/logo.bin" in text and "  Binary files differ" in text
    doc = json.loads(p.cli("--headless", "diff", "-p", "--json").stdout)
    [group] = doc["groups"]
    assert group["hosts"] == ["web1", "web2"] and "+VERSION = 'v2'" in group["patches"]["app.py"]
    v2 = deploy_ok(p)
    between = p.cli("--headless", "diff", "-p", v1, v2).stdout
    assert "  +VERSION = 'v2'" in between, between


def test_only_files_inside_their_build_are_read(tmp_path):
    root = tmp_path / "root"
    build = root / "builds" / "20300101000000"
    build.mkdir(parents=True)
    (build / "app.py").write_text("print(1)\n")
    (tmp_path / "secret.txt").write_text("outside\n")
    os.symlink(tmp_path / "secret.txt", build / "escape.txt")
    script = contents_script(str(root), [("20300101000000", "app.py"), ("20300101000000", "escape.txt"),
                                         ("20300101000000", "gone.py")])
    found = parse_contents(subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout)
    assert found[("20300101000000", "app.py")] == (9, b"print(1)\n")
    assert found[("20300101000000", "escape.txt")] == (-1, b"") and found[("20300101000000", "gone.py")] == (-1, b"")
    with pytest.raises(ValueError):
        contents_script(str(root), [("20300101000000", "../../etc/passwd")])


def test_a_long_diff_is_cut_and_says_so():
    old = (10, b"".join(b"line %d\n" % i for i in range(1000)))
    new = (0, b"")
    lines = file_patch("big.txt", (len(old[1]), old[1]), new, limit=20)
    assert lines[:2] == ["--- a/big.txt", "+++ b/big.txt"] and len(lines) == 23
    assert lines[-1] == "... 981 more lines of this diff not shown"
    assert file_patch("x", None, (5, b"abc\n"))[-1] == "... (only the first part of a large file was compared)"
