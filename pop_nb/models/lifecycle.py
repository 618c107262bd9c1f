"""A job's lifecycle: its states, what each allows, and how one state becomes another.

The rules only: each function here looks at (or changes) a :class:`JobStatus` in memory and never touches
a file. :mod:`pop_nb.service` applies them to job folders (it is their only writer, with the runner), and
every front end asks here rather than spelling a state out::

    pending --runner--> running --> done | failed | cancelled     (final: the folder leaves current/)
                           |  \\--> waiting --approve--> pending
                           |              \\--reject---> failed
                           \\--runner died--> pending (recovered) | failed (too many recoveries)
    done | failed | cancelled --resume--> pending
"""

from __future__ import annotations

from typing import Literal

from pop_nb.models.status import ErrorInfo, JobState, JobStatus, TaskStatus, now_iso

FINAL_STATES: tuple[JobState, ...] = ("done", "failed", "cancelled")
"""A job in one of these has ended: its folder is (or is about to be) in ``complete/`` or ``failed/``."""

Activity = Literal["running", "queued", "waiting", "ended"]
Action = Literal["resume", "cancel", "approve", "reject", "archive", "restore", "delete"]


def is_final(state: str) -> bool:
    return state in FINAL_STATES


def is_settled(state: str) -> bool:
    """Nothing more happens to a job in this state until someone acts: it ended, or waits at a gate."""
    return state == "waiting" or is_final(state)


def activity(place: str, state: str, has_runner: bool) -> Activity:
    """What the job is doing now, from where its folder is, its state and whether a runner holds it."""
    if place != "current":
        return "ended"
    if state == "waiting":
        return "waiting"
    return "running" if has_runner else "queued"


def allowed_actions(place: str, activity: Activity) -> list[Action]:
    """What may be done to a job now: the one rule the CLI's hints, the dashboard and the Lab panel show
    (each job's ``actions``). Resume once it has ended (a done one too: from a task, after a prompt
    changed) or when it sits queued without a runner; cancel while it is open; approve or reject at a
    gate; archive or delete once it has ended (an archived one is restored or deleted)."""
    if place == "archive":
        return ["restore", "delete"]
    actions: list[Action] = []
    if activity in ("ended", "queued"):
        actions.append("resume")
    if place == "current" and activity != "ended":
        actions.append("cancel")
    if activity == "waiting":
        actions += ["approve", "reject"]
    if activity == "ended":
        actions += ["archive", "delete"]
    return actions


def why_not_runnable(job_id: str, place: str, state: str) -> str | None:
    """Why a runner may not run this job now (None: it may): asked by the runner under the job's lock,
    and by the daemon, the batch and the Celery worker before they hand it on."""
    if place != "current":
        return f"job {job_id} is in {place}/, not current/; use `pop resume {job_id}`"
    if is_final(state):
        return f"job {job_id} has already ended ({state}); nothing to run"
    if state == "waiting":
        return f"job {job_id} waits at a gate: `pop approve {job_id}` first"
    return None


def runner_died(state: str, has_runner: bool) -> bool:
    """A job in ``current/`` that says it runs while no runner holds its lock: its runner died."""
    return state == "running" and not has_runner


# --- transitions (in memory; the caller writes the status) ----------------------------------------------
def approve(status: JobStatus) -> list[str]:
    """A job waiting at a gate goes on: its waiting gates are approved; returns their tasks."""
    gates = status.waiting_gates
    for name in gates:
        status.tasks[name].gate = "approved"
    status.state = "pending"
    return gates


def reject(status: JobStatus, reason: str | None) -> list[str]:
    """A job waiting at a gate ends: it fails with ``GateRejected``; returns the gates' tasks."""
    gates = status.waiting_gates
    for name in gates:
        status.tasks[name].gate = "rejected"
    status.state = "failed"
    status.error = ErrorInfo(
        task=gates[0] if gates else None,
        type="GateRejected",
        message=f"rejected at the gate after {', '.join(gates) or 'a task'}"
        + (f": {reason}" if reason else ""),
    )
    return gates


def cancel(status: JobStatus, error: ErrorInfo | None = None) -> None:
    """A job stopped by a cancel: its runner writes this itself when it was running (``error``: the
    task it stopped in), the service when it was not, or when the runner had to be killed before it
    could: then a stage it was running is stopped too (else the job reads cancelled while its grid and
    its stage runs still say running)."""
    status.state = "cancelled"
    status.error = error or ErrorInfo(type="Cancelled", message="the job was cancelled")
    ended = now_iso()
    for task in status.tasks.values():
        for run in task.stages.values():
            if run.state == "running":
                run.state, run.ended_at = "cancelled", run.ended_at or ended


def fail(status: JobStatus, error: ErrorInfo) -> None:
    status.state, status.error = "failed", error


def interrupted_at(status: JobStatus) -> str:
    """Where a job was when its runner died: ``task/stage``, or ``start-up``."""
    return f"{status.current_task}/{status.current_stage}" if status.current_task else "start-up"


def recover(status: JobStatus, max_recoveries: int, log: str) -> bool:
    """A job whose runner died: counted, and ready to go on from the interrupted stage (True), or, past
    ``max_recoveries``, failed with the reason (False). ``log``: where its runner wrote."""
    status.recoveries += 1
    where = interrupted_at(status)
    if status.recoveries <= max_recoveries:
        status.state = "pending"  # to run again: whoever holds its lock now starts it, or queues it
        return True
    fail(
        status,
        ErrorInfo(
            task=status.current_task,
            stage=status.current_stage,
            type="RunnerDied",
            message=(
                f"its runner died {status.recoveries} times (the last during {where}); see {log}. Fix: "
                f"find why (memory? a task that kills its process?), then `pop resume {status.job_id}`"
            ),
        ),
    )
    return False


def reset(status: JobStatus, tasks: list[str], rerun: set[str]) -> None:
    """A resumed job: the tasks in ``rerun`` (and any it never had) start afresh, the rest keep their
    results, and the job is pending again."""
    status.resumes += 1
    for name in tasks:
        if name in rerun or name not in status.tasks:
            # what its earlier runs used stays counted (a task's usage is all its usage.jsonl rows,
            # as the runner's tally reads them): a resumed job's cost never drops to $0 and back
            earlier = status.tasks[name].usage if name in status.tasks else None
            status.tasks[name] = TaskStatus() if earlier is None else TaskStatus(usage=earlier)
    status.state, status.error, status.ended_at = "pending", None, None
    status.current_task = status.current_stage = None
    status.refresh_progress()
