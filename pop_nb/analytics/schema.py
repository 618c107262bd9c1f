"""The analytics tables: their columns, and the SQL that turns a batch of job files into their rows.

Everything :mod:`pop_nb.analytics.store` keeps, and the Parquet snapshot stores, is defined here once;
:data:`SCHEMA` changes whenever any of it does, and a snapshot written under another schema is rebuilt.
"""

from __future__ import annotations

import hashlib
import json

from pop_nb.store import layout

PLACES = ("current", "complete", "failed")
FILES = (layout.STATUS, layout.USAGE, layout.EVENTS, layout.METRICS, layout.SPANS)

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
    "paid_by": "VARCHAR",
    "cache_key": "VARCHAR",
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
METRIC_COLUMNS: dict[str, str] = {
    "ts": "TIMESTAMP",
    "job": "VARCHAR",
    "pipeline": "VARCHAR",
    "task": "VARCHAR",
    "stage": "VARCHAR",
    "refinement": "INTEGER",
    "name": "VARCHAR",
    "value": "DOUBLE",
    "scorer": "VARCHAR",
}


def _text_struct(*fields: str, **nested: str) -> str:
    """A STRUCT of text fields (and ``nested`` ones of the types given): read_json parses a status once
    into it, and the queries TRY_CAST each field as they always did, so a hand-edited value of another
    type is a NULL there, not a lost row."""
    parts = [f"{f} VARCHAR" for f in fields] + [f"{f} {t}" for f, t in nested.items()]
    return f"STRUCT({', '.join(parts)})"


_STAGE_RUN = _text_struct(
    "stage", "refinement", "attempt", "state", "started_at", "ended_at", "duration_ms", "cells_ms", "notebook"
)
_TASK = _text_struct(
    "state",
    "started_at",
    "ended_at",
    "attempts",
    "refinements",
    "skip_kind",
    "gate",
    usage=_text_struct("calls", "cost_usd"),
    error=_text_struct("type"),
    stages=f"MAP(VARCHAR, {_STAGE_RUN})",
)
# A status's tasks and their stage runs are typed (MAP of STRUCTs), not JSON: a query then reads fields,
# where ``->>`` on JSON text parsed every task again for each field (20x slower over 100,000 jobs).
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
    "error": _text_struct("type", "task", "stage", "message", "notebook"),
    "totals": _text_struct(
        "calls", "attempts", "unpriced_calls", "input_tokens", "output_tokens", "cost_usd"
    ),
    "tasks": f"MAP(VARCHAR, {_TASK})",
    "resumes": "INTEGER",
    "recoveries": "INTEGER",
    "executor": "VARCHAR",
    "host": "VARCHAR",
    "worker": "VARCHAR",
}
SPAN_COLUMNS: dict[str, str] = {
    "trace_id": "VARCHAR",
    "span_id": "VARCHAR",
    "parent_id": "VARCHAR",
    "name": "VARCHAR",
    "kind": "VARCHAR",
    "start_ns": "BIGINT",
    "end_ns": "BIGINT",
    "status": "VARCHAR",
    "status_message": "VARCHAR",
    "job": "VARCHAR",
    "task": "VARCHAR",
    "stage": "VARCHAR",
    "attributes": "JSON",
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
           error.type AS error_type, error.task AS error_task, error.stage AS error_stage,
           error.message AS error_message, error.notebook AS error_notebook,
           coalesce(TRY_CAST(totals.calls AS BIGINT), 0) AS calls,
           coalesce(TRY_CAST(totals.attempts AS BIGINT), 0) AS attempts,
           coalesce(TRY_CAST(totals.unpriced_calls AS BIGINT), 0) AS unpriced_calls,
           coalesce(TRY_CAST(totals.input_tokens AS BIGINT), 0) AS input_tokens,
           coalesce(TRY_CAST(totals.output_tokens AS BIGINT), 0) AS output_tokens,
           coalesce(TRY_CAST(totals.cost_usd AS DOUBLE), 0) AS cost_usd,
           resumes, coalesce(recoveries, 0) AS recoveries, executor, host, worker,
           regexp_replace(filename, '/tasks-status\\.json$', '') AS path
    FROM status_batch
"""
_TASKS = """
    SELECT job, pipeline, t.key AS task, t.value.state AS state,
           TRY_CAST(t.value.started_at AS TIMESTAMP) AS started_at,
           TRY_CAST(t.value.ended_at AS TIMESTAMP) AS ended_at,
           coalesce(TRY_CAST(t.value.attempts AS INTEGER), 0) AS attempts,
           coalesce(TRY_CAST(t.value.refinements AS INTEGER), 0) AS refinements,
           coalesce(TRY_CAST(t.value.usage.calls AS BIGINT), 0) AS calls,
           coalesce(TRY_CAST(t.value.usage.cost_usd AS DOUBLE), 0) AS cost_usd,
           t.value.skip_kind AS skip_kind, t.value.error.type AS error_type,
           t.value.gate AS gate
    FROM (SELECT job_id AS job, pipeline, unnest(map_entries(tasks)) AS t FROM status_batch)
"""
_STAGES = """
    SELECT job, pipeline, task, r.key AS run, r.value.stage AS stage,
           coalesce(TRY_CAST(r.value.refinement AS INTEGER), 0) AS refinement,
           coalesce(TRY_CAST(r.value.attempt AS INTEGER), 1) AS attempt,
           r.value.state AS state,
           TRY_CAST(r.value.started_at AS TIMESTAMP) AS started_at,
           TRY_CAST(r.value.ended_at AS TIMESTAMP) AS ended_at,
           TRY_CAST(r.value.duration_ms AS BIGINT) AS duration_ms,
           TRY_CAST(r.value.cells_ms AS BIGINT) AS cells_ms,
           r.value.notebook AS notebook
    FROM (SELECT job, pipeline, t.key AS task, unnest(map_entries(t.value.stages)) AS r
          FROM (SELECT job_id AS job, pipeline, unnest(map_entries(tasks)) AS t FROM status_batch))
"""


# Per job and group, what the cost questions ask: summing ~40 rows per job, not every call, keeps a
# dashboard's refresh fast over a million calls (``llm_calls`` keeps every call for any other question).
_CALL_TOTALS = """
    SELECT job, pipeline, task, stage, model, strftime(ts, '%Y-%m-%d') AS day,
           count(*) FILTER (WHERE ok) AS calls,
           count(*) AS attempts,
           coalesce(sum(input_tokens), 0)::BIGINT AS input_tokens,
           coalesce(sum(output_tokens), 0)::BIGINT AS output_tokens,
           coalesce(sum(cached_tokens), 0)::BIGINT AS cached_tokens,
           coalesce(sum(cost_usd), 0)::DOUBLE AS cost_usd,
           count(*) FILTER (WHERE cache_hit) AS cache_hits,
           coalesce(sum(saved_usd), 0)::DOUBLE AS saved_usd,
           count(*) FILTER (WHERE ok AND cost_source = 'unpriced') AS unpriced_calls
    FROM batch_llm_calls GROUP BY ALL
"""

# An experiment's jobs (named ``<experiment>/<variant>/<item>#<repeat>`` by ``pop experiment run``, their
# ids ``exp-<experiment>-...``), by variant and item: a view of ``jobs``, as current as it is.
EXPERIMENTS = """
    SELECT split_part(name, '/', 1) AS experiment, split_part(name, '/', 2) AS variant,
           regexp_extract(name, '^[^/]+/[^/]+/(.*)#[0-9]+$', 1) AS item,
           CAST(regexp_extract(name, '#([0-9]+)$', 1) AS INTEGER) AS repeat,
           job, pipeline, state, place, started_at, ended_at, duration_ms, calls, input_tokens,
           output_tokens, cost_usd
    FROM jobs
    WHERE regexp_full_match(name, '[^/]+/[^/]+/.+#[0-9]+')
      AND starts_with(job, 'exp-' || split_part(name, '/', 1) || '-')
"""

# The tables with one job's rows in each (``job`` column): what a refresh replaces and a snapshot stores.
JOB_TABLES = ("jobs", "tasks", "stages", "llm_calls", "events", "metrics", "spans", "call_totals")
# Rows made from a batch of status files (the temp table ``status_batch``).
STATUS_TABLES = {"jobs": _JOBS, "tasks": _TASKS, "stages": _STAGES}
# Rows made from the calls just read (the temp table ``batch_llm_calls``).
CALL_TOTALS = _CALL_TOTALS
# Line logs read with read_json: table -> (file name, columns, a column no real line leaves empty)
LOGS = {
    "llm_calls": (layout.USAGE, USAGE_COLUMNS, "request_hash"),
    "events": (layout.EVENTS, EVENT_COLUMNS, "kind"),
    "metrics": (layout.METRICS, METRIC_COLUMNS, "name"),
    "spans": (layout.SPANS, SPAN_COLUMNS, "span_id"),
}

SCHEMA = hashlib.sha256(
    repr(
        (
            STATUS_COLUMNS,
            USAGE_COLUMNS,
            EVENT_COLUMNS,
            METRIC_COLUMNS,
            SPAN_COLUMNS,
            RUN_COLUMNS,
            STATUS_TABLES,
            CALL_TOTALS,
        )
    ).encode()
).hexdigest()[:16]


def literal_path(path: str) -> str:
    """``path`` as DuckDB's file readers take it literally: they expand ``*``, ``?`` and ``[...]`` as a
    glob, so a folder named ``x[1]`` would read ``x1``'s file instead (each becomes a one-character
    class, ``[[]``)."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in path)


def struct(columns: dict[str, str]) -> str:
    """DuckDB's ``columns =`` argument of read_json for ``columns``."""
    return "{" + ", ".join(f"'{k}': '{v}'" for k, v in columns.items()) + "}"


def json_shape(columns: dict[str, str]) -> str:
    """json_transform's structure argument for ``columns``."""
    return json.dumps(columns)
