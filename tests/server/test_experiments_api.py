"""``/pop/api/experiments``: each experiment with its variants' progress, the comparison graded with
what is kept (a GET never pays a judge; ``POST .../score`` does), one item under every variant with
its diffs and stage notebooks, and errors that name what is wrong."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project, pop
from tests.integration.test_experiments import EXPERIMENT, setup
from tests.server.test_api import call
from tests.server.test_trust import KEY

JUDGED = (
    EXPERIMENT
    + """
  - name: helpful
    kind: judge
    path: reply.text
    rubric: The reply says what happens next.
    model: mock/gpt-4o
    llm: {mock_responses: judge.yaml}
"""
)


@pytest.fixture
def jp_root_dir(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir(exist_ok=True)
    return root


def judge_requests(project: Project) -> int:
    usage = project.data / "experiments" / "triage" / "usage.jsonl"
    return len(usage.read_text().splitlines()) if usage.exists() else 0


async def test_experiments_listed_compared_scored_and_shown_item_by_item(
    project: Project, jp_fetch: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    folder = setup(project, JUDGED)
    judge = project.root / "pipelines" / "ticket-triage" / "experiments" / "judge.yaml"
    (folder / "judge.yaml").write_text(judge.read_text() if judge.exists() else _JUDGE)

    code, listed = await call(jp_fetch, "GET", "pop/api/experiments")
    assert code == 200 and [e["name"] for e in listed] == ["triage"]
    before = listed[0]
    assert before["file"] == "experiments/triage.yaml" and before["lab_file"] == "experiments/triage.yaml"
    assert before["items"] == 4 and before["baseline"] == "mini" and before["error"] is None
    assert [(v["name"], v["planned"], v["submitted"], v["done"]) for v in before["variants"]] == [
        ("mini", 4, 0, 0),
        ("billing-minded", 4, 0, 0),
    ]

    ran = await asyncio.to_thread(pop, "experiment", "run", "triage", timeout=300)  # the loop stays free
    assert ran.returncode == 0, ran.stderr

    code, listed = await call(jp_fetch, "GET", "pop/api/experiments")
    assert [(v["submitted"], v["done"], v["failed"], v["running"]) for v in listed[0]["variants"]] == [
        (4, 4, 0, 0),
        (4, 4, 0, 0),
    ]

    assert judge_requests(project) == 8  # `pop experiment run` compares at its end: the judge graded
    # a changed rubric: a GET grades with what is kept, so the judge is not asked; its grades are pending
    experiment = folder / "triage.yaml"
    experiment.write_text(experiment.read_text().replace("says what happens next", "is kind"))
    code, detail = await call(jp_fetch, "GET", "pop/api/experiments/triage")
    assert code == 200, detail
    variants = {v["name"]: v for v in detail["comparison"]["variants"]}
    assert variants["mini"]["pending"] == 4 and "helpful" not in variants["mini"]["metrics"]
    assert variants["billing-minded"]["metrics"]["category"]["mean"] == 0.25
    assert judge_requests(project) == 8
    assert detail["items_total"] == 4 and detail["lab_data"] == "pipeline-data"
    rows = {row["item"]: row["scores"] for row in detail["items"]}
    assert rows["invoice"]["billing-minded"]["category"] == 1.0 and rows["laptop"]["mini"]["category"] == 1.0

    # scoring asks the judge once per job, then a GET shows what was kept; two presses at once pay once
    (code, scored), (again, _) = await asyncio.gather(
        call(jp_fetch, "POST", "pop/api/experiments/triage/score"),
        call(jp_fetch, "POST", "pop/api/experiments/triage/score"),
    )
    assert code == again == 200, scored
    assert judge_requests(project) == 16
    code, detail = await call(jp_fetch, "GET", "pop/api/experiments/triage")
    variants = {v["name"]: v for v in detail["comparison"]["variants"]}
    assert variants["mini"]["pending"] == 0 and variants["mini"]["metrics"]["helpful"]["items"] == 4
    assert judge_requests(project) == 16

    code, shown = await call(jp_fetch, "GET", "pop/api/experiments/triage/item", id="laptop")
    assert code == 200, shown
    runs = {r["variant"]: r for r in shown["runs"]}
    assert runs["mini"]["outputs"]["classify"]["category"] == "hardware"
    assert runs["billing-minded"]["outputs"]["classify"]["category"] == "billing"
    assert runs["billing-minded"]["scores"]["category"] == 0.0
    changes = [c for t in runs["billing-minded"]["diff"]["tasks"] for c in t["changes"]]
    assert {"path": "category", "kind": "changed", "before": "hardware", "after": "billing"} in changes
    assert shown["lab_data"] == "pipeline-data"
    notebook = runs["mini"]["notebooks"][0]
    assert (project.data / notebook).is_file() and notebook.endswith(".ipynb")

    # every answer fits the served OpenAPI document
    code, doc = await call(jp_fetch, "GET", "pop/api/openapi.json")
    fits(doc, "ExperimentInfo", listed, many=True)
    fits(doc, "ExperimentDetail", detail)
    fits(doc, "ExperimentItem", shown)

    # a key that reached a job's output is masked on the way out, in the item and in the comparison
    final = project.data / "complete" / runs["mini"]["job"] / "tasks" / "reply" / "outputs" / "final.json"
    final.write_text(json.dumps({"text": f"call us, key {KEY}"}))
    _, shown = await call(jp_fetch, "GET", "pop/api/experiments/triage/item", id="laptop")
    _, detail = await call(jp_fetch, "GET", "pop/api/experiments/triage")
    assert KEY not in json.dumps(shown) + json.dumps(detail)
    assert "[REDACTED]" in json.dumps({r["variant"]: r["outputs"] for r in shown["runs"]})


def fits(doc: dict[str, Any], name: str, value: Any, many: bool = False) -> None:
    from jsonschema import Draft202012Validator

    ref = {"$ref": f"#/components/schemas/{name}"}
    schema = {"components": doc["components"], **({"type": "array", "items": ref} if many else ref)}
    errors = [e.message for e in Draft202012Validator(schema).iter_errors(value)]
    assert errors == [], (name, errors[:3])


async def test_experiment_errors_name_what_is_wrong(project: Project, jp_fetch: Any) -> None:
    setup(project)
    (project.root / "experiments" / "broken.yaml").write_text("pipeline: ticket-triage\nvariants: 7\n")
    code, listed = await call(jp_fetch, "GET", "pop/api/experiments")
    broken = {e["name"]: e for e in listed}["broken"]
    assert code == 200 and "broken.yaml is not an experiment" in broken["error"]

    code, missing = await call(jp_fetch, "GET", "pop/api/experiments/triag")
    assert code == 404 and missing["error"] == "ExperimentNotFound"
    assert "Did you mean 'triage'" in missing["message"] or "did you mean 'triage'" in missing["message"]
    code, bad = await call(jp_fetch, "GET", "pop/api/experiments/..%2F..%2Fetc")
    assert code == 400 and "a name is 1-48" in bad["message"]

    code, no_id = await call(jp_fetch, "GET", "pop/api/experiments/triage/item")
    assert code == 400 and "id" in no_id["message"]
    code, unknown = await call(jp_fetch, "GET", "pop/api/experiments/triage/item", id="lapto")
    assert code == 404 and "laptop" in unknown["message"]
    code, repeat = await call(jp_fetch, "GET", "pop/api/experiments/triage/item", id="laptop", repeat="x")
    assert code == 400 and "repeat must be an integer" in repeat["message"]
    code, repeat = await call(jp_fetch, "GET", "pop/api/experiments/triage/item", id="laptop", repeat=3)
    assert code == 400 and "--repeat 0 to 0" in repeat["message"]
    code, body = await call(jp_fetch, "POST", "pop/api/experiments/triage/score", {"ask": True})
    assert code == 400 and "ask" in body["message"]
    assert json.loads(json.dumps(listed))  # every answer was JSON


_JUDGE = """
helpful:
  judge:
    match:
      - if: '(?s)The output to grade:.*technician'
        answer: {score: 5, reason: Says what happens next.}
      - answer: {score: 2, reason: Vague.}
"""
