"""The one wall clock (releasetui.clock): build ids and history times come through it, never straight from the
machine, so tests set it instead of sleeping to the next second or comparing a fixed date with now."""

from __future__ import annotations

from datetime import datetime, timezone

from releasetui import clock
from releasetui.operations import new_build_id

from .support.helpers import summary


def test_build_ids_and_history_times_follow_the_clock_a_subprocess_is_given(local_project):
    p = local_project
    proc = p.cli("--headless", "deploy", "--json", env={clock.ENV_VAR: "2040-02-03T04:05:06Z"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    build_id = summary(proc)["build_id"]
    assert "20400203040506" <= build_id < "20400203040600", build_id
    [record] = p.history("box")
    assert record["started"].startswith("2040-02-03T04:0") and record["when"] >= record["started"]


def test_the_clock_runs_on_from_where_it_was_set():
    start = datetime(2040, 1, 1, tzinfo=timezone.utc)
    ticking = clock.clock_from_env({clock.ENV_VAR: "2040-01-01T00:00:00Z"})
    first, second = ticking(), ticking()
    assert start <= first <= second and (second - start).total_seconds() < 60


def test_in_process_the_installed_clock_is_read():
    previous = clock.set_clock(lambda: datetime(2039, 5, 6, 7, 8, 9, tzinfo=timezone.utc))
    try:
        assert new_build_id() == "20390506070809"
        assert clock.iso() == "2039-05-06T07:08:09Z"
    finally:
        clock.set_clock(previous)


def test_a_clock_that_is_not_a_time_is_refused_in_one_line(local_project):
    proc = local_project.cli("--headless", "builds", env={clock.ENV_VAR: "yesterday"})
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("releasetui: RELEASETUI_CLOCK: ")
    assert not (local_project.roots["box"] / "builds").exists()
