"""The pure remote-command builders, tested as text (and checked by a real ``sh -n``)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from releasetui import commands
from releasetui.config import HealthCheck, HostConfig
from releasetui.models import InvalidBuildId, check_build_id

NASTY_ROOT = "/srv/my app/$(touch /tmp/pwned)'`x`"
B1, B2 = "20261128101500", "20261128101500-01"


def sh_syntax_ok(script: str) -> None:
    proc = subprocess.run(["sh", "-n"], input=script, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("bad", ["", "2026", "../20261128101500", "20261128101500; rm -rf /", "20261128101500-1",
                                 "20261128101500-001", "2026112810150a", " 20261128101500", "20261128101500\n"])
def test_build_ids_are_strict(bad):
    with pytest.raises(InvalidBuildId):
        check_build_id(bad)


def test_good_build_ids():
    assert check_build_id(B1) == B1 and check_build_id(B2) == B2


def test_every_script_quotes_the_root_and_parses():
    scripts = [
        commands.state_script(NASTY_ROOT, "python3"),
        commands.prepare_script(NASTY_ROOT, '{"who": "x"}', "python3"),
        commands.release_lock_script(NASTY_ROOT, B1),
        commands.unlock_script(NASTY_ROOT, "{}"),
        commands.install_script(NASTY_ROOT, B1, "requirements.txt", "0123456789abcdef-py3.11", "python3",
                                ["--index-url", "https://x/$(id)"], '{"complete": false}', '{"complete": true}'),
        commands.activate_script(NASTY_ROOT, B2, B1, "supervisorctl restart uwsgi", "{}",
                                 health=HealthCheck(url="http://127.0.0.1:8000/", expect="ok"),
                                 failed_meta="{}", health_failed_history="{}", prune_builds=["20261128090000"],
                                 prune_venvs=["0123456789abcdef-py3.11"]),
        commands.rollback_script(NASTY_ROOT, None, "true", "{}", "me", "2026-11-28T10:00:00Z"),
        commands.rollback_script(NASTY_ROOT, B1, None, "{}", "me", "2026-11-28T10:00:00Z"),
        commands.prune_script(NASTY_ROOT, [B1], [], "{}", "{}", keep=[B2]),
        commands.logs_script(NASTY_ROOT, ["/var/log/a b.log", "log/app.log"], 10, True),
    ]
    for script in scripts:
        sh_syntax_ok(script)
        assert "cd '/srv/my app/$(touch /tmp/pwned)'\"'\"'`x`'" in script
        assert "$(touch /tmp/pwned)'`x`\n" not in script.replace("'\"'\"'", "")


def test_values_reaching_the_shell_are_quoted():
    script = commands.install_script("/srv/app", B1, "req s.txt", "0123456789abcdef-py3.11", "python3",
                                     ["--find-links", "/w h/$(id)"], '{"a": "it\'s"}', '{"complete": true}')
    assert "'--find-links' '/w h/$(id)'" in script or "--find-links '/w h/$(id)'" in script
    assert "'builds/20261128101500/req s.txt'" in script
    assert "'{\"a\": \"it'\"'\"'s\"}'" in script


def test_switch_is_atomic_rename_never_bare_ln_sfn():
    script = commands.activate_script("/srv/app", B2, B1, None, "{}")
    assert 'ln -sfn "builds/$TARGET" current.releasetui-new && mv -Tf current.releasetui-new current' in script
    assert "ln -sfn builds" not in script and "current\n" not in script.split("mv -Tf")[0].split("ln -sfn")[-1]


def test_activate_never_prunes_the_new_or_previous_build():
    script = commands.activate_script("/srv/app", B2, B1, None, "{}", prune_builds=[B1, B2, "20261128090000"])
    assert "rm -rf -- builds/20261128090000" in script
    assert f"rm -rf -- builds/{B1}" not in script and f"rm -rf -- builds/{B2}" not in script


def test_builders_refuse_bad_ids_and_keys():
    with pytest.raises(InvalidBuildId):
        commands.activate_script("/srv/app", "../../etc", None, None, "{}")
    with pytest.raises(InvalidBuildId):
        commands.prune_script("/srv/app", ["20261128090000; reboot"], [], "{}", "{}", keep=[])
    with pytest.raises(ValueError):
        commands.prune_script("/srv/app", [], ["../../../etc"], "{}", "{}", keep=[])
    with pytest.raises(InvalidBuildId):
        commands.rollback_script("/srv/app", "x", None, "{}", "me", "now")


def test_venv_key_uses_hash_and_python_minor():
    assert commands.venv_key("ab" * 32, "3.11.7") == "abababababababab-py3.11"


def test_meta_json_spelling_matches_what_scripts_grep():
    text = commands.meta_json({"complete": True, "failed": False, "git_commit": '"complete": true'})
    assert '"complete": true' in text and '"failed": false' in text
    assert "grep -q '\"complete\": true'" in commands.PREAMBLE


def test_rsync_goes_through_the_relay_and_links_to_current(tmp_path):
    host = HostConfig(name="web1", root="/var/www/app", address="10.0.0.5", user="deploy", port=2222)
    relay = ["/venv/bin/python", "-m", "releasetui.rsync_relay", "/tmp/relay dir/relay.sock"]
    argv = commands.rsync_argv(host, tmp_path, B2, B1, Path("/x/rsync_excludes"), relay)
    assert argv[:3] == ["rsync", "-rlp", "--checksum"]
    assert f"--link-dest=/var/www/app/builds/{B1}/" in argv
    assert "--exclude-from=/x/rsync_excludes" in argv
    assert "--exclude=/.git/" in argv and "--exclude=/env" in argv
    assert argv[argv.index("-e") + 1] == "/venv/bin/python -m releasetui.rsync_relay '/tmp/relay dir/relay.sock'"
    assert "--protect-args" in argv
    assert argv[-2] == f"{tmp_path}/" and argv[-1] == f"deploy@10.0.0.5:/var/www/app/builds/{B2}/"


def test_logs_script_tails_each_file_quoted():
    script = commands.logs_script("/srv/app", ["/var/log/a b.log", "rel/b.log"], 20, follow=False)
    assert "cd /srv/app ||" in script, "relative paths are under the root, and need it"
    assert "exec tail -q -n 20 -- '/var/log/a b.log' rel/b.log" in script
    assert commands.logs_script("/srv/app", ["/var/log/a.log"], 5, follow=False).startswith("cd /\n")


def test_follow_tail_ends_when_stdin_closes():
    """The caller stops a follow by closing stdin: no tail -F is left waiting on the host."""
    script = commands.logs_script("/srv/app", ["/tmp/x.log"], 5, follow=True)
    assert "tail -q -n 5 -F -- /tmp/x.log </dev/null &" in script
    assert script.rstrip().endswith('cat >/dev/null\nkill "$_tail" 2>/dev/null')


def test_rollback_candidates_sort_suffixed_ids_after_their_base():
    """builds/*/ would sort 'ID-01/' before 'ID/' ('-' < '/'); the scripts glob builds/* instead."""
    script = commands.rollback_script("/srv/app", None, None, "{}", "me", "now")
    assert "for _d in builds/*;" in script and "builds/*/;" not in script
    assert "for _d in builds/*;" in commands.state_script("/srv/app")
