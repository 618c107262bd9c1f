"""``pop costs`` without loading every job: the snapshot's cost rollup for the finished jobs it holds,
plus DuckDB over the other jobs' files alone, summed.

The snapshot's manifest keeps, for each grouping, the rows of ``pop costs --by <by>`` over the jobs it
holds (computed by the same :func:`~pop_nb.analytics.cost_query.costs_sql` when it was written, money as
summed). While a finished folder it holds is as it saw it, its calls are in those rows; the rows of the
ones that are not (moved, replaced, deleted, resumed, ended again) are taken off, from the snapshot's
Parquet. The open jobs (a few, in ``current/``), the jobs that finished since the snapshot was saved (it
waits until they settle) and the changed ones still finished are read from their files by DuckDB, and
the two sets of rows are added up by key. When more than :data:`MAX_UNHELD` finished jobs are to be read
or taken off, or the snapshot cannot be read, everything goes to DuckDB over the snapshot and the files,
which rewrites the snapshot.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pop_nb.analytics.cost_query import CostRows, costs_sql
from pop_nb.analytics.folders import (
    FINISHED,
    in_memory,
    job_folders,
    read_log,
    rows_of,
    run_lines,
    snapshot_calls,
    table_shape,
)
from pop_nb.analytics.schema import CALL_TOTALS, LOGS
from pop_nb.analytics.snapshot import Rollup, Snapshot, SnapshotError, folder_lines, held_digest
from pop_nb.analytics.store import connect
from pop_nb.store import listing
from pop_nb.store.listing import file_mark

if TYPE_CHECKING:
    import duckdb


def cost_rows(data_dir: Path, by: str) -> list[dict[str, Any]]:
    """``pop costs --by <by>`` rows (JSON-ready, no pandas), most expensive first."""
    return cost_table(data_dir, by).dicts()


def cost_table(data_dir: Path, by: str) -> CostRows:
    """``pop costs --by <by>`` rows as columns (see :class:`~pop_nb.analytics.cost_query.CostRows`)."""
    opened = _open_job_folders(data_dir)
    calls = _Calls()
    try:
        calls.read(opened)  # first: a job that ends meanwhile is in a finished place when those are listed
        finished = finished_costs(data_dir, by)
        if finished is None or not opened.keys().isdisjoint(finished.unheld):  # read twice: ask DuckDB
            return _from_duckdb(data_dir, by)
        calls.read(finished.unheld)
        # a job that came into current/ after it was listed: started (read it), or resumed from a
        # finished place after that was listed (counted there)
        later = {job: folder for job, folder in _open_job_folders(data_dir).items() if job not in opened}
        if later and not finished.still_holds(data_dir):  # a finished place changed since: ask DuckDB
            return _from_duckdb(data_dir, by)
        counted = finished.unheld if finished.listed is None else finished.listed
        calls.read({job: folder for job, folder in later.items() if job not in counted})
        return finished.rows.add(calls.costs(by)) if calls.con is not None else finished.rows
    finally:
        calls.close()


def _from_duckdb(data_dir: Path, by: str) -> CostRows:
    """Every job's rows from DuckDB, which brings the snapshot up to date; its cost rows are then kept
    with what they hold for, so the next call answers from ``rollup.json``."""
    analytics = connect(data_dir)
    rows = CostRows.of(analytics.query(costs_sql(by)))
    kept = analytics.finished_rollup()
    if kept is not None:
        Snapshot(data_dir).keep_rollup(kept)
    return rows


class _Calls:
    """The calls of some job folders, from their ``usage.jsonl``: the same reading and the same SQL as
    :class:`~pop_nb.analytics.store.Analytics` (only what costs need). DuckDB is imported only once a
    folder is read."""

    def __init__(self) -> None:
        self.con: duckdb.DuckDBPyConnection | None = None
        self.totalled = False

    def read(self, folders: dict[str, str]) -> None:
        if not folders:
            return
        con = self._connection()
        read_log(con, "llm_calls", list(folders.values()))
        con.execute("INSERT INTO calls SELECT * FROM batch_llm_calls")

    def read_held(self, snapshot: Snapshot, jobs: dict[str, str]) -> None:
        """The calls of ``jobs`` (job -> the segment serving it) as the snapshot holds them: from that
        segment's Parquet (an older segment may still hold an earlier run of it)."""
        names = list(jobs)
        serving = [snapshot.file(jobs[job], "llm_calls") for job in names]
        pairs = "(SELECT unnest(?::VARCHAR[]) AS job, unnest(?::VARCHAR[]) AS file)"
        self._connection().execute(
            f"INSERT INTO calls {snapshot_calls(sorted(set(serving)), pairs)}", [names, serving]
        )

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self.con is None:
            self.con = in_memory()
            self.con.execute(f"CREATE TEMP TABLE batch_llm_calls {table_shape(LOGS['llm_calls'][1])}")
            self.con.execute("CREATE TEMP TABLE calls AS SELECT * FROM batch_llm_calls")
        return self.con

    def costs(self, by: str) -> list[dict[str, Any]]:
        """The rows of ``pop costs --by <by>`` over the calls read (read them all first)."""
        assert self.con is not None
        if not self.totalled:
            self.totalled = True
            self.con.execute("DELETE FROM batch_llm_calls")
            self.con.execute("INSERT INTO batch_llm_calls SELECT * FROM calls")
            self.con.execute(f"CREATE TEMP TABLE call_totals AS {CALL_TOTALS}")
        return rows_of(self.con.execute(costs_sql(by, rounded=False)))

    def close(self) -> None:
        if self.con is not None:
            self.con.close()


@dataclass
class Finished:
    """The finished jobs' share of ``pop costs --by <by>``: the rollup's rows for the jobs the snapshot
    holds, and the finished jobs it does not hold (ended since it was saved: read from their files)."""

    rows: CostRows
    unheld: dict[str, str]  # job -> its folder
    listed: Collection[str] | None  # every finished job, when they were listed; None: rollup.json answered
    kept: Rollup | None = None  # the rollup.json that answered

    def still_holds(self, data_dir: Path) -> bool:
        """No job came into or left a finished place since rollup.json answered (when the places were
        listed instead, ``listed`` says where every job was)."""
        return self.kept is None or self.kept.holds(data_dir, file_mark(data_dir / "complete" / "runs.jsonl"))


MAX_UNHELD = 1_000  # finished jobs read from files beside the rollup; past this, DuckDB (which saves them)


def finished_costs(data_dir: Path, by: str) -> Finished | None:
    """The finished jobs' share of ``pop costs --by <by>``: the rollup's rows for the jobs the manifest
    holds as it saw them (the same places, inodes, ctimes and ``runs.jsonl`` lines), less the calls of
    those it holds that are gone or changed since (read from the snapshot's Parquet), and the finished
    jobs to read from their files (the ones it does not hold, and those changed; up to
    :data:`MAX_UNHELD`). None when that cannot be told: then DuckDB answers.

    Checking that means parsing the manifest and ``runs.jsonl`` and a ``stat`` per folder. The rows are
    then kept in ``.analytics/rollup.json`` with the finished places' stamps, where ``runs.jsonl`` ended,
    the folders they are for (:class:`~pop_nb.analytics.snapshot.Held`), the jobs gone and the jobs not
    held; while no job came into or left those places since (:mod:`pop_nb.store.listing`) and
    ``runs.jsonl`` did not grow, that file answers alone, and after jobs ended, left or moved it is
    brought up to date from a listing (:func:`_caught_up`). Kept rows with jobs to read from files or
    to take off give way to a newer manifest, which may hold those jobs or no longer hold these."""
    snapshot = Snapshot(data_dir)
    runs_file = data_dir / "complete" / "runs.jsonl"
    kept = snapshot.rollup()
    made_from = snapshot.stamp()  # before the manifest is read: a newer one is never taken for this one
    if kept is not None and (kept.unheld or kept.gone) and kept.manifest != made_from:
        kept = None
    if kept is not None and by in kept.costs:
        if not kept.holds(data_dir, file_mark(runs_file)):
            kept = _caught_up(snapshot, kept, made_from)
            if kept is not None:
                snapshot.keep_rollup(kept)
        if kept is not None and max(len(kept.unheld), len(kept.gone)) <= MAX_UNHELD:
            rows = _less(snapshot, CostRows.parse(kept.costs[by]), dict(kept.gone), by)
            unheld = _folders(data_dir, kept.unheld)
            if rows is not None and unheld is not None:
                return Finished(rows, unheld, None, kept)
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
        name: (place, path, ino, ctime)
        for place in FINISHED
        for name, (path, ino, ctime) in job_folders(data_dir / place).items()
    }
    # held jobs no longer as the manifest saw them (deleted, resumed, moved, ended again): their calls
    # come off the rows, and those still finished are read from their files like the jobs it does not hold
    gone = {
        job: segment
        for job, (key, segment) in manifest.jobs.items()
        if job not in found or key != (found[job][0], found[job][2], found[job][3], runs[job])
    }
    others = {name: (place, path) for name, (place, path, _, _) in found.items() if name not in manifest.jobs}
    others |= {job: (found[job][0], found[job][1]) for job in gone if job in found}
    if max(len(others), len(gone)) > MAX_UNHELD:
        return None
    rows = _less(snapshot, CostRows.parse(manifest.costs[by]), gone, by)
    if rows is None:
        return None
    if len(raw) == runs_mark[1]:
        places = [(place, job) for job, (place, _) in others.items()]
        held = manifest.held()
        snapshot.keep_rollup(
            Rollup(
                marks,
                listed_at,
                runs_mark,
                manifest.costs,
                places,
                held.digest,
                made_from,
                list(gone.items()),
                held,
            )
        )
    return Finished(rows, {job: path for job, (_, path) in others.items()}, found.keys())


def _less(snapshot: Snapshot, rows: CostRows | None, gone: dict[str, str], by: str) -> CostRows | None:
    """``rows`` without the calls of ``gone`` (jobs the snapshot holds -> the segment serving each), read
    from its Parquet; None when they cannot be (a file gone: a writer replaced the snapshot), or are
    not part of the rows."""
    if rows is None or not gone:
        return rows
    import duckdb

    calls = _Calls()
    try:
        calls.read_held(snapshot, gone)
        return rows.less(calls.costs(by))
    except duckdb.Error:
        return None
    finally:
        calls.close()


def _caught_up(snapshot: Snapshot, kept: Rollup, manifest: list[int] | None) -> Rollup | None:
    """``kept`` brought up to date after jobs ended, left or moved since, without the manifest (parsing
    it, a ``stat`` of every folder and all of ``runs.jsonl`` took ~0.9 s at 100,000 jobs): the jobs named
    by the lines ``runs.jsonl`` gained are added to the ones not held, and the other finished folders
    are compared with the ones the rows are for (:attr:`Rollup.held`): those held but not found where
    they were (deleted, archived, resumed, ended again, replaced) are gone (their calls come off), those
    found but not held are read from their files. None (the manifest is checked) when the folders held
    are not kept, or the manifest is not the one the rows came from (``manifest``: its stamp now)."""
    if not kept.held or manifest is None or kept.manifest != manifest:
        return None
    data_dir = snapshot.dir.parent
    marks = {place: listing.stamp(data_dir / place) for place in FINISHED}
    listed_at = time.time_ns()  # before the listing: a change after it shows
    runs_file = data_dir / "complete" / "runs.jsonl"
    ended, runs_mark = listing.ended_since(runs_file, kept.runs, file_mark(runs_file))
    if ended is None:
        return None
    others = ended | {job for _, job in kept.unheld}
    found = [
        (place, entry.name, entry.inode())
        for place in FINISHED
        for entry in listing.job_entries(data_dir / place)
    ]
    lines = folder_lines(f for f in found if f[1] not in others)
    gone: dict[str, str] = {}
    if held_digest(lines) != kept.held:
        held = kept.folders or snapshot.held(kept)
        if held is None:
            return None
        gone, new = held.compare(set(lines))
        others |= {line.split("/")[1] for line in new}  # not held as they are: read from their files
    unheld = [(place, name) for place, name, _ in found if name in others]
    return Rollup(
        marks,
        listed_at,
        runs_mark,
        kept.costs,
        unheld,
        kept.held,
        kept.manifest,
        list(gone.items()),
        kept.folders,
    )


def _folders(data_dir: Path, jobs: list[tuple[str, str]]) -> dict[str, str] | None:
    """job -> folder of these (place, job) from rollup.json; None if one is no job folder of a finished
    place (rollup.json is a cache anyone could edit: it never names a folder to read elsewhere)."""
    if any(place not in FINISHED or "/" in job or job.startswith(".") or not job for place, job in jobs):
        return None
    return {job: str(data_dir / place / job) for place, job in jobs}


def _open_job_folders(data_dir: Path) -> dict[str, str]:
    return {entry.name: entry.path for entry in listing.job_entries(data_dir / "current")}
