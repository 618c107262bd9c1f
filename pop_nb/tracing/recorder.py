"""The runner's half of a job's trace: the job, task and stage spans.

Ids live in the status file (``trace``, each task's and stage run's ``span_id``), given when a thing
starts, so a kernel can be told its stage span before the stage runs, and a runner that picks up a dead
runner's job goes on with the same trace. A span is written when its thing ends, with the times the
status file has for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pop_nb.models.status import ErrorInfo, JobStatus, StageRun, TaskStatus, now_iso
from pop_nb.models.trace import SpanRecord, SpanStatus, StageTrace, TraceRef
from pop_nb.tracing.spans import iso_ns, new_span_id, new_trace_id, traceparent, write_span

_CHAIN = {"openinference.span.kind": "CHAIN"}


class JobTracer:
    """Writes one job's spans. ``job_dir`` follows the folder when the job moves."""

    def __init__(self, job_dir: Path, pipeline: str, capture_content: bool = False) -> None:
        self.job_dir = job_dir
        self.pipeline = pipeline
        self.capture_content = capture_content
        self.ref: TraceRef | None = None
        self.status: JobStatus | None = None
        self._carried: dict[str, str | None] = {}  # task -> when it began, for tasks a dead runner left

    def begin(self, status: JobStatus) -> TraceRef:
        """The trace of the run ``status`` is on: its own if it has one, else a new one."""
        if status.trace is None or status.trace.run != status.resumes:
            status.trace = TraceRef(
                trace_id=new_trace_id(), span_id=new_span_id(), run=status.resumes, started_at=now_iso()
            )
        self.ref, self.status = status.trace, status
        return status.trace

    def task_started(self, name: str, task: TaskStatus) -> None:
        """Give the task its span, or keep the one it had when its runner died (same trace)."""
        if name not in self._carried or task.span_id is None:
            task.span_id = new_span_id()

    def stage_started(self, task: TaskStatus, run: StageRun) -> StageTrace | None:
        """Give the stage run its span; what its kernel is told of it."""
        if self.ref is None or task.span_id is None:
            return None
        run.span_id = new_span_id()
        return StageTrace(
            traceparent=traceparent(self.ref.trace_id, run.span_id), capture_content=self.capture_content
        )

    def stage_ended(self, name: str, run: StageRun, error: str | None = None, why: str | None = None) -> None:
        """``error``: the failure's type; ``why``: its message."""
        task = self.status.tasks.get(name) if self.status is not None else None
        parent = task.span_id if task is not None else None
        if run.span_id is None or parent is None:
            return
        attributes: dict[str, Any] = {
            **_CHAIN,
            "pop.task": name,
            "pop.stage": run.stage,
            "pop.refinement": run.refinement,
            "pop.attempt": run.attempt,
            "pop.state": run.state,
        }
        if run.notebook:
            attributes["pop.notebook"] = run.notebook
        if run.cells_ms is not None:
            attributes["pop.cells_ms"] = run.cells_ms
        if error:
            attributes["error.type"] = error
        suffix = f".r{run.refinement}" if run.refinement else ""
        self._write(
            run.span_id,
            parent,
            f"stage {run.stage}{suffix}",
            "stage",
            run.started_at,
            run.ended_at,
            _status(run.state, error),
            f"{error}: {why}" if error and why else why or error,
            attributes,
            task=name,
            stage=run.stage,
        )

    def task_ended(self, name: str, task: TaskStatus) -> None:
        """A task that ended (done, failed, skipped); a skipped one that never started spans no time."""
        if self.ref is None:
            return
        span_id = task.span_id or new_span_id()
        task.span_id = span_id
        attributes: dict[str, Any] = {
            **_CHAIN,
            "pop.task": name,
            "pop.state": task.state,
            "pop.attempts": task.attempts,
            "pop.refinements": task.refinements,
        }
        if task.skip_reason:
            attributes["pop.skip_reason"] = task.skip_reason
        error = task.error
        self._write(
            span_id,
            self.ref.span_id,
            f"task {name}",
            "task",
            self._carried.get(name) or task.started_at or task.ended_at,
            task.ended_at,
            _status(task.state, error.type if error else None),
            _message(error),
            {**attributes, **_error_attributes(error)},
            task=name,
        )

    def job_ended(self, status: JobStatus) -> None:
        if self.ref is None:
            return
        attributes: dict[str, Any] = {
            **_CHAIN,
            "pop.job.id": status.job_id,
            "pop.pipeline": status.pipeline,
            "pop.run": self.ref.run + 1,
            "pop.state": status.state,
        }
        if status.name:
            attributes["pop.job.name"] = status.name
        for key, value in (("pop.executor", status.executor), ("pop.host", status.host)):
            if value:
                attributes[key] = value
        error = status.error
        self._write(
            self.ref.span_id,
            None,
            f"job {status.pipeline}",
            "job",
            self.ref.started_at,
            status.ended_at,
            _status(status.state, error.type if error else None),
            _message(error),
            {**attributes, **_error_attributes(error)},
        )

    def interrupted(self, name: str, task: TaskStatus) -> None:
        """A task that was running when its runner died: it goes on under the same span, and the stage
        that was running ends now, as an error."""
        self._carried[name] = task.started_at
        for run in task.stages.values():
            if run.state == "running":
                self._stage_interrupted(name, run)

    def _stage_interrupted(self, name: str, run: StageRun) -> None:
        stopped = run.model_copy(update={"state": "failed", "ended_at": now_iso()})
        self.stage_ended(
            name, stopped, "RunnerDied", "the runner stopped while this stage ran; the job was recovered"
        )

    # -----------------------------------------------------------------------------------------------
    def _write(
        self,
        span_id: str,
        parent: str | None,
        name: str,
        kind: Any,
        started_at: str | None,
        ended_at: str | None,
        status: SpanStatus,
        message: str | None,
        attributes: dict[str, Any],
        task: str | None = None,
        stage: str | None = None,
    ) -> None:
        assert self.ref is not None
        end = iso_ns(ended_at or now_iso())
        start = min(iso_ns(started_at), end) if started_at else end
        attributes.setdefault("pop.job.id", self.job_dir.name)
        attributes.setdefault("pop.pipeline", self.pipeline)
        write_span(
            self.job_dir,
            SpanRecord(
                trace_id=self.ref.trace_id,
                span_id=span_id,
                parent_id=parent,
                name=name,
                kind=kind,
                start_ns=start,
                end_ns=end,
                status=status,
                status_message=message,
                job=self.job_dir.name,
                task=task,
                stage=stage,
                attributes=attributes,
            ),
        )


def _status(state: str, error: str | None) -> SpanStatus:
    if state in ("done", "skipped"):
        return "ok"
    if state in ("failed", "cancelled") or error:
        return "error"
    return "unset"


def _message(error: ErrorInfo | None) -> str | None:
    return f"{error.type}: {error.message}" if error else None


def _error_attributes(error: ErrorInfo | None) -> dict[str, Any]:
    if error is None:
        return {}
    found = {"error.type": error.type, "pop.error.task": error.task, "pop.error.stage": error.stage}
    found["pop.error.notebook"] = error.notebook
    return {k: v for k, v in found.items() if v is not None}


__all__ = ["JobTracer"]
