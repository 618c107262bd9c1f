"""Webhooks (``notify:`` in pipeline.yaml, ``POP_NOTIFY_URL``): a real job's end posted as the documented
JSON to a real local HTTP server, retried with backoff through its failures, masked, and never touching
the job when the hook is down; every delivery is a line in ``<data>/notify.jsonl`` naming only the host."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pop_nb.notify import shown
from pop_nb.testing.lab import free_port
from tests.conftest import Project, wait_for

KEY = "sk-canary-7d3e9a1c5b8f2e4d6a0c"


class Hook:
    """A webhook receiver: answers each POST with the next of ``statuses`` (then 200), keeps the bodies."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length", 0))
                hook.bodies.append(json.loads(self.rfile.read(size)))
                hook.paths.append(self.path)
                status = hook.statuses.pop(0) if hook.statuses else 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    receiver = Hook()
    yield receiver
    receiver.close()


def deliveries(project: Project, count: int) -> list[dict[str, Any]]:
    log = project.data / "notify.jsonl"
    rows = wait_for(
        lambda: log.is_file() and len(lines := log.read_text().splitlines()) >= count and lines, 60
    )
    return [json.loads(line) for line in rows]


def test_a_failed_job_is_posted_with_its_error_and_a_secret_in_the_url_stays_out_of_the_log(
    project: Project, hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("HOOK_SECRET", "T000/B000/xyzSECRETxyz")
    project.pipeline(
        "boom",
        {
            "a": {
                "cells": [("inference", "import os\nraise ValueError('no ' + os.environ['OPENAI_API_KEY'])")]
            }
        },
        notify={"url": hook.url + "/services/${HOOK_SECRET}"},
    )
    job = project.run("boom", job_id="f1")
    assert job.status.state == "failed"
    [row] = deliveries(project, 1)
    assert row["ok"] and row["attempts"] == 1 and row["type"] == "pop.job.failed" and row["job"] == "f1"
    assert row["target"] == hook.url  # the host only: the path holds the hook's key
    assert hook.paths == ["/services/T000/B000/xyzSECRETxyz"]  # the variable was expanded to send
    [body] = hook.bodies
    assert body["type"] == "pop.job.failed" and body["version"] == 1
    assert (
        body["job"]["id"] == "f1" and body["job"]["pipeline"] == "boom" and body["job"]["place"] == "failed"
    )
    assert body["job"]["error"]["type"] == "ValueError" and body["job"]["error"]["task"] == "a"
    assert body["text"].startswith("pop-nb: job f1 (boom) failed at a/inference: ValueError: no ")
    everything = json.dumps(body) + (project.data / "notify.jsonl").read_text()
    assert KEY not in everything and "[REDACTED]" in json.dumps(body)
    assert "xyzSECRETxyz" not in (project.data / "notify.jsonl").read_text()


def test_a_hook_that_fails_is_retried_with_backoff_and_one_that_is_down_never_touches_the_job(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POP_NOTIFY_RETRY_S", "0.05")
    flaky = Hook([500, 503])
    try:
        monkeypatch.setenv("POP_NOTIFY_URL", flaky.url)
        monkeypatch.setenv("POP_NOTIFY_ON", "done")
        project.pipeline("fine", {"a": {}})
        job = project.run("fine", job_id="d1")
        assert job.status.state == "done"
        [row] = deliveries(project, 1)
        assert row["ok"] and row["attempts"] == 3 and row["status"] == 200, row
        assert len(flaky.bodies) == 3 and flaky.bodies[0]["type"] == "pop.job.done"
        assert flaky.bodies[0]["text"].startswith("pop-nb: job d1 (fine) is done ($")
    finally:
        flaky.close()

    # nothing listens there: the job ends as it would, and the delivery says why it failed
    monkeypatch.setenv("POP_NOTIFY_URL", f"http://127.0.0.1:{free_port()}/hook")
    job = project.run("fine", job_id="d2")
    assert job.status.state == "done" and (project.data / "complete/d2").is_dir()
    rows = deliveries(project, 2)
    assert rows[1]["job"] == "d2" and not rows[1]["ok"] and rows[1]["attempts"] == 4
    assert "Connection refused" in rows[1]["error"] or "URLError" in rows[1]["error"]


def test_a_gate_is_posted_and_a_client_error_is_not_retried(
    project: Project, hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POP_NOTIFY_RETRY_S", "0.05")
    hook.statuses = [404]
    project.pipeline(
        "gated",
        {"a": {"gate": True}, "b": {"needs": ["a"]}},
        notify=[hook.url + "/one", {"url": hook.url + "/two", "on": ["done"]}],
    )
    job = project.run("gated", job_id="g1")
    assert job.status.state == "waiting"
    [row] = deliveries(project, 1)
    assert not row["ok"] and row["status"] == 404 and row["attempts"] == 1  # a 4xx is not tried again
    assert hook.paths == ["/one"]  # "/two" asked for done only
    assert hook.bodies[0]["type"] == "pop.job.waiting" and hook.bodies[0]["job"]["waiting_gates"] == ["a"]
    assert "pop approve g1" in hook.bodies[0]["text"]


def test_a_bad_notify_entry_is_refused_naming_the_key() -> None:
    from pydantic import ValidationError

    from pop_nb.models.pipeline import PipelineSpec

    base = {"name": "p", "tasks": {"a": {"notebook": "a.ipynb"}}}
    for bad in ("ftp://x", {"url": "https://x", "on": ["exploded"]}, {"url": "https://x", "when": "always"}):
        with pytest.raises(ValidationError) as refused:
            PipelineSpec.model_validate({**base, "notify": bad})
        assert "notify" in str(refused.value)
    assert PipelineSpec.model_validate({**base, "notify": "https://x"}).notify[0].on == [
        "failed",
        "cancelled",
        "waiting",
    ]


def test_what_a_delivery_line_may_say_about_a_url() -> None:
    assert (
        shown("https://user:pw@hooks.example.com:8443/services/KEY?token=1")
        == "https://hooks.example.com:8443"
    )
    assert shown("not a url") == "(not a URL)"
    assert shown("http://[::1") == "(not a URL)"
