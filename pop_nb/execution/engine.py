"""The papermill engine entry point (``papermill.engine: pop = pop_nb.execution.engine:PopEngine``).

Importing papermill loads every registered engine, ours included, so the engine class cannot live in a
module that imports papermill at the top: whichever of the two were imported first would find the other
half-initialised. This module is light; ``PopEngine`` is resolved on first access, after papermill.
"""

from __future__ import annotations

from typing import Any


def get_engine() -> Any:
    """The ``PopEngine`` class, registered with papermill under the name ``pop``."""
    import papermill  # noqa: F401  (completes papermill's own import, entry points included)
    from papermill.engines import papermill_engines

    from pop_nb.execution.papermill_engine import PopEngine

    papermill_engines.register("pop", PopEngine)
    return PopEngine


def __getattr__(name: str) -> Any:
    if name == "PopEngine":
        return get_engine()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
