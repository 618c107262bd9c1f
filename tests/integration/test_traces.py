"""A job's trace: spans.jsonl nests job > task > stage > LLM request (and a cell's own spans), each LLM
span is its usage.jsonl row, a retry is marked as one, and `pop trace` prints the tree."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pop_nb.testing.provider_server import Fault, ProviderServer
from tests.conftest import Project, pop

CANARY = "sk-canary-2b9e71c04d5a4f3e8d6c"
CLOSED_PORT_URL = "http://127.0.0.1:9"  # discard: nothing listens there

USER_SPAN = """
from opentelemetry import trace
with trace.get_tracer("my.code").start_as_current_span("look things up") as span:
    span.set_attribute("lookups", 3)
    with trace.get_tracer("my.code").start_as_current_span("inner"):
        pass
"""


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ProviderServer]:
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    with ProviderServer(answer=lambda body: "An answer of a few words.") as srv:
        yield srv


def spans_of(job_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (job_dir / "spans.jsonl").read_text().splitlines()]


def traced_pipeline(
    project: Project, server: ProviderServer, prompt: str = "pop.output('Say something')"
) -> None:
    project.pipeline(
        "traced",
        {
            "a": {
                "cells": [
                    ("promptTemplating", prompt),
                    ("inference", USER_SPAN + "\npop.output(pop.chat(pop.prev).content)"),
                    ("integration", "pop.output({'said': pop.prev, 'again': pop.chat('Once more').content})"),
                ]
            },
            "b": {"needs": ["a"], "cells": [("inference", "pop.output(pop.chat('And you?').content)")]},
        },
        llm={"model": "openai/gpt-4o-mini", "api_base": server.openai_base, "retry_base_s": 0.01},
    )


def test_spans_nest_job_task_stage_call_and_each_call_span_is_its_usage_row(
    project: Project, server: ProviderServer
) -> None:
    traced_pipeline(project, server)
    server.fail_next(Fault(status=429))  # the first request is refused once: a retry
    job = project.run("traced", {"topic": "x"})
    assert job.wait(120).state == "done"
    status = job.status
    spans = spans_of(job.path)
    by_id = {s["span_id"]: s for s in spans}
    assert len(by_id) == len(spans), "span ids are unique"
    assert {s["trace_id"] for s in spans} == {status.trace.trace_id}, "one run, one trace"

    (root,) = [s for s in spans if s["parent_id"] is None]
    assert root["kind"] == "job" and root["span_id"] == status.trace.span_id
    assert root["status"] == "ok" and root["attributes"]["pop.state"] == "done"
    assert root["attributes"]["pop.job.id"] == job.id and root["attributes"]["pop.pipeline"] == "traced"

    tasks = {s["task"]: s for s in spans if s["kind"] == "task"}
    assert set(tasks) == {"a", "b"}
    for name, span in tasks.items():
        assert span["parent_id"] == root["span_id"] and span["span_id"] == status.tasks[name].span_id
        assert root["start_ns"] <= span["start_ns"] <= span["end_ns"] <= root["end_ns"]

    # the tree matches the job's stage runs: one stage span per run the status file records, under its task
    stages = [s for s in spans if s["kind"] == "stage"]
    runs = {(t, run.span_id): run for t, task in status.tasks.items() for run in task.stages.values()}
    assert sorted((s["task"], s["span_id"]) for s in stages) == sorted(runs)
    for span in stages:
        run = runs[(span["task"], span["span_id"])]
        assert span["parent_id"] == tasks[span["task"]]["span_id"]
        assert span["attributes"]["pop.notebook"] == run.notebook
        assert span["stage"] == run.stage and span["name"] == f"stage {run.stage}"

    # each request to the model: one span per usage.jsonl row, under the stage that made it, equal to it
    usage = [json.loads(line) for line in (job.path / "usage.jsonl").read_text().splitlines()]
    calls = [s for s in spans if s["kind"] == "llm"]
    assert len(calls) == len(usage) == 4  # three calls, the first tried twice
    for span, row in zip(sorted(calls, key=lambda s: s["end_ns"]), usage, strict=True):
        parent = by_id[span["parent_id"]]
        assert (parent["kind"], parent["task"], parent["stage"]) == ("stage", row["task"], row["stage"])
        a = span["attributes"]
        assert a["gen_ai.usage.input_tokens"] == row["input_tokens"]
        assert a["gen_ai.usage.output_tokens"] == row["output_tokens"]
        assert a["gen_ai.usage.cache_read.input_tokens"] == row["cached_tokens"]
        assert a["pop.cost_usd"] == row["cost_usd"] and a["pop.cost_source"] == row["cost_source"]
        assert a["gen_ai.usage.cost"] == a["llm.cost.total"] == row["cost_usd"]
        assert json.loads(a["langfuse.observation.cost_details"]) == {"total": row["cost_usd"]}
        assert a["pop.request_hash"] == row["request_hash"] and a["pop.cache_hit"] == row["cache_hit"]
        assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "openai"
        assert "gen_ai.input.messages" not in a and "output.value" not in a, "no prompt unless asked for"
        assert a["gen_ai.request.model"] == "gpt-4o-mini" and span["status"] == (
            "ok" if row["ok"] else "error"
        )
    refused, retried = sorted(calls, key=lambda s: s["end_ns"])[:2]
    assert refused["status"] == "error" and refused["attributes"]["error.type"] == "RateLimitError"
    assert refused["attributes"]["pop.retry"] is False and retried["attributes"]["pop.retry"] is True
    assert retried["attributes"]["pop.try"] == 2 and retried["attributes"][
        "gen_ai.response.finish_reasons"
    ] == ["stop"]
    assert all(row["cost_usd"] > 0 for row in usage if row["ok"]), "priced by litellm's map"

    # a cell's own spans (the OpenTelemetry API) go under its stage, with the parent it gave them
    user = {s["name"]: s for s in spans if s["kind"] == "user"}
    inference = next(s for s in stages if (s["task"], s["stage"]) == ("a", "inference"))
    assert user["look things up"]["parent_id"] == inference["span_id"]
    assert user["inner"]["parent_id"] == user["look things up"]["span_id"]
    assert user["look things up"]["attributes"] == {"lookups": 3}

    # no secret anywhere in it
    assert CANARY not in (job.path / "spans.jsonl").read_text()

    shown = pop("trace", job.id)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    total = sum(row["cost_usd"] for row in usage)
    assert "job traced" in lines[1] and "3 calls (4 attempts)" in lines[1] and f"${total:.6f}" in lines[1]
    assert any(line.strip().startswith("└─ task b") for line in lines)
    assert any("chat gpt-4o-mini" in line and "RateLimitError" in line for line in lines)
    assert any("chat gpt-4o-mini" in line and "try 2" in line for line in lines)
    assert any("look things up" in line for line in lines)


def test_a_failed_stage_its_task_and_the_job_are_error_spans_and_a_resume_is_a_new_trace(
    project: Project, server: ProviderServer
) -> None:
    gate = project.root / "may-pass"
    project.pipeline(
        "flaky",
        {
            "t": {
                "cells": [
                    (
                        "inference",
                        f"import pathlib\nassert pathlib.Path({str(gate)!r}).exists(), 'not yet'\n"
                        "pop.output(1)",
                    )
                ]
            }
        },
    )
    job = project.run("flaky", {})
    assert job.wait(120).state == "failed"
    first = spans_of(job.path)
    (stage,) = [s for s in first if s["kind"] == "stage"]
    assert stage["status"] == "error" and stage["status_message"] == "AssertionError: not yet"
    job_span = next(s for s in first if s["kind"] == "job")
    assert job_span["status"] == "error" and job_span["attributes"]["error.type"] == "AssertionError"
    assert next(s for s in first if s["kind"] == "task")["status"] == "error"

    gate.touch()
    assert pop("resume", job.id, "--quiet").returncode == 0
    spans = spans_of(project.job(job.id).path)
    traces = {s["trace_id"] for s in spans}
    assert len(traces) == 2, "the resume is a run of its own"
    resumed = [s for s in spans if s["trace_id"] != job_span["trace_id"]]
    root = next(s for s in resumed if s["kind"] == "job")
    assert root["attributes"]["pop.run"] == 2 and root["status"] == "ok"
    shown = pop("trace", job.id).stdout
    assert "run 1" in shown and "run 2" in shown


def test_a_dead_collector_costs_the_job_nothing_and_is_said_once(
    project: Project, server: ProviderServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", CLOSED_PORT_URL)
    traced_pipeline(project, server)
    job = project.run("traced", {"topic": "x"})
    assert job.wait(120).state == "done"
    folder = project.job(job.id).path
    log = (folder / "runner.log").read_text()
    said = [line for line in log.splitlines() if line.startswith("spans: ")]
    assert len(said) == 1, log  # once, however many batches
    assert f"not sent to {CLOSED_PORT_URL}/v1/traces: nothing listens there" in said[0]
    assert "kept in spans.jsonl" in said[0]
    assert not (project.data / "current" / job.id).exists(), "nothing made the moved folder again"
    assert len(spans_of(folder)) >= 10, "every span is still in the file"
