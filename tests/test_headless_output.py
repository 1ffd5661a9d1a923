"""What a CI log shows: plain lines (no ANSI off a terminal), one per step per host with its duration,
and a last line saying what is live on each host."""

from __future__ import annotations

import io
import re

import pytest

from releasetui.models import Event, HostOutcome, OperationResult
from releasetui.output import HumanPrinter

STEP = re.compile(r"^\d\d:\d\d:\d\d (?P<host>\S+) +(?P<step>\S+) +(?P<status>ok|failed|skipped|info) +"
                  r"(?P<duration>\d+\.\d\ds)?")


@pytest.mark.ssh
def test_ci_log_of_a_two_host_deploy(health_project):
    p = health_project
    first = p.cli("--headless", "deploy", env={"CIRCLECI": "true", "CI": "true", "TERM": "xterm-256color"})
    assert first.returncode == 0, first.stdout + first.stderr
    p.write_app("v2")
    proc = p.cli("--headless", "deploy", env={"CIRCLECI": "true", "CI": "true", "TERM": "xterm-256color"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "\x1b" not in proc.stdout + proc.stderr, "no colour or cursor codes when stdout is not a terminal"
    v2 = p.current("web1")
    lines = proc.stdout.splitlines()
    steps = [m.groupdict() for m in map(STEP.match, lines) if m]
    finished = [s for s in steps if s["status"] != "info"]
    # Every finished step names its host and carries its duration.
    assert finished and all(s["host"] in ("web1", "web2") and s["duration"] for s in finished), lines
    for host in ("web1", "web2"):
        names = [s["step"] for s in finished if s["host"] == host]
        assert names == ["connect", "lock", "ship", "venv", "build", "switch", "restart", "health"], names
        assert len(names) == len(set(names)), "one line per step, not a started line and a finished line"
    assert lines[-1] == f"live now: {v2} on web1, web2"


def test_colour_only_on_a_terminal(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    result = OperationResult("rollback", build_id="20260101000000")
    result.outcomes["web1"] = HostOutcome("web1", "ok", "live: 20260101000000", current="20260101000000")
    result.duration = 0.5
    for name in ("NO_COLOR", "CI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    for stream, coloured in ((io.StringIO(), False), (Terminal(), True)):
        printer = HumanPrinter(out=stream)
        printer.event(Event("web1", "switch", "ok", 0.01, "current -> builds/20260101000000"))
        printer.summary(result)
        text = stream.getvalue()
        assert ("\x1b[" in text) is coloured
        assert text.splitlines()[-1] == "live now: 20260101000000 on web1"
    for name, value in (("NO_COLOR", "1"), ("CI", "true"), ("TERM", "dumb")):
        monkeypatch.setenv(name, value)
        stream = Terminal()
        HumanPrinter(out=stream).event(Event("web1", "switch", "ok", 0.01))
        assert "\x1b" not in stream.getvalue(), name
        monkeypatch.delenv(name)
