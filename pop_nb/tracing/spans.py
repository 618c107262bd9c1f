"""Ids, W3C trace context, times, and the one writer of ``spans.jsonl``."""

from __future__ import annotations

import os
import re
import secrets
from datetime import datetime
from pathlib import Path

from pop_nb.models.trace import SpanRecord
from pop_nb.store import layout
from pop_nb.store.atomic import append_jsonl

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")
SCOPE = "pop_nb"  # the instrumentation scope every span of ours is exported under


def new_trace_id() -> str:
    return secrets.token_hex(16)


def new_span_id() -> str:
    return secrets.token_hex(8)


def traceparent(trace_id: str, span_id: str) -> str:
    """W3C trace context of a sampled span."""
    return f"00-{trace_id}-{span_id}-01"


def parse_traceparent(value: str | None) -> tuple[str, str] | None:
    """(trace id, span id) of a W3C ``traceparent``; None for anything else (all zeros included)."""
    match = _TRACEPARENT.match(value or "")
    if match is None or set(match[1]) == {"0"} or set(match[2]) == {"0"}:
        return None
    return match[1], match[2]


def iso_ns(ts: str) -> int:
    """Unix nanoseconds of an ISO time as the status file writes it (``2026-12-05T10:00:00.123+00:00``)."""
    moment = datetime.fromisoformat(ts)
    return (int(moment.timestamp()) * 1_000_000 + moment.microsecond) * 1000


def offer_to_kernels() -> None:
    """Let the stage kernels this process starts trace under their stage: the OpenTelemetry API then
    builds :class:`pop_nb.tracing.kernel.StageTracerProvider` (our entry point) when a cell first asks
    for a tracer. Only with the SDK installed, and never over a provider the user named."""
    import importlib.util

    try:
        installed = importlib.util.find_spec("opentelemetry.sdk") is not None
    except ModuleNotFoundError:  # not even the API: find_spec imports a submodule's parent
        installed = False
    if installed:
        os.environ.setdefault("OTEL_PYTHON_TRACER_PROVIDER", SCOPE)


def write_span(job_dir: Path, span: SpanRecord) -> None:
    """Append a finished span to the job's ``spans.jsonl``: one line, one write, secrets masked."""
    append_jsonl(job_dir / layout.SPANS, span)


__all__ = [
    "SCOPE",
    "iso_ns",
    "new_span_id",
    "new_trace_id",
    "offer_to_kernels",
    "parse_traceparent",
    "traceparent",
    "write_span",
]
