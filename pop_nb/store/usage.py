"""Running totals of a job's ``usage.jsonl``, read incrementally (only lines added since the last read)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pop_nb.models.status import Totals


def add_row(totals: Totals, row: dict[str, Any]) -> None:
    """Count one ``usage.jsonl`` row (an attempt; a call when it answered) into ``totals``."""
    ok = row.get("ok", True) is not False
    totals.attempts += 1
    totals.calls += ok
    totals.unpriced_calls += ok and row.get("cost_source") == "unpriced"
    totals.input_tokens += int(row.get("input_tokens") or 0)
    totals.output_tokens += int(row.get("output_tokens") or 0)
    totals.cost_usd += float(row.get("cost_usd") or 0.0)
    totals.cache_hits += bool(row.get("cache_hit"))
    totals.saved_usd += float(row.get("saved_usd") or 0.0)


class UsageTally:
    """Totals per task for one job. ``refresh`` reads only what was appended since the previous call,
    and never a half-written last line (it stops at the last newline)."""

    def __init__(self, path: Path, job_id: str | None) -> None:
        self.path = path
        self.job_id = job_id  # None: every row, whoever logged it
        self._offset = 0
        self._totals: dict[str, Totals] = {}
        self.total = Totals()

    def refresh(self) -> None:
        try:
            with self.path.open("rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
        except FileNotFoundError:
            return
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._offset += len(complete)
        for line in complete.splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if self.job_id is not None and row.get("job") != self.job_id:
                continue
            add_row(self.total, row)
            add_row(self._totals.setdefault(row.get("task") or "", Totals()), row)

    def of(self, task: str) -> Totals:
        """The task's totals as of the last refresh (a copy)."""
        return self._totals.get(task, Totals()).model_copy()
