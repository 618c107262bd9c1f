"""A job's runs (``JobDetail.runs``): the first and one per resume, each with how it ended, what it
spent (by the time of each call in usage.jsonl) and the notebooks it left in history/<n>/."""

from __future__ import annotations

import pytest

from pop_nb import service
from tests.conftest import Project


def test_each_run_has_its_end_its_cost_and_its_notebooks(project: Project) -> None:
    flag = project.root / "fixed"
    project.pipeline(
        "flaky",
        {
            "a": {"cells": [("inference", "pop.output({'t': pop.chat('Write').content})")]},
            "b": {
                "needs": ["a"],
                "cells": [
                    (
                        "inference",
                        f"import pathlib\nassert pathlib.Path({str(flag)!r}).exists(), 'not yet'\n"
                        "pop.output({'t': pop.chat('Check').content})",
                    )
                ],
            },
        },
        llm={"model": "mock/gpt-4o", "mock_responses": {"*": {"inference": "An answer."}}},
    )
    job = project.run("flaky", job_id="h1")
    assert job.status.state == "failed"
    settings = project.settings()
    [first] = service.get_job(settings, "h1").runs
    assert first.n == 1 and first.state == "failed" and first.error.startswith("AssertionError: not yet")
    assert first.calls == 1 and first.cost_usd > 0 and first.notebooks == []  # nothing moved to history yet

    flag.touch()
    service.resume_job(settings, "h1", "a")  # everything again: a's call comes from the ledger
    project.job("h1").wait()
    detail = service.get_job(settings, "h1")
    assert detail.state == "done" and [r.n for r in detail.runs] == [1, 2]
    first, second = detail.runs
    assert first.state == "failed" and first.ended_at is not None
    assert "history/1/a/04-inference.ipynb" in first.notebooks
    assert "history/1/b/04-inference.ipynb" in first.notebooks
    assert second.state == "done" and second.how is not None and second.how.startswith("from task a")
    assert second.cache_hits == 1 and second.calls == 2  # a's answer again at $0, b's new call paid
    assert second.cost_usd == pytest.approx(detail.totals.cost_usd - first.cost_usd)
    assert detail.totals.calls == first.calls + second.calls  # the job's totals are every run's
