"""The user-facing notebooks run top to bottom, in order, on a data folder they fill themselves."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from tests.conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
pytestmark = pytest.mark.slow


def test_the_notebooks_run_in_order(tmp_path: Path) -> None:
    import papermill

    assert [n.name for n in NOTEBOOKS] == [
        "01-quickstart.ipynb",
        "02-inspect-a-job.ipynb",
        "03-cost-analysis.ipynb",
    ]
    data = tmp_path / "pipeline-data"
    for notebook in NOTEBOOKS:
        out = tmp_path / notebook.name
        papermill.execute_notebook(
            str(notebook),
            str(out),
            parameters={"root": str(REPO), "data_dir": str(data)},
            cwd=str(REPO / "notebooks"),
            kernel_name="python3",
            progress_bar=False,
        )
        executed = nbformat.read(out, as_version=4)
        errors = [o for c in executed.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert errors == [], f"{notebook.name}: {errors}"
    quickstart = nbformat.read(tmp_path / "01-quickstart.ipynb", as_version=4)
    shown = [o for c in quickstart.cells for o in c.get("outputs", []) if "data" in o]
    assert any("application/vnd.jupyter.widget-view+json" in o["data"] for o in shown)  # the live widget
    costs = nbformat.read(tmp_path / "03-cost-analysis.ipynb", as_version=4)
    assert any(
        "application/vnd.plotly.v1+json" in o.get("data", {})
        for c in costs.cells
        for o in c.get("outputs", [])
    )
