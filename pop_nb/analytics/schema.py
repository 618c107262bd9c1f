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


def _typed_struct(**fields: str) -> str:
    """A STRUCT of these fields and types. read_json (``ignore_errors``) makes a value that is not of
    its field's type (a hand-edited status) a NULL in that field alone, and keeps the row; reading
    numbers and times as what they are is a fifth faster than reading text for the queries to cast."""
    return "STRUCT(" + ", ".join(f"{name} {kind}" for name, kind in fields.items()) + ")"


_TEXT, _INT, _BIG, _TIME, _REAL = "VARCHAR", "INTEGER", "BIGINT", "TIMESTAMP", "DOUBLE"
_STAGE_RUN = _typed_struct(
    stage=_TEXT, refinement=_INT, attempt=_INT, state=_TEXT, started_at=_TIME, ended_at=_TIME,
    duration_ms=_BIG, cells_ms=_BIG, notebook=_TEXT,
)  # fmt: skip
_TASK = _typed_struct(
    state=_TEXT, started_at=_TIME, ended_at=_TIME, attempts=_INT, refinements=_INT, skip_kind=_TEXT,
    gate=_TEXT, usage=_typed_struct(calls=_BIG, cost_usd=_REAL), error=_typed_struct(type=_TEXT),
    stages=f"MAP(VARCHAR, {_STAGE_RUN})",
)  # fmt: skip
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
    "error": _typed_struct(type=_TEXT, task=_TEXT, stage=_TEXT, message=_TEXT, notebook=_TEXT),
    "totals": _typed_struct(
        calls=_BIG, attempts=_BIG, unpriced_calls=_BIG, input_tokens=_BIG, output_tokens=_BIG, cost_usd=_REAL
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
           coalesce(totals.calls, 0) AS calls,
           coalesce(totals.attempts, 0) AS attempts,
           coalesce(totals.unpriced_calls, 0) AS unpriced_calls,
           coalesce(totals.input_tokens, 0) AS input_tokens,
           coalesce(totals.output_tokens, 0) AS output_tokens,
           coalesce(totals.cost_usd, 0) AS cost_usd,
           resumes, coalesce(recoveries, 0) AS recoveries, executor, host, worker,
           regexp_replace(filename, '/tasks-status\\.json$', '') AS path
    FROM status_batch
"""
_TASKS = """
    SELECT job, pipeline, t.key AS task, t.value.state AS state,
           t.value.started_at AS started_at,
           t.value.ended_at AS ended_at,
           coalesce(t.value.attempts, 0) AS attempts,
           coalesce(t.value.refinements, 0) AS refinements,
           coalesce(t.value.usage.calls, 0) AS calls,
           coalesce(t.value.usage.cost_usd, 0) AS cost_usd,
           t.value.skip_kind AS skip_kind, t.value.error.type AS error_type,
           t.value.gate AS gate
    FROM (SELECT job_id AS job, pipeline, unnest(map_entries(tasks)) AS t FROM status_batch)
"""
_STAGES = """
    SELECT job, pipeline, task, r.key AS run, r.value.stage AS stage,
           coalesce(r.value.refinement, 0) AS refinement,
           coalesce(r.value.attempt, 1) AS attempt,
           r.value.state AS state,
           r.value.started_at AS started_at,
           r.value.ended_at AS ended_at,
           r.value.duration_ms AS duration_ms,
           r.value.cells_ms AS cells_ms,
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
