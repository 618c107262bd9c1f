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


def test_sources_stored_as_lines_an_old_format_and_a_file_that_is_no_notebook(tmp_path: Path) -> None:
    import json

    import nbformat
    import pytest

    path = write_notebook(tmp_path / "t.ipynb", [("inference", "a = 1\nb = 2")])
    raw = json.loads(path.read_text())
    assert any(isinstance(c["source"], list) for c in raw["cells"])  # as Lab writes it: one line each
    tn = load_task_notebook(path)
    assert tn.stage_source("inference") == "a = 1\nb = 2"
    built = tn.stage_notebook("inference")
    nbformat.validate(built)  # what the kernel gets is a valid v4 notebook
    assert built.cells[-1].source == "a = 1\nb = 2" and built.cells[-1].outputs == []

    v3 = nbformat.v3.new_notebook(
        worksheets=[nbformat.v3.new_worksheet(cells=[nbformat.v3.new_code_cell("c = 3")])]
    )
    (tmp_path / "old.ipynb").write_text(nbformat.v3.writes_json(v3))
    old = load_task_notebook(tmp_path / "old.ipynb")  # converted by nbformat
    assert [c["source"] for c in old.setup] == ["c = 3"]

    for text, why in (("[1, 2]", "not an object"), ('{"nbformat": 4, "cells": 3}', "'cells' is not a list")):
        (tmp_path / "bad.ipynb").write_text(text)
        with pytest.raises(ValueError, match=why):
            load_task_notebook(tmp_path / "bad.ipynb")
