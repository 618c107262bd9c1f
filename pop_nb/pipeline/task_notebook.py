"""A task notebook split by cell tags: ``parameters``, the eleven stage names, untagged setup cells.

Read as plain JSON: ``pop compile`` and ``pop pipelines`` only look at tags and sources, and nbformat's
import (its validator brings jsonschema) would cost them more than the rest of their work. nbformat is
imported only to convert a pre-v4 notebook and to build a stage notebook for the kernel.
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pop_nb.models.pipeline import LOOP_STAGES, STAGES

if TYPE_CHECKING:
    from nbformat import NotebookNode

Cell = dict[str, Any]

_STAGES_LOWER = {s.lower(): s for s in STAGES}


@dataclass
class TaskNotebook:
    path: Path
    nb: dict[str, Any]
    parameters: Cell | None = None
    setup: list[Cell] = field(default_factory=list)
    stages: dict[str, list[Cell]] = field(default_factory=dict)
    tag_problems: list[str] = field(default_factory=list)

    def has_stage(self, stage: str) -> bool:
        return bool(self.stages.get(stage))

    def stages_with_cells(self, loop: bool = True) -> list[str]:
        """The stages it has cells for, in order; ``loop=False``: without critique and refine (they run
        only when validation asks)."""
        return [s for s in STAGES if self.has_stage(s) and (loop or s not in LOOP_STAGES)]

    def stage_source(self, stage: str) -> str:
        """The code of ``stage``'s cells, one after the other."""
        return "\n".join(cell["source"] for cell in self.stages.get(stage, []))

    def stage_notebook(self, stage: str) -> NotebookNode:
        """Parameters + setup cells + this stage's cells, in notebook order, as a new notebook."""
        import nbformat

        wanted = {id(c) for c in self.stages.get(stage, [])}
        wanted |= {id(c) for c in self.setup}
        if self.parameters is not None:
            wanted.add(id(self.parameters))
        cells = [copy.deepcopy(c) for c in self.nb["cells"] if id(c) in wanted]
        for cell in cells:
            if cell.get("cell_type") == "code":
                cell["outputs"] = []
                cell["execution_count"] = None
        metadata = copy.deepcopy(self.nb.get("metadata", {}))
        # Stage notebooks always run on our Python kernel, whatever the source notebook last used.
        metadata["kernelspec"] = python3_kernelspec()
        metadata.setdefault("language_info", {"name": "python"})
        out: NotebookNode = nbformat.v4.new_notebook(
            cells=[nbformat.from_dict(c) for c in cells], metadata=nbformat.from_dict(metadata)
        )
        out.nbformat_minor = max(int(self.nb.get("nbformat_minor", 0)), 5)
        return out


@functools.cache
def python3_kernelspec() -> dict[str, str]:
    """The ``python3`` kernel as Jupyter lists it here. JupyterLab rewrites a notebook's kernelspec to
    the one it starts, so a stage notebook carrying another display name opens already "modified"."""
    try:
        from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

        spec = KernelSpecManager().get_kernel_spec("python3")
        return {"name": "python3", "display_name": spec.display_name, "language": spec.language}
    except (ImportError, NoSuchKernel, OSError, ValueError):  # ipykernel's own name for it
        return {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def stage_tag_suggestion(tag: str) -> str | None:
    """The stage a misspelt tag was probably meant to be, if any."""
    if tag.lower() in _STAGES_LOWER:
        return _STAGES_LOWER[tag.lower()]
    close = difflib.get_close_matches(tag, STAGES, n=1, cutoff=0.75)
    return close[0] if close else None


def _read(path: Path) -> dict[str, Any]:
    """``path`` as nbformat 4 JSON with each cell's source one string (as nbformat gives it)."""
    nb = json.loads(path.read_bytes())
    if not isinstance(nb, dict):
        raise ValueError("it is not a notebook (its JSON is not an object)")
    if nb.get("nbformat") != 4:
        import nbformat  # older notebooks: let nbformat convert them

        return dict(nbformat.read(path, as_version=4))
    cells = nb.get("cells")
    if not isinstance(cells, list) or not all(isinstance(c, dict) for c in cells):
        raise ValueError("its 'cells' is not a list of cells")
    for cell in cells:
        source = cell.get("source", "")
        cell["source"] = "".join(source) if isinstance(source, list) else str(source)
        if not isinstance(cell.get("metadata"), dict):
            cell["metadata"] = {}
    return nb


def load_task_notebook(path: Path) -> TaskNotebook:
    """Read and split ``path``. Tag problems are collected, not raised: ``pop compile`` reports them."""
    nb = _read(path)
    tn = TaskNotebook(path=path, nb=nb)
    for index, cell in enumerate(nb["cells"]):
        tags = [str(t) for t in cell["metadata"].get("tags", []) or []]
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
        elif cell.get("cell_type") == "code":
            tn.setup.append(cell)
    return tn
