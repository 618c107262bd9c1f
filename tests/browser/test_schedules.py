"""Schedules in JupyterLab's Pipelines panel: each with its next run and its last slots (a slot's job
opens its view), paused and resumed with a click, and still so after a reload."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_lab import TOKEN, command, open_lab, shot, steady
from tests.conftest import Project, wait_for

pytestmark = [pytest.mark.slow]

ROW = ".pop-ScheduleRow[data-schedule='digest']"


def test_the_panel_shows_schedules_their_next_run_and_history_and_pauses_one(
    tmp_path: Path, browser: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pop_nb.orchestrator.scheduler import Scheduler
    from pop_nb.testing.lab import jupyter_lab

    project = Project(tmp_path / "project")
    project.pipeline(
        "free",
        {"a": {}},
        schedules={"digest": {"cron": "0 6 * * *", "timezone": "Europe/London", "seed": {"data": {"n": 1}}}},
    )
    monkeypatch.setenv("POP_ROOT", str(project.root))
    monkeypatch.setenv("POP_DATA_DIR", str(project.data))
    scheduler = Scheduler(project.settings(), by="test", say=lambda _: None)
    scheduler.wake(datetime(2026, 12, 4, 5, 55, tzinfo=UTC))  # first seen the day before
    scheduler.wake(datetime(2026, 12, 4, 6, 0, 1, tzinfo=UTC))  # its 06:00 slot: a seed in pending/
    # a daemon takes it and runs it; it finds today's 06:00 passed with no daemon: a missed slot
    subprocess.run(
        [sys.executable, "-m", "pop_nb.cli", "orchestrate", "--once"],
        cwd=project.root,
        check=True,
        timeout=300,
    )
    assert (project.data / "complete" / "digest-20261204T060000Z").is_dir()
    d = browser
    state_file = project.data / "schedules" / "digest" / "state.json"

    def badge() -> str:
        return d.find_element("css selector", f"{ROW} .pop-Badge").text

    with jupyter_lab(project.root, tmp_path, TOKEN) as url:
        open_lab(d, url)
        command(d, "pop:show-panel")
        row = wait_for(lambda: d.find_elements("css selector", ROW), 60)[0]
        assert badge() == "active"
        assert "free" in row.text and "0 6 * * * Europe/London" in row.text
        next_run = row.find_element("css selector", ".pop-ScheduleRow-next").text
        assert next_run.startswith("next 20") and next_run.endswith("06:00 +00:00"), next_run
        history = [li.text for li in row.find_elements("css selector", ".pop-Slot")]
        assert history[0].endswith("missed") and "06:00 +00:00" in history[0], history
        assert history[-1] == "2026-12-04 06:00 +00:00\ndone" or history[-1].replace("\n", " ") == (
            "2026-12-04 06:00 +00:00 done"
        ), history
        shot(d, "schedules-1-panel")

        row.find_element("css selector", ".pop-Slot-job").click()  # the slot's job opens its view
        wait_for(lambda: d.find_elements("css selector", "#pop-job-digest-20261204T060000Z"), 60)

        d.find_element("css selector", f"{ROW} .pop-ScheduleRow-toggle").click()
        wait_for(steady(lambda: badge() == "paused"), 30)
        assert json.loads(state_file.read_text())["paused"] is True
        assert d.find_element("css selector", f"{ROW} .pop-ScheduleRow-toggle").text == "Resume"
        shot(d, "schedules-2-paused")

        open_lab(d, url)  # still paused after a reload
        command(d, "pop:show-panel")
        wait_for(lambda: d.find_elements("css selector", ROW), 60)
        wait_for(steady(lambda: badge() == "paused"), 30)
        d.find_element("css selector", f"{ROW} .pop-ScheduleRow-toggle").click()
        wait_for(steady(lambda: badge() == "active"), 30)
        state = json.loads(state_file.read_text())
        assert state["paused"] is False and state["changed_by"]
