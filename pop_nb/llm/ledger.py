"""A job's LLM ledger: ``usage.jsonl`` (one row per call attempt) and ``llm/responses/<hash>.json``.

The stored responses are what makes resuming free: a request whose hash matches an earlier successful
call of the same job is answered from its stored response at $0 (``cache_hit``), so a resumed or retried
stage re-spends nothing on identical work.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pop_nb.llm.secrets import redact
from pop_nb.models.records import UsageRow
from pop_nb.store.atomic import append_jsonl, atomic_write_bytes
from pop_nb.store.usage import UsageTally


class Ledger:
    """Reads and writes one job's calls. Safe across processes: appends are single writes and
    stored responses are written atomically, once per request hash."""

    def __init__(self, job_dir: Path) -> None:
        self.job_dir = job_dir
        self.usage_file = job_dir / "usage.jsonl"
        self.responses = job_dir / "llm" / "responses"
        self._tally = UsageTally(self.usage_file, job_id=None)

    def record(self, row: UsageRow) -> None:
        if row.error:
            row.error = redact(row.error)
        append_jsonl(self.usage_file, row)

    def cached(self, request_hash: str) -> dict[str, Any] | None:
        """The stored response of an earlier successful call with this request hash, if any."""
        try:
            return json.loads((self.responses / f"{request_hash}.json").read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def store(self, request_hash: str, response: dict[str, Any]) -> None:
        text = json.dumps(response, ensure_ascii=False, default=str)
        # no fsync: a response lost to a power cut is only paid for again; the row in usage.jsonl stays
        atomic_write_bytes(self.responses / f"{request_hash}.json", redact(text).encode(), durable=False)

    def spent(self, task: str | None = None) -> float:
        """USD spent so far by the job (or by one of its tasks); reads only rows added since last asked."""
        self._tally.refresh()
        return (self._tally.total if task is None else self._tally.of(task)).cost_usd
