"""The pure remote-script builders, tested as text (and checked by a real ``sh -n``)."""

from __future__ import annotations

import subprocess

import pytest

from releasetui import commands
from releasetui.commands import ActivateRecords, LockRequest
from releasetui.commands.activate import health_lines, sudo_noninteractive
from releasetui.config import HealthCheck, Hook
from releasetui.models import InvalidBuildId, check_build_id

NASTY_ROOT = "/srv/my app/$(touch /tmp/pwned)'`x`"
B1, B2 = "20261128101500", "20261128101500-01"
TOKEN = "0123456789abcdef"
RECORDS = ActivateRecords(history={"event": "deploy", "to": B2}, failed_meta='{"a": "it\'s"}',
                          back_meta="{}")


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


def every_script(root: str) -> list[str]:
    hook = Hook("after_activate", "echo warm $(id)", 10)
    return [
        commands.read_script(root, lock=LockRequest(TOKEN, '{"who": "x"}'), create=True, python="python3",
                             manifest=True, shared_files=[".env", "a b/c"]),
        commands.read_script(root),
        commands.prepare_script(root, TOKEN, B1, requirements="requirements.txt", venv="0123456789abcdef-py3.11",
                                python="python3", pip_args=["--index-url", "https://x/$(id)"],
                                meta_incomplete='{"complete": false}', meta_complete='{"complete": true}',
                                install_timeout=600, shared_files=[".env"], shared_dirs=["instance", "a/b"]),
        commands.activate_script(root, TOKEN, target=B2, previous=B1, restart="supervisorctl restart uwsgi",
                                 restart_timeout=30, python="python3",
                                 health=HealthCheck(url="http://127.0.0.1:8000/", expect="ok"), hooks=[hook],
                                 hook_env={"RELEASETUI_HOST": "web'1"}, records=RECORDS, verdict_timeout=600,
                                 prune_builds=["20261128090000"], prune_venvs=["0123456789abcdef-py3.11"]),
        commands.switch_back_script(root, TOKEN, target=B2, previous=B1, restart="true", restart_timeout=5,
                                    history={"event": "deploy"}, meta="{}", reason="it's \"x\"", by="Ctrl-C"),
        commands.release_script(root, TOKEN, B1),
        commands.prune_script(root, TOKEN, [B1], ["0123456789abcdef-py3.11"], {"event": "prune"}),
        commands.pin_script(root, TOKEN, B1, True, "{}"),
        commands.unlock_script(root, TOKEN, "{}"),
        commands.history_script(root, 100),
        commands.manifests_script(root, [B1, B2], "requirements.txt"),
        commands.logs_script(root, ["/var/log/a b.log", "log/app.log"], 10, True),
        commands.unmark_script(root, TOKEN, B1, '{"a": "it\'s"}', "{}"),
        commands.unmark_script(root, TOKEN, B1, None, "{}"),
    ]


def test_every_script_quotes_the_root_and_parses():
    for script in every_script(NASTY_ROOT):
        sh_syntax_ok(script)
        assert "cd '/srv/my app/$(touch /tmp/pwned)'\"'\"'`x`'" in script
        assert "$(touch /tmp/pwned)'`x`\n" not in script.replace("'\"'\"'", "")


def test_values_reaching_the_shell_are_quoted():
    script = commands.prepare_script("/srv/app", TOKEN, B1, requirements="req s.txt", venv="0123456789abcdef-py3.11",
                                     python="python3", pip_args=["--find-links", "/w h/$(id)"],
                                     meta_incomplete='{"a": "it\'s"}', meta_complete='{"complete": true}',
                                     install_timeout=60)
    assert "'--find-links' '/w h/$(id)'" in script or "--find-links '/w h/$(id)'" in script
    assert "'builds/20261128101500/req s.txt'" in script
    assert "'{\"a\": \"it'\"'\"'s\"}'" in script


def test_every_script_after_the_read_checks_the_lock_token_first():
    """A phase that finds its lock gone or replaced stops before changing anything (issue: lost locks)."""
    for script in every_script("/srv/app")[2:8]:
        owner = script.index("owns_lock || { echo LOSTLOCK")
        first_change = min(i for i in (script.find("rm -rf"), script.find("ln -sfn"), script.find("mv -"),
                                       script.find("history_append '"), script.find("SHIP_PY")) if i >= 0)
        assert owner < first_change, script[:400]
        assert f"TOKEN={TOKEN}" in script


def test_the_lock_is_released_only_by_its_owner_or_unlock():
    """No script removes deploy.lock without checking the token, except unlock (which checks the one it showed)."""
    for script in every_script("/srv/app"):
        if "rm -rf -- deploy.lock" not in script:
            continue
        if "if mkdir deploy.lock" in script:  # the read: only the lock it has just made, when writing its token failed
            taken = script.index("if mkdir deploy.lock")
            assert taken < script.index("rm -rf -- deploy.lock") < script.index("\nfi\n", taken)
            continue
        if "echo CHANGED" in script:  # unlock: removes only the lock whose token it was shown
            assert '[ "$_tok" != 0123456789abcdef ]' in script
            continue
        assert script.index("owns_lock ||") < script.index("rm -rf -- deploy.lock")


def test_switch_is_atomic_rename_never_bare_ln_sfn():
    script = every_script("/srv/app")[3]
    assert 'ln -sfn "builds/$T" current.releasetui-new && mv -Tf current.releasetui-new current' in script
    assert 'ln -sfn "builds/$P" current.releasetui-new && mv -Tf current.releasetui-new current' in script
    assert "ln -sfn builds" not in script


def test_restart_and_hooks_are_bounded_by_their_timeouts():
    script = every_script("/srv/app")[3]
    assert "timeout -k 5 30 sh -c 'supervisorctl restart uwsgi' </dev/null" in script
    assert "restart timed out after 30s" in script
    assert "timeout -k 5 10 sh -c 'echo warm $(id)' </dev/null" in script
    assert "export RELEASETUI_HOST='web'\"'\"'1'" in script


def test_activate_waits_for_the_verdict_and_prunes_only_on_commit():
    script = every_script("/srv/app")[3]
    assert "_verdict=$(timeout 600 head -n 1" in script
    commit = script.index('if [ "$_verdict" = COMMIT ]')
    prune = script.index("rm -rf -- builds/20261128090000")
    back = script.index('echo "BACK\t$_why"')
    assert commit < prune < back
    assert "[ ! -e pins/20261128090000 ]" in script, "a pinned build is never pruned"


def test_sudo_restarts_never_prompt():
    assert sudo_noninteractive("sudo supervisorctl restart uwsgi") == "sudo -n supervisorctl restart uwsgi"
    assert sudo_noninteractive("  sudo -n x") == "  sudo -n x"
    assert sudo_noninteractive("supervisorctl restart x") == "supervisorctl restart x"
    script = commands.activate_script("/srv/app", TOKEN, target=B2, previous=B1, restart="sudo systemctl reload app",
                                      restart_timeout=30, python="python3", health=None, hooks=[], hook_env={},
                                      records=RECORDS, verdict_timeout=60)
    assert "sh -c 'sudo -n systemctl reload app'" in script
    assert "a password is required" in script


def test_build_id_placeholder_is_filled_and_quoted():
    health = HealthCheck(url="http://127.0.0.1:8000/health?b={build_id}", expect="ok build={build_id}")
    lines = health_lines(health, "python3", B1)
    assert f"'http://127.0.0.1:8000/health?b={B1}' 'ok build={B1}'" in lines
    assert "{build_id}" not in lines


def test_builders_refuse_bad_ids_and_keys():
    with pytest.raises(InvalidBuildId):
        commands.activate_script("/srv/app", TOKEN, target="../../etc", previous=None, restart=None, restart_timeout=1,
                                 python="python3", health=None, hooks=[], hook_env={}, records=RECORDS,
                                 verdict_timeout=1)
    with pytest.raises(InvalidBuildId):
        commands.prune_script("/srv/app", TOKEN, ["20261128090000; reboot"], [], {})
    with pytest.raises(ValueError):
        commands.prune_script("/srv/app", TOKEN, [], ["../../../etc"], {})
    with pytest.raises(ValueError):
        commands.release_script("/srv/app", "not-a-token")


def test_rollback_candidates_sort_suffixed_ids_after_their_base():
    """builds/*/ would sort 'ID-01/' before 'ID/' ('-' < '/'); the listing globs builds/* instead."""
    assert "for _d in builds/*;" in commands.read_script("/srv/app") and "builds/*/;" not in commands.read_script("/srv/app")


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


def test_a_script_carries_its_stream_only_when_it_fits_one_packet_any_server_takes():
    from releasetui.commands.prepare import EXEC_REQUEST_LIMIT, INLINE_PAYLOAD_LIMIT
    assert commands.fits_one_packet("echo hi")
    assert not commands.fits_one_packet("x" * EXEC_REQUEST_LIMIT)
    assert not commands.fits_one_packet("'" * (EXEC_REQUEST_LIMIT // 4)), "quoting counts: each ' costs 5 bytes"
    assert EXEC_REQUEST_LIMIT <= 32_768 - 100 and INLINE_PAYLOAD_LIMIT < EXEC_REQUEST_LIMIT


def test_installer_auto_keeps_pip_when_pip_args_hold_an_option_uv_refuses():
    from releasetui.commands.venv import uv_takes, venv_lines
    assert uv_takes(["--no-index", "--find-links", "/srv/wheels", "--index-url=https://example.invalid/simple"])
    assert not uv_takes(["--timeout", "60"]) and not uv_takes(["--prefer-binary"])
    pip_only = venv_lines("python3", "requirements.txt", ["--timeout", "60"], 600, "auto")
    assert "_inst=pip" in pip_only and "uv venv" not in pip_only.split("_inst=pip", 1)[0]
    assert "_uv" in venv_lines("python3", "requirements.txt", ["--no-index"], 600, "auto")
