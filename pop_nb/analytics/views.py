"""DuckDB views over every job folder (``current/``, ``complete/``, ``failed/``).

``llm_calls``: one row per line of every ``usage.jsonl`` (a torn last line is skipped).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

PLACES = ("current", "complete", "failed")

USAGE_COLUMNS: dict[str, str] = {
    "ts": "TIMESTAMPTZ",
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


def job_files(data_dir: Path, name: str) -> list[str]:
    """``<place>/<job>/<name>`` for every job folder that has that file."""
    found = []
    for place in PLACES:
        try:
            entries = list(os.scandir(data_dir / place))
        except FileNotFoundError:
            continue
        for entry in entries:
            path = os.path.join(entry.path, name)
            if entry.is_dir() and os.path.exists(path):
                found.append(path)
    return sorted(found)


def _sql_list(paths: list[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def _columns_struct() -> str:
    return "{" + ", ".join(f"'{k}': '{v}'" for k, v in USAGE_COLUMNS.items()) + "}"


def connect(data_dir: Path | str, database: str = ":memory:") -> Any:
    """A DuckDB connection with the views defined over ``data_dir``'s job folders."""
    import duckdb

    con = duckdb.connect(database)
    usage = job_files(Path(data_dir), "usage.jsonl")
    if usage:
        source = (
            f"read_json({_sql_list(usage)}, format = 'newline_delimited', "
            f"columns = {_columns_struct()}, ignore_errors = true)"
        )
    else:  # no job yet: an empty view with the same columns, so every query still runs
        source = "(SELECT " + ", ".join(f"NULL::{t} AS {k}" for k, t in USAGE_COLUMNS.items()) + " LIMIT 0)"
    # ignore_errors turns a torn last line (a crash mid-append) into a row of NULLs: leave it out
    con.execute(f"CREATE OR REPLACE VIEW llm_calls AS SELECT * FROM {source} WHERE request_hash IS NOT NULL")
    return con
