"""DuckDB over every job folder (``current/``, ``complete/``, ``failed/``), kept up to date incrementally.

Tables, one row per...:

- ``jobs``: job (its ``tasks-status.json``, plus ``place`` and ``duration_ms``);
- ``tasks``: task of a job; ``stages``: stage run (``NN-<stage>[.r<k>]``, with its notebook);
- ``llm_calls``: line of a ``usage.jsonl``; ``events``: line of an ``events.jsonl``;
- ``runs``: line of ``complete/runs.jsonl``.

Times are UTC (``TIMESTAMP``), as every file pop-nb writes has them.

:meth:`Analytics.refresh` stats each job's three files and reads only the jobs whose files changed (a
finished job is read once); so a dashboard over ten thousand jobs refreshes in the time it takes to
stat them. Everything lives in memory: nothing is written next to the jobs, and any number of
notebooks and CLI calls can read the same folder at once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

PLACES = ("current", "complete", "failed")
FILES = ("tasks-status.json", "usage.jsonl", "events.jsonl")

USAGE_COLUMNS: dict[str, str] = {
    "ts": "TIMESTAMP",
    "job": "VARCHAR",
    "pipeline": "VARCHAR",
    "task": "VARCHAR",
    "stage": "VARCHAR",
    "attempt": "INTEGER",
    "refinement": "INTEGER",
    "provider": "VARCHAR",
    "model": "VARCHAR",
    "input_tokens": "BIGINT",
    "output_tokens": "BIGINT",
    "cached_tokens": "BIGINT",
    "cost_usd": "DOUBLE",
    "cost_source": "VARCHAR",
    "latency_ms": "BIGINT",
    "request_hash": "VARCHAR",
    "cache_hit": "BOOLEAN",
    "saved_usd": "DOUBLE",
    "ok": "BOOLEAN",
    "error": "VARCHAR",
}
EVENT_COLUMNS: dict[str, str] = {
    "ts": "TIMESTAMP",
    "job": "VARCHAR",
    "kind": "VARCHAR",
    "status": "VARCHAR",
    "task": "VARCHAR",
    "stage": "VARCHAR",
    "refinement": "INTEGER",
    "attempt": "INTEGER",
    "notebook": "VARCHAR",
    "duration_ms": "BIGINT",
    "message": "VARCHAR",
    "pid": "BIGINT",
}
STATUS_COLUMNS: dict[str, str] = {
    "job_id": "VARCHAR",
    "pipeline": "VARCHAR",
    "name": "VARCHAR",
    "state": "VARCHAR",
    "current_task": "VARCHAR",
    "current_stage": "VARCHAR",
    "progress": "INTEGER",
    "created_at": "TIMESTAMP",
    "started_at": "TIMESTAMP",
    "ended_at": "TIMESTAMP",
    "error": "JSON",
    "totals": "JSON",
    "tasks": "JSON",
    "resumes": "INTEGER",
    "recoveries": "INTEGER",
    "executor": "VARCHAR",
    "host": "VARCHAR",
    "worker": "VARCHAR",
}
RUN_COLUMNS: dict[str, str] = {
    "ts": "TIMESTAMP",
    "job": "VARCHAR",
    "pipeline": "VARCHAR",
    "name": "VARCHAR",
    "state": "VARCHAR",
    "started_at": "TIMESTAMP",
    "ended_at": "TIMESTAMP",
    "duration_ms": "BIGINT",
    "tasks": "INTEGER",
    "calls": "BIGINT",
    "attempts": "BIGINT",
    "input_tokens": "BIGINT",
    "output_tokens": "BIGINT",
    "cost_usd": "DOUBLE",
    "unpriced_calls": "BIGINT",
    "executor": "VARCHAR",
    "host": "VARCHAR",
    "worker": "VARCHAR",
}

_JOBS = """
    SELECT job_id AS job, pipeline, name, state,
           regexp_extract(filename, '/(current|complete|failed)/[^/]+/tasks-status\\.json$', 1) AS place,
           current_task, current_stage, progress, created_at, started_at, ended_at,
           CASE WHEN ended_at IS NOT NULL AND started_at IS NOT NULL
                THEN epoch_ms(ended_at) - epoch_ms(started_at) END AS duration_ms,
           error->>'type' AS error_type, error->>'task' AS error_task, error->>'stage' AS error_stage,
           error->>'message' AS error_message, error->>'notebook' AS error_notebook,
           coalesce(TRY_CAST(totals->>'calls' AS BIGINT), 0) AS calls,
           coalesce(TRY_CAST(totals->>'attempts' AS BIGINT), 0) AS attempts,
           coalesce(TRY_CAST(totals->>'unpriced_calls' AS BIGINT), 0) AS unpriced_calls,
           coalesce(TRY_CAST(totals->>'input_tokens' AS BIGINT), 0) AS input_tokens,
           coalesce(TRY_CAST(totals->>'output_tokens' AS BIGINT), 0) AS output_tokens,
           coalesce(TRY_CAST(totals->>'cost_usd' AS DOUBLE), 0) AS cost_usd,
           resumes, coalesce(recoveries, 0) AS recoveries, executor, host, worker,
           regexp_replace(filename, '/tasks-status\\.json$', '') AS path
    FROM status_batch
"""
_TASKS = """
    SELECT s.job_id AS job, s.pipeline, t.key AS task, t.value->>'state' AS state,
           TRY_CAST(t.value->>'started_at' AS TIMESTAMP) AS started_at,
           TRY_CAST(t.value->>'ended_at' AS TIMESTAMP) AS ended_at,
           coalesce(TRY_CAST(t.value->>'attempts' AS INTEGER), 0) AS attempts,
           coalesce(TRY_CAST(t.value->>'refinements' AS INTEGER), 0) AS refinements,
           coalesce(TRY_CAST(t.value->'usage'->>'calls' AS BIGINT), 0) AS calls,
           coalesce(TRY_CAST(t.value->'usage'->>'cost_usd' AS DOUBLE), 0) AS cost_usd,
           t.value->>'skip_kind' AS skip_kind, t.value->'error'->>'type' AS error_type,
           t.value->>'gate' AS gate
    FROM status_batch s, json_each(s.tasks) t
"""
_STAGES = """
    SELECT s.job_id AS job, s.pipeline, t.key AS task, r.key AS run, r.value->>'stage' AS stage,
           coalesce(TRY_CAST(r.value->>'refinement' AS INTEGER), 0) AS refinement,
           coalesce(TRY_CAST(r.value->>'attempt' AS INTEGER), 1) AS attempt,
           r.value->>'state' AS state,
           TRY_CAST(r.value->>'started_at' AS TIMESTAMP) AS started_at,
           TRY_CAST(r.value->>'ended_at' AS TIMESTAMP) AS ended_at,
           TRY_CAST(r.value->>'duration_ms' AS BIGINT) AS duration_ms,
           TRY_CAST(r.value->>'cells_ms' AS BIGINT) AS cells_ms,
           r.value->>'notebook' AS notebook
    FROM status_batch s, json_each(s.tasks) t, json_each(t.value->'stages') r
"""


def _struct(columns: dict[str, str]) -> str:
    return "{" + ", ".join(f"'{k}': '{v}'" for k, v in columns.items()) + "}"


def _sql_list(paths: list[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def _signature(folder: str) -> tuple[int, ...]:
    sig: list[int] = []
    for name in FILES:
        try:
            st = os.stat(os.path.join(folder, name))
            sig += [st.st_mtime_ns, st.st_size]
        except FileNotFoundError:
            sig += [0, -1]
    return tuple(sig)


class Analytics:
    """An in-memory DuckDB of one data folder; call :meth:`refresh` to catch up with the files."""

    def __init__(self, data_dir: Path | str) -> None:
        import duckdb

        self.data_dir = Path(data_dir)
        self.con = duckdb.connect(":memory:")
        self._seen: dict[str, tuple[str, tuple[int, ...]]] = {}  # job -> (folder, file signature)
        self._runs_size = -1
        self._create()

    def _create(self) -> None:
        # an empty batch gives each status-derived table its columns and types
        self.con.execute(
            "CREATE TEMP TABLE status_batch AS SELECT "
            + ", ".join(f"NULL::{t} AS {k}" for k, t in STATUS_COLUMNS.items())
            + ", NULL::VARCHAR AS filename LIMIT 0"
        )
        for table, query in (("jobs", _JOBS), ("tasks", _TASKS), ("stages", _STAGES)):
            self.con.execute(f"CREATE TABLE {table} AS {query}")
        self.con.execute("DROP TABLE status_batch")
        for table, columns in (
            ("llm_calls", USAGE_COLUMNS),
            ("events", EVENT_COLUMNS),
            ("runs", RUN_COLUMNS),
        ):
            self.con.execute(
                f"CREATE TABLE {table} (" + ", ".join(f"{k} {t}" for k, t in columns.items()) + ")"
            )

    # -- ingest -----------------------------------------------------------------------------------
    def refresh(self) -> int:
        """Read what changed since the last refresh; returns how many jobs were (re)read."""
        current: dict[str, tuple[str, tuple[int, ...]]] = {}
        for place in PLACES:
            try:
                entries = list(os.scandir(self.data_dir / place))
            except FileNotFoundError:
                continue
            for entry in entries:
                if entry.is_dir() and not entry.name.startswith("."):
                    current[entry.name] = (entry.path, _signature(entry.path))
        changed = [job for job, seen in current.items() if self._seen.get(job) != seen]
        gone = [job for job in self._seen if job not in current]
        if changed or gone:
            self._replace(changed + gone, [current[job][0] for job in changed])
        self._seen = current
        self._refresh_runs()
        return len(changed)

    def _replace(self, jobs: list[str], folders: list[str]) -> None:
        con = self.con
        con.execute("BEGIN")
        try:
            con.execute("CREATE OR REPLACE TEMP TABLE stale AS SELECT unnest(?::VARCHAR[]) AS job", [jobs])
            for table in ("jobs", "tasks", "stages", "llm_calls", "events"):
                con.execute(f"DELETE FROM {table} WHERE job IN (SELECT job FROM stale)")
            status = [p for f in folders if os.path.exists(p := os.path.join(f, "tasks-status.json"))]
            if status:
                con.execute(
                    "CREATE OR REPLACE TEMP TABLE status_batch AS SELECT * FROM read_json("
                    f"{_sql_list(status)}, columns = {_struct(STATUS_COLUMNS)}, format = 'auto', "
                    "filename = true, ignore_errors = true) WHERE job_id IS NOT NULL"
                )
                for table, query in (("jobs", _JOBS), ("tasks", _TASKS), ("stages", _STAGES)):
                    con.execute(f"INSERT INTO {table} {query}")
            for table, name, columns, key in (
                ("llm_calls", "usage.jsonl", USAGE_COLUMNS, "request_hash"),
                ("events", "events.jsonl", EVENT_COLUMNS, "kind"),
            ):
                files = [p for f in folders if os.path.exists(p := os.path.join(f, name))]
                if files:
                    # ignore_errors turns a torn last line (a crash mid-append) into NULLs: left out
                    con.execute(
                        f"INSERT INTO {table} SELECT * FROM read_json({_sql_list(files)}, "
                        f"columns = {_struct(columns)}, format = 'newline_delimited', "
                        f"ignore_errors = true) WHERE {key} IS NOT NULL"
                    )
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise

    def _refresh_runs(self) -> None:
        path = self.data_dir / "complete" / "runs.jsonl"
        size = path.stat().st_size if path.exists() else -1
        if size == self._runs_size:
            return
        self.con.execute("DELETE FROM runs")
        if size > 0:
            self.con.execute(
                f"INSERT INTO runs SELECT * FROM read_json({_sql_list([str(path)])}, "
                f"columns = {_struct(RUN_COLUMNS)}, format = 'newline_delimited', ignore_errors = true) "
                "WHERE job IS NOT NULL"
            )
        self._runs_size = size

    # -- reading ------------------------------------------------------------------------------------
    def query(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        """Rows of ``sql`` as dicts (``refresh()`` first for fresh figures)."""
        cursor = self.con.execute(sql, params or [])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def frame(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        """Rows of ``sql`` as a pandas ``DataFrame`` (what a notebook displays as a table)."""
        return self.con.execute(sql, params or []).df()


def connect(data_dir: Path | str) -> Analytics:
    """An :class:`Analytics` over ``data_dir``, already refreshed."""
    analytics = Analytics(data_dir)
    analytics.refresh()
    return analytics
