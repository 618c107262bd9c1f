from pathlib import Path

from pop_nb.pipeline.task_notebook import load_task_notebook
from tests.conftest import write_notebook


def test_stage_notebook_is_parameters_setup_and_stage_cells_in_order(tmp_path: Path) -> None:
    path = write_notebook(
        tmp_path / "t.ipynb",
        [
            ("inference", "x = 1"),
            (None, "import math"),
            ("parsing", "y = 2"),
            ("inference", "z = 3"),
        ],
    )
    tn = load_task_notebook(path)
    sources = [c.source for c in tn.stage_notebook("inference").cells]
    assert sources[0].startswith("pop_job_dir = None")
    assert sources[1:] == ["from pop_nb import task as pop", "x = 1", "import math", "z = 3"]
    assert tn.has_stage("parsing") and not tn.has_stage("critique")
    assert tn.tag_problems == []


def test_two_stage_tags_on_one_cell_is_a_problem(tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "t.ipynb", [])
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("pass", metadata={"tags": ["inference", "parsing"]}))
    nbformat.write(nb, path)
    assert "several stage tags" in load_task_notebook(path).tag_problems[0]
