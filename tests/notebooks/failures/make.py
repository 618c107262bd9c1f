"""The golden failure notebooks: one task notebook per way a stage can fail, named by behaviour, and
what a job that runs it must record (``<behaviour>.expected.json``).

``python -m tests.notebooks.failures.make`` writes the notebooks; ``POPNB_GOLDEN_UPDATE=1 pytest
tests/notebooks/test_failures.py`` writes the expectations from a run. Read the diff before keeping it:
it is what a user sees when a stage fails that way.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

HERE = Path(__file__).parent
PARAMS = 'pop_job_dir = None\npop_sample = {"seed": {}}'
SETUP = "from pop_nb import task as pop"

# behaviour -> (the stage's cells, what the task declares in pipeline.yaml)
FAILURES: dict[str, tuple[list[str], dict[str, object]]] = {
    "raises": (["x = 41", 'raise ValueError(f"the model said no to {x + 1}")'], {}),
    "times_out": (["import time\ntime.sleep(60)"], {"timeout_s": 3}),
    "kills_its_kernel": (["import os\nos._exit(7)"], {}),
    "outputs_what_its_schema_refuses": (
        ['pop.output({"n": "three"})'],
        {"output_schema": "schema.json", "max_refinements": 0},
    ),
}


def write() -> None:
    for behaviour, (cells, _) in FAILURES.items():
        nb = nbformat.v4.new_notebook()
        nb.cells = [
            nbformat.v4.new_code_cell(PARAMS, metadata={"tags": ["parameters"]}),
            nbformat.v4.new_code_cell(SETUP),
            *(nbformat.v4.new_code_cell(src, metadata={"tags": ["inference"]}) for src in cells),
        ]
        for i, cell in enumerate(nb.cells):
            cell.id = f"{behaviour[:20]}-{i}"  # stable ids: the files do not change when written again
        nbformat.write(nb, HERE / f"{behaviour}.ipynb")


if __name__ == "__main__":
    write()
