"""Job folders on disk: atomic writes, append-only logs, moves between states."""

from pop_nb.store.jobs import JobFolder, JobStore

__all__ = ["JobFolder", "JobStore"]
