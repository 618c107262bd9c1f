"""DuckDB over every job folder (``current/``, ``complete/``, ``failed/``), kept up to date incrementally.

Tables, one row per...:

- ``jobs``: job (its ``tasks-status.json``, plus ``place`` and ``duration_ms``);
- ``tasks``: task of a job; ``stages``: stage run (``NN-<stage>[.r<k>]``, with its notebook);
- ``llm_calls``: line of a ``usage.jsonl``; ``events``: line of an ``events.jsonl``;
- ``call_totals``: job, task, stage, model and day: calls, tokens, cost (what the cost questions sum);
- ``runs``: line of ``complete/runs.jsonl``.

Times are UTC (``TIMESTAMP``), as every file pop-nb writes has them.

:meth:`Analytics.refresh` reads only what changed. A job in ``current/`` is read again when one of its
three files changed (a ``stat`` each). A finished job does not change where it is: it is read again only
if its folder moved or was replaced (another place, inode or ctime) or ``runs.jsonl`` has a new line
for it (it was resumed and finished again); ``complete/`` and ``failed/`` are listed again only when
their mtime changed, so a refresh over ten thousand finished jobs costs two ``stat`` calls and the
tail of ``runs.jsonl`` (a ``stat`` per job folder when a job finished since).

Finished jobs are also kept in a Parquet snapshot beside them (:mod:`pop_nb.analytics.snapshot`), so a
new process loads them in one read instead of parsing every JSON file. Any number of notebooks and CLI
calls can read the same folder at once.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pop_nb.analytics.folders import (
    FINISHED,
    file_signature,
    in_memory,
    insert_log,
    job_folders,
    read_log,
    rounds,
    rows_of,
    run_lines,
    snapshot_calls,
    table_shape,
)
from pop_nb.analytics.schema import (
    CALL_TOTALS,
    EXPERIMENTS,
    JOB_TABLES,
    LOGS,
    PLACES,
    RUN_COLUMNS,
    STATUS_COLUMNS,
    STATUS_TABLES,
    json_shape,
    struct,
)
from pop_nb.analytics.snapshot import Key, Manifest, Rollup, Snapshot, SnapshotError
from pop_nb.store import layout, listing

if TYPE_CHECKING:
    import pandas as pd

SAVE_EVERY_S = 10.0  # a live dashboard adds the jobs that finished to the snapshot at most this often
SETTLE_S = 60.0  # a job ended this recently may not have its runs.jsonl line yet: snapshot it later


def _stored(table: str) -> str:
    """Where a table's rows are written: llm_calls is a view over its stored rows and the snapshot's."""
    return "llm_calls_live" if table == "llm_calls" else table


class Analytics:
    """An in-memory DuckDB of one data folder; call :meth:`refresh` to catch up with the files.

    ``snapshot=False`` neither reads nor writes the Parquet snapshot (everything from the JSON files).
    """

    def __init__(self, data_dir: Path | str, snapshot: bool = True) -> None:
        self.data_dir = Path(data_dir)
        self.con = in_memory()
        self.snapshot = Snapshot(self.data_dir) if snapshot else None
        self._seen: dict[str, tuple[str, tuple[Any, ...]]] = {}  # job -> (folder, signature)
        self._listed: dict[str, tuple[tuple[int, int], int, dict[str, tuple[str, int, int]]]] = {}
        self._runs_offset = 0
        self._runs_mark = [0, 0]  # runs.jsonl's [inode, size] as far as read (listing.file_mark's form)
        self._run_lines: Counter[str] = Counter()  # job -> its lines in runs.jsonl
        self._snapped: dict[str, Key] = {}  # finished job -> the key its snapshot rows are for
        self._saved_at: float | None = None
        self._loaded = False
        self._deferred = 0  # jobs whose calls are read from the snapshot's Parquet
        self._calls_stamp: list[int] | None = None
        self._create()

    def _create(self) -> None:
        # empty batches give each derived table its columns and types
        self.con.execute(
            "CREATE TEMP TABLE status_batch AS SELECT "
            + ", ".join(f"NULL::{t} AS {k}" for k, t in STATUS_COLUMNS.items())
            + ", NULL::VARCHAR AS filename LIMIT 0"
        )
        for table, query in STATUS_TABLES.items():
            self.con.execute(f"CREATE TABLE {table} AS {query}")
        for table, (_, columns, _) in LOGS.items():
            self.con.execute(f"CREATE TABLE {_stored(table)} {table_shape(columns)}")
            self.con.execute(f"CREATE TEMP TABLE batch_{table} {table_shape(columns)}")
        self.con.execute(f"CREATE TABLE call_totals AS {CALL_TOTALS}")
        self.con.execute("CREATE TEMP TABLE stale (job VARCHAR)")
        self.con.execute("CREATE TEMP TABLE calls_deferred (job VARCHAR, file VARCHAR)")
        self._point_calls([])
        self.con.execute("CREATE TABLE runs (" + ", ".join(f"{k} {t}" for k, t in RUN_COLUMNS.items()) + ")")
        self.con.execute(f"CREATE VIEW experiments AS {EXPERIMENTS}")

    # -- ingest -----------------------------------------------------------------------------------
    def refresh(self) -> int:
        """Read what changed since the last refresh; returns how many jobs were (re)read."""
        self._follow_snapshot()
        self._refresh_runs()  # first: the run-line counts are part of each finished job's key
        listing = self._list()
        if self.snapshot is not None and not self._loaded:
            self._loaded = True
            self._load_snapshot(listing)
        changed = [job for job, seen in listing.items() if self._seen.get(job) != seen]
        gone = [job for job in self._seen if job not in listing]
        if changed or gone:
            self._replace(changed + gone, [listing[job][0] for job in changed])
        self._seen = listing
        if self.snapshot is not None and self.snapshot.enabled:
            self._save_snapshot()
        return len(changed)

    def _list(self) -> dict[str, tuple[str, tuple[Any, ...]]]:
        found: dict[str, tuple[str, tuple[Any, ...]]] = {}
        for place in PLACES:
            if place in FINISHED:
                for name, (path, ino, ctime) in self._finished(place).items():
                    found[name] = (path, (place, ino, ctime, self._run_lines[name]))
                continue
            for entry in listing.job_entries(self.data_dir / place):
                found[entry.name] = (entry.path, (place, *file_signature(entry.path)))
        return found

    def _finished(self, place: str) -> dict[str, tuple[str, int, int]]:
        """The job folders in ``place`` (see :func:`job_folders`). The listing of the last call is
        reused while nothing was added, removed or renamed in it since (:func:`.listing.settled`)."""
        path = self.data_dir / place
        now = listing.stamp(path)
        if now is None:
            self._listed.pop(place, None)
            return {}
        cached = self._listed.get(place)
        if cached is not None and listing.settled(now, cached[0], cached[1]):
            return cached[2]
        listed_at = time.time_ns()
        entries = job_folders(path)
        self._listed[place] = (now, listed_at, entries)
        return entries

    def _replace(self, jobs: list[str], folders: list[str]) -> None:
        """Read ``jobs`` again from ``folders``. A status that is no JSON object (by hand, a broken disk:
        ours are written whole) is left out by the reading itself, not the whole batch: that job shows
        with its logs and no status row."""
        con = self.con
        con.execute("BEGIN")
        try:
            con.execute("DELETE FROM stale")
            con.execute("INSERT INTO stale SELECT unnest(?::VARCHAR[])", [jobs])
            for table in JOB_TABLES:
                con.execute(f"DELETE FROM {_stored(table)} WHERE job IN (SELECT job FROM stale)")
            con.execute("DELETE FROM calls_deferred WHERE job IN (SELECT job FROM stale)")
            con.execute("DELETE FROM status_batch")
            for table in LOGS:
                con.execute(f"DELETE FROM batch_{table}")
            columns = struct({"filename": "VARCHAR", **STATUS_COLUMNS})
            logs = {LOGS[table][0]: table for table in LOGS}
            for files in rounds(folders, [layout.STATUS, *logs]):
                if files[layout.STATUS]:
                    con.execute(
                        "INSERT INTO status_batch SELECT * EXCLUDE (filename), filename "
                        f"FROM read_json(?, columns = {columns}, format = 'newline_delimited', "
                        "ignore_errors = true) WHERE job_id IS NOT NULL",
                        [files[layout.STATUS]],
                    )
                for name, table in logs.items():
                    insert_log(con, table, files[name])
            for table, query in STATUS_TABLES.items():
                con.execute(f"INSERT INTO {table} {query}")
            for table in LOGS:
                con.execute(f"INSERT INTO {_stored(table)} SELECT * FROM batch_{table}")
            con.execute(f"INSERT INTO call_totals {CALL_TOTALS}")
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise

    def _refresh_runs(self) -> None:
        """Append the lines ``runs.jsonl`` gained since the last refresh (a torn last line waits for
        its end) and count them per job."""
        path = self.data_dir / "complete" / "runs.jsonl"
        try:
            with open(path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size < self._runs_offset:  # truncated or replaced: start over
                    self.con.execute("DELETE FROM runs")
                    self._runs_offset, self._run_lines = 0, Counter()
                fh.seek(self._runs_offset)
                tail = fh.read(size - self._runs_offset)
                inode = os.fstat(fh.fileno()).st_ino
        except FileNotFoundError:
            self._runs_mark = [0, 0]
            return
        complete = tail[: tail.rfind(b"\n") + 1]
        self._runs_offset += len(complete)
        self._runs_mark = [inode, self._runs_offset]
        if not complete:
            return
        self.con.execute(
            "INSERT INTO runs SELECT * FROM (SELECT unnest(json_transform(line, ?)) FROM "
            "(SELECT unnest(string_split(?, chr(10))) AS line) "
            "WHERE json_valid(line) AND json_type(line) = 'OBJECT') WHERE job IS NOT NULL",
            [json_shape(RUN_COLUMNS), complete.decode("utf-8", errors="replace")],
        )
        self._run_lines.update(run_lines(complete))

    # -- snapshot -----------------------------------------------------------------------------------
    def _load_snapshot(self, listing: dict[str, tuple[str, tuple[Any, ...]]]) -> None:
        """Load the finished jobs the snapshot holds as they are now; the others are read from files."""
        assert self.snapshot is not None
        for attempt in range(2):
            try:
                stamp = self.snapshot.stamp()  # before the read: a newer manifest is followed later
                manifest = self.snapshot.manifest()
                if manifest is None:
                    return
                usable = {
                    job: key
                    for job, (key, _) in manifest.jobs.items()
                    if listing.get(job, ("", ()))[1] == key
                }
                if not usable:
                    return
                self.con.execute("BEGIN")
                try:
                    self.snapshot.load(self.con, manifest, skip=("llm_calls",))
                    unusable = [job for job in manifest.jobs if job not in usable]
                    for table in (t for t in JOB_TABLES if t != "llm_calls") if unusable else ():
                        self.con.execute(
                            f"DELETE FROM {table} WHERE job IN (SELECT unnest(?::VARCHAR[]))", [unusable]
                        )
                    self._defer_calls(manifest, usable, stamp)
                    self.con.execute("COMMIT")
                except BaseException:
                    self.con.execute("ROLLBACK")
                    raise
            except SnapshotError:
                if attempt == 0:
                    continue  # a writer may have replaced it while we read: once more, from its manifest
                self.snapshot.drop()  # torn: rebuilt from the job folders below
                return
            for job, key in usable.items():
                self._seen[job] = (listing[job][0], key)
                self._snapped[job] = key
            return

    def _save_snapshot(self) -> None:
        assert self.snapshot is not None
        now = time.monotonic()
        if self._saved_at is not None and now - self._saved_at < SAVE_EVERY_S:
            return
        self._saved_at = now
        finished = self._finished_keys()
        waiting = [job for job, key in finished.items() if self._snapped.get(job) != key]
        stray = self._holds_others(finished)
        if not waiting and not stray:
            return
        cutoff = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=SETTLE_S)
        unsettled = {
            job
            for (job,) in self.con.execute(
                "SELECT job FROM jobs WHERE job IN (SELECT unnest(?::VARCHAR[])) AND ended_at >= ?",
                [waiting, cutoff],
            ).fetchall()
        }
        if len(unsettled) == len(waiting) and not stray:
            return
        jobs = {job: key for job, key in finished.items() if job not in unsettled}
        manifest = self.snapshot.save(self.con, jobs, finished)
        if manifest is not None:
            self._snapped = {job: key for job, (key, _) in manifest.jobs.items() if finished.get(job) == key}
            self._follow_snapshot(manifest)
            kept = self.finished_rollup()  # so the next `pop costs` answers from its rows at once
            if kept is not None:
                self.snapshot.keep_rollup(kept)

    def _finished_keys(self) -> dict[str, Key]:
        """Each finished job of the last refresh -> its key (place, inode, ctime, run lines)."""
        return {job: key for job, (_, key) in self._seen.items() if key[0] in FINISHED}

    def finished_rollup(self) -> Rollup | None:
        """The snapshot's cost rows with what this refresh found them to hold for (the finished places'
        listing, where ``runs.jsonl`` was read to, the finished jobs it does not hold), to keep in
        ``rollup.json`` (:func:`~pop_nb.analytics.rollup.finished_costs`); None when it does not hold
        every job as listed (another process saved since, or the snapshot is not written)."""
        if self.snapshot is None:
            return None
        made_from = self.snapshot.stamp()  # before the read: rows are never taken for a newer manifest's
        try:
            manifest = self.snapshot.manifest()
        except SnapshotError:
            return None
        if manifest is None or not manifest.costs:
            return None
        finished = self._finished_keys()
        if any(finished.get(job) != key for job, (key, _) in manifest.jobs.items()):
            return None
        listed = {place: self._listed.get(place) for place in FINISHED}
        places = {place: list(seen[0]) if seen else None for place, seen in listed.items()}
        listed_at = min((seen[1] for seen in listed.values() if seen), default=time.time_ns())
        unheld = [(key[0], job) for job, key in finished.items() if job not in manifest.jobs]
        held = manifest.held()
        return Rollup(
            places, listed_at, self._runs_mark, manifest.costs, unheld, held.digest, made_from, folders=held
        )

    def _holds_others(self, finished: dict[str, Any]) -> bool:
        """Whether the snapshot holds a job that is not finished now (deleted, or resumed): then it must
        be saved without it, or the cost rollup never matches the folders again."""
        assert self.snapshot is not None
        try:
            manifest = self.snapshot.manifest()  # parsed once while its file is the same
        except SnapshotError:
            return False
        return manifest is not None and not manifest.jobs.keys() <= finished.keys()

    # -- calls of snapshot jobs stay in Parquet -------------------------------------------------------
    # A million calls take longer to load than everything else together, and a dashboard asks only
    # call_totals; so ``llm_calls`` is a view: the calls read from files, and the snapshot's Parquet
    # rows of the jobs in ``calls_deferred`` (job, file). Segments may be deleted once a newer manifest
    # leaves them out (after snapshot.KEEP_OBSOLETE_S): each refresh and query first follows the
    # manifest, re-pointing every job at the file that now holds it, or reading its calls if none does.
    def _point_calls(self, files: list[str]) -> None:
        view = "SELECT * FROM llm_calls_live"
        if files:
            view += f" UNION ALL {snapshot_calls(files, 'calls_deferred')}"
        import duckdb

        try:
            self.con.execute(f"CREATE OR REPLACE TEMP VIEW llm_calls AS {view}")
        except duckdb.Error as exc:  # a torn file: its footer is checked here
            raise SnapshotError(f"cannot read the snapshot's calls: {exc}") from exc

    def _defer_calls(self, manifest: Manifest, jobs: dict[str, Key], stamp: list[int] | None) -> None:
        assert self.snapshot is not None
        file = {segment: self.snapshot.file(segment, "llm_calls") for segment in manifest.segments}
        pairs = [
            (job, file[segment]) for job, (key, segment) in manifest.jobs.items() if jobs.get(job) == key
        ]
        self.con.execute("DELETE FROM calls_deferred")
        if pairs:
            jobs_, files = zip(*pairs, strict=True)
            self.con.execute(
                "INSERT INTO calls_deferred SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[])",
                [list(jobs_), list(files)],
            )
        self._point_calls(sorted(set(f for _, f in pairs)))
        self._deferred = len(pairs)
        self._calls_stamp = stamp

    def _follow_snapshot(self, manifest: Manifest | None = None) -> None:
        if not self._deferred or self.snapshot is None:
            return
        stamp = self.snapshot.stamp()
        if stamp == self._calls_stamp and manifest is None:
            return
        if manifest is None:
            try:
                manifest = self.snapshot.manifest()
            except SnapshotError:
                manifest = None
        deferred = [job for (job,) in self.con.execute("SELECT job FROM calls_deferred").fetchall()]
        keys = {job: self._seen[job][1] for job in deferred}
        served = manifest.jobs if manifest is not None else {}
        lost = {job for job in deferred if job not in served or served[job][0] != keys[job]}
        if lost:
            self._materialize(list(lost))
        keep = {job: key for job, key in keys.items() if job not in lost}
        self.con.execute("BEGIN")
        try:
            self._defer_calls(manifest or Manifest(), keep, stamp)
            self.con.execute("COMMIT")
        except SnapshotError:  # the new manifest names a torn file: keep every call in memory
            self.con.execute("ROLLBACK")
            self._materialize(list(keep))
            self._point_calls([])
            self._deferred, self._calls_stamp = 0, stamp

    def _materialize(self, jobs: list[str]) -> None:
        """Move these jobs' calls into memory: from the Parquet files the view reads, or, if those are
        gone, from the jobs' own usage.jsonl."""
        import duckdb

        self.con.execute("CREATE OR REPLACE TEMP TABLE lost AS SELECT unnest(?::VARCHAR[]) AS job", [jobs])
        try:
            self.con.execute(
                "INSERT INTO llm_calls_live SELECT * FROM llm_calls WHERE job IN (SELECT job FROM lost)"
            )
        except duckdb.Error:
            read_log(self.con, "llm_calls", [self._seen[job][0] for job in jobs])
            self.con.execute("INSERT INTO llm_calls_live SELECT * FROM batch_llm_calls")
        self.con.execute("DELETE FROM calls_deferred WHERE job IN (SELECT job FROM lost)")

    # -- reading ------------------------------------------------------------------------------------
    def query(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        """Rows of ``sql`` as dicts (``refresh()`` first for fresh figures)."""
        self._follow_snapshot()
        return rows_of(self.con.execute(sql, params or []))

    def frame(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        """Rows of ``sql`` as a pandas ``DataFrame`` (what a notebook displays as a table)."""
        self._follow_snapshot()
        return self.con.execute(sql, params or []).df()


def connect(data_dir: Path | str) -> Analytics:
    """An :class:`Analytics` over ``data_dir``, already refreshed."""
    analytics = Analytics(data_dir)
    analytics.refresh()
    return analytics
