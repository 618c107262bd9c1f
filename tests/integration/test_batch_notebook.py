"""notebooks/04-batch.ipynb as papermill's batch driver: parameters in, a batch run, its summary out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.notebooks.golden import scratch_project

pytestmark = pytest.mark.slow


def test_papermill_runs_the_batch_notebook_as_a_batch_driver(tmp_path: Path) -> None:
    root = scratch_project(tmp_path)
    out = tmp_path / "batch-out.ipynb"
    (root / "extra").mkdir()
    (root / "extra" / "ok.json").write_text(
        json.dumps({"data": {"ticket": "Mouse broken", "customer": "Initech"}})
    )
    (root / "extra" / "bad.json").write_text("{oops")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "papermill",
            str(root / "notebooks" / "04-batch.ipynb"),
            str(out),
            "-p",
            "seeds_glob",
            "extra/*.json",
            "-p",
            "name",
            "pm",
            "-p",
            "fail_on_error",
            "True",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    nb = nbformat.read(out, as_version=4)
    shown = "".join(
        output.get("text", "") + output.get("data", {}).get("text/html", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    assert "batch pm</b>: 1 done, 0 failed, 1 rejected of 2 seeds" in shown
    assert "bad.json" in shown and "rejected seeds" in shown
    summary = json.loads((root / "pipeline-data" / "batches" / "pm" / "summary.json").read_text())
    assert summary["done"] == 1 and summary["jobs"][0]["job"] == "pm-2"
