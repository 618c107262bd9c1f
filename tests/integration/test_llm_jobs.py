"""Whole jobs whose tasks call a provider (the local protocol server) from real kernels."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pop_nb.testing.provider_server import Fault, ProviderServer
from tests.conftest import Project

CANARY = "sk-canary-7d1f0a9b3c5e4d2f8a6b"
SCHEMA = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}


def answer(body: dict[str, Any]) -> str:
    if "response_format" in body:
        return json.dumps({"title": "Solid-state batteries, briefly"})
    return "A fair draft. " + body["messages"][-1]["content"][:40]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ProviderServer]:
    for name in ("OPENAI_API_KEY", "DEEPSEEK_API_KEY"):
        monkeypatch.setenv(name, CANARY)
    with ProviderServer(answer=answer) as srv:
        yield srv


def files_containing(folder: Path, needle: str) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def test_resume_never_pays_twice_and_the_key_is_written_nowhere(
    project: Project, server: ProviderServer
) -> None:
    marker = project.root / "review-may-pass"
    project.pipeline(
        "llm-job",
        {
            "draft": {
                "expert": "writer",
                "personality": "You write titles. Be short.",  # inline text
                "output_schema": "schemas/draft.json",
                "cells": [
                    (None, "import os"),
                    (
                        "inference",
                        "print('key is', os.environ['OPENAI_API_KEY'])\n"
                        "pop.output(pop.chat('Draft a title').json())",
                    ),
                ],
            },
            "review": {
                "needs": ["draft"],
                "cells": [
                    (
                        "inference",
                        "import pathlib\n"
                        "note = pop.chat(f\"Review: {pop.inputs['draft']['title']}\")\n"
                        f"assert pathlib.Path({str(marker)!r}).exists(), 'reviewer not ready'\n"
                        "pop.output({'review': note.content, 'hit': note.cache_hit})",
                    )
                ],
            },
        },
        llm={"api_base": server.openai_base, "retry_base_s": 0.01},
        experts={"writer": ["deepseek/deepseek-chat", "openai/gpt-4o-mini"]},
        selection="cost",
        personality="critic",  # a file: pipelines/personalities/critic.md
    )
    (project.root / "pipelines" / "personalities").mkdir()
    (project.root / "pipelines" / "personalities" / "critic.md").write_text("You are a stern critic.\n")
    schemas = project.root / "pipelines" / "llm-job" / "schemas"
    schemas.mkdir()
    (schemas / "draft.json").write_text(json.dumps(SCHEMA))
    server.fail_next(Fault(status=401, message="no access", echo_key=True))  # the cheapest refuses

    job = project.run("llm-job")
    assert job.state == "failed" and job.status.error.task == "review"
    paid = len(server.requests)
    assert paid == 3  # draft: refused by gpt-4o-mini, answered by deepseek; review: one call
    first = server.requests[0].body
    assert first["model"] == "gpt-4o-mini" and first["response_format"]["json_schema"]["schema"] == SCHEMA
    assert server.requests[1].body["model"] == "deepseek-chat"
    system = [r.body["messages"][0] for r in server.requests]
    assert system[0] == {"role": "system", "content": "You write titles. Be short."}
    assert system[2] == {"role": "system", "content": "You are a stern critic."}
    selected = [e for e in project.events(job) if e["status"] == "selected"]
    assert len(selected) == 1 and "writer -> openai/gpt-4o-mini (cost: cheapest" in selected[0]["message"]

    marker.touch()
    job.resume()
    assert job.state == "done", job.status.error
    assert len(server.requests) == paid  # the review's call was already paid for: answered from the ledger
    assert job.outputs()["review"]["hit"] is True

    job.resume(from_task="draft")  # every task again
    assert job.state == "done"
    # Everything that was paid for is replayed. Only the refused request goes out again (a refusal
    # is not an answer; this time the server accepts it), and the review's request is unchanged.
    assert len(server.requests) == paid + 1 and server.requests[-1].body["model"] == "gpt-4o-mini"
    rows = job.usage()
    hits = [r for r in rows if r["cache_hit"]]
    assert len(hits) == 2 and all(r["cost_usd"] == 0 and r["saved_usd"] > 0 for r in hits)
    assert [r["task"] for r in hits] == ["review", "review"]

    # The key reached the provider, and is in no file of the job: not the notebook that printed it,
    # not the ledger row of the refusal that quoted it, not the logs.
    assert server.requests[0].headers["authorization"] == f"Bearer {CANARY}"
    assert files_containing(project.data, CANARY) == []
    printed = job.path / "tasks" / "draft" / "04-inference.ipynb"
    assert "key is [REDACTED]" in printed.read_text()


def test_budget_stops_the_job_before_paying_and_resume_raises_it(
    project: Project, server: ProviderServer
) -> None:
    project.pipeline(
        "budgeted",
        {"write": {"cells": [("inference", "pop.output({'text': pop.chat('Write a long essay').content})")]}},
        llm={"model": "openai/gpt-4o-mini", "api_base": server.openai_base},
        budget_usd=0.00001,
    )
    job = project.run("budgeted")
    assert job.state == "failed" and server.requests == []
    error = job.status.error
    assert error.type == "BudgetExceeded" and "budget_usd of $0.000010" in error.message
    assert f"pop resume {job.id} --budget-usd" in error.message
    assert not error.message.startswith("BudgetExceeded")  # the banner shows the type once, before it

    job.resume(budget_usd=0.05)
    assert job.state == "done" and len(server.requests) == 1
    assert json.loads((job.path / "seed.json").read_text())["budget_usd"] == 0.05


def test_an_output_declared_by_example_is_shown_sent_and_checked(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``output: {format: json, example}``: the model sees the example, gets the schema it implies as
    response_format, and an answer of another shape is refined; ``format: string`` sends no format."""
    answers = iter(['{"category": "billing", "severity": 3}', '{"category": "billing", "severity": "high"}'])

    def scripted(body: dict[str, Any]) -> str:
        return next(answers) if "response_format" in body else "Dear customer, ..."

    classify = [
        ("inference", "pop.output(pop.chat('Classify: my invoice is wrong').json())"),
        ("critique", "pop.output(pop.prev)"),
        ("refine", "pop.output(pop.chat('Classify again: my invoice is wrong').json())"),
    ]
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    with ProviderServer(answer=scripted) as srv:
        project.pipeline(
            "declared",
            {
                "classify": {
                    "cells": classify,
                    "max_refinements": 1,
                    "output": {"format": "json", "example": {"category": "hardware", "severity": "low"}},
                },
                "reply": {
                    "needs": ["classify"],
                    "cells": [("inference", "pop.output(pop.chat('Reply to the customer').content)")],
                    "output": {"example": "Hello, thanks for writing."},
                },
            },
            llm={"model": "openai/gpt-4o-mini", "api_base": srv.openai_base},
        )
        job = project.run("declared")
        requests = [r.body for r in srv.requests]
    assert job.state == "done", job.status.error
    first = requests[0]
    assert first["response_format"]["json_schema"]["schema"] == {
        "type": "object",
        "properties": {"category": {"type": "string"}, "severity": {"type": "string"}},
        "required": ["category", "severity"],
    }
    assert '"severity": "low"' in first["messages"][0]["content"]  # the example, in the system prompt
    record = json.loads((job.path / "tasks/classify/outputs/validation.json").read_text())
    assert record["errors"] == ["output_schema: $.severity: 3 is not of type 'string'"]
    assert job.outputs()["classify"] == {"category": "billing", "severity": "high"}
    reply = requests[-1]
    assert "response_format" not in reply and "Hello, thanks for writing." in reply["messages"][0]["content"]
    assert job.outputs()["reply"] == "Dear customer, ..."
