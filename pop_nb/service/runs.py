"""A job's runs: the first, and one per resume, read from its ``events.jsonl`` (where each began, how it
ended), its ``usage.jsonl`` (what each spent, by the time of each call) and ``history/<n>/`` (the
notebooks of the tasks a resume ran again)."""

from __future__ import annotations

from typing import Any

from pop_nb.models.api import RunView
from pop_nb.models.lifecycle import FINAL_STATES
from pop_nb.models.status import JobStatus, Totals
from pop_nb.store.jobs import JobFolder
from pop_nb.store.usage import add_row

_ENDS = (*FINAL_STATES, "waiting")


def job_runs(folder: JobFolder, status: JobStatus, usage: list[dict[str, Any]]) -> list[RunView]:
    """Every run of the job, the first first; the last one's state is the job's own. ``usage``: the
    rows of its ``usage.jsonl``."""
    runs: list[dict[str, Any]] = []
    for event in folder.events():
        if event.get("kind") != "job":
            continue
        kind, ts = event.get("status"), str(event.get("ts") or "")
        if not runs or kind == "resumed":
            runs.append({"begun": ts, "how": event.get("message") if kind == "resumed" else None})
        run = runs[-1]
        if kind == "started":
            run.setdefault("started_at", ts)
            run["state"] = "running"
        elif kind in _ENDS:
            run["state"], run["ended_at"] = kind, None if kind == "waiting" else ts
            run["error"] = event.get("message") if kind in ("failed", "cancelled") else None
    if not runs:
        return []
    runs[-1]["state"] = status.state  # what the job says now wins over a line not written yet
    if status.state not in FINAL_STATES:
        runs[-1]["ended_at"] = None
    totals = [Totals() for _ in runs]
    begins = [run["begun"] for run in runs]
    for row in usage:
        ts = str(row.get("ts") or "")
        n = max((i for i, begun in enumerate(begins) if begun <= ts), default=0)
        add_row(totals[n], row)
    views = []
    for i, (run, spent) in enumerate(zip(runs, totals, strict=True)):
        kept = folder.history_dir(i + 1)
        notebooks = sorted(folder.rel(p) for p in kept.rglob("*.ipynb")) if i < len(runs) - 1 else []
        views.append(
            RunView(
                n=i + 1,
                how=run["how"],
                started_at=run.get("started_at"),
                ended_at=run.get("ended_at"),
                state=run.get("state", "pending"),
                error=run.get("error"),
                calls=spent.calls,
                cache_hits=spent.cache_hits,
                cost_usd=spent.cost_usd,
                cost=spent.cost_text(),
                notebooks=[nb for nb in notebooks if "/.ipynb_checkpoints/" not in nb],
            )
        )
    return views
