"""Pydantic models: the on-disk formats and the API contract in one place."""

from pop_nb.models.pipeline import STAGES, LLMSettings, PipelineSpec, ProductSpec, TaskSpec
from pop_nb.models.records import Event, RunRecord, UsageRow
from pop_nb.models.seed import Seed, check_job_id, new_job_id
from pop_nb.models.status import ErrorInfo, JobStatus, StageRun, TaskStatus, Totals

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
