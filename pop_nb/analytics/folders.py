"""Reading job folders for DuckDB: which job folders a place holds (and how to tell one replaced), the
signature of a job's files, its JSON-lines logs into a table, and ``runs.jsonl``'s lines per job.
Shared by :mod:`pop_nb.analytics.store` (the tables) and :mod:`pop_nb.analytics.rollup` (``pop costs``
without the tables)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pop_nb.analytics.schema import FILES, LOGS, literal_path, struct
from pop_nb.safejson import loads

if TYPE_CHECKING:
    import duckdb

FINISHED = ("complete", "failed")


def in_memory() -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB, quiet (its progress bar would draw on a long read's stdout: ``pop costs``),
    spilling to the system's temporary folder, not to ``.tmp/`` in whatever folder the user is in."""
    import duckdb

    con = duckdb.connect(":memory:")
    con.execute("SET enable_progress_bar = false")
    user = os.getuid() if hasattr(os, "getuid") else 0
    spill = os.path.join(tempfile.gettempdir(), f"pop-nb-duckdb-{user}")  # one per user
    con.execute("SET temp_directory = ?", [spill])
    return con


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
    for files in gathered([os.path.join(f, name) for f in folders]):
        # ignore_errors turns a torn last line (a crash mid-append) into NULLs: left out
        con.execute(
            f"INSERT INTO batch_{table} SELECT * FROM read_json(?, "
            f"columns = {struct(columns)}, format = 'newline_delimited', "
            f"ignore_errors = true) WHERE {key} IS NOT NULL",
            [files],
        )


GATHER_PARTS = 4  # files handed to DuckDB, which reads them in parallel
GATHER_ROUND = 10_000  # files read per round: at most ~60 MB of statuses in the temporary folder at once


def gathered(paths: list[str], tag_with_path: bool = False) -> Iterator[list[str]]:
    """The JSON lines of many small files, copied into a few temporary ones for DuckDB to read, in
    rounds of :data:`GATHER_ROUND` files: each round's files (deleted once the caller asks for the next).

    DuckDB's ``read_json`` pays about 0.1 ms for every file it opens; reading them here and handing it
    :data:`GATHER_PARTS` files is ten times faster over thousands of jobs. A file that does not exist is
    skipped; each file's last line is ended, so a torn one stays a line of its own (left out by
    ``ignore_errors``). ``tag_with_path``: each file is one JSON object (a status, written indented),
    made one line and given its path as ``"filename"``, as ``read_json(filename = true)`` would."""
    for start in range(0, len(paths), GATHER_ROUND):
        part = paths[start : start + GATHER_ROUND]
        with tempfile.TemporaryDirectory(prefix="pop-gather-") as tmp:
            # in turn, so each holds about as much; one thread: threads reading here were slower (the GIL)
            files = [(part[n::GATHER_PARTS], os.path.join(tmp, f"{n}.jsonl")) for n in range(GATHER_PARTS)]
            written = [file for some, file in files if _gather(some, file, tag_with_path)]
            if written:
                yield written


def _gather(paths: list[str], file: str, tag_with_path: bool) -> bool:
    """Copy ``paths`` into ``file`` as :func:`gathered` says; whether anything was written."""
    chunk = bytearray()
    for path in paths:
        try:
            with open(path, "rb") as fh:
                raw = fh.read()
        except (FileNotFoundError, NotADirectoryError):
            continue
        if tag_with_path:
            line = _tagged(raw, path)
            if line is None:
                continue
            raw = line
        elif raw and not raw.endswith(b"\n"):
            raw += b"\n"
        chunk += raw
    if chunk:
        with open(file, "wb") as out:
            out.write(chunk)
    return bool(chunk)


def _tagged(raw: bytes, path: str) -> bytes | None:
    """One status file as one line with its path in it; None if it is no JSON object with a key."""
    body = raw.strip()
    if not (body.startswith(b"{") and body.endswith(b"}") and body[1:].lstrip()[:1] == b'"'):
        return None
    # a JSON text holds a raw line break only between tokens (in a string it is escaped): a space there
    one_line = body[1:].replace(b"\r", b" ").replace(b"\n", b" ")
    return b'{"filename":' + json.dumps(path).encode() + b"," + one_line + b"\n"


def rows_of(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """A query's rows as dicts."""
    names = [d[0] for d in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


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
