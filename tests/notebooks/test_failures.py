"""Golden failure notebooks, named by behaviour (``tests/notebooks/failures/``): each runs as a job's one
stage through the real engine, and what the job records of the failure (its status error and the
executed notebook, with ids, times and paths taken out) must be what ``<behaviour>.expected.json`` holds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from typing import Any

import pytest
import yaml

from tests.conftest import Project
from tests.notebooks.failures.make import FAILURES, HERE

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


def evidence(job: Any) -> dict[str, Any]:
    """What the job says of its failure, with what varies between runs replaced by placeholders."""
    status = job.status
    error = status.error
    text = json.dumps(
        {
            "state": status.state,
            "error": {
                "task": error.task,
                "stage": error.stage,
                "type": error.type,
                "message": error.message.splitlines()[0],
                "cell_index": error.cell_index,
                "exec_count": error.exec_count,
                "cell_source": error.cell_source,
                "traceback_ends": next((line for line in reversed(error.traceback) if line.strip()), None),
                "fix": error.fix,
                "notebook": error.notebook,
            },
            "notebook": [
                {
                    "type": cell["cell_type"],
                    "tags": cell.get("metadata", {}).get("tags", []),
                    "outputs": [
                        f"{o['output_type']}:{o.get('ename', o.get('name', ''))}"
                        for o in cell.get("outputs", [])
                    ],
                    # a markdown cell is papermill's banner: what it says, without its HTML
                    "says": re.sub(r"<[^>]+>", "", "".join(cell["source"]))
                    if cell["cell_type"] == "markdown"
                    else None,
                }
                for cell in json.loads((job.path / error.notebook).read_text())["cells"]
            ]
            if error.notebook
            else None,
        }
    )
    text = text.replace(str(job.path), "<job>").replace(job.id, "<id>")
    return json.loads(re.sub(r"\d+(\.\d+)? ?(ms|s)\b", "<time>", text))


@pytest.mark.parametrize("behaviour", sorted(FAILURES))
def test_a_failing_stage_leaves_its_evidence(project: Project, behaviour: str) -> None:
    _, spec = FAILURES[behaviour]
    folder = project.root / "pipelines" / "golden"
    folder.mkdir(parents=True)
    shutil.copy(HERE / f"{behaviour}.ipynb", folder / "task.ipynb")
    (folder / "schema.json").write_text(json.dumps(SCHEMA))
    definition = {
        "name": "golden",
        "llm": {"model": "mock/gpt-4o-mini"},
        "tasks": {"t": {"notebook": "task.ipynb", **spec}},
    }
    (folder / "pipeline.yaml").write_text(yaml.safe_dump(definition))
    job = project.run("golden")
    seen = evidence(job)
    expected = HERE / f"{behaviour}.expected.json"
    if os.environ.get("POPNB_GOLDEN_UPDATE") == "1":
        expected.write_text(json.dumps(seen, indent=2) + "\n")
    assert seen == json.loads(expected.read_text())
