"""A job's LLM ledger: ``usage.jsonl`` (one row per call attempt) and ``llm/responses/<hash>.json``.

The stored responses are what makes resuming free: when a stage runs again (a resume, a retry), each
request it makes that is identical to one the earlier run made at the same point is answered from the
stored response at $0 (``cache_hit``).

"At the same point" means: same task, stage and refinement pass, and the same occurrence of that exact
request within the stage run. So a stage that deliberately asks the same question three times (sampling
at a temperature) gets three answers the first time and the same three, in order, on a re-run; and a
refinement pass that repeats a prompt still gets a fresh answer. One :class:`Ledger` object is one run
of a stage: it counts the occurrences.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pop_nb.models.records import UsageRow
from pop_nb.store import layout
from pop_nb.store.atomic import append_jsonl, atomic_write_bytes
from pop_nb.store.usage import UsageTally


class Ledger:
    """Reads and writes one job's calls. Safe across processes: appends are single writes and
    stored responses are written atomically, once per request hash."""

    def __init__(self, job_dir: Path) -> None:
        self.job_dir = job_dir
        self.usage_file = job_dir / layout.USAGE
        self.responses = job_dir / "llm" / "responses"
        self._tally = UsageTally(self.usage_file, job_id=None)
        self._seen: dict[tuple[str | None, str | None, int, str], int] = {}

    def replay_key(self, request_hash: str, task: str | None, stage: str | None, refinement: int) -> str:
        """The name of this call's stored response: its request at this point of the stage run."""
        slot = (task, stage, refinement, request_hash)
        occurrence = self._seen.get(slot, 0)
        self._seen[slot] = occurrence + 1
        point = f"{request_hash}|{task}|{stage}|{refinement}|{occurrence}"
        return hashlib.sha256(point.encode()).hexdigest()

    def record(self, row: UsageRow) -> None:
        append_jsonl(self.usage_file, row)  # redacted there, like every write

    def cached(self, key: str) -> dict[str, Any] | None:
        """The stored response of the earlier successful call at this :meth:`replay_key`, if any."""
        try:
            stored: dict[str, Any] = json.loads((self.responses / f"{key}.json").read_text(encoding="utf-8"))
            return stored
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def store(self, key: str, response: dict[str, Any]) -> None:
        text = json.dumps(response, ensure_ascii=False, default=str)
        # no fsync: a response lost to a power cut is only paid for again; the row in usage.jsonl stays
        atomic_write_bytes(self.responses / f"{key}.json", text.encode(), durable=False)

    def spent(self, task: str | None = None) -> float:
        """USD spent so far by the job (or by one of its tasks); reads only rows added since last asked."""
        self._tally.refresh()
        return (self._tally.total if task is None else self._tally.of(task)).cost_usd
