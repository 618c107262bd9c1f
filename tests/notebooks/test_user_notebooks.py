"""The tour notebooks run top to bottom, in order, on a data folder they fill themselves, and show what
they showed when their outputs were stored (nbval, with ids, times and temporary paths masked by
``sanitize.cfg``). A notebook whose output changes meaning fails here; refresh the stored outputs with
``python -m tests.notebooks.golden`` when the change is meant."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.notebooks.golden import NOTEBOOKS, REPO, scratch_project

pytestmark = pytest.mark.slow
HERE = Path(__file__).parent


def test_the_tour_notebooks_are_all_there_with_stored_outputs() -> None:
    assert sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb")) == list(NOTEBOOKS)
    for name in NOTEBOOKS:
        nb = nbformat.read(REPO / "notebooks" / name, as_version=4)
        ran = [c.execution_count for c in nb.cells if c.cell_type == "code"]
        assert ran == list(range(1, len(ran) + 1)), (
            f"{name}: stored outputs missing; run tests.notebooks.golden"
        )


def test_the_notebooks_show_what_they_showed(tmp_path: Path) -> None:
    root = scratch_project(tmp_path)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval",
            "-p",
            "no:xdist",
            "-p",
            "no:cacheprovider",
            "--nbval-sanitize-with",
            str(HERE / "sanitize.cfg"),
            "--nbval-current-env",
            "-q",
            "--rootdir",
            str(root),
            *(str(root / "notebooks" / name) for name in NOTEBOOKS),
        ],
        cwd=root / "notebooks",
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    cells = sum(
        c.cell_type == "code"
        for n in NOTEBOOKS
        for c in nbformat.read(REPO / "notebooks" / n, as_version=4).cells
    )
    assert f"{cells} passed" in result.stdout  # every code cell was run and compared
