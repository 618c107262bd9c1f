"""A task notebook split by cell tags: ``parameters``, the eleven stage names, untagged setup cells."""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from pop_nb.models.pipeline import STAGES

_STAGES_LOWER = {s.lower(): s for s in STAGES}


@dataclass
class TaskNotebook:
    path: Path
    nb: NotebookNode
    parameters: NotebookNode | None = None
    setup: list[NotebookNode] = field(default_factory=list)
    stages: dict[str, list[NotebookNode]] = field(default_factory=dict)
    tag_problems: list[str] = field(default_factory=list)

    def has_stage(self, stage: str) -> bool:
        return bool(self.stages.get(stage))

    def stage_notebook(self, stage: str) -> NotebookNode:
        """Parameters + setup cells + this stage's cells, in notebook order, as a new notebook."""
        wanted = {id(c) for c in self.stages.get(stage, [])}
        wanted |= {id(c) for c in self.setup}
        if self.parameters is not None:
            wanted.add(id(self.parameters))
        cells = [copy.deepcopy(c) for c in self.nb.cells if id(c) in wanted]
        for cell in cells:
            if cell.cell_type == "code":
                cell.outputs = []
                cell.execution_count = None
        out: nbformat.NotebookNode = nbformat.v4.new_notebook(
            cells=cells, metadata=copy.deepcopy(self.nb.metadata)
        )
        # Stage notebooks always run on our Python kernel, whatever the source notebook last used.
        out.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        out.metadata.setdefault("language_info", {"name": "python"})
        out.nbformat_minor = max(self.nb.nbformat_minor, 5)
        return out


def stage_tag_suggestion(tag: str) -> str | None:
    """The stage a misspelt tag was probably meant to be, if any."""
    if tag.lower() in _STAGES_LOWER:
        return _STAGES_LOWER[tag.lower()]
    close = difflib.get_close_matches(tag, STAGES, n=1, cutoff=0.75)
    return close[0] if close else None


def load_task_notebook(path: Path) -> TaskNotebook:
    """Read and split ``path``. Tag problems are collected, not raised: ``pop compile`` reports them."""
    nb = nbformat.read(path, as_version=4)
    tn = TaskNotebook(path=path, nb=nb)
    for index, cell in enumerate(nb.cells):
        tags = list(cell.get("metadata", {}).get("tags", []))
        stage_tags = [t for t in tags if t in STAGES]
        if "parameters" in tags:
            if tn.parameters is not None:
                tn.tag_problems.append(f"cell {index} is a second 'parameters' cell; keep one")
            tn.parameters = cell
            if stage_tags:
                tn.tag_problems.append(f"cell {index} is tagged both 'parameters' and {stage_tags[0]!r}")
            continue
        for tag in tags:
            if tag not in STAGES and (guess := stage_tag_suggestion(tag)) is not None:
                tn.tag_problems.append(
                    f"cell {index} has tag {tag!r}, which is not a stage; did you mean {guess!r}?"
                )
        if len(stage_tags) > 1:
            tn.tag_problems.append(f"cell {index} has several stage tags {stage_tags}; give it one")
        if stage_tags:
            tn.stages.setdefault(stage_tags[0], []).append(cell)
        elif cell.cell_type == "code":
            tn.setup.append(cell)
    return tn
