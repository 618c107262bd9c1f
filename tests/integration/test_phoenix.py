"""A job's trace in a real tracing backend: Arize Phoenix (`phoenix serve` on loopback) takes the spans
by OTLP over HTTP, and its client reads them back: the same tree as the job's stage runs, every LLM
span's tokens and cost equal to its usage.jsonl row, and the canary key in none of them."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from pop_nb.testing.provider_server import Fault, ProviderServer
from tests.conftest import REPO, Project, needs_system, wait_for
from tests.integration.test_traces import CANARY, server, spans_of, traced_pipeline

__all__ = ["server"]  # the provider server fixture, shared with test_traces

INSTALL = "python3 -m venv .phoenix && .phoenix/bin/pip install arize-phoenix (or `phoenix` on PATH)"


def phoenix_program() -> str | None:
    here = REPO / ".phoenix" / "bin" / "phoenix"
    return str(here) if here.exists() else shutil.which("phoenix")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    program = phoenix_program()
    if program is None:
        needs_system(["phoenix"], INSTALL)
    assert program is not None
    port, grpc = free_port(), free_port()
    work = tmp_path_factory.mktemp("phoenix")
    env = {
        **os.environ,
        "PHOENIX_WORKING_DIR": str(work),
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(port),
        "PHOENIX_GRPC_PORT": str(grpc),
        "PHOENIX_TELEMETRY_ENABLED": "false",
    }
    log = (work / "phoenix.log").open("wb")
    proc = subprocess.Popen([program, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"phoenix exited: {(work / 'phoenix.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    try:
        wait_for(up, timeout=120, every=0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def read_back(url: str, project_name: str, expected: int) -> list[dict[str, Any]]:
    """The project's spans as Phoenix's client returns them, once it has all ``expected`` (it takes
    spans in and writes them to its database asynchronously)."""
    from phoenix.client import Client

    client = Client(base_url=url)
    found: list[dict[str, Any]] = []

    def all_there() -> bool:
        nonlocal found
        try:
            found = [dict(s) for s in client.spans.get_spans(project_identifier=project_name, limit=1000)]
        except Exception:  # the project exists once its first span is written
            return False
        return len(found) >= expected

    wait_for(all_there, timeout=60, every=0.5)
    return found


def test_a_jobs_spans_read_back_from_phoenix_are_its_tree_with_exact_tokens_and_cost(
    project: Project, server: ProviderServer, phoenix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"pop-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", phoenix)
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", f"openinference.project.name={name}")
    monkeypatch.setenv(
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true"
    )  # the prompt holds the key
    traced_pipeline(
        project, server, prompt="import os\npop.output('Say something, ' + os.environ['OPENAI_API_KEY'])"
    )
    server.fail_next(Fault(status=429))
    job = project.run("traced", {"topic": "x"})
    assert job.wait(120).state == "done"
    status = project.job(job.id).status
    local = {s["span_id"]: s for s in spans_of(project.job(job.id).path)}
    spans = read_back(phoenix, name, len(local))

    by_id = {s["context"]["span_id"]: s for s in spans}
    assert set(by_id) == set(local), "every span of spans.jsonl, and nothing else"
    assert {s["context"]["trace_id"] for s in spans} == {status.trace.trace_id}
    for span_id, span in by_id.items():
        assert span["parent_id"] == local[span_id]["parent_id"] and span["name"] == local[span_id]["name"]

    # the tree is the job's stage runs
    kind = {span_id: s["attributes"]["pop.span.kind"] for span_id, s in by_id.items()}
    (root,) = [s for s in spans if s["parent_id"] is None]
    assert kind[root["context"]["span_id"]] == "job" and root["status_code"] == "OK"
    task_of = {t.span_id: name for name, t in status.tasks.items()}
    runs = {run.span_id: (name, run) for name, t in status.tasks.items() for run in t.stages.values()}
    stage_ids = {i for i, k in kind.items() if k == "stage"}
    assert stage_ids == set(runs)
    for span_id in stage_ids:
        task, run = runs[span_id]
        assert task_of[by_id[span_id]["parent_id"]] == task
        assert by_id[span_id]["attributes"]["pop.stage"] == run.stage

    # each LLM span is its usage row, exactly
    usage = [json.loads(line) for line in (project.job(job.id).path / "usage.jsonl").read_text().splitlines()]
    calls = sorted((s for i, s in by_id.items() if kind[i] == "llm"), key=lambda s: s["end_time"])
    assert len(calls) == len(usage) == 4
    for span, row in zip(calls, usage, strict=True):
        a = span["attributes"]
        assert span["span_kind"] == "LLM"
        assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (
            row["input_tokens"],
            row["output_tokens"],
        )
        assert a["pop.cost_usd"] == row["cost_usd"] and a["pop.cost_source"] == row["cost_source"]
        assert a["pop.request_hash"] == row["request_hash"]
        assert runs[span["parent_id"]][1].stage == row["stage"]
    assert calls[0]["status_code"] == "ERROR" and calls[1]["attributes"]["pop.retry"] is True

    # the prompt was captured, and the key in it masked
    sent = json.dumps(spans)
    assert "Say something, [REDACTED]" in sent
    assert CANARY not in sent
