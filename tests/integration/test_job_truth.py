"""What a job says about itself is what it knows: every task from the start, honest progress, unpriced
spend shown as unknown, the definition it was created with, and seeds checked against the pipeline."""

from __future__ import annotations

import json

import pytest

from pop_nb.errors import SeedError
from pop_nb.models.seed import parse_seed
from pop_nb.orchestrator.executors import submit
from pop_nb.service import create_job
from tests.conftest import Project, pop, write_notebook


def test_a_queued_job_lists_every_task_as_pending(project: Project) -> None:
    project.pipeline("two", {"a": {}, "b": {"needs": ["a"]}})
    folder = create_job(project.settings(), parse_seed({"pipeline": "two"}, "test"), "queued-2")
    status = json.loads(folder.status_file.read_text())
    assert {name: t["state"] for name, t in status["tasks"].items()} == {"a": "pending", "b": "pending"}
    shown = pop("status", "queued-2").stdout
    assert "  a " in shown and "  b " in shown and shown.count("pending") >= 3


def test_a_failed_job_never_shows_100_percent(project: Project) -> None:
    project.pipeline(
        "halfway",
        {
            "a": {},
            "b": {"needs": ["a"], "cells": [("inference", "raise RuntimeError('no')")]},
            "c": {"needs": ["b"]},
            "d": {"needs": ["a"]},
        },
    )
    job = project.run("halfway")
    status = job.status
    assert status.state == "failed" and status.progress == 50  # a and d done; b failed; c never ran
    assert "halfway  failed  50%" in pop("status", job.id).stdout


SEEN = "import json\npop.output(json.load(open(pop_job_dir + '/tasks-status.json'))['progress'])"


def test_progress_moves_with_each_stage_of_a_task_under_way(project: Project) -> None:
    """A one-task job read 0% until it ended: a task under way counts for the share of its planned
    stages done (critique and refine, run only when validation asks, are not planned). Each stage
    outputs the job's progress as its status said when the stage started."""
    stages = ["ingestion", "inference", "parsing", "validateQuality", "critique", "refine", "integration"]
    project.pipeline("steps", {"only": {"cells": [(stage, SEEN) for stage in stages]}})
    job = project.run("steps")
    assert job.state == "done", job.status.error
    assert job.status.tasks["only"].stages_planned == 5 and job.status.progress == 100
    ran = [stage for stage in stages if stage not in ("critique", "refine")]  # validation passed
    seen = [json.loads((job.path / f"tasks/only/outputs/{stage}.json").read_text()) for stage in ran]
    assert seen == [0, 20, 40, 60, 80]


def test_unpriced_spend_is_unknown_not_zero(project: Project) -> None:
    from pop_nb.widgets.job import render_job

    project.pipeline(
        "local",
        {"a": {"cells": [("inference", "pop.output(pop.chat('hi').content)")]}},
        llm={"model": "mock/acme-unlisted-1", "mock_responses": {"a": {"inference": "hello"}}},
    )
    job = project.run("local")
    assert job.state == "done", job.status.error
    totals = job.status.totals
    assert totals.calls == 1 and totals.unpriced_calls == 1 and totals.cost_usd == 0
    assert "unknown (1 unpriced call)" in pop("status", job.id).stdout
    assert "unknown (1 unpriced call)" in pop("status").stdout
    assert "unknown (1 unpriced call)" in render_job(job.status, job.path)
    assert "$0.000000" not in pop("status", job.id).stdout


def test_a_queued_job_runs_its_snapshot_and_resume_takes_the_new_definition(project: Project) -> None:
    folder = project.pipeline("evolving", {"a": {"cells": [("inference", "pop.output('v1')")]}})
    settings = project.settings()
    job = create_job(settings, parse_seed({"pipeline": "evolving"}, "test"), "snap-1")
    # edited while the job waits in the queue
    write_notebook(folder / "tasks" / "a.ipynb", [("inference", "pop.output('v2')")])
    assert submit(settings, job.job_id).wait(120)
    ran = project.job("snap-1")
    assert ran.state == "done" and ran.outputs() == {"a": "v1"}
    assert (ran.path / "pipeline" / "notebooks" / "a.ipynb").is_file()

    assert pop("resume", "snap-1", "--from-task", "a", "--quiet").returncode == 0
    assert ran.outputs() == {"a": "v2"}  # resume takes the current notebooks, on purpose
    [resumed] = [e for e in project.events(ran) if e["status"] == "resumed"]
    assert "changed: notebooks/a.ipynb" in resumed["message"]


SEED_SCHEMA = {
    "type": "object",
    "required": ["topic", "region"],
    "properties": {"topic": {"type": "string"}, "region": {"type": "string"}},
}


def test_a_seed_schema_refuses_bad_seeds_everywhere_before_anything_starts(project: Project) -> None:
    folder = project.pipeline("briefs", {"a": {}}, seed_schema="schemas/seed.json")
    (folder / "schemas").mkdir()
    (folder / "schemas" / "seed.json").write_text(json.dumps(SEED_SCHEMA))
    (folder / "seeds").mkdir()
    (folder / "seeds" / "good.json").write_text(json.dumps({"data": {"topic": "t", "region": "EU"}}))
    assert pop("compile", "briefs").returncode == 0

    with pytest.raises(SeedError) as caught:
        project.run("briefs", {"topic": "t"})
    assert "$: 'region' is a required property" in str(caught.value) and "submit it again" in str(
        caught.value
    )
    cli = pop("run", "briefs", "--data", '{"topic": "t"}')
    assert cli.returncode == 2 and "'region' is a required property" in cli.stderr
    submit = pop("submit", "briefs", "--data", '{"topic": 3, "region": "EU"}')
    assert submit.returncode == 2 and "$.topic: 3 is not of type 'string'" in submit.stderr
    assert not (project.data / "current").exists() or not any((project.data / "current").iterdir())

    from tests.orchestrator.test_intake import drop, intake_for

    drop(project, "nope-seed.json", json.dumps({"pipeline": "briefs", "data": {"topic": "t"}}).encode())
    intake = intake_for(project)
    outcome = intake.take(intake.pending()[0])
    assert outcome.reason == "invalid_seed"
    message = json.loads((project.data / "rejected" / "nope" / "rejection.json").read_text())["message"]
    assert "'region' is a required property" in message

    (folder / "seeds" / "bad.json").write_text(json.dumps({"data": {"region": "EU"}}))
    compiled = pop("compile", "briefs")
    assert compiled.returncode == 1 and "example seed bad.json does not fit it" in compiled.stderr


def test_a_seed_missing_a_field_the_prompt_needs_says_to_resubmit(project: Project) -> None:
    project.pipeline(
        "brief",
        {
            "a": {
                "cells": [
                    ("ingestion", "pop.output(pop.seed)"),
                    ("promptTemplating", "pop.output(pop.render('{{ topic }} in {{ region }}', **pop.prev))"),
                ]
            }
        },
    )
    job = project.run("brief", {"topic": "heat pumps"})
    error = job.status.error
    assert (error.stage, error.type) == ("promptTemplating", "UndefinedError")
    assert "'region' is not in this job's seed data" in error.fix and "corrected seed" in error.fix
    assert "declare seed_schema" in error.fix
    shown = pop("status", job.id).stdout
    assert "corrected seed" in shown and "after fixing it" not in shown
