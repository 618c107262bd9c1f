"""``GET /pop/api/jobs/<id>/trace``: a job's span tree as ``pop trace`` builds it, masked like every
answer, 404 for a job that does not exist."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project
from tests.server.test_api import call, wait_until

KEY = "sk-canary-5e0d2c7b9a1f4e63b8d0"


@pytest.fixture
def jp_root_dir(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir(exist_ok=True)
    return root


async def test_a_jobs_trace_is_served_as_trees_and_a_key_in_a_span_is_masked(
    project: Project, jp_fetch: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    project.pipeline(
        "tiny",
        {"a": {"cells": [("inference", "pop.output(pop.chat('hi').content)")]}},
        llm={"model": "mock/gpt-4o-mini", "mock_responses": {"*": {"inference": "hello"}}},
    )
    code, _ = await call(jp_fetch, "POST", "pop/api/jobs", {"pipeline": "tiny", "data": {}, "id": "t1"})
    assert code == 201
    await wait_until(jp_fetch, "t1", lambda j: j["place"] == "complete")
    spans = project.data / "complete/t1/spans.jsonl"
    line = json.loads(spans.read_text().splitlines()[0])
    with spans.open("a") as fh:  # a span written some other way, with the key in it
        fh.write(
            json.dumps({**line, "span_id": "abcdefabcdefabcd", "kind": "user", "name": f"leak {KEY}"}) + "\n"
        )

    code, trace = await call(jp_fetch, "GET", "pop/api/jobs/t1/trace")
    assert code == 200 and trace["job_id"] == "t1" and trace["spans"] == 5
    (run,) = trace["runs"]
    job = next(r for r in run["roots"] if r["kind"] == "job")
    assert job["calls"] == 1 and job["cost_usd"] > 0 and job["children"][0]["name"] == "task a"
    text = json.dumps(trace)
    assert KEY not in text and "leak [REDACTED]" in text

    code, missing = await call(jp_fetch, "GET", "pop/api/jobs/nope/trace")
    assert code == 404 and missing["error"] == "JobNotFound"
