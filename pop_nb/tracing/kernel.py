"""Spans a cell makes with the OpenTelemetry API, written under its stage's span.

A runner's kernels get ``OTEL_PYTHON_TRACER_PROVIDER=pop_nb`` (:func:`pop_nb.tracing.spans.offer_to_kernels`),
so the API builds this provider the first time a cell asks for a tracer,
and not before: a stage that never traces pays nothing. Its spans go to the job's ``spans.jsonl`` (the
runner sends them on with the rest); a span started with no parent of its own gets the stage's.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import NonRecordingSpan, SpanContext, StatusCode, TraceFlags

from pop_nb.models.trace import SpanRecord, SpanStatus
from pop_nb.tracing.calls import MAX_CONTENT_CHARS
from pop_nb.tracing.spans import parse_traceparent, write_span

_STATUS: dict[StatusCode, SpanStatus] = {StatusCode.ERROR: "error", StatusCode.OK: "ok"}


class StageTracerProvider(TracerProvider):
    """The tracer provider of a stage's kernel: spans to the job's file, under the stage span."""

    def __init__(self) -> None:
        # a cell's attribute may be anything: a span is a record, not an archive (as our own LLM spans)
        super().__init__(span_limits=SpanLimits(max_attribute_length=MAX_CONTENT_CHARS))
        self._parent: SpanContext | None = None
        stage = _stage()
        if stage is not None:
            job_dir, trace_id, span_id, where = stage
            self._parent = SpanContext(
                int(trace_id, 16), int(span_id, 16), is_remote=True, trace_flags=TraceFlags(1)
            )
            self.add_span_processor(SimpleSpanProcessor(_SpansFile(job_dir, where)))

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        tracer = super().get_tracer(*args, **kwargs)
        return tracer if self._parent is None else _UnderStage(tracer, self._parent)


class _UnderStage(trace.Tracer):
    """A tracer whose spans with no parent of their own start under the stage span."""

    def __init__(self, tracer: trace.Tracer, parent: SpanContext) -> None:
        self._tracer = tracer
        self._parent = parent

    def _context(self, context: Context | None) -> Context | None:
        if trace.get_current_span(context).get_span_context().is_valid:
            return context
        return trace.set_span_in_context(NonRecordingSpan(self._parent), context)

    def start_span(self, name: str, context: Context | None = None, *args: Any, **kwargs: Any) -> trace.Span:
        return self._tracer.start_span(name, self._context(context), *args, **kwargs)

    @contextmanager
    def start_as_current_span(  # type: ignore[override]  # the API declares its own context manager type
        self, name: str, context: Context | None = None, *args: Any, **kwargs: Any
    ) -> Iterator[trace.Span]:
        with self._tracer.start_as_current_span(name, self._context(context), *args, **kwargs) as span:
            yield span


class _SpansFile(SpanExporter):
    def __init__(self, job_dir: Path, where: dict[str, str | None]) -> None:
        self.job_dir = job_dir
        self.where = where

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            context = span.get_span_context()
            if context is None or span.start_time is None or span.end_time is None:
                continue
            code = span.status.status_code
            status: SpanStatus = (
                "error" if code is StatusCode.ERROR else "ok" if code is StatusCode.OK else "unset"
            )
            attributes = {
                k: list(v) if isinstance(v, tuple) else v for k, v in (span.attributes or {}).items()
            }
            write_span(
                self.job_dir,
                SpanRecord(
                    trace_id=f"{context.trace_id:032x}",
                    span_id=f"{context.span_id:016x}",
                    parent_id=f"{span.parent.span_id:016x}" if span.parent is not None else None,
                    name=span.name,
                    kind="user",
                    start_ns=span.start_time,
                    end_ns=span.end_time,
                    status=status,
                    status_message=span.status.description,
                    attributes=attributes,
                    **self.where,
                ),
            )
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def _stage() -> tuple[Path, str, str, dict[str, str | None]] | None:
    """The running stage's job folder, trace and span, and names; None outside a runner's stage."""
    try:
        from pop_nb import task

        world = task._w()
        ctx = world.ctx
        ids = parse_traceparent(ctx.trace.traceparent if ctx.trace is not None else None)
        if ids is None or world.job_dir is None:
            return None
        return world.job_dir, ids[0], ids[1], {"job": ctx.job, "task": world.task, "stage": world.stage}
    except Exception:  # no stage here (by hand, or its context unreadable): spans go nowhere
        return None


__all__ = ["StageTracerProvider"]
