"""Pipelines: discovery, loading, and ``pop compile``'s static checks.

Names are imported on first use: ``pop pipelines`` loads YAML files and must not pay for nbformat
(which ``compile`` needs to read task notebooks).
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "Pipeline": "pop_nb.pipeline.load",
    "discover": "pop_nb.pipeline.load",
    "load_pipeline": "pop_nb.pipeline.load",
    "compile_file": "pop_nb.pipeline.compile",
    "compile_pipeline": "pop_nb.pipeline.compile",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'pop_nb.pipeline' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
