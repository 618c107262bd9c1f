"""Send a job's ``spans.jsonl`` to an OTLP collector (OTLP over HTTP, ``pop-nb[otel]``) as it grows.

The runner ships: a thread of its own reads what was appended (by the runner and by the stage kernels)
about once a second and exports it in batches, so a stage never waits on a collector. A batch that
fails (a dead or slow collector) is logged once and dropped, and nothing is sent for a while after,
so a job never waits on a collector at its end either. ``.spans-sent.json`` in the job folder keeps how
far the file was sent, so a runner that picks up a dead runner's job does not send twice.

Where to: the standard variables (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, taken as it is;
``OTEL_EXPORTER_OTLP_ENDPOINT``, with ``/v1/traces`` added; ``OTEL_EXPORTER_OTLP_HEADERS``, read by the
exporter), over ``[otel] endpoint`` in pop.toml. ``OTEL_SDK_DISABLED=true`` turns export off.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pop_nb.config import OtelSettings
from pop_nb.safejson import loads
from pop_nb.store import layout
from pop_nb.store.atomic import atomic_write_json
from pop_nb.tracing.spans import SCOPE

SENT = ".spans-sent.json"
_HEX = re.compile(r"[0-9a-f]+")
BATCH = 512
EVERY_S = 1.0
QUIET_AFTER_FAILURE_S = 30.0
INSTALL = "pip install 'pop-nb[otel]'"


@dataclass(frozen=True)
class Target:
    endpoint: str
    timeout_s: float


def export_target(otel: OtelSettings, environ: dict[str, str] | None = None) -> Target | None:
    """Where spans go, or None: no endpoint is configured, or OTEL_SDK_DISABLED is true."""
    env = dict(os.environ) if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if not endpoint:
        base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip() or (otel.endpoint or "").strip()
        if not base:
            return None
        endpoint = base if base.rstrip("/").endswith("/v1/traces") else base.rstrip("/") + "/v1/traces"
    return Target(endpoint=endpoint, timeout_s=otel.timeout_s)


def capture_content(otel: OtelSettings) -> bool:
    """Whether prompts and answers go on LLM spans: [otel] capture_content, or the GenAI
    instrumentations' own variable."""
    flag = os.environ.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "").strip().lower()
    return otel.capture_content or flag in ("true", "1", "span_only", "span_and_event")


class Shipper:
    """Exports one job's spans while its runner runs. :meth:`finish` sends what is left (unless the
    collector just failed) and stops."""

    def __init__(self, job_dir: Path, target: Target) -> None:
        self.job_dir = job_dir
        self.target = target
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._offset: int | None = None  # how far spans.jsonl was sent; the file's copy is for a later runner
        self._quiet_until = 0.0
        self._exporter: Any = None
        self._resource: Any = None
        self._thread = threading.Thread(target=self._loop, name="pop-spans", daemon=True)
        self.sent = 0
        self.dropped = 0

    def start(self) -> Shipper:
        self._thread.start()
        return self

    def finish(self, job_dir: Path | None = None) -> None:
        """Stop the thread (waiting for an export under way, at most its time limit), then send the
        rest from ``job_dir``, where the job is now."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.target.timeout_s + 1)
        with self._lock:
            if job_dir is not None:
                self.job_dir = job_dir
        self.ship()
        if self._exporter is not None:
            self._exporter.shutdown()

    def _loop(self) -> None:
        while not self._stop.wait(EVERY_S):
            self.ship()

    def ship(self) -> None:
        """Send what was appended since the last call. A failure drops what was read, says so in one
        line (runner.log), and nothing is tried for a while after."""
        with self._lock:
            sent_file = self.job_dir / SENT
            if self._offset is None:
                self._offset = _offset(sent_file)
            try:
                with (self.job_dir / layout.SPANS).open("rb") as fh:
                    fh.seek(self._offset)
                    chunk = fh.read()
            except FileNotFoundError:  # none yet, or the folder just moved: finish() reads it there
                return
            whole = chunk[: chunk.rfind(b"\n") + 1]
            if not whole:
                return
            records = [r for line in whole.splitlines() if (r := _record(line)) is not None]
            why = "the collector failed a moment ago" if time.monotonic() < self._quiet_until else None
            for start in range(0, len(records), BATCH):
                batch = records[start : start + BATCH]
                why = why or self._export(batch)
                if why is not None:
                    self._drop(len(records) - start, why)
                    break
                self.sent += len(batch)
            self._offset += len(whole)
            # never into a folder that moved: that would make the job's folder again where it was
            with contextlib.suppress(FileNotFoundError):
                atomic_write_json(sent_file, {"offset": self._offset}, durable=False, make_parents=False)

    def _drop(self, count: int, why: str) -> None:
        """Count spans not sent; say so in runner.log once per failure (not per batch or second)."""
        self.dropped += count
        if time.monotonic() < self._quiet_until:
            return
        print(
            f"spans: {count} span(s) not sent to {self.target.endpoint}: {why}. Dropped; they are kept in "
            f"{layout.SPANS} (next try in {QUIET_AFTER_FAILURE_S:.0f} s).",
            flush=True,
        )
        self._quiet_until = time.monotonic() + QUIET_AFTER_FAILURE_S

    def _export(self, records: list[dict[str, Any]]) -> str | None:
        """Send one batch; None when it was taken, else why not."""
        if not _listening(self.target.endpoint):
            return "nothing listens there"
        try:
            from opentelemetry.sdk.trace.export import SpanExportResult

            if self._exporter is None:
                self._exporter, self._resource = _exporter(self.target)
            spans = [_readable(r, self._resource) for r in records]
            result = self._exporter.export(spans)
        except Exception as exc:  # never the job's problem
            return f"{type(exc).__name__}: {exc}"
        return None if result == SpanExportResult.SUCCESS else "the collector refused them or did not answer"


def _listening(endpoint: str) -> bool:
    """Whether something accepts connections at the endpoint's host and port: a dead collector is known
    at once, not after the exporter's retries (a slow one still takes up to the time limit)."""
    from urllib.parse import urlsplit

    try:
        url = urlsplit(endpoint)
        port = url.port or (443 if url.scheme == "https" else 80)
        with socket.create_connection((url.hostname or "localhost", port), timeout=0.5):
            return True
    except (OSError, ValueError):
        return False


def _offset(sent_file: Path) -> int:
    try:
        return int(json.loads(sent_file.read_text(encoding="utf-8"))["offset"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return 0


def _record(line: bytes) -> dict[str, Any] | None:
    """A line that is a span we can send (ids in hex of the right length, times as integers), else None."""
    try:
        record = loads(line.decode("utf-8"))
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    ids = [str(record.get(k) or "") for k in ("trace_id", "span_id", "parent_id")]
    ids[2] = ids[2] or "0" * 16
    if not all(_HEX.fullmatch(i) for i in ids) or [len(i) for i in ids] != [32, 16, 16]:
        return None
    times = (record.get("start_ns"), record.get("end_ns"))
    return record if all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in times) else None


def _exporter(target: Target) -> tuple[Any, Any]:
    import logging

    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource

    from pop_nb import __version__

    # the exporter logs every failed request with its traceback: our one line in runner.log says it
    logging.getLogger("opentelemetry.exporter.otlp.proto.http").setLevel(logging.CRITICAL)
    attributes = {"service.version": __version__}
    named = os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    if not named:
        attributes["service.name"] = "pop-nb"
    return OTLPSpanExporter(endpoint=target.endpoint, timeout=target.timeout_s), Resource.create(attributes)


def _readable(record: dict[str, Any], resource: Any) -> Any:
    """A span of ``spans.jsonl`` as the SDK's exporters take it, with its own ids and times."""
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

    from pop_nb import __version__

    trace_id = int(record["trace_id"], 16)
    context = SpanContext(trace_id, int(record["span_id"], 16), is_remote=False, trace_flags=TraceFlags(1))
    parent = record.get("parent_id")
    parent_context = (
        SpanContext(trace_id, int(parent, 16), is_remote=False, trace_flags=TraceFlags(1)) if parent else None
    )
    code = {"ok": StatusCode.OK, "error": StatusCode.ERROR}.get(record.get("status") or "", StatusCode.UNSET)
    message = record.get("status_message") if code is StatusCode.ERROR else None
    attributes = {k: _attribute(v) for k, v in (record.get("attributes") or {}).items() if v is not None}
    attributes["pop.span.kind"] = record.get("kind") or "user"
    return ReadableSpan(
        name=str(record.get("name") or "span"),
        context=context,
        parent=parent_context,
        resource=resource,
        attributes=attributes,
        kind=SpanKind.CLIENT if record.get("kind") == "llm" else SpanKind.INTERNAL,
        status=Status(code, message),
        start_time=int(record["start_ns"]),
        end_time=int(record["end_ns"]),
        instrumentation_scope=InstrumentationScope(SCOPE, __version__),
    )


def _attribute(value: Any) -> Any:
    """An OTLP attribute value: a primitive, or a list of them; anything else as its JSON."""
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list) and all(isinstance(v, str | bool | int | float) for v in value):
        return value
    return json.dumps(value, default=str)


__all__ = ["Shipper", "Target", "capture_content", "export_target"]
