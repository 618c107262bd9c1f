"""``/pop/api``: every route answers with the service's models, behind Jupyter's authentication; the
event stream carries a real job's events in order and resumes from ``Last-Event-ID``."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from tests.conftest import WAIT_FOR_GO, Project

ROUTES = [
    ("GET", "pop/api/pipelines"),
    ("POST", "pop/api/pipelines/tiny/check"),
    ("GET", "pop/api/jobs"),
    ("GET", "pop/api/jobs/some-job"),
    ("POST", "pop/api/jobs"),
    ("POST", "pop/api/jobs/some-job/resume"),
    ("POST", "pop/api/jobs/some-job/cancel"),
    ("POST", "pop/api/jobs/some-job/approve"),
    ("POST", "pop/api/jobs/some-job/reject"),
    ("GET", "pop/api/jobs/some-job/file"),
    ("POST", "pop/api/jobs/some-job/copy"),
    ("GET", "pop/api/jobs/some-job/log"),
    ("POST", "pop/api/jobs/some-job/snapshot"),
    ("GET", "pop/api/jobs/some-job/zip"),
    ("POST", "pop/api/jobs/some-job/archive"),
    ("POST", "pop/api/jobs/some-job/restore"),
    ("DELETE", "pop/api/jobs/some-job"),
    ("GET", "pop/api/costs"),
    ("GET", "pop/api/experiments"),
    ("GET", "pop/api/experiments/triage"),
    ("POST", "pop/api/experiments/triage/score"),
    ("GET", "pop/api/experiments/triage/item"),
    ("GET", "pop/api/events"),
]


@pytest.fixture
def jp_root_dir(tmp_path: Path) -> Path:
    """The server runs at the project's root, as `jupyter lab` started in a project does."""
    root = tmp_path / "proj"
    root.mkdir(exist_ok=True)
    return root


def base(port: int, base_url: str) -> str:
    return f"http://127.0.0.1:{port}{base_url}"


async def call(jp_fetch: Any, method: str, path: str, body: Any = None, **params: Any) -> tuple[int, Any]:
    try:
        response = await jp_fetch(
            *path.split("/"),
            method=method,
            params=params,
            body=None if method == "GET" else json.dumps(body or {}),
        )
    except HTTPClientError as exc:
        return exc.code, parse(exc.response.body if exc.response else b"")
    return response.code, parse(response.body)


async def call_raw(jp_fetch: Any, raw: str) -> tuple[int, Any]:
    """POST a body exactly as given to /pop/api/jobs."""
    try:
        response = await jp_fetch("pop", "api", "jobs", method="POST", body=raw)
    except HTTPClientError as exc:
        return exc.code, parse(exc.response.body if exc.response else b"")
    return response.code, parse(response.body)


def parse(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:  # a page of Jupyter's own (a route that does not match is its 404)
        return body.decode(errors="replace")


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_route_is_refused_without_a_token(
    project: Project, jp_fetch: Any, jp_http_port: int, jp_base_url: str, method: str, path: str
) -> None:
    url = f"{base(jp_http_port, jp_base_url)}{path}"
    with pytest.raises(HTTPClientError) as refused:
        await AsyncHTTPClient().fetch(
            url, method=method, body=None if method in ("GET", "DELETE") else "{}", request_timeout=10
        )
    assert refused.value.code == 403


async def test_a_post_with_a_session_cookie_but_no_xsrf_token_is_refused(
    project: Project, jp_fetch: Any, jp_serverapp: Any, jp_http_port: int, jp_base_url: str
) -> None:
    client = AsyncHTTPClient()
    root = base(jp_http_port, jp_base_url)
    token = jp_serverapp.identity_provider.token
    login = await client.fetch(f"{root}api/status?token={token}", request_timeout=10)
    cookies = "; ".join(c.split(";")[0] for c in login.headers.get_list("Set-Cookie"))
    assert cookies  # logged in by cookie, as a browser is
    ok = await client.fetch(f"{root}pop/api/pipelines", headers={"Cookie": cookies}, request_timeout=10)
    assert ok.code == 200
    with pytest.raises(HTTPClientError) as refused:
        await client.fetch(
            f"{root}pop/api/jobs", method="POST", body='{"pipeline": "tiny"}', headers={"Cookie": cookies}
        )
    assert refused.value.code == 403 and not (project.data / "current").exists()


async def test_pipelines_jobs_costs_and_errors(project: Project, jp_fetch: Any) -> None:
    project.pipeline("tiny", {"a": {"cells": [("inference", "pop.output(pop.seed['n'])")]}})
    code, pipelines = await call(jp_fetch, "GET", "pop/api/pipelines")
    assert code == 200 and [p["slug"] for p in pipelines] == ["tiny"]

    code, started = await call(
        jp_fetch, "POST", "pop/api/jobs", {"pipeline": "tiny", "data": {"n": 7}, "id": "t1"}
    )
    assert code == 201 and started["id"] == "t1" and started["place"] == "current"
    job = await wait_until(jp_fetch, "t1", lambda j: j["place"] == "complete")
    assert job["outputs"] == {"a": 7} and job["stages"][0]["notebook"] == "tasks/a/04-inference.ipynb"
    assert job["stages"][0]["path"].endswith("complete/t1/tasks/a/04-inference.ipynb")
    assert job["lab_dir"] == "pipeline-data/complete/t1"  # what Lab's document manager opens

    code, page = await call(jp_fetch, "GET", "pop/api/jobs", state="done", limit=10)
    assert code == 200 and page["total"] == 1 and page["jobs"][0]["id"] == "t1"
    assert page["data_dir"] == str(project.data)
    code, page = await call(jp_fetch, "GET", "pop/api/jobs", search="nothing-like-it")
    assert code == 200 and page["total"] == 0
    code, rows = await call(jp_fetch, "GET", "pop/api/costs", by="model")
    assert code == 200 and rows == []

    # errors, each with its status and a message that says what to do
    assert (await call(jp_fetch, "GET", "pop/api/jobs/nope"))[0] == 404
    code, body = await call(jp_fetch, "POST", "pop/api/jobs", {"pipeline": "tiyn"})
    assert code == 404 and "Did you mean 'tiny'?" in body["message"]
    assert (await call(jp_fetch, "POST", "pop/api/jobs", {"pipeline": "tiny", "id": "../etc"}))[0] == 400
    assert (await call(jp_fetch, "POST", "pop/api/jobs", {"pipeline": "tiny", "id": "t1"}))[0] == 409
    assert (await call(jp_fetch, "GET", "pop/api/jobs", limit=100000))[0] == 400
    assert (await call(jp_fetch, "GET", "pop/api/costs", by="nonsense"))[0] == 400
    assert (await call(jp_fetch, "POST", "pop/api/jobs/t1/cancel"))[0] == 409  # it has ended
    assert (await call(jp_fetch, "POST", "pop/api/jobs/t1/approve"))[0] == 409  # no gate waits
    assert (await call(jp_fetch, "POST", "pop/api/jobs/t1/resume", {"budget_usd": "lots"}))[0] == 400
    # hostile bodies: deep nesting, not an object, not JSON, a seed nested past 64 levels: 400, server up
    nested = '{"pipeline": "tiny", "data": {"x": %s}}'
    for raw in (
        nested % ("[" * 100_000 + "]" * 100_000),
        "[1, 2]",
        "not json",
        nested % ("[" * 70 + "]" * 70),
    ):
        code, body = await call_raw(jp_fetch, raw)
        assert code == 400, (raw[:40], code, body)
    assert (await call(jp_fetch, "GET", "pop/api/jobs", search="\x00' OR 1=1 --"))[0] == 200
    assert (await call(jp_fetch, "GET", "pop/api/jobs/..%2F..%2Fetc"))[0] == 404  # never a path


async def test_a_seed_form_gets_the_schema_and_examples_and_checks_before_submitting(
    project: Project, jp_fetch: Any
) -> None:
    folder = project.pipeline("tiny", {"a": {}}, seed_schema="seed.schema.json")
    schema = {"type": "object", "required": ["topic"], "properties": {"topic": {"type": "string"}}}
    (folder / "seed.schema.json").write_text(json.dumps(schema))
    (folder / "seeds").mkdir()
    (folder / "seeds" / "good.json").write_text(json.dumps({"pipeline": "tiny", "data": {"topic": "x"}}))
    (folder / "seeds" / "broken.json").write_text("{not json")
    (folder / "seeds" / "deep.json").write_text("[" * 70 + "]" * 70)

    code, pipelines = await call(jp_fetch, "GET", "pop/api/pipelines")
    assert code == 200 and pipelines[0]["seed_schema"] == schema
    assert pipelines[0]["examples"] == {"good.json": {"pipeline": "tiny", "data": {"topic": "x"}}}
    for bad in ("broken.json", "deep.json"):  # `pop compile` refuses them; the list just leaves them out
        (folder / "seeds" / bad).unlink()

    check = "pop/api/pipelines/tiny/check"
    assert await call(jp_fetch, "POST", check, {"seed": {"data": {"topic": "x"}}}) == (
        200,
        {"ok": True, "pipeline": "tiny"},
    )
    code, body = await call(jp_fetch, "POST", check, {"seed": {"data": {"topic": 3}}})
    assert code == 400 and "seed_schema" in body["message"] and "topic" in body["message"]
    code, body = await call(jp_fetch, "POST", check, {"seed": {"data": {}, "budget": 1}})
    assert code == 400 and "budget" in body["message"]  # a misspelt key is named
    code, body = await call(jp_fetch, "POST", check, {"seed": {"pipeline": "other", "data": {}}})
    assert code == 400 and "names pipeline 'other'" in body["message"]
    assert (await call(jp_fetch, "POST", check, {"seed": [1]}))[0] == 400
    code, body = await call(jp_fetch, "POST", "pop/api/pipelines/tiyn/check", {"seed": {}})
    assert code == 404 and "Did you mean 'tiny'?" in body["message"]
    assert (await call(jp_fetch, "POST", "pop/api/pipelines/..%2F..%2Fetc/check", {"seed": {}}))[0] == 400
    assert not (project.data / "current").exists()  # checking never makes a job


async def test_resume_and_cancel_through_the_api(
    project: Project, jp_fetch: Any, jp_http_port: int, jp_base_url: str, jp_auth_header: dict[str, str]
) -> None:
    go = project.root / "go"
    project.pipeline(
        "two",
        {
            "a": {"cells": [("inference", "pop.output(1)")]},
            "b": {"needs": ["a"], "cells": [("inference", WAIT_FOR_GO.format(go=str(go)) + "pop.output(2)")]},
        },
    )
    await call(jp_fetch, "POST", "pop/api/jobs", {"pipeline": "two", "id": "r1"})
    await wait_until(jp_fetch, "r1", lambda j: j["current_task"] == "b" and j["activity"] == "running")
    # The cancel is answered at once, with the job as it is; its end comes over the event stream. The
    # runner is stopped (SIGSTOP) while asked, so it cannot have ended before the answer: a cancel that
    # waited for the end would wait out its grace period and answer "cancelled".
    stream = Stream(f"{base(jp_http_port, jp_base_url)}pop/api/events", jp_auth_header)
    await stream.until(lambda events: any(e["event"] == "heartbeat" for e in events))
    runner = json.loads((project.data / "current/r1/runner.json").read_text())["pid"]
    os.kill(runner, signal.SIGSTOP)
    try:
        code, answer = await call(jp_fetch, "POST", "pop/api/jobs/r1/cancel")
        again = await call(jp_fetch, "POST", "pop/api/jobs/r1/cancel")  # a double click
        stops = [t for t in threading.enumerate() if t.name == "cancel r1"]
    finally:
        os.kill(runner, signal.SIGCONT)
    assert again[0] == 200 and len(stops) == 1, stops  # joins the stop under way, starts no other
    assert code == 200, answer
    assert answer["place"] == "current" and answer["activity"] == "running", answer
    await stream.until(
        lambda events: any(
            e["event"] == "job" and e["data"]["event"]["status"] == "cancelled" for e in events
        )
    )
    stream.close()
    cancelled = await wait_until(jp_fetch, "r1", lambda j: j["place"] == "failed")
    assert cancelled["state"] == "cancelled" and cancelled["error"]["type"] == "Cancelled"
    go.touch()
    code, resumed = await call(jp_fetch, "POST", "pop/api/jobs/r1/resume", {"from_task": "b"})
    assert code == 200 and resumed["place"] == "current"
    job = await wait_until(jp_fetch, "r1", lambda j: j["place"] == "complete")
    assert job["outputs"] == {"a": 1, "b": 2}
    starts = [s for s in job["stages"] if s["task"] == "a"]
    assert len(starts) == 1  # a was kept, not run again


async def wait_until(jp_fetch: Any, job_id: str, done: Any, timeout: float = 120) -> dict[str, Any]:
    for _ in range(int(timeout / 0.1)):
        code, job = await call(jp_fetch, "GET", f"pop/api/jobs/{job_id}")
        if code == 200 and done(job):
            return job
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} never got there: {job}")


class Stream:
    """An SSE client: collects events until told to stop."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.events: list[dict[str, Any]] = []
        self._buffer = b""
        self.client = AsyncHTTPClient(force_instance=True)
        self.future = self.client.fetch(
            url, headers=headers, streaming_callback=self._chunk, request_timeout=300, raise_error=False
        )
        # Its end (the connection closed under it) is taken here: a future whose error nobody took is
        # logged, with a traceback, when the garbage collector finds it. Python 3.11 formats a traceback
        # with ast.parse, and if that happens inside another ast.parse (pytest rewriting a test module),
        # the two share one counter: "AST constructor recursion depth mismatch" in an unrelated test.
        self.future.add_done_callback(lambda done: done.exception())

    def _chunk(self, data: bytes) -> None:
        self._buffer += data
        while b"\n\n" in self._buffer:
            block, self._buffer = self._buffer.split(b"\n\n", 1)
            fields = dict(line.split(": ", 1) for line in block.decode().splitlines() if ": " in line)
            if "event" in fields:
                self.events.append(
                    {"id": fields["id"], "event": fields["event"], "data": json.loads(fields["data"])}
                )

    async def until(self, check: Any, timeout: float = 120) -> None:
        for _ in range(int(timeout / 0.05)):
            if check(self.events):
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"stream never showed it: {[e['event'] for e in self.events]}")

    def close(self) -> None:
        self.client.close()


async def test_the_event_stream_follows_a_real_job_and_resumes_from_last_event_id(
    project: Project, jp_fetch: Any, jp_http_port: int, jp_base_url: str, jp_auth_header: dict[str, str]
) -> None:
    project.pipeline(
        "steps",
        {
            "a": {
                "cells": [
                    ("ingestion", "pop.output(1)"),
                    ("inference", "pop.output(2)"),
                    ("integration", "pop.output(3)"),
                ]
            }
        },
    )
    url = f"{base(jp_http_port, jp_base_url)}pop/api/events"
    first = Stream(url, jp_auth_header)
    await first.until(lambda events: any(e["event"] == "heartbeat" for e in events))  # connected and quiet
    await call(jp_fetch, "POST", "pop/api/jobs", {"pipeline": "steps", "id": "s1"})
    job_done = lambda events: any(  # noqa: E731
        e["event"] == "job" and e["data"]["event"]["status"] == "done" for e in events
    )
    await first.until(job_done)
    first.close()
    real = [e for e in first.events if e["event"] != "heartbeat"]
    seen = [
        (e["data"]["event"]["kind"], e["data"]["event"]["status"], e["data"]["event"].get("stage"))
        for e in real
    ]
    on_disk = [
        (row["kind"], row["status"], row.get("stage"))
        for row in map(json.loads, (project.data / "complete/s1/events.jsonl").read_text().splitlines())
    ]
    assert seen == on_disk  # every event, in order, none twice
    assert ("stage", "started", "inference") in seen and seen[-1] == ("job", "done", None)
    assert real[-1]["data"]["job"]["state"] in ("running", "done")  # the job's summary rides along
    ids = [int(e["id"].split("-")[1]) for e in real]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)

    # reconnect after the third event: exactly the rest, in order
    again = Stream(url, {**jp_auth_header, "Last-Event-ID": real[2]["id"]})
    await again.until(lambda events: len([e for e in events if e["event"] != "heartbeat"]) >= len(real) - 3)
    again.close()
    assert [e["id"] for e in again.events if e["event"] != "heartbeat"] == [e["id"] for e in real[3:]]

    stale = Stream(url, {**jp_auth_header, "Last-Event-ID": "0-5"})  # from before a restart
    await stale.until(lambda events: events and events[0]["event"] == "reset")
    stale.close()
