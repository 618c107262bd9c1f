"""The progress line of ``pop batch`` and ``pop experiment run``: redrawn on a terminal; in a log, a line
every few seconds and the last one, whatever the number of jobs."""

from __future__ import annotations

import pytest

from pop_nb.cli import common
from pop_nb.cli.common import ProgressLine


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [100.0]
    monkeypatch.setattr("time.monotonic", lambda: now[0])
    return now


def test_in_a_log_a_thousand_changes_are_a_line_every_few_seconds_and_the_last(
    clock: list[float], capsys: pytest.CaptureFixture[str]
) -> None:
    shown = ProgressLine(live=False)
    for n in range(1000):
        shown.show(f"done {n}/1000")
        clock[0] += 0.02  # 20 s in all
    shown.end()
    lines = capsys.readouterr().err.splitlines()
    every = int(20 / common.PLAIN_EVERY_S)
    assert lines[0] == "done 0/1000" and lines[-1] == "done 999/1000"
    assert every <= len(lines) <= every + 2
    shown.show("next")  # after end, a new line starts at once
    shown.end()
    assert capsys.readouterr().err == "next\n"


def test_on_a_terminal_it_is_redrawn_in_place_and_ended_with_a_line_break(
    clock: list[float], capsys: pytest.CaptureFixture[str]
) -> None:
    shown = ProgressLine(live=True)
    shown.show("running 10 queued 990")
    shown.show("done 1")
    shown.end()
    shown.end()  # nothing shown since: nothing more
    assert capsys.readouterr().err == "\rrunning 10 queued 990\x1b[K\rdone 1\x1b[K\n"
