"""The tour notebooks' stored outputs are the reference nbval checks them against.

``python -m tests.notebooks.golden`` runs ``notebooks/*.ipynb`` in order in a scratch copy of the project
(a fresh data folder, as a new user has) and writes their outputs back into the repository's notebooks.
Run it after changing a notebook or what it shows, then read the diff: it is the change users will see.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = (
    "01-quickstart.ipynb",
    "02-inspect-a-job.ipynb",
    "03-cost-analysis.ipynb",
    "04-batch.ipynb",
    "05-experiments.ipynb",
)


def scratch_project(where: Path) -> Path:
    """A copy of the project's notebooks and pipelines under ``where`` (its own ``pipeline-data/``)."""
    root = where / "project"
    root.mkdir()
    shutil.copytree(REPO / "pipelines", root / "pipelines")
    shutil.copytree(REPO / "notebooks", root / "notebooks")
    return root


KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def refresh() -> None:
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory() as tmp:
        root = scratch_project(Path(tmp))
        for name in NOTEBOOKS:
            nb = nbformat.read(root / "notebooks" / name, as_version=4)
            NotebookClient(
                nb, kernel_name="python3", resources={"metadata": {"path": str(root / "notebooks")}}
            ).execute()
            stored = nbformat.read(REPO / "notebooks" / name, as_version=4)
            # what Lab writes when it opens one with the project's kernel: stored so, it opens clean
            stored.metadata["kernelspec"] = KERNELSPEC
            stored.metadata["language_info"] = nb.metadata["language_info"]
            for cell, ran in zip(stored.cells, nb.cells, strict=True):
                if cell.cell_type == "code":
                    cell.outputs = ran.outputs
                    cell.execution_count = ran.execution_count
            nbformat.write(stored, REPO / "notebooks" / name)
            print(f"refreshed notebooks/{name}", file=sys.stderr)


if __name__ == "__main__":
    refresh()
