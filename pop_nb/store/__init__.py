"""Job folders on disk: atomic writes, append-only logs, moves between states.

``JobFolder`` and ``JobStore`` are imported on first use, so a module that needs only
:mod:`pop_nb.store.atomic` (the analytics snapshot, ``pop costs``) does not load every model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pop_nb.store.jobs import JobFolder, JobStore

__all__ = ["JobFolder", "JobStore"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from pop_nb.store import jobs

        return getattr(jobs, name)
    raise AttributeError(f"module 'pop_nb.store' has no attribute {name!r}")
