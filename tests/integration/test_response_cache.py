"""The response cache across whole jobs: batches, re-runs and a changed task, from real kernels against
the local protocol server (which counts what reaches the provider)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import pop_nb
from pop_nb.testing.provider_server import ProviderServer
from tests.conftest import Project, UnixSocketKernel, write_notebook

CANARY = "sk-canary-5e0b7c2a9d4f1e3b6a8c"
OUTLINE = "pop.output(pop.chat(f\"Outline an article on {pop.seed['topic']}\").content)"
TITLE = "pop.output(pop.chat(f\"Title for: {pop.inputs['outline']}\").content)"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ProviderServer]:
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    with ProviderServer(answer=lambda body: "About " + body["messages"][-1]["content"][-30:]) as srv:
        yield srv


def make_pipeline(project: Project, server: ProviderServer) -> Path:
    return project.pipeline(
        "cached",
        {
            "outline": {"cells": [("inference", OUTLINE)]},
            "title": {"needs": ["outline"], "cells": [("inference", TITLE)]},
        },
        llm={"model": "openai/gpt-4o-mini", "api_base": server.openai_base, "temperature": 0},
    )


def usage(data: Path, jobs: list[str]) -> list[dict[str, Any]]:
    rows = []
    for job in jobs:
        [folder] = data.glob(f"*/{job}")
        rows += [json.loads(line) for line in (folder / "usage.jsonl").read_text().splitlines()]
    return rows


def test_a_second_batch_pays_nothing_and_a_changed_task_pays_only_for_itself(
    project: Project, server: ProviderServer
) -> None:
    folder = make_pipeline(project, server)
    seeds = [{"topic": f"battery chemistry no. {i}"} for i in range(20)]
    first = pop_nb.batch("cached", data=seeds, name="first", root=project.root)
    assert first.done == 20, first
    assert len(server.requests) == 40  # two tasks, one call each

    second = pop_nb.batch("cached", data=seeds, name="second", root=project.root)
    assert second.done == 20 and len(server.requests) == 40  # nothing reached the provider
    paid = usage(project.data, [o.job for o in first.jobs])
    saved = usage(project.data, [o.job for o in second.jobs])
    assert all(r["cache_hit"] and r["cost_usd"] == 0 and r["cost_source"] == "cache" for r in saved)
    total = sum(r["cost_usd"] for r in paid)
    assert total > 0 and abs(sum(r["saved_usd"] for r in saved) - total) < 1e-9
    assert {r["paid_by"] for r in saved} == {o.job for o in first.jobs}

    write_notebook(folder / "tasks" / "title.ipynb", [("inference", TITLE.replace("Title", "A title"))])
    job = pop_nb.run("cached", seeds[0], root=project.root)
    job.wait()
    assert job.status.state == "done" and len(server.requests) == 41  # the changed task alone paid
    rows = usage(project.data, [job.id])
    assert [(r["task"], r["cache_hit"]) for r in rows] == [("outline", True), ("title", False)]
    cache = project.data / ".cache" / "llm"
    assert len(list(cache.rglob("*.json"))) == 41
    assert not [p for p in project.data.rglob("*") if p.is_file() and CANARY.encode() in p.read_bytes()]


def test_replay_set_at_any_layer_wins_and_pop_llm_cache_wins_over_every_file(
    project: Project, server: ProviderServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = make_pipeline(project, server)
    spec = yaml.safe_load((folder / "pipeline.yaml").read_text())
    spec["tasks"]["outline"]["llm"] = {"cache": "off"}  # this task would always send
    (folder / "pipeline.yaml").write_text(yaml.safe_dump(spec))
    seed = {"data": {"topic": "flow batteries"}, "llm": {"cache": "replay"}}
    job = pop_nb.run("cached", seed=seed, root=project.root)
    job.wait()
    assert job.status.state == "failed" and job.status.error.type == "ReplayMiss", job.status.error
    assert len(server.requests) == 0  # the task's `off` did not break the seed's promise

    monkeypatch.setenv("POP_LLM_CACHE", "read-write")  # the operator's word, over every file
    job = pop_nb.run("cached", seed=seed, root=project.root)
    job.wait()
    assert job.status.state == "done" and len(server.requests) == 2
    monkeypatch.setenv("POP_LLM_CACHE", "replay")
    job = pop_nb.run("cached", seed["data"], root=project.root)
    job.wait()
    assert job.status.state == "done" and len(server.requests) == 2
    assert job.status.totals.cache_hits == 2 and job.status.totals.saved_usd > 0


def test_a_cell_run_by_hand_again_at_temperature_0_is_free_and_logged(
    project: Project, server: ProviderServer
) -> None:
    import papermill

    llm = {"model": "openai/gpt-4o-mini", "api_base": server.openai_base}
    params = f"pop_job_dir = None\npop_sample = {{'seed': {{}}, 'llm': {llm!r}}}"
    cells = [
        (
            "inference",
            "a = pop.chat('Name a tide', temperature=0)\nb = pop.chat('Name a wave', temperature=0.7)",
        ),
        (None, "print('hits', a.cache_hit, b.cache_hit)"),
    ]
    notebook = write_notebook(project.root / "scratch" / "try.ipynb", cells, params=params)
    for _ in range(2):  # the notebook run twice, each time in a fresh kernel, as a user does
        papermill.execute_notebook(
            str(notebook),
            str(notebook),
            kernel_name="python3",
            progress_bar=False,
            kernel_manager_class=UnixSocketKernel,
        )
    assert "hits True False" in notebook.read_text()  # the second run: the tide was free, the wave sampled
    assert len(server.requests) == 3
    log = project.root / ".pop-interactive" / "usage.jsonl"
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["cache_hit"] for r in rows] == [False, False, True, False]
    assert rows[2]["saved_usd"] == rows[0]["cost_usd"] > 0
