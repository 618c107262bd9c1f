"""``/pop/api`` under attack: a key never leaves in an answer or an event; one intake rule for a seed
(413 before a big body is read); one error shape for every 4xx and 5xx; a slow request never holds up
the others (the service runs off the server's loop)."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from pop_nb.models.seed import MAX_SEED_BYTES
from tests.conftest import Project
from tests.server.test_api import Stream, base, call, call_raw, wait_until

KEY = "sk-canary-5e2d8c1a9f3b7e0d4c6a"


@pytest.fixture
def jp_root_dir(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir(exist_ok=True)
    return root


async def test_a_key_in_a_jobs_files_is_never_served(
    project: Project,
    jp_fetch: Any,
    jp_http_port: int,
    jp_base_url: str,
    jp_auth_header: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    project.pipeline(
        "leaky",
        {
            "a": {"cells": [("inference", "import os\npop.output({'k': os.environ['OPENAI_API_KEY']})")]},
            "b": {
                "needs": ["a"],
                "cells": [("inference", "import os\nraise RuntimeError(os.environ['OPENAI_API_KEY'])")],
            },
        },
    )
    stream = Stream(f"{base(jp_http_port, jp_base_url)}pop/api/events", jp_auth_header)
    try:
        await stream.until(lambda events: any(e["event"] == "heartbeat" for e in events))
        assert (await call(jp_fetch, "POST", "pop/api/jobs", {"pipeline": "leaky", "id": "k1"}))[0] == 201
        job = await wait_until(jp_fetch, "k1", lambda j: j["place"] == "failed")
        await stream.until(
            lambda events: any(e["data"].get("event", {}).get("status") == "failed" for e in events)
        )
        assert job["outputs"]["a"] == {"k": "[REDACTED]"} and "[REDACTED]" in job["error"]["message"]
        assert job["actions"] == ["resume", "archive", "delete"]  # what a failed job allows, sent with it
        # A key that reached a file some other way (written before it was set, by hand, by an older
        # version) is masked on the way out too: the answer and the event stream each apply the rule.
        final = project.data / "failed/k1/tasks/a/outputs/final.json"
        final.write_text(json.dumps({"k": KEY, KEY: [KEY]}))
        code, served = await call(jp_fetch, "GET", "pop/api/jobs/k1")
        assert code == 200 and served["outputs"]["a"] == {"k": "[REDACTED]", "[REDACTED]": ["[REDACTED]"]}
        with (project.data / "failed/k1/events.jsonl").open("a") as log:  # as a job that goes on would
            log.write(json.dumps({"job": "k1", "kind": "job", "status": "note", "message": KEY}) + "\n")
        (project.data / "current").mkdir(exist_ok=True)
        (project.data / "failed/k1").rename(project.data / "current/k1")  # open again: followed
        await stream.until(
            lambda events: any(e["data"].get("event", {}).get("status") == "note" for e in events)
        )
        _, listed = await call(jp_fetch, "GET", "pop/api/jobs")
    finally:
        stream.close()
    assert (
        KEY not in json.dumps(stream.events)
        and KEY not in json.dumps(served)
        and KEY not in json.dumps(listed)
    )
    note = next(e for e in stream.events if e["data"].get("event", {}).get("status") == "note")
    assert note["data"]["event"]["message"] == "[REDACTED]"


async def send_headers_only(
    port: int, base_url: str, headers: dict[str, str], length: int
) -> tuple[int, Any]:
    """A POST that announces ``length`` bytes and sends none: the answer must come anyway."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = [f"POST {base_url}pop/api/jobs HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {length}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 30)
    blob = await asyncio.wait_for(reader.read(65536), 30)
    writer.close()
    body = blob.split(b"\r\n\r\n", 1)[1]
    return int(status_line.split()[1]), json.loads(body)


async def test_one_intake_rule_a_big_seed_is_413_before_its_body_is_read(
    project: Project, jp_fetch: Any, jp_http_port: int, jp_base_url: str, jp_auth_header: dict[str, str]
) -> None:
    project.pipeline("tiny", {"a": {}})
    code, body = await send_headers_only(jp_http_port, jp_base_url, jp_auth_header, 5_000_000)
    assert code == 413 and body["error"] == "SeedTooLarge" and "5000000 bytes" in body["message"]
    big = json.dumps({"pipeline": "tiny", "data": {"x": "y" * 5_000_000}})
    code, body = await call_raw(jp_fetch, big)
    assert code == 413 and body["error"] == "SeedTooLarge"
    # inside the body's limit, but the seed itself is over it as compact JSON: the seed rule says so
    spaced = json.dumps({"pipeline": "tiny", "data": {"x": "y" * (MAX_SEED_BYTES - 10)}})
    code, body = await call_raw(jp_fetch, spaced)
    assert code == 413 and "the seed is" in body["message"], body
    assert not (project.data / "current").exists()  # nothing was made
    code, _ = await call(jp_fetch, "POST", "pop/api/jobs", {"pipeline": "tiny", "data": {"x": "small"}})
    assert code == 201  # and the server is up


async def test_every_error_under_pop_api_has_one_shape(
    project: Project, jp_fetch: Any, jp_http_port: int, jp_base_url: str
) -> None:
    from tornado.httpclient import AsyncHTTPClient

    project.pipeline("tiny", {"a": {}})
    answers = [
        await call_raw(jp_fetch, "not json"),
        await call_raw(jp_fetch, "[1]"),
        await call(jp_fetch, "POST", "pop/api/jobs", {"pipeline": 3}),
        await call(jp_fetch, "POST", "pop/api/jobs", {"pipeline": "tiny", "id": "../x"}),
        await call(jp_fetch, "POST", "pop/api/jobs", {"pipeline": "tiny", "data": [1]}),
        await call(jp_fetch, "GET", "pop/api/costs", by="nonsense"),
        await call(jp_fetch, "GET", "pop/api/jobs", limit="lots"),
        await call(jp_fetch, "GET", "pop/api/jobs/nope"),
        await call(jp_fetch, "GET", "pop/api/no/such/route"),
        await call(jp_fetch, "GET", "pop/api/jobs/x/cancel"),  # only POST there
        await call(jp_fetch, "POST", "pop/api/jobs/x/resume", {"budget_usd": "lots"}),
        await call(jp_fetch, "POST", "pop/api/pipelines/tiny/check", {"seed": [1]}),
    ]
    refused = await AsyncHTTPClient().fetch(
        f"{base(jp_http_port, jp_base_url)}pop/api/jobs", raise_error=False
    )
    answers.append((refused.code, json.loads(refused.body)))
    codes = [code for code, _ in answers]
    assert codes == [400, 400, 400, 400, 400, 400, 400, 404, 404, 405, 400, 400, 403]
    for code, body in answers:
        assert isinstance(body, dict) and set(body) == {"error", "message"}, (code, body)
        assert body["error"] and body["message"], (code, body)


async def test_a_slow_request_does_not_hold_up_the_others(
    project: Project, jp_fetch: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pop_nb import service

    project.pipeline("tiny", {"a": {}})
    release, entered = threading.Event(), threading.Event()
    listing = service.pipelines

    def slow_pipelines(*args: Any, **kw: Any) -> Any:
        entered.set()
        assert release.wait(60), "never released"
        return listing(*args, **kw)

    monkeypatch.setattr(service, "pipelines", slow_pipelines)
    slow = asyncio.ensure_future(call(jp_fetch, "GET", "pop/api/pipelines"))
    while not entered.is_set():
        await asyncio.sleep(0.01)
    # while it is held: the API, and Jupyter's own API, answer
    assert (await call(jp_fetch, "GET", "pop/api/jobs"))[0] == 200
    assert (await jp_fetch("api", "status")).code == 200
    assert not slow.done()
    release.set()
    code, pipelines = await slow
    assert code == 200 and pipelines[0]["slug"] == "tiny"


@pytest.mark.parametrize(
    ("place", "activity", "actions"),
    [
        ("current", "running", ["cancel"]),
        ("current", "queued", ["resume", "cancel"]),
        ("current", "waiting", ["cancel", "approve", "reject"]),
        ("failed", "ended", ["resume", "archive", "delete"]),
        ("complete", "ended", ["resume", "archive", "delete"]),  # resume: from a task
        ("archive", "ended", ["restore", "delete"]),
    ],
)
def test_one_rule_says_what_a_job_allows_and_every_summary_carries_it(
    place: str, activity: str, actions: list[str]
) -> None:
    from pop_nb.models.api import allowed_actions

    assert allowed_actions(place, activity) == actions  # type: ignore[arg-type]


def test_the_committed_openapi_document_is_the_one_the_models_write() -> None:
    from pop_nb.server.openapi import COMMITTED, text

    assert COMMITTED.read_text() == text(), "the API models changed: run `python -m pop_nb.server.openapi`"


async def test_what_the_api_answers_fits_its_openapi_document(project: Project, jp_fetch: Any) -> None:
    """Real answers, and real errors, checked against the served document's schemas."""
    from jsonschema import Draft202012Validator

    project.pipeline("tiny", {"a": {"cells": [("inference", "pop.output(pop.seed)")]}})
    code, doc = await call(jp_fetch, "GET", "pop/api/openapi.json")
    assert code == 200 and doc["openapi"].startswith("3.1")

    def fits(name: str, value: Any, many: bool = False) -> None:
        ref = {"$ref": f"#/components/schemas/{name}"}
        schema = {"components": doc["components"], **({"type": "array", "items": ref} if many else ref)}
        errors = [e.message for e in Draft202012Validator(schema).iter_errors(value)]
        assert errors == [], (name, errors[:3])

    code, started = await call(
        jp_fetch, "POST", "pop/api/jobs", {"pipeline": "tiny", "data": {"n": 1}, "id": "o1"}
    )
    assert code == 201
    fits("JobSummary", started)
    fits("JobDetail", await wait_until(jp_fetch, "o1", lambda j: j["place"] == "complete"))
    fits("JobPage", (await call(jp_fetch, "GET", "pop/api/jobs"))[1])
    fits("PipelineInfo", (await call(jp_fetch, "GET", "pop/api/pipelines"))[1], many=True)
    code, refused = await call(jp_fetch, "POST", "pop/api/jobs/o1/resume", {"from-task": "a"})
    assert code == 400 and "from-task" in refused["message"]  # a misspelt key is refused, not lost
    fits("ErrorBody", refused)
    assert set(doc["paths"]) >= {"/pop/api/jobs", "/pop/api/jobs/{job_id}", "/pop/api/openapi.json"}


async def test_a_chunked_body_over_the_limit_is_refused_and_not_kept(
    project: Project, jp_fetch: Any, jp_http_port: int, jp_base_url: str, jp_auth_header: dict[str, str]
) -> None:
    """No Content-Length to judge by: the chunks past the limit are dropped as they come, and it is 413."""
    from tornado.httpclient import AsyncHTTPClient, HTTPRequest

    project.pipeline("tiny", {"a": {}})

    async def produce(write: Any) -> None:
        await write(b'{"pipeline": "tiny", "data": {"x": "')
        for _ in range(48):  # 3 MiB in 64 KiB chunks
            await write(b"y" * 65536)
        await write(b'"}}')

    request = HTTPRequest(
        f"{base(jp_http_port, jp_base_url)}pop/api/jobs",
        method="POST",
        headers={**jp_auth_header, "Transfer-Encoding": "chunked"},
        body_producer=produce,
        request_timeout=60,
    )
    answer = await AsyncHTTPClient().fetch(request, raise_error=False)
    assert answer.code == 413, answer.body[:300]
    assert json.loads(answer.body)["error"] == "SeedTooLarge"
    assert (await call(jp_fetch, "GET", "pop/api/jobs"))[0] == 200 and not any(project.data.glob("current/*"))
