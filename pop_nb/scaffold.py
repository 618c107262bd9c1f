"""``pop init``: a project folder with an example pipeline that runs offline."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from pop_nb.errors import PopError


def init_project(target: Path) -> Path:
    """Create ``<target>/pipelines/hello`` (and ``pipeline-data/``); never overwrites an existing pipeline."""
    dest = target / "pipelines" / "hello"
    if dest.exists():
        raise PopError(f"{dest} already exists. Fix: pick another directory, or remove it first.")
    template = resources.files("pop_nb") / "templates" / "hello"
    with resources.as_file(template) as src:
        shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    (target / "pipeline-data").mkdir(exist_ok=True)
    return dest
