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



def test_a_dry_run_on_50_hosts_prints_each_distinct_script_once(tmp_path, wheelhouse):
    """18,905 lines of shell for 50 hosts: the same script (but for the host's name) is printed once with the hosts
    that run it; a host whose script really differs still gets its own."""
    from .support.helpers import make_project, need

    need("rsync")
    names = [f"web{i:02d}" for i in range(1, 51)]
    hosts = {name: {"transport": "local"} for name in names}
    hosts["web50"]["restart"] = "'echo web50 restarts its own way'"
    p = make_project(tmp_path, wheelhouse, hosts)

    def dry(count: int) -> list[str]:
        text = p.config.read_text()
        kept = "\n".join(line for line in text.splitlines()
                         if not line.startswith("  web") or line.split(":")[0].strip() in names[-count:])
        p.config.write_text(kept + "\n")
        proc = p.cli("--headless", "deploy", "--dry-run")
        p.config.write_text(text)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout.splitlines()

    lines = dry(50)
    headers = [line for line in lines if "would run" in line and line.startswith("# ")]
    assert headers == [
        "# would run lock: the same script on 50 hosts (web01..web50), {host} being each host's name:",
        "# would run ship: the same script on 50 hosts (web01..web50):",
        "# would run prepare: the same script on 50 hosts (web01..web50), {host} being each host's name:",
        "# would run activate: the same script on 49 hosts (web01..web49), {host} being each host's name:",
        "# web50: would run activate:",
    ], headers
    assert any(f"{tmp_path}/root-{{host}}" in line for line in lines)
    assert sum("echo web50 restarts its own way" in line for line in lines) == 1
    # The output grows with the distinct scripts, not with the hosts: 2 hosts (both kinds of script) print as much.
    assert len(lines) - len(dry(2)) < 5, len(lines)


def test_a_dry_run_template_replaces_whole_host_names_only():
    from releasetui.present import dry_run_blocks, script_template

    assert script_template("web1", '"host": "web1" /srv/root-web1 /srv/root-web10') == \
        '"host": "{host}" /srv/root-{host} /srv/root-web10'
    assert script_template("web1", "echo {host} web1") == "echo {host} web1", "a literal {host} is kept as it is"
    assert dry_run_blocks([("web1", "prune", "rm web1"), ("web2", "prune", "rm web2"), (None, "hook", "x")]) == [
        ("# would run prune: the same script on 2 hosts (web1, web2), {host} being each host's name:", "rm {host}"),
        ("# here: would run hook:", "x")]
