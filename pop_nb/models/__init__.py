"""Pydantic models: the on-disk formats and the API contract in one place.

Each lives in its own module (``pop_nb.models.status``, ...); the names below load on first use, so a
process that reads a status file does not build the pipeline models too.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pop_nb.models.pipeline import STAGES, LLMSettings, PipelineSpec, ProductSpec, TaskSpec
    from pop_nb.models.records import Event, RunRecord, UsageRow
    from pop_nb.models.seed import Seed, check_job_id, new_job_id
    from pop_nb.models.status import ErrorInfo, JobStatus, StageRun, TaskStatus, Totals

_HOME = {
    **dict.fromkeys(("STAGES", "LLMSettings", "PipelineSpec", "ProductSpec", "TaskSpec"), "pipeline"),
    **dict.fromkeys(("Event", "RunRecord", "UsageRow"), "records"),
    **dict.fromkeys(("Seed", "check_job_id", "new_job_id"), "seed"),
    **dict.fromkeys(("ErrorInfo", "JobStatus", "StageRun", "TaskStatus", "Totals"), "status"),
}
__all__ = [
    "STAGES",
    "ErrorInfo",
    "Event",
    "JobStatus",
    "LLMSettings",
    "PipelineSpec",
    "ProductSpec",
    "RunRecord",
    "Seed",
    "StageRun",
    "TaskSpec",
    "TaskStatus",
    "Totals",
    "UsageRow",
    "check_job_id",
    "new_job_id",
]


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'pop_nb.models' has no attribute {name!r}")
    return getattr(importlib.import_module(f"pop_nb.models.{_HOME[name]}"), name)
