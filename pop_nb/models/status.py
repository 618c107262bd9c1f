"""``tasks-status.json``: the job's state, rewritten atomically after every stage.

One pydantic model set is both the on-disk format and what the API returns.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import Field

from pop_nb.models.base import Model
from pop_nb.models.pipeline import LOOP_STAGES
from pop_nb.models.trace import TraceRef

SCHEMA_VERSION = 1

JobState = Literal["pending", "running", "waiting", "done", "failed", "cancelled"]
TaskState = Literal["pending", "running", "done", "failed", "skipped"]
StageState = Literal["running", "done", "failed", "cancelled"]  # cancelled: stopped by a cancel


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class ErrorInfo(Model):
    """Why a task or job failed, with the evidence: the failing cell and its traceback, and the fix."""

    task: str | None = None
    stage: str | None = None
    type: str = Field(description="The exception's name (papermill's ename), or ours: StageTimeout, ...")
    message: str = Field(description="The exception's value (evalue), first 2000 characters.")
    notebook: str | None = Field(default=None, description="The executed stage notebook, job-relative.")
    cell_index: int | None = Field(default=None, description="Failing cell's index in the stage notebook.")
    exec_count: int | None = Field(default=None, description="Its execution count: the In [n] shown.")
    cell_source: str | None = Field(default=None, description="The failing cell's source.")
    traceback: list[str] = Field(default_factory=list, description="Traceback lines, without colour codes.")
    fix: str | None = Field(default=None, description="What to do about it, as a command where one fits.")


class Totals(Model):
    """LLM use, summed from ``usage.jsonl``. The same two counts mean the same everywhere
    (``pop status``, ``pop costs``, the widget, the dashboard, ``runs.jsonl``)."""

    calls: int = Field(default=0, description="Requests that got an answer (ledger replays included).")
    attempts: int = Field(default=0, description="Every request tried: calls plus failed attempts.")
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = Field(default=0.0, description="Known cost; unpriced calls are not in it.")
    unpriced_calls: int = Field(default=0, description="Answered calls whose model has no price.")
    cache_hits: int = Field(default=0, description="Calls answered from the response cache, at $0.")
    saved_usd: float = Field(default=0.0, description="What the cache hits cost when they were paid for.")

    def add(self, other: Totals) -> None:
        self.calls += other.calls
        self.attempts += other.attempts
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cost_usd += other.cost_usd
        self.unpriced_calls += other.unpriced_calls
        self.cache_hits += other.cache_hits
        self.saved_usd += other.saved_usd

    def cost_text(self, digits: int = 6) -> str:
        return cost_text(self.cost_usd, self.unpriced_calls, self.calls, digits)

    def saved_text(self, digits: int = 6) -> str:
        """``saved $0.0012 (3 cache hits)``, or "" when nothing came from the cache."""
        if not self.cache_hits:
            return ""
        hits = f"{self.cache_hits} cache hit{'s' if self.cache_hits != 1 else ''}"
        return f"saved ${self.saved_usd:.{digits}f} ({hits})"


def cost_text(cost_usd: float, unpriced_calls: int = 0, calls: int | None = None, digits: int = 6) -> str:
    """A cost as people should read it: unpriced calls make the total unknown, never a silent $0."""
    known = f"${cost_usd:.{digits}f}"
    if not unpriced_calls:
        return known
    what = f"{unpriced_calls} unpriced call{'s' if unpriced_calls != 1 else ''}"
    if calls is not None and unpriced_calls >= calls and cost_usd == 0:
        return f"unknown ({what})"
    return f"{known} + unknown ({what})"


class StageRun(Model):
    """One execution of one stage; keyed in :attr:`TaskStatus.stages` by ``<stage>[.r<k>]``."""

    stage: str
    state: StageState
    refinement: int = 0
    attempt: int = 1
    started_at: str
    ended_at: str | None = None
    duration_ms: int | None = None
    cells_ms: int | None = Field(default=None, description="Time spent executing cells, from papermill.")
    notebook: str | None = Field(default=None, description="Executed notebook, relative to the job folder.")
    output: str | None = Field(default=None, description="Output file, relative to the job folder.")
    span_id: str | None = Field(default=None, description="Its span in the job's trace (spans.jsonl).")


class TaskStatus(Model):
    state: TaskState = "pending"
    span_id: str | None = Field(default=None, description="Its span in the job's trace (spans.jsonl).")
    started_at: str | None = None
    ended_at: str | None = None
    stages: dict[str, StageRun] = Field(default_factory=dict)
    attempts: int = 0
    refinements: int = 0
    stages_planned: int | None = Field(
        default=None,
        description="The stages its notebook has cells for, critique and refine not counted (they run "
        "only when validation asks): what its progress while it runs is counted against.",
    )
    usage: Totals = Field(default_factory=Totals)
    skip_reason: str | None = None
    skip_kind: str | None = Field(
        default=None, description="condition | upstream | unused_fallback | not_routed"
    )
    error: ErrorInfo | None = None
    fallback_for: str | None = Field(
        default=None, description="Set when this task ran as another's fallback."
    )
    gate: Literal["waiting", "approved", "rejected"] | None = Field(
        default=None, description="For a task with gate: true, once it is done."
    )


class JobStatus(Model):
    schema_version: int = SCHEMA_VERSION
    job_id: str
    pipeline: str
    name: str | None = None
    state: JobState = "pending"
    current_task: str | None = None
    current_stage: str | None = None
    progress: int = Field(
        default=0, ge=0, le=100, description="Percent of tasks that ended well; 100 only when done."
    )
    created_at: str = Field(default_factory=now_iso)
    started_at: str | None = None
    updated_at: str = Field(default_factory=now_iso)
    ended_at: str | None = None
    error: ErrorInfo | None = None
    totals: Totals = Field(
        default_factory=Totals,
        description="Everything the job has used, earlier runs included: the sum of its usage.jsonl.",
    )
    tasks: dict[str, TaskStatus] = Field(default_factory=dict)
    resumes: int = 0
    recoveries: int = Field(default=0, description="Times a dead runner's job was picked up again.")
    executor: str | None = Field(default=None, description="The executor that ran it last: local, celery.")
    host: str | None = Field(default=None, description="The machine its runner ran on last.")
    worker: str | None = Field(default=None, description="The Celery worker (name@host) that ran it, if any.")
    trace: TraceRef | None = Field(default=None, description="The trace of its current run (spans.jsonl).")

    @property
    def waiting_gates(self) -> list[str]:
        """Tasks whose gate waits for ``pop approve`` / ``pop reject``."""
        return [name for name, task in self.tasks.items() if task.gate == "waiting"]

    def refresh_progress(self) -> None:
        """``progress``: the share of tasks that ended well (done, or skipped by their condition or as
        an unneeded fallback), a task under way counting for the share of its planned stages done; a
        failed task is no progress, so a failed job never shows 100%."""
        if self.state == "done":
            self.progress = 100
        elif self.tasks:
            good = sum(_task_progress(t) for t in self.tasks.values())
            self.progress = min(99, round(100 * good / len(self.tasks)))
        totals = Totals()
        for task in self.tasks.values():
            totals.add(task.usage)
        self.totals = totals
        self.updated_at = now_iso()


class TaskGate(Model):
    """A task's gate, and nothing else of it: what a job's summary needs of its tasks."""

    gate: Literal["waiting", "approved", "rejected"] | None = None


class StatusHead(Model):
    """The part of a ``tasks-status.json`` that a list of jobs shows, filters and sorts on (a job's
    summary): read ten times faster than the whole :class:`JobStatus`, its tasks' runs skipped, not
    validated. Same fields and types as there, but each task keeps only its gate (a unit test holds the
    two together)."""

    job_id: str
    pipeline: str
    name: str | None = None
    state: JobState = "pending"
    current_task: str | None = None
    current_stage: str | None = None
    progress: int = 0
    created_at: str = ""
    started_at: str | None = None
    updated_at: str = ""
    ended_at: str | None = None
    error: ErrorInfo | None = None
    totals: Totals = Field(default_factory=Totals)
    recoveries: int = 0
    executor: str | None = None
    host: str | None = None
    worker: str | None = None
    tasks: dict[str, TaskGate] = Field(default_factory=dict)

    @property
    def waiting_gates(self) -> list[str]:
        """Tasks whose gate waits for ``pop approve`` / ``pop reject``."""
        return [name for name, task in self.tasks.items() if task.gate == "waiting"]


_UNDER_WAY_AT_MOST = 0.95  # a task is whole only once it is done


def _task_progress(task: TaskStatus) -> float:
    """How much of one task is done, 0 to 1 (see :meth:`JobStatus.refresh_progress`)."""
    if task.state == "done" or (task.state == "skipped" and task.skip_kind != "upstream"):
        return 1.0
    if task.state not in ("running", "pending") or not task.stages_planned:
        return 0.0
    done = {run.stage for run in task.stages.values() if run.state == "done" and run.stage not in LOOP_STAGES}
    return min(len(done) / task.stages_planned, _UNDER_WAY_AT_MOST)
