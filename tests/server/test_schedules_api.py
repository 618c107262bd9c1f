"""``/pop/api/schedules``: every schedule (a broken one with why), pause and resume by name, 404 for a
name that is none."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project
from tests.server.test_api import call


@pytest.fixture
def jp_root_dir(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir(exist_ok=True)
    return root


async def test_schedules_are_listed_paused_and_resumed_and_an_unknown_one_is_404(
    project: Project, jp_fetch: Any
) -> None:
    project.pipeline(
        "p",
        {"t": {}},
        schedules={
            "morning": {"cron": "0 6 * * 1-5", "timezone": "Europe/Paris", "seed": {"data": {}}},
            "broken": {"cron": "every day", "seed": {"data": {}}},
            "../../escape": {"cron": "0 6 * * *", "seed": {"data": {}}},
        },
    )
    code, listed = await call(jp_fetch, "GET", "pop/api/schedules")
    assert code == 200 and [s["name"] for s in listed] == ["../../escape", "broken", "morning"]
    escape, broken, morning = listed
    assert "a schedule's name uses a-z" in escape["problem"]
    assert "is not a cron expression" in broken["problem"] and broken["next"] == []
    assert morning["problem"] is None and len(morning["next"]) == 3
    assert morning["next"][0].endswith(("+01:00", "+02:00")) and "T06:00:00" in morning["next"][0]

    code, paused = await call(jp_fetch, "POST", "pop/api/schedules/morning/pause", {})
    assert code == 200 and paused["paused"] is True and paused["next"] == []
    state = json.loads((project.data / "schedules/morning/state.json").read_text())
    assert state["paused"] is True
    code, resumed = await call(jp_fetch, "POST", "pop/api/schedules/morning/resume", {})
    assert code == 200 and resumed["paused"] is False

    code, _ = await call(jp_fetch, "POST", "pop/api/schedules/..%2F..%2Fescape/pause", {})
    assert code == 404 and not (project.data.parent / "escape").exists()  # a name is never a path
    code, missing = await call(jp_fetch, "POST", "pop/api/schedules/nightly/pause", {})
    assert code == 404 and missing["error"] == "ScheduleNotFound" and "morning" in missing["message"]


async def test_a_schedules_yaml_that_is_no_mapping_is_a_422_and_a_clear_cli_error(
    project: Project, jp_fetch: Any
) -> None:
    from tests.conftest import pop

    project.pipeline("p", {"t": {}})
    (project.root / "schedules.yaml").write_text("- cron: '0 6 * * *'\n")
    code, answer = await call(jp_fetch, "GET", "pop/api/schedules")
    assert code == 422 and answer["error"] == "SchedulesFileError" and "not a mapping" in answer["message"]
    shown = pop("schedules")
    assert shown.returncode == 2 and "schedules.yaml: holds a list, not a mapping" in shown.stderr
    (project.root / "schedules.yaml").write_text("a: [unclosed\n")
    shown = pop("schedules")
    assert shown.returncode == 2 and "not valid YAML" in shown.stderr and "Traceback" not in shown.stderr
