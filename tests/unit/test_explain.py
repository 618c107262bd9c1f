"""`pop compile --explain`: intention and verdict by the pipeline's model (the scripted mock here),
architecture from the definition, saved and reused while nothing changed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from pop_nb.pipeline.load import load_pipeline
from tests.conftest import Project, pop

REPO = Path(__file__).resolve().parents[2]
SLUG = "content-generation"


def copy_demo(project: Project) -> Path:
    folder = project.root / "pipelines" / SLUG
    shutil.copytree(REPO / "pipelines" / SLUG, folder)
    shutil.copytree(REPO / "pipelines" / "personalities", project.root / "pipelines" / "personalities")
    return folder


def calls(folder: Path) -> list[dict[str, object]]:
    usage = folder / ".explain" / "usage.jsonl"
    return [json.loads(line) for line in usage.read_text().splitlines()] if usage.exists() else []


def test_explain_writes_intention_architecture_and_verdict_once(project: Project) -> None:
    folder = copy_demo(project)
    assert load_pipeline(project.root, SLUG).intention is None  # never explained

    first = pop("compile", SLUG, "--explain")
    assert first.returncode == 0, first.stderr
    assert "## Intention" in first.stdout and "Turns a research brief" in first.stdout
    assert "2. **analysis** (tasks/analysis.ipynb); after research; runs only if" in first.stdout
    assert "critique/refine loop, at most 2 passes" in first.stdout
    assert "Products: report.md (text, from formatting.markdown)" in first.stdout
    assert "## Alignment: aligned" in first.stdout and "[info] Only the policy focus area" in first.stdout
    [row] = calls(folder)
    assert row["task"] == "_compile" and row["stage"] == "explain" and row["cost_source"] == "price_map"
    assert float(row["cost_usd"]) > 0  # priced as gpt-4o-mini, like any call

    pipeline = load_pipeline(project.root, SLUG)
    assert pipeline.intention is not None and pipeline.intention.startswith("Turns a research brief")
    assert pipeline.architecture[0].startswith("1. **research**")
    saved = json.loads((folder / "explain.json").read_text())
    assert saved["aligned"] is True and saved["architecture"] == pipeline.architecture

    again = pop("compile", SLUG, "--explain")
    assert "unchanged since: no call" in again.stdout and len(calls(folder)) == 1
    (folder / "explain.json").write_text(json.dumps({**saved, "intention": None}))  # mangled by hand
    assert load_pipeline(project.root, SLUG).intention is None
    assert pop("compile", SLUG, "--explain").returncode == 0 and len(calls(folder)) == 2

    notebook = folder / "tasks" / "synthesis.ipynb"  # a notebook is part of what was explained
    notebook.write_text(notebook.read_text().replace("executive summary", "summary for executives"))
    assert load_pipeline(project.root, SLUG).intention is None
    assert pop("compile", SLUG, "--explain").returncode == 0 and len(calls(folder)) == 3


def test_strict_refuses_a_misaligned_pipeline_and_a_bad_answer_says_so(project: Project) -> None:
    folder = copy_demo(project)
    script = folder / "mock-responses.yaml"
    answers = yaml.safe_load(script.read_text())
    answers["_compile"]["explain"] = {
        "intention": "Writes a poem about batteries for children, in rhyme, with no sources at all.",
        "aligned": False,
        "findings": [{"severity": "error", "finding": "Nothing writes a poem.", "fix": "Add a poem task."}],
    }
    script.write_text(yaml.safe_dump(answers))
    assert pop("compile", SLUG, "--explain").returncode == 0  # not strict: reported, not refused
    strict = pop("compile", SLUG, "--explain", "--strict", "--json")
    assert strict.returncode == 1
    body = json.loads(strict.stdout)
    assert body["ok"] is True and body["explanation"]["aligned"] is False
    assert body["explanation"]["findings"][0]["fix"] == "Add a poem task."

    answers["_compile"]["explain"] = "I think this pipeline is great!"
    script.write_text(yaml.safe_dump(answers))
    (folder / "explain.json").unlink()
    bad = pop("compile", SLUG, "--explain")
    assert bad.returncode != 0 and "did not answer with JSON" in bad.stderr and "Fix:" in bad.stderr
    assert not (folder / "explain.json").exists()  # nothing half-written


def test_the_architecture_names_every_route(project: Project) -> None:
    project.pipeline(
        "routes",
        {
            "a": {"on_success": "b", "on_failure": "c"},
            "b": {"needs": ["a"], "condition": "seed['x'] > 1", "on_false": "d", "gate": True},
            "c": {},
            "d": {"retries": 2},
        },
    )
    steps = {s.split("**")[1]: s for s in load_pipeline(project.root, "routes").architecture}
    assert "on success: b runs; on failure: c instead" in steps["a"]
    assert "runs only if `seed['x'] > 1`, else d runs instead" in steps["b"]
    assert "runs only when routed to (by a)" in steps["b"] and "then waits for approval" in steps["b"]
    assert "runs only when routed to (by a)" in steps["c"]
    assert "2 retries on error; runs only when routed to (by b)" in steps["d"]
