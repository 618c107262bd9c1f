"""Reading job folders for DuckDB: which job folders a place holds (and how to tell one replaced), the
signature of a job's files, its JSON-lines logs into a table, and ``runs.jsonl``'s lines per job.
Shared by :mod:`pop_nb.analytics.store` (the tables) and :mod:`pop_nb.analytics.rollup` (``pop costs``
without the tables)."""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pop_nb.analytics.schema import FILES, LOGS, literal_path, struct
from pop_nb.safejson import loads
from pop_nb.store.atomic import read_json

if TYPE_CHECKING:
    import duckdb

FINISHED = ("complete", "failed")


def sql_list(paths: list[str]) -> str:
    """A list of files for DuckDB's readers, each read as named (no glob)."""
    return "[" + ", ".join("'" + literal_path(p).replace("'", "''") + "'" for p in paths) + "]"


def file_signature(folder: str) -> tuple[int, ...]:
    sig: list[int] = []
    for name in FILES:
        try:
            st = os.stat(os.path.join(folder, name))
            sig += [st.st_mtime_ns, st.st_size]
        except FileNotFoundError:
            sig += [0, -1]
    return tuple(sig)


def job_folders(path: Path) -> dict[str, tuple[str, int, int]]:
    """The job folders in ``path``: name -> (path, inode, ctime). The ctime tells a folder made in place
    of a deleted one, which may get the same inode back."""
    entries: dict[str, tuple[str, int, int]] = {}
    try:
        with os.scandir(path) as found:
            for entry in found:
                if entry.is_dir(follow_symlinks=False) and not entry.name.startswith("."):
                    try:
                        ctime = entry.stat(follow_symlinks=False).st_ctime_ns
                    except FileNotFoundError:
                        continue
                    entries[entry.name] = (entry.path, entry.inode(), ctime)
    except FileNotFoundError:
        return {}
    return entries


def table_shape(columns: dict[str, str]) -> str:
    """``(name TYPE, ...)``: a CREATE TABLE's columns."""
    return "(" + ", ".join(f"{k} {t}" for k, t in columns.items()) + ")"


def read_log(con: duckdb.DuckDBPyConnection, table: str, folders: list[str]) -> None:
    """``batch_<table>`` (a table of ``con``): the lines of that log (:data:`LOGS`) in ``folders``."""
    name, columns, key = LOGS[table]
    con.execute(f"DELETE FROM batch_{table}")
    files = [p for f in folders if os.path.exists(p := os.path.join(f, name))]
    if files:
        # ignore_errors turns a torn last line (a crash mid-append) into NULLs: left out
        con.execute(
            f"INSERT INTO batch_{table} SELECT * FROM read_json({sql_list(files)}, "
            f"columns = {struct(columns)}, format = 'newline_delimited', "
            f"ignore_errors = true) WHERE {key} IS NOT NULL"
        )


def rows_of(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """A query's rows as dicts."""
    names = [d[0] for d in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def is_json_object(path: str) -> bool:
    try:
        return isinstance(read_json(Path(path)), dict)
    except (OSError, ValueError):
        return False


def run_lines(complete: bytes) -> Counter[str]:
    """How many whole lines of ``runs.jsonl`` name each job (part of a finished job's key)."""
    lines = [line for line in complete.splitlines() if line.strip()]
    try:  # one parse of them all (twice as fast as a parse per line); a bad line: a parse per line
        rows = loads(b"[" + b",".join(lines) + b"]")
    except ValueError:
        rows = []
        for line in lines:
            with contextlib.suppress(ValueError):
                rows.append(loads(line))
    return Counter(row["job"] for row in rows if isinstance(row, dict) and isinstance(row.get("job"), str))
