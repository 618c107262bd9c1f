"""Execute one stage of one task: build its notebook, run it with papermill in its own kernel, save it."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pop_nb.errors import TRANSIENT_ERRORS, CellEvidence, StageTimeout, TaskFailed
from pop_nb.execution.engine import get_engine
from pop_nb.execution.failures import KernelDied, StageDeadlineExceeded
from pop_nb.execution.kernels import KERNEL_NAME, KernelProvider
from pop_nb.pipeline.task_notebook import TaskNotebook
from pop_nb.redaction import RedactingWriter, redact
from pop_nb.store.jobs import JobFolder


class _DropOurParameters(logging.Filter):
    """papermill warns of every injected parameter the parameters cell does not declare; ours
    (``pop_job_dir``, ``pop_stage``, ...) are meant to be injected, so those lines are noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Passed unknown parameter: pop_")


def _register_engine() -> None:
    """Register our engine even when pop-nb is not installed (running from a checkout)."""
    get_engine()
    papermill_log = logging.getLogger("papermill")
    papermill_log.setLevel(logging.WARNING)
    if not any(isinstance(f, _DropOurParameters) for f in papermill_log.filters):
        papermill_log.addFilter(_DropOurParameters())


@dataclass
class StageResult:
    notebook: Path
    duration_ms: int
    cells_ms: int


def execute_stage(
    job: JobFolder,
    tn: TaskNotebook,
    task: str,
    stage: str,
    *,
    refinement: int,
    attempt: int,
    provider: KernelProvider,
    timeout_s: float | None,
    autosave_s: float,
    startup_timeout_s: float,
) -> StageResult:
    """Run ``stage`` of ``task``; raises :class:`TaskFailed` (or :class:`StageTimeout`) on failure."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    _register_engine()
    out = job.stage_notebook(task, stage, refinement)
    log = job.stage_log(task, stage, refinement)
    out.parent.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    nb = tn.stage_notebook(stage)
    nb.metadata["pop"] = {
        "job": job.job_id,
        "task": task,
        "stage": stage,
        "refinement": refinement,
        "attempt": attempt,
        "source": str(tn.path),
    }
    parameters: dict[str, Any] = {
        "pop_job_dir": str(job.path),
        "pop_task": task,
        "pop_stage": stage,
        "pop_refinement": refinement,
        "pop_attempt": attempt,
    }
    started = time.monotonic()
    deadline = started + timeout_s if timeout_s else None
    rel = job.rel(out)
    with log.open("w", encoding="utf-8") as log_file:
        log_fh = RedactingWriter(log_file)
        try:
            executed = papermill.execute_notebook(
                nb,
                str(out),
                parameters=parameters,
                engine_name="pop",
                kernel_name=KERNEL_NAME,
                progress_bar=False,
                stdout_file=log_fh,
                stderr_file=log_fh,
                start_timeout=startup_timeout_s,
                kernel_provider=provider,
                deadline=deadline,
                kernel_cwd=str(tn.path.parent),
                autosave_s=autosave_s,
            )
        except PapermillExecutionError as exc:
            failure = _failure(task, stage, exc, rel, timeout_s)
            log_fh.write(_failure_report(failure))  # the log of a failed stage says why
            raise failure from None
        except StageDeadlineExceeded:  # before any cell ran: nothing to point at
            raise StageTimeout(task, stage, timeout_s or 0, rel) from None
        except KernelDied:
            raise TaskFailed(
                task, stage, "KernelDied", "the kernel exited before any cell ran", rel
            ) from None
        finally:
            log_fh.close()
    elapsed = int((time.monotonic() - started) * 1000)
    cells = sum(float(c.metadata.get("papermill", {}).get("duration") or 0) for c in executed.cells)
    return StageResult(notebook=out, duration_ms=elapsed, cells_ms=int(cells * 1000))


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _failure(task: str, stage: str, exc: Any, rel: str, timeout_s: float | None) -> TaskFailed:
    """The stage's failure with its evidence: which cell (index, ``In [n]``, source), ``ename``,
    ``evalue`` and the traceback (colour codes stripped, secrets masked)."""
    evidence = CellEvidence(
        cell_index=exc.cell_index,
        exec_count=exc.exec_count,
        source=redact(exc.source or ""),
        traceback=[redact(_ANSI.sub("", line)) for line in exc.traceback or []],
    )
    if exc.ename == "StageTimeout":
        return StageTimeout(task, stage, timeout_s or 0, rel, evidence=evidence)
    message = _first_line(redact(exc.evalue or ""))
    return TaskFailed(
        task, stage, exc.ename, message, rel, transient=exc.ename in TRANSIENT_ERRORS, evidence=evidence
    )


def _failure_report(failure: TaskFailed) -> str:
    ev = failure.evidence
    where = f"cell In [{ev.exec_count}] (index {ev.cell_index})" if ev else "a cell"
    lines = [f"\n--- stage {failure.stage} failed in {where}: {failure.error_type}: {failure.message}"]
    if ev and ev.source:
        lines += ["--- the cell:", ev.source]
    if ev and ev.traceback:
        lines += ["--- traceback:", *ev.traceback]
    return "\n".join(lines) + "\n"


def _first_line(text: str, limit: int = 2000) -> str:
    text = (text or "").strip()
    return text if len(text) <= limit else text[:limit] + "..."
