"""One task through the eleven stages, with the bounded critique -> refine -> validate loop."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pop_nb.errors import CellEvidence, TaskFailed
from pop_nb.execution.kernels import KernelProvider
from pop_nb.execution.stage import StageResult, execute_stage
from pop_nb.models.context import StageContext
from pop_nb.models.pipeline import STAGES, VALIDATION_STAGES, TaskSpec
from pop_nb.models.status import StageRun, now_iso
from pop_nb.models.trace import StageTrace
from pop_nb.pipeline.schemas import schema_errors
from pop_nb.pipeline.task_notebook import TaskNotebook
from pop_nb.redaction import redact
from pop_nb.store.atomic import atomic_write_json, read_json
from pop_nb.store.jobs import JobFolder, run_suffix

_BEFORE_VALIDATION = STAGES[: STAGES.index("validateStructure")]
_AFTER_LOOP = ("finalValidation", "integration")
_RETRY_BACKOFF_S = (1.0, 2.0, 4.0, 8.0)


@dataclass
class StageHooks:
    """How a task reports progress to the job runner (which owns the status file)."""

    started: Callable[[str, str, StageRun], StageTrace | None]  # what the stage's kernel is told of its span
    finished: Callable[[str, str, StageRun, TaskFailed | None], None]
    retried: Callable[[str, StageRun, TaskFailed], None]
    refined: Callable[[str, int], None]


@dataclass
class TaskRun:
    job: JobFolder
    name: str
    spec: TaskSpec
    notebook: TaskNotebook
    context: StageContext
    hooks: StageHooks
    provider: KernelProvider
    autosave_s: float = 10.0
    startup_timeout_s: float = 60.0
    should_stop: Callable[[], bool] = lambda: False
    previous: dict[str, StageRun] = field(default_factory=dict)
    """Stage runs of an interrupted earlier run of this task: the done ones are not run again."""
    outputs: dict[str, str] = field(default_factory=dict)
    prev: str | None = None

    def run(self) -> Any:
        """Run every stage that has cells; return the task's final output (also saved as ``final.json``)."""
        if self.notebook.tag_problems:
            raise TaskFailed(
                self.name,
                "ingestion",
                "NotebookTagError",
                "; ".join(self.notebook.tag_problems),
                str(self.notebook.path),
            )
        for stage in _BEFORE_VALIDATION:
            self._stage(stage)
        refinement = 0
        while True:
            errors, needs_more = self._validate(refinement)
            if not errors and not needs_more:
                break
            if not errors:
                errors = ["a validation stage set needsRefinement"]
            if refinement >= self.spec.max_refinements:
                raise self._validation_failure(errors, refinement)
            if not (self.notebook.has_stage("critique") or self.notebook.has_stage("refine")):
                raise self._validation_failure(
                    errors, refinement, "the notebook has no critique or refine cells"
                )
            refinement += 1
            self.hooks.refined(self.name, refinement)
            self.context.validation_errors = errors
            self._stage("critique", refinement)
            self._stage("refine", refinement)
        self.context.validation_errors = []
        for stage in _AFTER_LOOP:
            self._stage(stage)
        final = self._prev_value()
        atomic_write_json(self.job.final_output(self.name), final)
        return final

    # -------------------------------------------------------------------------------------------
    def _validate(self, refinement: int) -> tuple[list[str], bool]:
        """One validation pass: the errors found and whether a stage asked for refinement.

        A pass is resumed as a unit: its recorded outcome is reused only if it completed; a pass that was
        interrupted runs both its stages again (the first may have left flags the second added to).
        """
        record = self.job.validation_record(self.name, refinement)
        keys = [f"{s}{run_suffix(refinement)}" for s in VALIDATION_STAGES if self.notebook.has_stage(s)]
        if record.exists() and all(self._was_done(key) for key in keys):
            for stage in VALIDATION_STAGES:
                self._stage(stage, refinement)  # restores their outputs, runs nothing
            outcome = read_json(record)
            return list(outcome["errors"]), bool(outcome["needs_refinement"])
        for key in keys:
            self.previous.pop(key, None)
        flags = self._flags()
        flags.pop("validationErrors", None)
        flags.pop("needsRefinement", None)
        atomic_write_json(self.job.flags_file(self.name), flags)
        self._stage("validateStructure", refinement)
        schema = self.context.output_schema
        found = schema_errors(schema, self._prev_value()) if schema is not None else []
        self._stage("validateQuality", refinement)
        # flags accumulate over both validation stages; the schema is checked on what validateStructure left
        flags = self._flags()
        errors = list(flags.get("validationErrors") or []) + found
        needs_more = bool(flags.get("needsRefinement"))
        atomic_write_json(record, {"errors": errors, "needs_refinement": needs_more})
        return errors, needs_more

    def _was_done(self, key: str) -> bool:
        run = self.previous.get(key)
        return run is not None and run.state == "done"

    def _prev_value(self) -> Any:
        return read_json(self.job.path / self.prev) if self.prev else None

    def _validation_failure(self, errors: list[str], refinement: int, why: str = "") -> TaskFailed:
        stage = "validateQuality" if self.notebook.has_stage("validateQuality") else "validateStructure"
        notebook = self.job.stage_notebook(self.name, stage, refinement)
        spent = f"after {refinement} refinement(s) of max_refinements={self.spec.max_refinements}"
        detail = f"{why}; " if why else ""
        return TaskFailed(
            self.name,
            stage,
            "ValidationFailed",
            f"{detail}{spent}: " + " | ".join(errors),
            self.job.rel(notebook) if notebook.exists() else None,
        )

    def _flags(self) -> dict[str, Any]:
        file = self.job.flags_file(self.name)
        return read_json(file) if file.exists() else {}

    def _stage(self, stage: str, refinement: int = 0) -> StageResult | None:
        if not self.notebook.has_stage(stage):
            return None  # no cells: no kernel
        if self.should_stop():
            raise TaskFailed(self.name, stage, "Cancelled", "the job was cancelled before this stage started")
        key = f"{stage}{run_suffix(refinement)}"
        if self._was_done(key):  # done before the runner was interrupted: keep it, run nothing
            done = self.previous[key]
            if done.output:
                self.outputs[stage] = done.output
                self.prev = done.output
            return None
        self.context.prev = self.prev
        self.context.stages = dict(self.outputs)
        output_file = self.job.stage_output(self.name, stage, refinement)
        output_file.unlink(missing_ok=True)
        attempt = 1
        while True:
            run = StageRun(
                stage=stage, state="running", refinement=refinement, attempt=attempt, started_at=now_iso()
            )
            self.context.trace = self.hooks.started(self.name, key, run)
            atomic_write_json(self.job.stage_context(self.name, stage, refinement), self.context)
            try:
                result = self._execute(stage, refinement, attempt)
            except TaskFailed as failure:
                # a cancel kills the kernel mid-stage: that stage was stopped, it did not fail
                run.state = "cancelled" if self.should_stop() else "failed"
                run.ended_at, run.notebook = now_iso(), failure.notebook
                if failure.transient and attempt <= self.spec.retries and not self.should_stop():
                    kept = self._keep_failed_attempt(stage, refinement, attempt)
                    run.notebook = kept
                    self.hooks.retried(self.name, run, failure)
                    time.sleep(_RETRY_BACKOFF_S[min(attempt - 1, len(_RETRY_BACKOFF_S) - 1)])
                    attempt += 1
                    continue
                self.hooks.finished(self.name, key, run, failure)
                raise
            break
        run.state, run.ended_at = "done", now_iso()
        run.duration_ms, run.cells_ms = result.duration_ms, result.cells_ms
        run.notebook = self.job.rel(result.notebook)
        if output_file.exists():
            rel = self.job.rel(output_file)
            run.output = rel
            self.outputs[stage] = rel
            self.prev = rel
        self.hooks.finished(self.name, key, run, None)
        return result

    def _execute(self, stage: str, refinement: int, attempt: int) -> StageResult:
        """:func:`execute_stage`, where whatever else stops the stage (a cancel that shut the kernel
        provider while the stage waited for its kernel, a kernel that could not be started, a bug of
        ours) is this stage's failure too: its run ends with it, never left ``running`` in a job that
        has ended, and the job's error names the stage."""
        try:
            return execute_stage(
                self.job,
                self.notebook,
                self.name,
                stage,
                refinement=refinement,
                attempt=attempt,
                provider=self.provider,
                timeout_s=self.spec.timeout_s,
                autosave_s=self.autosave_s,
                startup_timeout_s=self.startup_timeout_s,
            )
        except TaskFailed:
            raise
        except Exception as exc:
            notebook = self.job.stage_notebook(self.name, stage, refinement)
            lines = [redact(line) for line in "".join(traceback.format_exception(exc)).splitlines()]
            raise TaskFailed(
                self.name,
                stage,
                type(exc).__name__,
                redact(str(exc) or repr(exc)),
                self.job.rel(notebook) if notebook.exists() else None,
                evidence=CellEvidence(traceback=lines),
            ) from exc

    def _keep_failed_attempt(self, stage: str, refinement: int, attempt: int) -> str | None:
        notebook = self.job.stage_notebook(self.name, stage, refinement)
        if not notebook.exists():
            return None
        kept = notebook.with_name(f"{notebook.stem}.attempt{attempt}.ipynb")
        notebook.rename(kept)
        return self.job.rel(kept)


__all__ = ["StageHooks", "TaskRun", "run_suffix"]
