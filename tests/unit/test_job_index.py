"""The job index behind `GET /pop/api/jobs` and `pop status`: it re-reads what changed, follows a job
that moved, skips a status file caught mid-write, and sums finished jobs exactly."""

from __future__ import annotations

import json
import shutil

import pytest

from pop_nb import service
from tests.conftest import Project
from tests.unit.test_analytics import write_job


def test_the_index_follows_changes_moves_and_half_written_files(project: Project) -> None:
    settings = project.settings()
    data = project.data
    for i in range(30):
        write_job(data, "complete", f"j{i:02d}", "done", cost=0.5)
    first = service.list_jobs(settings, limit=10)
    assert first.total == 30 and len(first.jobs) == 10

    # a job rewritten in place is read again (its mtime moved)
    status_file = data / "complete" / "j03" / "tasks-status.json"
    status = json.loads(status_file.read_text())
    status["name"] = "Renamed job"
    status_file.write_text(json.dumps(status))
    later = status_file.stat().st_mtime_ns + 10_000_000
    import os

    os.utime(status_file, ns=(later, later))
    found = service.list_jobs(settings, search="renamed")
    assert [j.id for j in found.jobs] == ["j03"] and found.jobs[0].name == "Renamed job"

    # a job that moved is listed in its new place, once
    shutil.move(str(data / "complete" / "j04"), str(data / "failed" / "j04"))
    moved = service.list_jobs(settings, search="j04")
    assert [(j.id, j.place) for j in moved.jobs] == [("j04", "failed")]

    # a status caught half written is left out until it is whole, and nothing raises
    (data / "complete" / "j05" / "tasks-status.json").write_text('{"job_id": "j05", "pipel')
    assert service.list_jobs(settings, limit=500).total == 29
    assert service.list_jobs(settings, state="done", limit=500).total == 29  # j04 moved but is "done"


def test_pop_status_sums_every_finished_job(project: Project) -> None:
    for i in range(12):
        write_job(project.data, "complete", f"d{i}", "done", cost=0.25)
    write_job(project.data, "failed", "f1", "failed", cost=9.0)
    view = service.overview(project.settings())
    assert view.done == 12 and view.latest_done is not None
    assert view.done_totals.cost_usd == pytest.approx(12 * 0.25)
    assert [j.id for j in view.failed] == ["f1"]
