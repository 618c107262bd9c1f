"""The lifecycle rules (:mod:`pop_nb.models.lifecycle`): what each state allows, when a job may run, and
each transition, on statuses in memory."""

from __future__ import annotations

from typing import get_args

import pytest

from pop_nb.models import lifecycle
from pop_nb.models.status import JobState, JobStatus, StageRun, TaskStatus, Totals


def status(state: JobState = "pending", **tasks: TaskStatus) -> JobStatus:
    return JobStatus(
        job_id="j1",
        pipeline="p",
        state=state,
        created_at="2026-12-04T00:00:00+00:00",
        updated_at="2026-12-04T00:00:00+00:00",
        tasks=dict(tasks),
    )


def test_every_state_is_final_or_open_and_settled_means_final_or_waiting() -> None:
    states = get_args(JobState)
    assert set(lifecycle.FINAL_STATES) <= set(states)
    assert [s for s in states if lifecycle.is_settled(s)] == ["waiting", "done", "failed", "cancelled"]
    assert [s for s in states if lifecycle.is_final(s)] == ["done", "failed", "cancelled"]


@pytest.mark.parametrize(
    ("place", "state", "has_runner", "activity", "actions"),
    [
        ("current", "running", True, "running", ["cancel"]),
        ("current", "pending", False, "queued", ["resume", "cancel"]),
        ("current", "running", False, "queued", ["resume", "cancel"]),  # its runner died
        ("current", "waiting", False, "waiting", ["cancel", "approve", "reject"]),
        ("failed", "failed", False, "ended", ["resume", "archive", "delete"]),
        ("failed", "cancelled", False, "ended", ["resume", "archive", "delete"]),
        ("complete", "done", False, "ended", ["resume", "archive", "delete"]),  # resume: from a task
        ("archive", "done", False, "ended", ["restore", "delete"]),  # moved aside: back, or gone
    ],
)
def test_what_each_state_allows(
    place: str, state: str, has_runner: bool, activity: str, actions: list[str]
) -> None:
    found = lifecycle.activity(place, state, has_runner)
    assert found == activity
    assert lifecycle.allowed_actions(place, found) == actions


@pytest.mark.parametrize(
    ("place", "state", "refusal"),
    [
        ("current", "pending", None),
        ("current", "running", None),  # an interrupted run goes on
        ("current", "waiting", "waits at a gate: `pop approve j1` first"),
        ("current", "done", "has already ended (done)"),
        ("failed", "failed", "is in failed/, not current/; use `pop resume j1`"),
    ],
)
def test_may_a_runner_run_it(place: str, state: str, refusal: str | None) -> None:
    found = lifecycle.why_not_runnable("j1", place, state)
    assert (found is None) if refusal is None else (found is not None and refusal in found)


def test_approve_and_reject_touch_only_the_waiting_gates() -> None:
    st = status("waiting", a=TaskStatus(state="done", gate="waiting"), b=TaskStatus(state="done"))
    assert lifecycle.approve(st) == ["a"]
    assert st.state == "pending" and st.tasks["a"].gate == "approved" and st.tasks["b"].gate is None

    st = status("waiting", a=TaskStatus(state="done", gate="waiting"))
    assert lifecycle.reject(st, "off-brand") == ["a"]
    assert st.state == "failed" and st.tasks["a"].gate == "rejected"
    assert st.error is not None and st.error.type == "GateRejected" and st.error.task == "a"
    assert st.error.message == "rejected at the gate after a: off-brand"


def test_a_recovery_is_counted_and_the_last_one_fails_the_job() -> None:
    st = status("running")
    st.current_task, st.current_stage = "a", "inference"
    assert lifecycle.recover(st, max_recoveries=2, log="runner.log") is True
    assert (st.state, st.recoveries) == ("pending", 1)
    assert lifecycle.recover(st, max_recoveries=2, log="runner.log") is True
    assert lifecycle.recover(st, max_recoveries=2, log="runner.log") is False
    assert st.state == "failed" and st.error is not None and st.error.type == "RunnerDied"
    assert "3 times (the last during a/inference); see runner.log" in st.error.message
    assert "pop resume j1" in st.error.message


def test_a_reset_keeps_what_is_not_run_again() -> None:
    done = TaskStatus(state="done")
    st = status("failed", a=done, b=TaskStatus(state="failed"))
    st.current_task, st.ended_at = "b", "2026-12-04T00:01:00+00:00"
    lifecycle.reset(st, ["a", "b", "c"], rerun={"b"})
    assert st.state == "pending" and st.resumes == 1 and st.ended_at is None and st.current_task is None
    assert st.tasks["a"] is done and st.tasks["b"].state == "pending" and st.tasks["c"].state == "pending"


def test_a_reset_task_keeps_what_it_spent_so_a_resumed_job_never_shows_zero_cost() -> None:
    spent = Totals(calls=2, attempts=2, cost_usd=0.25)
    st = status("failed", a=TaskStatus(state="done", usage=Totals(calls=1, cost_usd=0.5)))
    st.tasks["b"] = TaskStatus(state="failed", usage=spent)
    st.refresh_progress()
    assert st.totals.cost_usd == 0.75
    lifecycle.reset(st, ["a", "b"], rerun={"a", "b"})
    assert st.state == "pending" and st.tasks["b"].state == "pending" and st.tasks["b"].attempts == 0
    assert st.totals.cost_usd == 0.75 and st.totals.calls == 3  # as usage.jsonl still says


AT = "2026-12-04T00:00:00+00:00"


def runs(*done: str, running: str | None = None) -> dict[str, StageRun]:
    found = {stage: StageRun(stage=stage, state="done", started_at=AT) for stage in done}
    if running:
        found[running] = StageRun(stage=running, state="running", started_at=AT)
    return found


def test_a_task_under_way_counts_for_its_planned_stages_done_and_no_more() -> None:
    st = status(
        "running",
        a=TaskStatus(state="running", stages_planned=4, stages=runs("ingestion", running="inference")),
    )
    st.refresh_progress()
    assert st.progress == 25
    # critique and refine (a refinement pass) are not in the plan; validation run again counts once
    st.tasks["a"].stages = runs("ingestion", "inference", "validateQuality", "critique", "refine")
    st.tasks["a"].stages["validateQuality.r1"] = StageRun(
        stage="validateQuality", state="done", refinement=1, started_at=AT
    )
    st.refresh_progress()
    assert st.progress == 75
    st.tasks["a"].stages = runs("ingestion", "inference", "validateQuality", "integration")
    st.refresh_progress()
    assert st.progress == 95  # every stage done: whole only once the task is
    st.tasks["b"] = TaskStatus(state="done")
    st.refresh_progress()
    assert st.progress == 98  # (0.95 + 1) / 2


def test_a_failed_task_is_no_progress_and_an_interrupted_one_keeps_its_done_stages() -> None:
    st = status("failed", a=TaskStatus(state="failed", stages_planned=2, stages=runs("ingestion")))
    st.refresh_progress()
    assert st.progress == 0
    st = status("pending", a=TaskStatus(state="pending", stages_planned=2, stages=runs("ingestion")))
    st.refresh_progress()
    assert st.progress == 50  # a crashed runner's task, to be run again from where it was
    st.tasks["a"].stages_planned = None  # a status written before tasks had a plan
    st.refresh_progress()
    assert st.progress == 0


def test_a_cancel_ends_it_cancelled() -> None:
    st = status("running")
    lifecycle.cancel(st)
    assert st.state == "cancelled" and st.error is not None and st.error.type == "Cancelled"


def test_a_cancel_written_for_a_killed_runner_stops_the_stage_it_was_running() -> None:
    """The service writes the end of a job whose runner did not stop in time (and was killed): the
    stage it ran must not read "running" in a cancelled job."""
    from pop_nb.models.status import StageRun

    running = StageRun(stage="inference", state="running", started_at="2026-12-04T00:00:01+00:00")
    done = StageRun(stage="ingestion", state="done", started_at="2026-12-04T00:00:00+00:00",
                    ended_at="2026-12-04T00:00:01+00:00")  # fmt: skip
    st = status("running", a=TaskStatus(state="running", stages={"ingestion": done, "inference": running}))
    lifecycle.cancel(st)
    stages = st.tasks["a"].stages
    assert stages["inference"].state == "cancelled" and stages["inference"].ended_at is not None
    assert stages["ingestion"].state == "done" and stages["ingestion"].ended_at == "2026-12-04T00:00:01+00:00"
