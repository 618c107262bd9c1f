"""A batch's files: ``manifest.jsonl`` (one :class:`ManifestLine` per seed) and ``summary.json``
(:class:`BatchSummary`), under ``<data>/batches/<name>/``."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from pop_nb.models.base import Model


class ManifestLine(Model):
    """One seed of the batch: its job, or why it was not submitted."""

    n: int = Field(description="1-based place of the seed in the list.")
    source: str = Field(description="Where the seed came from: file, or file:line.")
    job: str | None = None
    error: str | None = Field(default=None, description="Why the seed was not submitted.")


class JobOutcome(Model):
    job: str
    state: str
    cost_usd: float = 0.0
    duration_s: float | None = None
    where: str = ""
    error: str | None = None
    resume: str | None = Field(default=None, description="The command that resumes it, if it failed.")


class BatchSummary(Model):
    """What a batch run ended with (``batches/<name>/summary.json``)."""

    name: str
    pipeline: str
    executor: str
    started_at: str
    ended_at: str
    duration_s: float
    seeds: int
    rejected: int = Field(description="Seeds not submitted (see the manifest for why).")
    done: int
    failed: int
    skipped: int = Field(description="Jobs already done before this run: not run again.")
    cost_usd: float = Field(description="Cost of every job of the batch, earlier runs included.")
    cost_this_run_usd: float
    stalled: str | None = Field(
        default=None, description="Why the batch stopped waiting before every job ended (nothing could move)."
    )
    slowest_tasks: list[dict[str, Any]]
    jobs: list[JobOutcome]
