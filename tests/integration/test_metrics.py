"""``pop.metric``: numbers a stage measures, in the job's ``metrics.jsonl`` and analytics' ``metrics``
table (what experiments compare)."""

from __future__ import annotations

import json

from pop_nb.analytics import Analytics
from tests.conftest import Project

MEASURE = """
words = len(str(pop.seed['text']).split())
pop.metric('words', words)
pop.metric('short', words < 5)
pop.output({'words': words})
"""
BAD = "pop.metric('ratio', float('nan'))"


def test_a_stage_records_metrics_that_analytics_reads(project: Project) -> None:
    project.pipeline("measure", {"count": {"cells": [("inference", MEASURE)]}})
    jobs = [project.run("measure", {"text": text}) for text in ("one two three", "a b c d e f g")]
    assert all(job.state == "done" for job in jobs), [job.status.error for job in jobs]
    rows = [json.loads(line) for line in (jobs[0].path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["name"], r["value"], r["task"], r["stage"]) for r in rows] == [
        ("words", 3.0, "count", "inference"),
        ("short", 1.0, "count", "inference"),
    ]
    assert rows[0]["job"] == jobs[0].id and rows[0]["pipeline"] == "measure" and rows[0]["scorer"] is None
    analytics = Analytics(project.data)
    analytics.refresh()
    means = analytics.query("SELECT name, avg(value) AS mean FROM metrics GROUP BY name ORDER BY name")
    assert means == [{"name": "short", "mean": 0.5}, {"name": "words", "mean": 5.0}]
    joined = analytics.query(
        "SELECT j.state, m.value FROM metrics m JOIN jobs j USING (job) WHERE m.name = 'words' ORDER BY 2"
    )
    assert joined == [{"state": "done", "value": 3.0}, {"state": "done", "value": 7.0}]


def test_a_value_that_is_not_a_number_fails_the_stage_with_the_reason(project: Project) -> None:
    project.pipeline("bad", {"t": {"cells": [("inference", BAD)]}})
    job = project.run("bad", {})
    assert job.state == "failed" and job.status.error is not None
    assert "pop.metric('ratio', nan): the value must be a finite number" in job.status.error.message
    assert not (job.path / "metrics.jsonl").exists()
