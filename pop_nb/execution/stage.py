"""Execute one stage of one task: build its notebook, run it with papermill in its own kernel, save it."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pop_nb.errors import TRANSIENT_ERRORS, StageTimeout, TaskFailed
from pop_nb.execution.engine import KernelDied, StageDeadlineExceeded, get_engine
from pop_nb.execution.kernels import KERNEL_NAME, KernelProvider
from pop_nb.llm.secrets import RedactingWriter
from pop_nb.pipeline.task_notebook import TaskNotebook
from pop_nb.store.jobs import JobFolder


def _register_engine() -> None:
    """Register our engine even when pop-nb is not installed (running from a checkout)."""
    get_engine()
    logging.getLogger("papermill").setLevel(logging.WARNING)


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
    try:
        with log.open("w", encoding="utf-8") as log_file:
            log_fh = RedactingWriter(log_file)
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
        raise TaskFailed(
            task, stage, exc.ename, _first_line(exc.evalue), rel, transient=exc.ename in TRANSIENT_ERRORS
        ) from None
    except StageDeadlineExceeded:
        raise StageTimeout(task, stage, timeout_s or 0, rel) from None
    except KernelDied:
        raise TaskFailed(
            task, stage, "KernelDied", "the kernel process exited (os._exit, a crash, or out of memory)", rel
        ) from None
    elapsed = int((time.monotonic() - started) * 1000)
    cells = sum(float(c.metadata.get("papermill", {}).get("duration") or 0) for c in executed.cells)
    return StageResult(notebook=out, duration_ms=elapsed, cells_ms=int(cells * 1000))


def _first_line(text: str, limit: int = 2000) -> str:
    text = (text or "").strip()
    return text if len(text) <= limit else text[:limit] + "..."
