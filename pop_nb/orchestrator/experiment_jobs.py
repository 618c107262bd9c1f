"""What ``compare`` reads of an experiment's jobs: each job's status as plain JSON, the outputs its
scorers read and its stages' metrics; a finished job's is kept beside the experiment, keyed by its
status file's identity, so comparing again reads one file and a ``stat`` a job."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Seen:
    folder: str  # the job's folder (a string: a Path a job was a third of what comparing again took)
    status: dict[str, Any]  # state, started_at, ended_at, totals
    outputs: dict[str, Any]  # the final outputs of the tasks the scorers read
    metrics: dict[str, float]
    duration_s: float | None = None  # started to ended, when it has both


VERSION = 2  # of the kept file: one of another version is read as empty (every job read once again)


class JobReader:
    """What compare read of each job; a finished job's is kept in ``file``, keyed by its status file's
    identity (place, mtime, size: a job resumed or moved is read again) and the tasks whose outputs it
    holds, so comparing again reads one file and a ``stat`` a job. The file is one JSON document,
    written whole (atomically) and parsed in one call."""

    def __init__(self, store: Any, file: Path, wanted: set[str] | None) -> None:
        import json

        self.store, self.file, self.wanted = store, file, wanted
        try:
            found = json.loads(file.read_bytes())  # ours, written whole; a deep or torn one: not kept
        except (OSError, ValueError, RecursionError):
            found = None
        jobs = found.get("jobs") if isinstance(found, dict) and found.get("version") == VERSION else None
        self.kept = jobs if isinstance(jobs, dict) else {}
        self.changed = False

    def job(self, job: str) -> Seen | None:
        import os

        from pop_nb.store import layout

        where = f"{self.store.root}/complete/{job}"  # strings: a stat a job, and nothing more
        try:
            stat = os.stat(f"{where}/{layout.STATUS}")
        except FileNotFoundError:
            found = self.store.find(job)
            if found is None:
                return None
            where = str(found.path)
            try:
                stat = os.stat(f"{where}/{layout.STATUS}")
            except FileNotFoundError:
                return None
        key = [where, stat.st_mtime_ns, stat.st_size]
        kept = self.kept.get(job)
        if isinstance(kept, dict) and kept.get("key") == key:
            holds = kept.get("tasks")
            if holds is None or (self.wanted is not None and self.wanted <= set(holds)):
                return Seen(where, kept["status"], kept["outputs"], kept["metrics"], kept.get("duration_s"))
        seen = read_job(Path(where), self.wanted)
        if seen is not None and seen.status.get("state") in ("done", "failed"):
            self.kept[job] = {
                "key": key,
                "tasks": None if self.wanted is None else sorted(self.wanted),
                "status": seen.status,
                "outputs": seen.outputs,
                "metrics": seen.metrics,
                "duration_s": seen.duration_s,
            }
            self.changed = True
        return seen

    def save(self) -> None:
        if self.changed:
            import contextlib
            import json

            from pop_nb.store.atomic import atomic_write_bytes

            document = json.dumps({"version": VERSION, "jobs": self.kept}, separators=(",", ":"))
            with contextlib.suppress(OSError):  # a cache: a data folder we may not write goes without
                atomic_write_bytes(self.file, document.encode(), durable=False)
                self.file.with_suffix(".jsonl").unlink(missing_ok=True)  # the first version's


def read_job(folder: Path, wanted: set[str] | None) -> Seen | None:
    """A job's status (as plain JSON), the outputs the scorers read, and its stages' metrics."""
    from pop_nb.safejson import loads
    from pop_nb.store import layout

    try:
        status = loads((folder / layout.STATUS).read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(status, dict):
        return None
    found = status.get("totals")
    totals: dict[str, Any] = found if isinstance(found, dict) else {}
    reduced = {k: status.get(k) for k in ("state", "started_at", "ended_at")}
    reduced["totals"] = {
        k: totals.get(k) for k in ("cost_usd", "saved_usd", "cache_hits", "input_tokens", "output_tokens")
    }
    outputs, metrics = _outputs(folder, status, wanted), stage_metrics(folder / layout.METRICS)
    return Seen(str(folder), reduced, outputs, metrics, _duration(status))


def _duration(status: dict[str, Any]) -> float | None:
    from datetime import datetime

    try:
        took = datetime.fromisoformat(status["ended_at"]) - datetime.fromisoformat(status["started_at"])
    except (KeyError, TypeError, ValueError):
        return None
    return took.total_seconds()


def _outputs(folder: Path, status: dict[str, Any], wanted: set[str] | None) -> dict[str, Any]:
    """The final outputs of the done tasks among ``wanted`` (None: every task)."""
    from pop_nb.safejson import loads

    found = {}
    tasks = status.get("tasks") or {}
    for name, task in tasks.items():
        if (wanted is None or name in wanted) and isinstance(task, dict) and task.get("state") == "done":
            try:
                found[name] = loads((folder / "tasks" / name / "outputs" / "final.json").read_bytes())
            except (FileNotFoundError, ValueError):
                continue
    return found


def stage_metrics(path: Path) -> dict[str, float]:
    """The job's own ``pop.metric`` values, one per name (the mean when a stage recorded it again)."""
    from pop_nb.store.atomic import read_jsonl

    found: dict[str, list[float]] = {}
    for row in read_jsonl(path):
        if isinstance(row, dict) and row.get("scorer") is None and isinstance(row.get("value"), int | float):
            found.setdefault(str(row.get("name")), []).append(float(row["value"]))
    return {name: statistics.fmean(values) for name, values in found.items()}
