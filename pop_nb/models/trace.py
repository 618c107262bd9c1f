"""``spans.jsonl``: a job's trace, one finished span per line, in OpenTelemetry's terms.

A job's run is one trace: a ``job`` span, a ``task`` span per task it ran, a ``stage`` span per stage
run (each retry of a stage its own), and an ``llm`` span per request sent to a model (each row of
``usage.jsonl``, failed attempts included), under the stage that made it. Spans that a cell makes with
the OpenTelemetry API (``pop-nb[otel]``) are ``user`` spans under their stage. LLM spans carry the
GenAI semantic conventions' attributes (``gen_ai.*``) and pop-nb's exact cost (``pop.cost_usd``, ...).

Ids are hex, as W3C trace context writes them: 32 digits for a trace, 16 for a span. Times are Unix
nanoseconds. Each line is whole: it is written once, when the span ends.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from pop_nb.models.base import Model

SpanKind = Literal["job", "task", "stage", "llm", "user"]
SpanStatus = Literal["ok", "error", "unset"]


class TraceRef(Model):
    """The trace of a job's current run (``tasks-status.json``): a resume starts a new one; a runner
    that picks up a dead runner's job goes on with it."""

    trace_id: str
    span_id: str = Field(description="The job span's id: the root of the trace.")
    run: int = Field(description="The job's resumes when the trace began: run n + 1.")
    started_at: str


class StageTrace(Model):
    """What a stage's kernel is told of its trace (``StageContext.trace``)."""

    traceparent: str = Field(description="W3C trace context of the stage span: 00-<trace>-<span>-01.")
    capture_content: bool = Field(
        default=False, description="Put prompts and answers (redacted) on LLM spans: [otel] capture_content."
    )


class SpanRecord(Model):
    """One line of ``spans.jsonl``."""

    trace_id: str
    span_id: str
    parent_id: str | None = None
    name: str
    kind: SpanKind
    start_ns: int
    end_ns: int
    status: SpanStatus = "unset"
    status_message: str | None = None
    job: str | None = None
    task: str | None = None
    stage: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


class TraceNode(Model):
    """A span in a job's tree, with what the LLM calls under it add up to (itself included)."""

    trace_id: str
    span_id: str
    parent_id: str | None = None
    name: str
    kind: SpanKind
    status: SpanStatus
    status_message: str | None = None
    start_ns: int
    end_ns: int | None = Field(default=None, description="Null: still open (the job, task or stage runs).")
    task: str | None = None
    stage: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    calls: int = Field(default=0, description="LLM requests that got an answer, at and under this span.")
    attempts: int = Field(default=0, description="Every LLM request, failed ones included.")
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = Field(default=0.0, description="Known cost; unpriced calls are not in it.")
    unpriced_calls: int = 0
    children: list[TraceNode] = Field(default_factory=list)

    @property
    def duration_ms(self) -> float | None:
        return None if self.end_ns is None else (self.end_ns - self.start_ns) / 1e6


class TraceRun(Model):
    """One run's trace (the first run, or one per resume)."""

    trace_id: str
    run: int | None = Field(default=None, description="1 for the first run, n + 1 after the n-th resume.")
    roots: list[TraceNode] = Field(default_factory=list, description="The job span, and any orphans.")


class JobTrace(Model):
    """``pop trace <id>``, ``GET /pop/api/jobs/<id>/trace``: a job's spans as trees, one per run."""

    job_id: str
    pipeline: str
    state: str
    spans: int = Field(description="Spans in spans.jsonl.")
    runs: list[TraceRun] = Field(default_factory=list)


__all__ = [
    "JobTrace",
    "SpanKind",
    "SpanRecord",
    "SpanStatus",
    "StageTrace",
    "TraceNode",
    "TraceRef",
    "TraceRun",
]
