"""An executed stage notebook stays replayable after its job has moved on, and replaying it by hand
never touches the job: it works on a scratch copy and says where."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import nbformat

from tests.conftest import Project, UnixSocketKernel


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "runner.lock"
    }


def test_a_finished_jobs_stage_replays_on_a_scratch_copy(project: Project) -> None:
    import papermill

    project.copy_example("content-generation")
    job = project.run("content-generation", {"topic": "Heat pumps", "region": "UK", "timeframe": "2026"})
    assert job.state == "done" and job.folder.place == "complete", job.status.error
    stage_nb = job.path / "tasks/research/04-inference.ipynb"
    injected = next(
        c for c in nbformat.read(stage_nb, as_version=4).cells if "injected-parameters" in c.metadata.tags
    )
    assert f'pop_job_dir = "{project.data / "current" / job.id}"' in injected.source  # moved on since
    before = digest(job.path)
    out = project.root / "replayed.ipynb"
    papermill.execute_notebook(  # as a user re-running it in JupyterLab: no runner around it
        str(stage_nb),
        str(out),
        kernel_name="python3",
        progress_bar=False,
        cwd=str(stage_nb.parent),
        kernel_manager_class=UnixSocketKernel,
    )
    assert "POP_RUNNER_JOB" not in os.environ
    text = out.read_text()
    scratch = project.root / ".pop-interactive" / "replay" / job.id
    assert f"scratch copy in {scratch}" in text  # it says where it writes
    assert digest(job.path) == before  # the finished job is untouched: ledger, status, outputs
    assert (scratch / "tasks/research/outputs/inference.json").is_file()
    usage = (scratch / "usage.jsonl").read_text().splitlines()
    assert len(usage) > len((job.path / "usage.jsonl").read_text().splitlines())  # the replay's call
