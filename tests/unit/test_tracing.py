"""The parts of tracing that need no job: trace context, where spans go, what the shipper will send, and
the tree `pop trace` builds from whatever a spans.jsonl holds (bad lines, cycles, open spans)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pop_nb.cli.trace import render
from pop_nb.config import OtelSettings, load_settings
from pop_nb.models.status import JobStatus, StageRun, TaskStatus
from pop_nb.models.trace import TraceRef
from pop_nb.service.traces import job_trace
from pop_nb.tracing.otlp import _record, capture_content, export_target
from pop_nb.tracing.spans import iso_ns, parse_traceparent, traceparent

T = "4bf92f3577b34da6a3ce929d0e0e4736"
J, K, S, C = "00f067aa0ba902b7", "1111111111111111", "2222222222222222", "3333333333333333"


def test_traceparent_round_trips_and_anything_else_is_refused() -> None:
    assert parse_traceparent(traceparent(T, J)) == (T, J)
    for bad in (
        None,
        "",
        f"01-{T}-{J}-01",
        f"00-{'0' * 32}-{J}-01",
        f"00-{T}-{'0' * 16}-01",
        f"00-{T.upper()}-{J}-01",
    ):
        assert parse_traceparent(bad) is None, bad


def test_iso_times_become_unix_nanoseconds_to_the_millisecond() -> None:
    assert iso_ns("1970-01-01T00:00:01.250+00:00") == 1_250_000_000
    assert iso_ns("2026-12-05T10:00:00.001+01:00") - iso_ns("2026-12-05T09:00:00.000+00:00") == 1_000_000


@pytest.mark.parametrize(
    ("env", "toml", "expected"),
    [
        ({}, None, None),
        ({}, "http://collector:4318", "http://collector:4318/v1/traces"),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:4318/"},
            "http://toml:4318",
            "http://env:4318/v1/traces",
        ),
        (
            {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:1/custom"},
            "http://toml:4318",
            "http://t:1/custom",
        ),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318/v1/traces"}, None, "http://x:4318/v1/traces"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_SDK_DISABLED": "TRUE"}, None, None),
    ],
)
def test_where_spans_go_standard_variables_over_pop_toml(
    env: dict[str, str], toml: str | None, expected: str | None
) -> None:
    target = export_target(OtelSettings(endpoint=toml), env)
    assert (target.endpoint if target else None) == expected


def test_pop_toml_otel_table_is_read_and_a_typo_in_it_refused(tmp_path: Path) -> None:
    (tmp_path / "pop.toml").write_text('[otel]\nendpoint = "http://c:4318"\ncapture_content = true\n')
    settings = load_settings(tmp_path)
    assert settings.otel.endpoint == "http://c:4318" and capture_content(settings.otel)
    (tmp_path / "pop.toml").write_text('[otel]\nendpont = "http://c:4318"\n')
    with pytest.raises(Exception, match="endpont"):
        load_settings(tmp_path)


def test_capture_content_also_follows_the_genai_instrumentations_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert not capture_content(OtelSettings())
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    assert capture_content(OtelSettings())


def span(span_id: str, parent: str | None, kind: str, **kw: object) -> dict[str, object]:
    return {
        "trace_id": T,
        "span_id": span_id,
        "parent_id": parent,
        "name": kw.pop("name", f"{kind} x"),
        "kind": kind,
        "start_ns": kw.pop("start_ns", 1_000),
        "end_ns": kw.pop("end_ns", 2_000_000),
        "status": kw.pop("status", "ok"),
        "attributes": kw.pop("attributes", {}),
        **kw,
    }


def test_the_shipper_sends_only_whole_well_formed_spans() -> None:
    assert _record(json.dumps(span(J, None, "job")).encode()) is not None
    for bad in (
        b"not json",
        b"[1, 2]",
        json.dumps(span("xyz", None, "job")).encode(),
        json.dumps(span(J, "short", "job")).encode(),
        json.dumps({**span(J, None, "job"), "trace_id": T.upper()}).encode(),
        json.dumps({**span(J, None, "job"), "start_ns": "1"}).encode(),
        json.dumps({**span(J, None, "job"), "end_ns": True}).encode(),
    ):
        assert _record(bad) is None, bad


def job_folder(tmp_path: Path, lines: list[object], status: JobStatus) -> Path:
    folder = tmp_path / "pipeline-data" / "current" / status.job_id
    folder.mkdir(parents=True)
    (folder / "tasks-status.json").write_text(status.model_dump_json())
    (folder / "spans.jsonl").write_text(
        "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines)
    )
    return tmp_path


def test_the_tree_adds_up_calls_and_survives_bad_lines_duplicates_cycles_and_orphans(tmp_path: Path) -> None:
    llm = {"gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 5, "pop.cost_source": "price_map"}
    lines: list[object] = [
        span(J, None, "job", attributes={"pop.run": 1, "pop.state": "done"}),
        span(K, J, "task"),
        span(S, K, "stage"),
        span(C, S, "llm", attributes={**llm, "pop.cost_usd": 0.25}),
        span("4444444444444444", S, "llm", status="error", attributes={**llm, "pop.cost_usd": 0.0}),
        span("5555555555555555", S, "llm", attributes={**llm, "pop.cost_source": "unpriced"}),
        span(C, J, "user", name="a duplicate id: the first line wins"),
        "{torn line",
        {"span_id": "no other fields"},
        span("6666666666666666", "7777777777777777", "user", name="cycle a"),
        span("7777777777777777", "6666666666666666", "user", name="cycle b"),
        span("8888888888888888", "9999999999999999", "user", name="orphan"),
    ]
    status = JobStatus(
        job_id="j1",
        pipeline="p",
        state="done",
        trace=TraceRef(trace_id=T, span_id=J, run=0, started_at="2026-12-05T10:00:00+00:00"),
    )
    trace = job_trace(load_settings(job_folder(tmp_path, lines, status)), "j1")
    assert trace.spans == 9  # the two bad lines and the duplicate are not spans
    (run,) = trace.runs
    job = next(r for r in run.roots if r.kind == "job")
    assert (job.calls, job.attempts, job.input_tokens, job.unpriced_calls) == (2, 3, 30, 1)
    assert job.cost_usd == pytest.approx(0.25)
    others = sorted(r.name for r in run.roots if r.kind != "job")  # a cycle is broken at one of its spans
    assert others in (["cycle a", "orphan"], ["cycle b", "orphan"])
    text = render(trace)
    assert "2 calls (3 attempts)" in text and "$0.250000 + unknown (1 unpriced)" in text
    assert "unpriced" in text and "orphan" in text


def test_a_running_job_shows_its_open_spans_from_the_status_file(tmp_path: Path) -> None:
    started = "2026-12-05T10:00:00.000+00:00"
    run = StageRun(stage="inference", state="running", started_at=started, span_id=S)
    status = JobStatus(
        job_id="j2",
        pipeline="p",
        state="running",
        trace=TraceRef(trace_id=T, span_id=J, run=0, started_at=started),
        tasks={"t": TaskStatus(state="running", started_at=started, span_id=K, stages={"inference": run})},
    )
    lines: list[object] = [span(C, S, "llm", start_ns=iso_ns(started) + 5, attributes={"pop.cost_usd": 0.5})]
    trace = job_trace(load_settings(job_folder(tmp_path, lines, status)), "j2")
    (root,) = trace.runs[0].roots
    assert (root.kind, root.end_ns, root.cost_usd, root.calls) == ("job", None, 0.5, 1)
    (task,) = root.children
    (stage,) = task.children
    assert (task.span_id, stage.span_id, stage.children[0].span_id) == (K, S, C)
    assert "running" in render(trace).splitlines()[1]


def test_an_unpriced_calls_span_says_so_and_claims_no_cost() -> None:
    from pop_nb.models.records import UsageRow
    from pop_nb.tracing.calls import CallDetail, call_span

    row = UsageRow(
        job="j",
        pipeline="p",
        task="t",
        stage="inference",
        provider="openai",
        model="openai/some-new-model",
        input_tokens=5,
        output_tokens=2,
        cost_source="unpriced",
        request_hash="h",
    )
    made = call_span(row, traceparent(T, S), CallDetail())
    assert made is not None and made.parent_id == S and made.trace_id == T
    a = made.attributes
    assert a["pop.cost_source"] == "unpriced" and a["gen_ai.request.model"] == "some-new-model"
    assert not {"gen_ai.usage.cost", "llm.cost.total", "langfuse.observation.cost_details"} & set(a)
    assert call_span(row, "not a traceparent", CallDetail()) is None


def test_kernels_are_offered_our_tracer_provider_only_when_the_sdk_is_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without OpenTelemetry installed at all (pop-nb's own install), the runner must start as ever:
    asking for ``opentelemetry.sdk`` raised there, and every job stayed pending."""
    import importlib.util

    from pop_nb.tracing.spans import offer_to_kernels

    monkeypatch.delenv("OTEL_PYTHON_TRACER_PROVIDER", raising=False)

    def absent(name: str, package: str | None = None) -> None:
        raise ModuleNotFoundError(f"No module named {name.split('.')[0]!r}")

    monkeypatch.setattr(importlib.util, "find_spec", absent)
    offer_to_kernels()
    import os

    assert "OTEL_PYTHON_TRACER_PROVIDER" not in os.environ
    monkeypatch.undo()
    monkeypatch.delenv("OTEL_PYTHON_TRACER_PROVIDER", raising=False)
    monkeypatch.setenv("OTEL_PYTHON_TRACER_PROVIDER", "theirs")
    offer_to_kernels()
    assert os.environ["OTEL_PYTHON_TRACER_PROVIDER"] == "theirs", "never over the user's own"
