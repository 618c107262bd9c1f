"""How a stage fails (past its deadline, its kernel dead) and what to do about a failed task: one sentence,
with the command, for the status file and every view."""

from __future__ import annotations

import re
from typing import Any

from pop_nb.models.status import ErrorInfo

_UNDEFINED = re.compile(r"name '([^']+)' is not defined")
_MISSING_NAME = re.compile(r"^'([^']+)' is undefined|^'([^']+)'$|has no attribute '([^']+)'")


class StageDeadlineExceeded(Exception):
    """The stage ran past its deadline; its kernel has been stopped and the notebook saved."""

    def __init__(self, cell_index: int | None) -> None:
        self.cell_index = cell_index
        super().__init__(f"stage deadline exceeded in cell {cell_index}")


class KernelDied(Exception):
    """The stage's kernel died (``os._exit``, a segfault, the OOM killer, or a cancel)."""

    def __init__(self, cell_index: int | None) -> None:
        self.cell_index = cell_index
        super().__init__(f"kernel died while running cell {cell_index}")


def suggest_fix(
    error: ErrorInfo,
    job_id: str,
    seed_data: dict[str, Any],
    has_seed_schema: bool,
    source: str | None = None,
) -> str:
    """The fix for ``error`` in job ``job_id``. A failure caused by the seed cannot be fixed by resuming
    (resume keeps the seed), so it says to submit a corrected seed as a new job. ``source`` names the
    task notebook to change (``tasks/t.ipynb of pipeline p``), not the executed copy that failed."""
    resume = f"`pop resume {job_id}`"
    task = error.task or "<task>"
    kind = error.type
    if kind == "Cancelled":
        return f"{resume} to run it again"
    if (
        kind == "DiskFull"
        or "No space left on device" in error.message
        or "Disk quota exceeded" in error.message
    ):
        return f"free space on the disk that is full (`df -h`), then {resume}: done tasks are kept"
    if kind == "BudgetExceeded":
        return f"`pop resume {job_id} --budget-usd <more>` (or raise budget_usd in the seed or pipeline.yaml)"
    if kind == "StageTimeout":
        return f"make the stage faster or raise tasks.{task}.timeout_s in pipeline.yaml, then {resume}"
    if kind == "KernelDied":
        return (
            "find what ended the kernel (os._exit, a crash, memory) in the stage notebook, fix the task "
            f"notebook, then {resume}"
        )
    if kind == "ValidationFailed":
        return (
            f"make the output pass (fix the task notebook or its prompts, or raise tasks.{task}."
            f"max_refinements), then {resume}"
        )
    if kind in ("UndefinedError", "KeyError"):
        match = _MISSING_NAME.search(error.message)
        name = next((g for g in match.groups() if g), None) if match else None
        if name is not None and name not in seed_data:
            guard = "" if has_seed_schema else " (declare seed_schema in pipeline.yaml to refuse such seeds)"
            return (
                f"{name!r} is not in this job's seed data: if the task needs it, submit a corrected seed "
                f"as a new job{guard}; resume keeps the seed. If the notebook is wrong instead, fix it, "
                f"then {resume}"
            )
    task_notebook = f"the task notebook {source}" if source else "the task notebook"
    if kind == "NameError":
        match = _UNDEFINED.search(error.message)
        name = repr(match.group(1)) if match else "a name"
        return (
            f"{name} is not defined in stage {error.stage or '?'}: each stage runs in a fresh kernel, so "
            "what an earlier stage set is gone. Set it in an untagged setup cell (those run before every "
            f"stage) or in this stage's cells of {task_notebook}; a value an earlier stage made reaches "
            f"this one as its pop.output, read with pop.prev or pop.stages. Then {resume}"
        )
    cell = error.exec_count
    where = f" (it failed in cell In [{cell}] of {error.notebook})" if cell is not None else ""
    return f"fix the cause in {task_notebook}{where}, then {resume}"
