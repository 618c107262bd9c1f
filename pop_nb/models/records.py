"""Append-only log rows: ``events.jsonl``, ``usage.jsonl`` and ``complete/runs.jsonl``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pop_nb.models.base import Model
from pop_nb.models.status import now_iso

EventKind = Literal["job", "task", "stage", "llm"]
EventStatus = Literal[
    "created",
    "started",
    "done",
    "failed",
    "skipped",
    "retried",
    "resumed",
    "cancelled",
    "selected",
    "waiting",
    "approved",
    "rejected",
    "archived",
    "restored",
    "routed",
    "recovered",
    "dispatched",
    "resent",
]


class Event(Model):
    ts: str = Field(default_factory=now_iso)
    job: str
    kind: EventKind
    status: EventStatus
    task: str | None = None
    stage: str | None = None
    refinement: int | None = None
    attempt: int | None = None
    notebook: str | None = None
    duration_ms: int | None = None
    message: str | None = None
    pid: int | None = None


class UsageRow(Model):
    ts: str = Field(default_factory=now_iso)
    job: str | None
    pipeline: str | None
    task: str | None
    stage: str | None
    attempt: int = 1
    refinement: int = 0
    provider: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float = 0.0
    cost_source: Literal["provider", "price_map", "local", "unpriced", "cache"] = "price_map"
    latency_ms: int = 0
    request_hash: str
    cache_hit: bool = False
    saved_usd: float = Field(
        default=0.0, description="what a cache hit would have cost: the original call's cost"
    )
    paid_by: str | None = Field(default=None, description="on a cache hit: the job that paid for the answer")
    cache_key: str | None = Field(
        default=None, description="the response cache entry this call was answered from or kept in"
    )
    ok: bool = True
    error: str | None = None


class MetricRow(Model):
    """One line of a job's ``metrics.jsonl``: a number a stage (``pop.metric``) or a scorer measured."""

    ts: str = Field(default_factory=now_iso)
    job: str | None
    pipeline: str | None
    task: str | None
    stage: str | None
    refinement: int = 0
    name: str
    value: float
    scorer: str | None = Field(default=None, description="the scorer that measured it; null from a stage")


class RunRecord(Model):
    """One line of ``complete/runs.jsonl`` per finished job."""

    ts: str = Field(default_factory=now_iso)
    job: str
    pipeline: str
    name: str | None
    state: str
    started_at: str | None
    ended_at: str | None
    duration_ms: int | None
    tasks: int
    calls: int
    attempts: int = 0
    input_tokens: int
    output_tokens: int
    cost_usd: float
    unpriced_calls: int = 0
    executor: str | None = None
    host: str | None = None
    worker: str | None = None


class Dispatch(Model):
    """``dispatch.json``: the executor a job was last handed to. Whoever finds the job unattended
    (the daemon, a batch) leaves it to that executor unless it is ``local``."""

    executor: str
    queue: str | None = None
    ticket: str | None = Field(default=None, description="The executor's id for the job (a Celery task id).")
    by: str = Field(description="The host that dispatched it.")
    at: str = Field(default_factory=now_iso)
    sends: int = Field(
        default=1, ge=1, description="How many times it was sent for this run (again when no worker took it)."
    )
