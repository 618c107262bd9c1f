"""The code-generation example end to end: failing generated tests are refined, files are packaged."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from pathlib import Path

import yaml

from tests.conftest import Project

REPO = Path(__file__).resolve().parents[2]
SEED = json.loads((REPO / "pipelines/code-generation/seeds/slugify.json").read_text())["data"]


def test_failing_generated_tests_are_refined_and_the_zip_manifest_matches(project: Project) -> None:
    project.copy_example("code-generation")
    job = project.run("code-generation", SEED, job_id="slugs")
    assert job.status.state == "done", job.status.error
    generate = job.status.tasks["generate"]
    assert generate.refinements == 1

    # the first pass ran the generated tests in the stage kernel and two failed: that is why it refined
    first = json.loads((job.path / "tasks/generate/outputs/validation.json").read_text())
    assert len(first["errors"]) == 1 and "FAIL: test_runs_of_punctuation" in first["errors"][0]
    second = json.loads((job.path / "tasks/generate/outputs/validation.r1.json").read_text())
    assert second["errors"] == []
    quality = (job.path / "tasks/generate/07-validateQuality.r1.ipynb").read_text()
    assert "Ran 5 tests" in quality and "OK" in quality

    # the files that passed are the job's, and the zip holds exactly them, as its manifest says
    files = job.path / "files/artifacts/generate"
    assert sorted(p.name for p in files.iterdir()) == ["slugs.py", "test_slugs.py"]
    assert "[^a-z0-9]+" in (files / "slugs.py").read_text()  # the refined code, not the first draft
    archive = zipfile.ZipFile(job.path / "products/code.zip")
    manifest = json.loads(archive.read("MANIFEST.json"))["files"]
    assert sorted(archive.namelist()) == ["MANIFEST.json", "slugs.py", "test_slugs.py"]
    for entry in manifest:
        on_disk = (files / entry["file"]).read_bytes()
        assert archive.read(entry["file"]) == on_disk
        assert entry == {
            "file": entry["file"],
            "size": len(on_disk),
            "sha256": hashlib.sha256(on_disk).hexdigest(),
        }

    listing = list(csv.DictReader(io.StringIO((job.path / "products/files.csv").read_text())))
    assert {row["path"]: row["sha256"] for row in listing} == {m["file"]: m["sha256"] for m in manifest}
    assert json.loads((job.path / "products/plan.json").read_text())["module"] == "slugs"


def test_a_generated_path_that_escapes_the_job_folder_is_refused(project: Project) -> None:
    folder = project.copy_example("code-generation")
    script = yaml.safe_load((folder / "mock-responses.yaml").read_text())
    draft = json.loads(script["generate"]["refine"])
    draft["files"][0]["path"] = "../../../../escaped.py"
    script["generate"]["inference"] = json.dumps(draft)
    script["generate"]["critique"] = "files[0] leaves the job folder: name it slugs.py"
    (folder / "mock-responses.yaml").write_text(yaml.safe_dump(script))

    job = project.run("code-generation", SEED, job_id="escape")
    assert job.status.state == "done", job.status.error
    first = json.loads((job.path / "tasks/generate/outputs/validation.json").read_text())
    assert first["errors"] == [
        "files[0].path '../../../../escaped.py' goes up with '..'; use a relative path like 'pkg/module.py'"
    ]
    assert (
        "not run: the files failed validateStructure"
        in (job.path / "tasks/generate/07-validateQuality.ipynb").read_text()
    )
    assert not list(project.root.parent.rglob("escaped.py"))
    assert sorted(p.name for p in (job.path / "files/artifacts/generate").iterdir()) == [
        "slugs.py",
        "test_slugs.py",
    ]


def test_write_artifact_refuses_a_path_out_of_the_job(project: Project) -> None:
    cells = [("integration", "pop.write_artifact('../../../outside.txt', 'x')")]
    project.pipeline("escape", {"t": {"cells": cells}})
    job = project.run("escape", {})
    assert job.status.state == "failed"
    error = job.status.tasks["t"].error
    assert (
        error is not None and "artifact of task 't' '../../../outside.txt' goes up with '..'" in error.message
    )
    assert not list(project.root.parent.rglob("outside.txt"))
