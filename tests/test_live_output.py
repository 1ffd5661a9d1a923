"""The live per-host table of ``--headless`` operations on a terminal; plain lines everywhere else.

The printer is driven with a fake terminal (a Rich Console forced to be one,
writing into a StringIO) and a fake clock; one test runs the real CLI on a
pseudo-terminal to see the whole path.
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys

from rich.console import Console

from releasetui.live import Board, LivePrinter
from releasetui.models import Event, HostOutcome, OperationResult
from releasetui.output import HumanPrinter, closing_lines, live_table_wanted

from .support.helpers import REPO, TEST_CLOCK, gated_python, make_project, need, read_terminal, wait_for

SGR_COLOUR = re.compile(r"\x1b\[[0-9;]*3[0-9](;[0-9]+)*m|\x1b\[[0-9;]*9[0-7]m")
HOSTS = [f"web{i:02d}" for i in range(1, 51)]


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def terminal(width: int = 80, height: int = 24, **kw) -> tuple[Console, io.StringIO]:
    stream = io.StringIO()
    return Console(file=stream, force_terminal=True, width=width, height=height, highlight=False, markup=False,
                   **kw), stream


def frame(printer: LivePrinter, width: int = 80, height: int = 24) -> list[str]:
    """What the live display shows right now, as plain lines."""
    console = Console(file=io.StringIO(), width=width, height=height, force_terminal=False, color_system=None,
                      record=True)
    console.print(printer.render())
    return console.export_text().rstrip("\n").split("\n")


def ev(host, step, status, duration=None, message="", phase="prepare", at=1000.0) -> Event:
    return Event(host, step, status, duration, message, time=at, phase=phase)


def fifty_hosts_mid_deploy(printer: LivePrinter, clock: Clock) -> None:
    """25 hosts shipping or installing, 23 built and idle, 2 failed their venv."""
    for i, name in enumerate(HOSTS):
        printer.event(ev(name, "lock", "ok", 0.1 + i / 100, "current 20261201000000", "lock"))
    printer.event(Event(None, "deploy", "info", message="build 20261202000000 on 50 hosts", phase="plan"))
    for i, name in enumerate(HOSTS):
        printer.event(ev(name, "ship", "started", at=1000.0 + i / 10))
        if i < 25:
            printer.event(ev(name, "ship", "ok", 0.3))
            printer.event(ev(name, "venv", "started", at=1001.0))
            if name in ("web07", "web19"):
                printer.event(ev(name, "venv", "failed", 2.0, "pip install failed: No matching distribution"))
            else:
                printer.event(ev(name, "venv", "ok", 0.01 * i, "reused venvs/abc"))
                printer.event(ev(name, "build", "ok", 0.5, "build 20261202000000 complete"))
    clock.now = 1005.0


def test_fifty_hosts_fit_an_80x24_terminal_and_every_host_is_accounted_for(monkeypatch):
    clock = Clock()
    console, _ = terminal()
    printer = LivePrinter("deploy", HOSTS, console=console, clock=clock, err=io.StringIO())
    fifty_hosts_mid_deploy(printer, clock)
    lines = frame(printer)
    text = "\n".join(lines)
    assert len(lines) <= 23, text                       # one line left for the cursor
    assert all(len(line) <= 80 for line in lines), text
    assert lines[0].startswith("deploy 50 hosts · 5.0s · 25 working") and "2 failed" in lines[0], text
    assert lines[1] == "build 20261202000000 on 50 hosts"
    # 25 hosts at work on the same step: one row, its time range, the slowest host named.
    assert re.search(r"^25: web26\.\.web50 +prepare +ship +0\.1–2\.5s +running +slowest: web26 2\.5s *$", text, re.M), text
    # The two failed hosts are one row, with what they said; the 23 built hosts one row.
    failed = [line for line in lines if "failed" in line and "web07" in line]
    assert len(failed) == 1 and "web07, web19" in failed[0] and "venv: pip install" in failed[0], text
    assert any(line.startswith("23: web01..web06") and "build" in line and " ok" in line for line in lines), text


def test_a_dozen_working_hosts_get_a_row_each_and_what_does_not_fit_is_counted():
    clock = Clock()
    console, _ = terminal(width=100, height=10)
    names = [f"h{i:02d}" for i in range(12)]
    printer = LivePrinter("deploy", names, console=console, clock=clock, err=io.StringIO())
    for i, name in enumerate(names):
        printer.event(ev(name, "venv" if i % 2 else "ship", "started", at=1000.0 + i))
    clock.now = 1012.0
    lines = frame(printer, 100, 10)
    assert len(lines) <= 9, lines
    # 12 at work but 10 rows: grouped by step, slowest named.
    assert any(re.match(r"^6: h00, h02, h04.* +prepare +ship +2\.0–12\.0s +running +slowest: h00 12\.0s", line)
               for line in lines), lines
    printer.console = terminal(width=100, height=30)[0]
    roomy = frame(printer, 100, 30)
    assert sum(1 for line in roomy if re.match(r"^h\d\d +prepare", line)) == 12, roomy


def test_few_hosts_get_one_row_each_with_phase_step_duration_and_outcome():
    clock = Clock()
    console, _ = terminal(width=120, height=40)
    printer = LivePrinter("rollback", ["web1", "web2", "web3"], console=console, clock=clock, err=io.StringIO())
    printer.event(ev("web1", "switch", "ok", 0.02, "current -> builds/20261201000000", "activate"))
    printer.event(ev("web2", "restart", "started", phase="activate", at=1000.0))
    printer.event(ev("web3", "health", "failed", 3.2, "HTTP 502", "activate"))
    clock.now = 1001.5
    lines = frame(printer, 120, 40)
    text = "\n".join(lines)
    assert re.search(r"^web2 +activate +restart +1\.5s +running", text, re.M), text
    assert re.search(r"^web1 +activate +switch +0\.02s +ok +current -> builds/20261201000000", text, re.M), text
    assert re.search(r"^web3 +activate +health +3\.20s +failed +health: HTTP 502", text, re.M), text
    assert lines[0].startswith("rollback 3 hosts · 1.5s · 1 working, 1 idle, 1 failed")


def test_a_step_run_twice_on_a_host_is_counted_apart_in_the_closing_table():
    board = Board(["a", "b"])
    for host in ("a", "b"):
        board.apply(ev(host, "restart", "ok" if host == "a" else "failed", 0.1, phase="activate"))
    board.apply(ev("a", "switch-back", "ok", 0.05, phase="activate"))
    board.apply(ev("a", "restart", "ok", 0.1, phase="activate"))
    rows = {step: counts for _, step, counts, _, _ in board.step_lines()}
    assert rows == {"restart": "1 ok, 1 failed (b)", "switch-back": "1 ok", "restart (again)": "1 ok"}


def result_48_ok_2_failed() -> OperationResult:
    result = OperationResult("deploy", build_id="20261202000000", duration=12.5)
    for name in HOSTS:
        if name in ("web07", "web19"):
            result.outcomes[name] = HostOutcome(name, "failed", "build 20261202000000: HTTP 502; switched back to "
                                                "20261201000000", current="20261201000000")
        else:
            result.outcomes[name] = HostOutcome(name, "aborted", "switched back to 20261201000000: another host "
                                                "failed", current="20261201000000")
    return result


def test_the_live_table_ends_with_the_same_lines_as_the_plain_output(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    clock = Clock()
    console, stream = terminal()
    printer = LivePrinter("deploy", HOSTS, console=console, clock=clock, err=io.StringIO())
    fifty_hosts_mid_deploy(printer, clock)
    result = result_48_ok_2_failed()
    printer.summary(result)
    plain = io.StringIO()
    HumanPrinter(plain).summary(result)
    expected = plain.getvalue().splitlines()
    strip = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
    printed = [strip.sub("", line) for line in stream.getvalue().splitlines()]
    assert printed[-len(expected):] == expected
    assert expected[-1] == "live now: 20261201000000 on all 50 hosts"
    assert expected[0] == "deploy web07, web19: failed: build 20261202000000: HTTP 502; switched back to 20261201000000"
    # Before them, one line per step over the fleet, the failed hosts named.
    steps = printed[:-len(expected)]
    venv = [line for line in steps if re.match(r"^prepare +venv ", line)]
    assert venv and "23 ok, 2 failed (web07, web19)" in venv[0], steps
    assert "\x1b[" in stream.getvalue(), "a terminal gets colour"


def test_no_color_means_no_colour_in_the_live_table(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    stream = FakeTerminal()
    printer = LivePrinter("deploy", HOSTS, out=stream, err=io.StringIO(), clock=Clock())
    fifty_hosts_mid_deploy(printer, Clock())
    printer.summary(result_48_ok_2_failed())
    assert not SGR_COLOUR.search(stream.getvalue()), repr(stream.getvalue()[:500])


def test_notices_on_a_terminal_stderr_are_shown_in_the_table_and_written_once_it_is_down():
    console, stream = terminal()
    err = FakeTerminal()
    printer = LivePrinter("deploy", ["a"], console=console, err=err, clock=Clock())
    printer.start()
    try:
        printer.notice("releasetui: interrupted: stopping")
        assert err.getvalue() == "", "written while the table is up, it would tear it"
        assert "releasetui: interrupted: stopping" in frame(printer)
    finally:
        printer.close()
    assert err.getvalue() == "releasetui: interrupted: stopping\n"
    printer.close()
    assert err.getvalue().count("interrupted") == 1


def test_notices_on_a_redirected_stderr_go_there_at_once():
    console, _ = terminal()
    err = io.StringIO()
    printer = LivePrinter("deploy", ["a"], console=console, err=err, clock=Clock())
    printer.start()
    try:
        printer.notice("releasetui: interrupted again")
        assert err.getvalue() == "releasetui: interrupted again\n"
    finally:
        printer.close()


def test_remote_text_in_the_table_is_cleaned():
    printer = LivePrinter("deploy", ["a"], console=terminal()[0], err=io.StringIO(), clock=Clock())
    printer.event(ev("a", "restart", "failed", 0.1, "boom \x1b[2J\x1b]0;pwned\x07 [bold]x[/bold]", "activate"))
    text = "\n".join(frame(printer))
    assert "\x1b" not in text and "pwned" not in text and "[bold]x[/bold]" in text, text


def test_who_gets_the_live_table():
    assert live_table_wanted(FakeTerminal(), {"TERM": "xterm"})
    assert not live_table_wanted(io.StringIO(), {"TERM": "xterm"})
    assert not live_table_wanted(FakeTerminal(), {"TERM": "dumb"})
    assert not live_table_wanted(FakeTerminal(), {"TERM": "xterm", "CI": "true"}), "a CI job with a pty: plain lines"


def test_closing_lines_are_shared():
    result = result_48_ok_2_failed()
    assert [text for _, text in closing_lines(result)][-2:] == ["deploy failed in 12.50s (exit 1)",
                                                                 "live now: 20261201000000 on all 50 hosts"]


def test_a_run_off_a_terminal_never_loads_rich(local_project):
    code = ("import sys, releasetui.cli\n"
            f"rc = releasetui.cli.main(['--config', {str(local_project.config)!r}, '--headless', 'deploy'])\n"
            "loaded = sorted(m for m in sys.modules if m == 'rich' or m.startswith('rich.'))\n"
            "sys.stderr.write(repr(loaded))\n"
            "sys.exit(rc or (1 if loaded else 0))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **TEST_CLOCK.env(), "PYTHONPATH": str(REPO)}, cwd=local_project.dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "\x1b" not in proc.stdout and " box " in proc.stdout


# --- the real command on a pseudo-terminal ------------------------------------------------------

def run_on_pty(project, *args, columns=80, rows=24, env=None, until=None, timeout=120):
    """Run the CLI with stdout on a pty of that size (stderr a pipe); returns (code, terminal bytes, stderr)."""
    import fcntl
    import pty
    import struct
    import termios
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    full = {**os.environ, **TEST_CLOCK.env(), "PYTHONPATH": str(REPO), "TERM": "xterm-256color", **(env or {})}
    for key in ("CI", "NO_COLOR", "RELEASETUI_CONFIG", "COLUMNS", "LINES"):
        if key not in (env or {}):  # the machine's own settings out; the test's in
            full.pop(key, None)
    proc = subprocess.Popen([sys.executable, "-m", "releasetui", "--config", str(project.config), "--headless",
                             *args], stdout=slave, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=full)
    os.close(slave)
    output = read_terminal(master, proc, timeout, (lambda so_far: until(proc, so_far)) if until else None)
    err = proc.stderr.read().decode()
    proc.wait(timeout=30)
    return proc.returncode, output.decode("utf-8", "replace"), err


def last_screen_lines(raw: str) -> list[str]:
    """The lines left after the live display erased itself (rough: drop cursor codes, keep printed lines)."""
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw).replace("\r", "")
    return [line for line in plain.split("\n") if line.strip()]


def test_deploy_on_a_terminal_shows_the_table_and_ends_with_the_summary(tmp_path, wheelhouse):
    need("rsync")
    hosts = {f"web{i:02d}": {"transport": "local"} for i in range(1, 7)}
    project = make_project(tmp_path, wheelhouse, hosts, extra="parallel: 3")
    code, screen, err = run_on_pty(project, "deploy")
    assert code == 0, screen + err
    assert err == ""
    assert "\x1b[" in screen, "a terminal gets the live display"
    assert "HOST" in screen and "PHASE" in screen, "the table was drawn"
    lines = last_screen_lines(screen)
    build = project.current("web01")
    assert lines[-1] == f"live now: {build} on all 6 hosts"
    assert lines[-2].startswith("deploy ok in ")
    assert lines[-3] == f"deploy all 6 hosts: ok: live: {build} (was none)"
    assert any(re.match(r"^prepare +venv +6 ok", line) for line in lines), lines
    # The same run piped: plain lines, one per finished step per host, not a table.
    piped = project.cli("--headless", "deploy")
    assert piped.returncode == 0 and "\x1b" not in piped.stdout and "HOST" not in piped.stdout
    assert len([line for line in piped.stdout.splitlines() if " switch " in line]) == 6


def test_ci_or_a_dumb_terminal_gets_no_escape_codes_at_all_even_on_a_terminal(local_project):
    for env in ({"CI": "true"}, {"TERM": "dumb"}, {"NO_COLOR": "1", "CI": "true"}):
        code, screen, err = run_on_pty(local_project, "deploy", env=env)
        assert code == 0, screen + err
        assert "\x1b" not in screen + err, (env, screen[:300])
        assert screen.splitlines()[-1].startswith("live now: "), screen


def test_ctrl_c_under_the_live_table_still_aborts_and_says_so_on_stderr_once(tmp_path, wheelhouse):
    need("rsync")
    project = make_project(tmp_path, wheelhouse, {"a": {"transport": "local"}, "b": {"transport": "local"}})
    marker, gate = tmp_path / "installing", tmp_path / "gate"
    gated_python(project, "pip", marker, gate)
    sent = []

    def interrupt(proc, so_far):
        if marker.exists() and not sent:
            proc.send_signal(signal.SIGINT)
            sent.append(True)

    try:
        code, screen, err = run_on_pty(project, "deploy", until=interrupt)
    finally:
        gate.touch()
    assert sent, "the install never started"
    assert code == 130, screen + err
    assert err.count("releasetui: interrupted: stopping") == 1, err
    lines = last_screen_lines(screen)
    assert lines[-1] == "live now: nothing on a, b"
    assert any("interrupted" in line for line in lines[-4:]), lines
    wait_for(lambda: not (project.roots["a"] / "deploy.lock").exists(), 10, "the lock released")
    assert project.builds("a") == [] and project.builds("b") == []


def test_a_failed_host_still_switching_back_is_one_working_row_not_two():
    clock = Clock()
    printer = LivePrinter("deploy", ["a", "b"], console=terminal()[0], err=io.StringIO(), clock=clock)
    printer.event(ev("a", "restart", "failed", 0.1, "exit 3", "activate"))
    printer.event(ev("a", "switch-back", "started", phase="activate", at=1000.0))
    printer.event(ev("b", "restart", "ok", 0.1, phase="activate"))
    clock.now = 1000.5
    rows = [line for line in frame(printer) if re.match(r"^(a|b) ", line)]
    assert len(rows) == 2 and rows[0].startswith("a ") and "switch-back" in rows[0] and "running" in rows[0], rows
    assert frame(printer)[0].endswith("1 failed"), frame(printer)[0]
