"""The DuckDB tables follow the job folders: jobs, tasks, stages from status files, incrementally."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from pop_nb.analytics import Analytics, outcome_rates, stage_durations
from pop_nb.models.records import Event, UsageRow
from pop_nb.models.status import ErrorInfo, JobStatus, StageRun, TaskStatus, Totals
from pop_nb.store.atomic import append_jsonl, atomic_write_json
from tests.conftest import too_deep

T0 = "2026-11-20T10:00:00.000+00:00"


def write_job(data: Path, place: str, job: str, state: str, refinements: int = 0, cost: float = 0.01) -> Path:
    folder = data / place / job
    stages = {
        "inference": StageRun(
            stage="inference", state="done", started_at=T0, duration_ms=1200, cells_ms=900, notebook="n1"
        ),
        "refine.r1": StageRun(
            stage="refine", refinement=1, state="done", started_at=T0, duration_ms=800, notebook="n2"
        ),
    }
    status = JobStatus(
        job_id=job,
        pipeline="alpha",
        state=state,
        started_at="2026-11-20T10:00:00.000+00:00",
        ended_at="2026-11-20T10:00:30.000+00:00",
        error=ErrorInfo(task="b", stage="inference", type="Boom", message="bad")
        if state == "failed"
        else None,
        tasks={
            "a": TaskStatus(
                state="done", refinements=refinements, stages=stages, usage=Totals(cost_usd=cost)
            ),
            "b": TaskStatus(state="failed" if state == "failed" else "done"),
        },
    )
    status.refresh_progress()
    atomic_write_json(folder / "tasks-status.json", status)
    append_jsonl(folder / "events.jsonl", Event(job=job, kind="job", status="started"))
    log_call(folder, job, "a", cost, "h", input_tokens=10, output_tokens=5)
    return folder


def log_call(folder: Path, job: str, task: str, cost: float, request_hash: str, **tokens: int) -> None:
    row = UsageRow(
        job=job,
        pipeline="alpha",
        task=task,
        stage="inference",
        provider="openai",
        model="m",
        cost_usd=cost,
        request_hash=request_hash,
        **tokens,
    )
    append_jsonl(folder / "usage.jsonl", row)


def test_tables_from_status_files_and_incremental_refresh(tmp_path: Path) -> None:
    write_job(tmp_path, "complete", "j1", "done", refinements=1)
    write_job(tmp_path, "failed", "j2", "failed")
    running = write_job(tmp_path, "current", "j3", "running")
    analytics = Analytics(tmp_path)
    assert analytics.refresh() == 3
    jobs = {r["job"]: r for r in analytics.query("SELECT * FROM jobs")}
    assert {j: r["place"] for j, r in jobs.items()} == {"j1": "complete", "j2": "failed", "j3": "current"}
    assert jobs["j1"]["duration_ms"] == 30_000 and jobs["j2"]["error_type"] == "Boom"
    assert analytics.query("SELECT count(*) AS n FROM tasks")[0]["n"] == 6
    runs = analytics.query(
        "SELECT run, stage, refinement, notebook FROM stages WHERE job = 'j1' ORDER BY run"
    )
    assert runs == [
        {"run": "inference", "stage": "inference", "refinement": 0, "notebook": "n1"},
        {"run": "refine.r1", "stage": "refine", "refinement": 1, "notebook": "n2"},
    ]
    rates_df = outcome_rates(analytics)
    assert isinstance(rates_df, pd.DataFrame)  # displays as a table in a notebook
    [rates] = rates_df.to_dict("records")
    assert rates["jobs"] == 3 and rates["failed"] == 1 and rates["failure_rate"] == round(1 / 3, 4)
    assert rates["refinement_rate"] == 1 / 5  # 1 of the 5 done tasks refined
    assert stage_durations(analytics)["median_ms"][0] == 1200

    assert analytics.refresh() == 0  # nothing changed: nothing read
    log_call(running, "j3", "b", 0.5, "h2")
    assert analytics.refresh() == 1
    assert analytics.query("SELECT sum(cost_usd) AS c FROM llm_calls WHERE job = 'j3'")[0]["c"] == 0.51
    shutil.move(str(running), str(tmp_path / "complete" / "j3"))  # the job ends: it moves
    analytics.refresh()
    assert analytics.query("SELECT place FROM jobs WHERE job = 'j3'")[0]["place"] == "complete"
    assert analytics.query("SELECT count(*) AS n FROM llm_calls WHERE job = 'j3'")[0]["n"] == 2  # not doubled
    shutil.rmtree(tmp_path / "failed" / "j2")
    analytics.refresh()
    assert [r["job"] for r in analytics.query("SELECT job FROM jobs ORDER BY job")] == ["j1", "j3"]


def test_an_empty_data_folder_gives_empty_tables(tmp_path: Path) -> None:
    analytics = Analytics(tmp_path / "nothing-here")
    assert analytics.refresh() == 0
    for table in ("jobs", "tasks", "stages", "llm_calls", "events", "runs"):
        assert analytics.query(f"SELECT count(*) AS n FROM {table}")[0]["n"] == 0
    assert outcome_rates(analytics).empty and stage_durations(analytics).empty


def test_a_status_file_that_is_not_json_hides_no_other_job(tmp_path: Path) -> None:
    write_job(tmp_path, "complete", "fine", "done")
    broken = write_job(tmp_path, "current", "broken", "running")
    (broken / "tasks-status.json").write_bytes(too_deep())  # DuckDB refuses the whole batch
    analytics = Analytics(tmp_path)
    assert analytics.refresh() == 2
    assert [r["job"] for r in analytics.query("SELECT job FROM jobs")] == ["fine"]
    calls = analytics.query("SELECT job, count(*) AS n FROM llm_calls GROUP BY job ORDER BY job")
    assert calls == [{"job": "broken", "n": 1}, {"job": "fine", "n": 1}]  # its calls still count


def test_a_hand_edited_value_of_another_type_is_null_in_its_field_alone(tmp_path: Path) -> None:
    import json

    edited = write_job(tmp_path, "complete", "edited", "done")
    status = json.loads((edited / "tasks-status.json").read_text())
    status["totals"].update(calls="many", input_tokens=42)
    status["tasks"]["a"]["attempts"] = [2]
    status["tasks"]["a"]["started_at"] = "last tuesday"
    run = status["tasks"]["a"]["stages"]["inference"]
    run["duration_ms"], run["refinement"], run["ended_at"] = "slow", {"n": 1}, 7
    (edited / "tasks-status.json").write_text(json.dumps(status, indent=1))
    analytics = Analytics(tmp_path)
    analytics.refresh()
    [job] = analytics.query("SELECT calls, input_tokens, state FROM jobs WHERE job = 'edited'")
    assert job == {"calls": 0, "input_tokens": 42, "state": "done"}  # the row kept, its other fields read
    [task] = analytics.query(
        "SELECT attempts, started_at, cost_usd FROM tasks WHERE job = 'edited' AND task = 'a'"
    )
    assert task == {"attempts": 0, "started_at": None, "cost_usd": 0.01}
    [stage] = analytics.query(
        "SELECT duration_ms, refinement, ended_at, cells_ms, notebook FROM stages "
        "WHERE job = 'edited' AND run = 'inference'"
    )
    assert stage == {
        "duration_ms": None, "refinement": 0, "ended_at": None, "cells_ms": 900, "notebook": "n1"
    }  # fmt: skip
