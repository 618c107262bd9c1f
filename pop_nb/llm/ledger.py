"""A job's LLM ledger: ``usage.jsonl`` (one row per call attempt) and the answers it got.

The answers are the response cache (:mod:`pop_nb.llm.cache`): the job's own store, so a stage that runs
again (resume, retry) is answered at $0 (``cache_hit``), and the shared one under the data folder,
used as the call's cache mode says.

A sampled request is keyed by where it was asked: task, stage, refinement pass and the occurrence of
that exact request within the stage run. So a stage that asks the same question three times at a
temperature gets three answers the first time and the same three, in order, on a re-run. One
:class:`Ledger` object is one run of a stage: it counts the occurrences.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pop_nb.llm.cache import Policy, Sample, Store, job_store
from pop_nb.models.records import UsageRow
from pop_nb.store import layout
from pop_nb.store.atomic import append_jsonl
from pop_nb.store.usage import UsageTally


class Ledger:
    """Reads and writes one job's calls. Safe across processes: appends are single writes and stored
    answers are written atomically."""

    def __init__(self, job_dir: Path, shared: Path | None = None, *, own: bool = True) -> None:
        self.job_dir = job_dir
        self.usage_file = job_dir / layout.USAGE
        self.own = job_store(job_dir) if own else None
        self.shared = Store(shared, sharded=True) if shared is not None else None
        self._tally = UsageTally(self.usage_file, job_id=None)
        self._seen: dict[tuple[str | None, str | None, int, str], int] = {}

    def sample(
        self, request_hash: str, task: str | None, stage: str | None, refinement: int, repeat: int
    ) -> Sample:
        """Which sample of ``request_hash`` this call is: its place in this stage run."""
        slot = (task, stage, refinement, request_hash)
        occurrence = self._seen.get(slot, 0)
        self._seen[slot] = occurrence + 1
        return Sample(repeat, task, stage, refinement, occurrence)

    def record(self, row: UsageRow) -> None:
        append_jsonl(self.usage_file, row)  # redacted there, like every write

    def find(self, key: str, policy: Policy) -> dict[str, Any] | None:
        """The entry answering ``key``: the job's own, else the shared cache's (kept by the job too, so
        its record does not depend on the shared cache being there later)."""
        entry = self.own.get(key) if self.own is not None else None
        if entry is None and self.shared is not None and policy.reads_shared:
            entry = self.shared.get(key)
            if entry is not None:
                self.shared.touch(key)
                if self.own is not None:
                    self.own.put(entry, first_wins=False)
        return entry

    def keep(self, entry: dict[str, Any], policy: Policy) -> None:
        if self.own is not None:
            self.own.put(entry, first_wins=False)
        if self.shared is not None and policy.writes_shared:
            self.shared.put(entry, first_wins=True)

    def spent(self, task: str | None = None) -> float:
        """USD spent so far by the job (or by one of its tasks); reads only rows added since last asked."""
        self._tally.refresh()
        return (self._tally.total if task is None else self._tally.of(task)).cost_usd
