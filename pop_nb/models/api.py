"""What the job functions of :mod:`pop_nb.service` return: one model set for the CLI, ``%pop``, the
widgets and the server's REST API (the JSON a client gets is ``model_dump(mode="json")``)."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from pop_nb.models.base import Model
from pop_nb.models.compare import Comparison, ItemView
from pop_nb.models.lifecycle import Action, Activity, allowed_actions
from pop_nb.models.status import ErrorInfo, JobStatus, StatusHead, TaskStatus, Totals


class JobSummary(Model):
    """One job as a list shows it."""

    id: str
    pipeline: str
    name: str | None = None
    state: str
    place: str = Field(description="current | complete | failed")
    activity: Activity = Field(
        description="running (a runner holds it), queued (in current/, no runner yet or its runner died), "
        "waiting (at a gate), ended"
    )
    progress: int
    current_task: str | None = None
    current_stage: str | None = None
    created_at: str
    started_at: str | None = None
    ended_at: str | None = None
    updated_at: str
    totals: Totals
    cost: str = Field(description="The cost as people should read it (unpriced calls make it unknown).")
    saved: str = Field(
        default="", description="What the response cache saved, as people read it; empty when nothing."
    )
    error: ErrorInfo | None = None
    waiting_gates: list[str] = Field(default_factory=list)
    recoveries: int = 0
    executor: str | None = Field(default=None, description="Who ran it last: local, celery, ...")
    host: str | None = Field(default=None, description="The machine its runner ran on last.")
    worker: str | None = Field(default=None, description="The Celery worker (name@host) that ran it, if any.")
    actions: list[Action] = Field(
        default_factory=list,
        description="What may be done to it now (allowed_actions): front ends show these.",
    )

    @property
    def where(self) -> str:
        """Where it ran, in a few words: ``vm``, ``celery pop-1@vm``."""
        if self.worker:
            return f"{self.executor or 'worker'} {self.worker}"
        return self.host or ""

    @classmethod
    def of(cls, status: JobStatus | StatusHead, place: str, activity: Activity) -> JobSummary:
        return cls(
            id=status.job_id,
            pipeline=status.pipeline,
            name=status.name,
            state=status.state,
            place=place,
            activity=activity,
            progress=status.progress,
            current_task=status.current_task,
            current_stage=status.current_stage,
            created_at=status.created_at,
            started_at=status.started_at,
            ended_at=status.ended_at,
            updated_at=status.updated_at,
            totals=status.totals,
            cost=status.totals.cost_text(),
            saved=status.totals.saved_text(),
            error=status.error,
            waiting_gates=status.waiting_gates,
            recoveries=status.recoveries,
            executor=status.executor,
            host=status.host,
            worker=status.worker,
            actions=allowed_actions(place, activity),
        )


class JobDeleted(Model):
    """``DELETE /pop/api/jobs/<id>``: what was removed."""

    id: str
    place: str = Field(description="Where it was: complete, failed or archive.")
    files: int
    bytes: int


class JobPage(Model):
    """A page of jobs, newest first, with how many match the filters in all."""

    jobs: list[JobSummary]
    total: int
    offset: int
    limit: int
    data_dir: str


class StageView(Model):
    """One stage run and where its executed notebook is."""

    task: str
    key: str = Field(description="<stage>[.r<k>]")
    stage: str
    refinement: int
    attempt: int
    state: str
    started_at: str | None = None
    duration_ms: int | None = None
    notebook: str | None = Field(default=None, description="Relative to the job folder.")
    path: str | None = Field(default=None, description="Absolute path of the executed notebook.")
    calls: int = Field(default=0, description="LLM calls of this run of the stage (since it started).")
    cost_usd: float = Field(default=0.0, description="What they cost.")


class RunView(Model):
    """One run of a job: the first, and one per resume (read from its events and usage)."""

    n: int = Field(description="1 for the first run, then one more per resume.")
    how: str | None = Field(default=None, description="What the resume reset (None for the first run).")
    started_at: str | None = None
    ended_at: str | None = None
    state: str = Field(description="done | failed | cancelled | waiting, or running / pending (the last).")
    error: str | None = Field(default=None, description="<type>: <message>, when it failed.")
    calls: int = 0
    cache_hits: int = 0
    cost_usd: float = 0.0
    cost: str = Field(description="Its cost as people read it.")
    notebooks: list[str] = Field(
        default_factory=list,
        description="Executed notebooks it left in history/<n>/ (relative to the job folder); the last "
        "run's are the job's stages.",
    )


class JobDetail(JobSummary):
    """One job with everything a job view shows."""

    path: str
    lab_dir: str | None = Field(
        default=None,
        description="The job folder relative to the Jupyter server's root (set by the server extension; "
        "None outside it), so JupyterLab can open its notebooks.",
    )
    tasks: dict[str, TaskStatus]
    stages: list[StageView]
    outputs: dict[str, Any]
    products: list[str]
    runs: list[RunView] = Field(default_factory=list, description="Every run, the first first.")
    seed: dict[str, Any] = Field(
        default_factory=dict, description="Its seed.json (pipeline, name, data, llm, config, ...)."
    )


class Finding(Model):
    severity: str = "info"
    finding: str
    fix: str = ""


class Explanation(Model):
    """What ``pop compile --explain`` last wrote, while it is of the pipeline as it is now."""

    intention: str
    aligned: bool
    findings: list[Finding] = Field(default_factory=list)
    model: str = ""
    explained_at: str | None = None


class PipelineInfo(Model):
    slug: str
    file: str
    description: str = ""
    tasks: list[str] = Field(default_factory=list)
    error: str | None = Field(default=None, description="Why it does not load, if it does not.")
    seed_schema: dict[str, Any] | None = Field(default=None, description="JSON Schema of a seed's data.")
    examples: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="The example seeds in the pipeline's seeds/ folder, by file name."
    )
    architecture: list[str] = Field(
        default_factory=list, description="Its control flow as numbered Markdown steps, from the definition."
    )
    explanation: Explanation | None = Field(
        default=None, description="Intention and alignment, once `pop compile <slug> --explain` has run."
    )


class Overview(Model):
    """What ``pop status`` shows: jobs grouped by what they are doing, and what is not a seed."""

    running: list[JobSummary]
    queued: list[JobSummary]
    waiting: list[JobSummary]
    failed: list[JobSummary] = Field(description="The latest failures, most recent first.")
    failed_count: int = Field(default=0, description="Every failed job, listed or not.")
    done: int
    done_totals: Totals
    latest_done: str | None = None
    strays: list[str] = Field(default_factory=list, description="Files in pending/ that are not seeds.")


class VariantProgress(Model):
    """How far one variant of an experiment has got (its batch's jobs, from where their folders are)."""

    name: str
    batch: str = Field(description="The batch that runs it: exp-<experiment>-<variant>.")
    planned: int = Field(description="Items x repeat.")
    submitted: int = Field(description="Jobs made so far.")
    running: int = Field(description="Jobs in current/: running or queued.")
    done: int
    failed: int = Field(description="Jobs in failed/ (failed or cancelled).")
    rejected: int = Field(description="Items whose seed the pipeline refused.")


class ExperimentInfo(Model):
    """An experiment as the Pipelines panel lists it."""

    name: str
    file: str = Field(description="Its YAML, relative to the project.")
    lab_file: str | None = Field(
        default=None, description="Its YAML as JupyterLab names it (None: unreachable)."
    )
    pipeline: str | None = None
    baseline: str | None = None
    repeat: int = 1
    items: int | None = Field(default=None, description="Lines in its dataset (None: no dataset there).")
    variants: list[VariantProgress] = Field(default_factory=list)
    error: str | None = Field(default=None, description="Why it does not load, if it does not.")


class ItemScores(Model):
    item: str
    scores: dict[str, dict[str, float | None]] = Field(
        description="variant -> metric -> score (repeats' mean)."
    )


class ExperimentDetail(Model):
    """``GET /pop/api/experiments/<name>``: the comparison of what is finished, graded with what is kept
    (``pending`` grades are asked for by ``POST .../score``), and every item's scores."""

    info: ExperimentInfo
    comparison: Comparison
    items: list[ItemScores] = Field(description="The dataset's first items (at most 2,000), in its order.")
    items_total: int
    lab_data: str | None = Field(default=None, description="The data folder as JupyterLab names it.")


class ExperimentItem(ItemView):
    """``GET /pop/api/experiments/<name>/item?id=K``: one item under every variant."""

    lab_data: str | None = Field(default=None, description="The data folder as JupyterLab names it.")


class JobFile(Model):
    """A file (or folder) of a job in the shape of Jupyter's Contents API, read-only: what the
    ``pop-job:`` drive of the Lab extension opens, found by job id wherever the job's folder is now."""

    name: str
    path: str = Field(description="<job id>/<path in the job folder>.")
    type: str = Field(description="notebook | file | directory")
    format: str | None = Field(default=None, description="json | text | base64; None without content.")
    mimetype: str | None = None
    content: Any = Field(
        default=None,
        description="The notebook (cells trusted and locked), the text, base64, or a folder's entries "
        "(without their content); None when asked without content.",
    )
    writable: bool = Field(default=False, description="Always false: a job's record is not edited in place.")
    created: str
    last_modified: str
    size: int | None = None


class LogChunk(Model):
    """``GET /pop/api/jobs/<id>/log``: a stage's log from ``offset`` (whole lines while it runs)."""

    task: str
    stage: str
    refinement: int = 0
    state: str = Field(description="The stage run's state: running, done, failed, ... (pending: not yet).")
    text: str
    offset: int = Field(description="Where the next read starts (bytes).")
    size: int = Field(description="The log's size now (bytes).")
    skipped: int = Field(
        default=0, description="Bytes left out before text (a long log is read from its end)."
    )


class StageSnapshot(Model):
    """``POST /pop/api/jobs/<id>/snapshot``: a running stage asked to write its notebook as it stands."""

    notebook: str = Field(description="The stage's notebook, relative to the job folder.")
    saved: bool = Field(description="Whether it is there, written since the request (or the stage ended).")
    message: str | None = None


class CopyMade(Model):
    """``POST /pop/api/jobs/<id>/copy``: the editable copy of one of the job's notebooks."""

    job: str
    source: str = Field(description="The notebook copied, relative to the job folder.")
    path: str = Field(description="The copy (absolute), under scratch/<job id>/ at the project root.")
    lab_path: str | None = Field(
        default=None, description="The copy as JupyterLab names it (None: outside the server's root)."
    )


# -- request bodies and the error body: the rest of the REST contract --------------------------------


class Request(Model):
    """A request body: exactly these keys, of exactly these types (a misspelt key is refused, not lost)."""

    model_config = ConfigDict(
        defer_build=True, json_schema_serialization_defaults_required=True, strict=True, extra="forbid"
    )


class StartJob(Request):
    """``POST /pop/api/jobs``: a seed's data (or a whole seed) for a pipeline; the job starts at once."""

    pipeline: str
    data: dict[str, Any] | None = None
    seed: dict[str, Any] | None = Field(default=None, description="A whole seed (name, data, llm, config).")
    id: str | None = Field(default=None, description="The job id (default: <slug>-<time>-<hex>).")


class CheckSeed(Request):
    """``POST /pop/api/pipelines/<slug>/check``."""

    seed: dict[str, Any] = Field(default_factory=dict)


class ResumeJob(Request):
    from_task: str | None = Field(default=None, description="Reset this task and everything after it.")
    budget_usd: float | None = Field(default=None, description="A new budget for the job.")


class ApproveJob(Request):
    outputs: dict[str, Any] | None = Field(
        default=None,
        description="task -> the approver's correction of a waiting task's output (checked against its "
        "schema; downstream tasks read it; the task's own is kept).",
    )


class RejectJob(Request):
    reason: str | None = None


class StageRef(Request):
    task: str
    stage: str
    refinement: int = Field(default=0, ge=0, le=100)


class CopyNotebook(Request):
    path: str = Field(description="The notebook to copy, relative to the job folder.")


class NoBody(Request):
    """cancel takes no fields (an empty object, or no body)."""


class ErrorBody(Model):
    """Every 4xx and 5xx under ``/pop/api``."""

    error: str = Field(
        description="The error's class (SeedError, JobNotFound, ...) or HTTP name (Forbidden)."
    )
    message: str = Field(description="What is wrong and what to do.")
