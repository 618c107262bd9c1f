"""``pop costs`` without loading every job: the snapshot's cost rollup for the finished jobs, plus DuckDB
over the open jobs' files alone, summed.

The snapshot's manifest keeps, for each grouping, the rows of ``pop costs --by <by>`` over the jobs it
holds (computed by the same :func:`~pop_nb.analytics.cost_query.costs_sql` when it was written). While every
finished folder is as the manifest saw it, those rows are the finished jobs' share; the open jobs (a
few, in ``current/``) are read from their files by DuckDB, and the two sets of rows are added up by key.
When anything finished changed (a new, moved, replaced or deleted folder, a new ``runs.jsonl`` line, an
older manifest), everything goes to DuckDB over the snapshot and the files, which rewrites the snapshot.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from pop_nb.analytics.cost_query import COLUMNS, MONEY, costs_sql
from pop_nb.analytics.folders import (
    FINISHED,
    in_memory,
    job_folders,
    read_log,
    rows_of,
    run_lines,
    table_shape,
)
from pop_nb.analytics.schema import CALL_TOTALS, LOGS
from pop_nb.analytics.snapshot import Rollup
from pop_nb.analytics.store import connect
from pop_nb.safejson import columns, loads
from pop_nb.store import listing
from pop_nb.store.listing import file_mark


def cost_rows(data_dir: Path, by: str) -> list[dict[str, Any]]:
    """``pop costs --by <by>`` rows (JSON-ready, no pandas), most expensive first."""
    open_jobs = _open_job_folders(data_dir)
    open_rows = _open_costs(open_jobs, by) if open_jobs else []
    # after the open jobs were read: one that finished meanwhile is a folder the rollup has not seen
    finished = finished_costs(data_dir, by)
    if finished is None:
        return connect(data_dir).query(costs_sql(by))
    return add_rows(finished, open_rows) if open_jobs else finished


def _open_costs(folders: list[str], by: str) -> list[dict[str, Any]]:
    """``pop costs --by <by>`` rows over the calls in these job folders' ``usage.jsonl``: the same
    reading and the same SQL as :class:`~pop_nb.analytics.store.Analytics` (only what costs need)."""
    con = in_memory()
    try:
        con.execute(f"CREATE TEMP TABLE batch_llm_calls {table_shape(LOGS['llm_calls'][1])}")
        read_log(con, "llm_calls", folders)
        con.execute(f"CREATE TEMP TABLE call_totals AS {CALL_TOTALS}")
        return rows_of(con.execute(costs_sql(by)))
    finally:
        con.close()


def finished_costs(data_dir: Path, by: str) -> list[dict[str, Any]] | None:
    """The rollup's rows for ``by`` when every finished job folder is as the manifest saw it (the same
    folders, places, inodes, ctimes and ``runs.jsonl`` lines), else None.

    Checking that means parsing the manifest and ``runs.jsonl`` and a ``stat`` per folder. Once it held,
    the rows are kept in ``.analytics/rollup.json`` with the finished places' stamps and where
    ``runs.jsonl`` ended; while no job came into or left those places since (:mod:`pop_nb.store.listing`)
    and ``runs.jsonl`` did not grow, that file answers alone."""
    from pop_nb.analytics.snapshot import Snapshot, SnapshotError

    snapshot = Snapshot(data_dir)
    runs_file = data_dir / "complete" / "runs.jsonl"
    kept = snapshot.rollup()
    if kept is not None and by in kept.costs and kept.holds(data_dir, file_mark(runs_file)):
        rows = _rows(kept.costs[by])
        if rows is not None:
            return rows
    marks = {place: listing.stamp(data_dir / place) for place in FINISHED}
    listed_at, runs_mark = time.time_ns(), file_mark(runs_file)  # before the listing: a change after it shows
    try:
        manifest = snapshot.manifest()
    except SnapshotError:
        return None
    if manifest is None or by not in manifest.costs:
        return None
    try:
        raw = runs_file.read_bytes()
    except FileNotFoundError:
        raw = b""
    runs = run_lines(raw[: raw.rfind(b"\n") + 1])
    found = {
        name: (place, ino, ctime, runs[name])
        for place in FINISHED
        for name, (_, ino, ctime) in job_folders(data_dir / place).items()
    }
    if found.keys() != manifest.jobs.keys():
        return None
    if any(manifest.jobs[job][0] != key for job, key in found.items()):
        return None
    rows = _rows(manifest.costs[by])
    if rows is not None and len(raw) == runs_mark[1]:
        snapshot.keep_rollup(Rollup(marks, listed_at, runs_mark, manifest.costs))
    return rows


def _rows(text: str) -> list[dict[str, Any]] | None:
    """The rows kept as columns (:func:`~pop_nb.analytics.snapshot._cost_rollup`), if they are as
    costs_sql returns them: a key (text) and every column, a number; else None (DuckDB answers: a cache
    never decides alone)."""
    try:
        found = columns(loads(text), ROW_KINDS)
    except ValueError:
        return None
    if found is None:
        return None
    names = list(ROW_KINDS)
    return [dict(zip(names, row, strict=True)) for row in zip(*found.values(), strict=True)]


ROW_KINDS: dict[str, tuple[type, ...] | None] = {"key": (str,), **{c: (int, float) for c in COLUMNS}}


def add_rows(*parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of :func:`~pop_nb.analytics.cost_query.costs_sql` over disjoint sets of jobs, as one query over
    all of them would give: every column but ``key`` summed by key, money rounded, the same order. A row
    of one part alone is taken as it is (the finished jobs' 100,000 rows and the few open ones')."""
    totals: dict[str, dict[str, Any]] = {}
    summed: set[str] = set()
    for rows in parts:
        for row in rows:
            key = row["key"]
            total = totals.get(key)
            if total is None:
                totals[key] = row
                continue
            if key not in summed:
                totals[key] = total = dict(total)
                summed.add(key)
            for column in COLUMNS:
                total[column] += row[column]
    for key in summed:
        for column in MONEY:
            totals[key][column] = round(totals[key][column], 9)
    return sorted(totals.values(), key=lambda row: (-row["cost_usd"], row["key"]))


def _open_job_folders(data_dir: Path) -> list[str]:
    try:
        with os.scandir(data_dir / "current") as entries:
            return [e.path for e in entries if e.is_dir() and not e.name.startswith(".")]
    except FileNotFoundError:
        return []
