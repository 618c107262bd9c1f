"""Every example pipeline under pipelines/ runs offline on each of its seeds, as the README says."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
import yaml

from tests.conftest import Project, pop

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(
    (seed.parent.parent.name, seed.name)
    for seed in REPO.glob("pipelines/*/seeds/*.json")
    if (seed.parent.parent / "pipeline.yaml").is_file()
)


def test_there_are_five_examples_each_with_a_seed_and_a_readme_line() -> None:
    slugs = {slug for slug, _ in EXAMPLES}
    assert len(slugs) >= 5
    assert slugs == {p.parent.name for p in REPO.glob("pipelines/*/pipeline.yaml")}
    readme = (REPO / "README.md").read_text()
    for slug in slugs:
        assert f"`{slug}`" in readme, f"README.md does not list the example {slug}"


@pytest.mark.parametrize(("slug", "seed"), EXAMPLES)
def test_the_example_runs_offline_to_its_products(project: Project, slug: str, seed: str) -> None:
    project.copy_example(slug)
    seed_file = REPO / "pipelines" / slug / "seeds" / seed
    ran = pop("run", slug, "--seed", str(seed_file), "--id", "ex", "--quiet", timeout=300)
    job = project.job("ex")
    if job.status.state == "waiting":  # a gate: a person approves, as the run's message says
        assert ran.returncode == 3 and f"pop approve {job.id}" in ran.stderr
        approved = pop("approve", job.id, timeout=300)
        assert approved.returncode == 0, approved.stderr
        job = project.job("ex")
    else:
        assert ran.returncode == 0, ran.stderr
    assert job.status.state == "done", job.status.error

    spec = yaml.safe_load((REPO / "pipelines" / slug / "pipeline.yaml").read_text())
    made = sorted(str(p.relative_to(job.path / "products")) for p in (job.path / "products").rglob("*"))
    assert made == sorted(p["path"] for p in spec.get("products", []))
    assert all((job.path / "products" / name).stat().st_size > 0 for name in made)
    notebooks = list((job.path / "tasks").rglob("*.ipynb"))
    assert notebooks
    for path in notebooks:  # every stage notebook ran cleanly and shows what it did
        book = nbformat.read(path, as_version=4)
        outputs = [o for c in book.cells if c.cell_type == "code" for o in c.get("outputs", [])]
        assert not [o for o in outputs if o.output_type == "error"], path


def test_expert_roles_pick_their_models_and_say_why(project: Project) -> None:
    project.copy_example("expert-panel")
    seed = json.loads((REPO / "pipelines/expert-panel/seeds/hiking-boot.json").read_text())
    job = project.run("expert-panel", seed["data"])
    assert job.status.state == "done", job.status.error
    models = {row["task"]: row["model"] for row in job.folder.usage()}
    assert models == {"draft": "mock/gpt-4o-mini", "review": "mock/gpt-4o"}
    picks = [e["message"] for e in project.events(job) if e["status"] == "selected"]
    assert any(m.startswith("writer -> mock/gpt-4o-mini (balanced") for m in picks)
    assert any(m.startswith("critic -> mock/gpt-4o (balanced") for m in picks)


def test_a_failing_reply_falls_back_to_the_canned_one(project: Project) -> None:
    folder = project.copy_example("ticket-triage")
    script = yaml.safe_load((folder / "mock-responses.yaml").read_text())
    del script["reply"]  # the model has no answer for reply: its call fails
    (folder / "mock-responses.yaml").write_text(yaml.safe_dump(script))
    seed = json.loads((REPO / "pipelines/ticket-triage/seeds/printer-jam.json").read_text())
    job = project.run("ticket-triage", seed["data"])
    assert job.status.state == "done", job.status.error
    assert job.status.tasks["reply"].state == "failed"
    assert job.status.tasks["canned_reply"].state == "done"
    assert "our hardware team has it" in (job.path / "products/reply.txt").read_text().lower()


@pytest.mark.parametrize("slug", sorted({slug for slug, _ in EXAMPLES}))
def test_every_example_explains_itself_offline(project: Project, slug: str) -> None:
    project.copy_example(slug)
    explained = pop("compile", slug, "--explain", "--strict", "--json")
    assert explained.returncode == 0, explained.stderr
    explanation = json.loads(explained.stdout)["explanation"]
    assert explanation["aligned"] is True and explanation["model"].startswith("mock/")
    assert 3 <= explanation["intention"].count(". ") + 1 <= 10  # 3-10 sentences
    assert len(explanation["architecture"]) >= len(
        yaml.safe_load((REPO / "pipelines" / slug / "pipeline.yaml").read_text())["tasks"]
    )
