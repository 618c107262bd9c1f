"""Reading job folders for DuckDB: which job folders a place holds (and how to tell one replaced), the
signature of a job's files, its JSON-lines logs into a table, and ``runs.jsonl``'s lines per job.
Shared by :mod:`pop_nb.analytics.store` (the tables) and :mod:`pop_nb.analytics.rollup` (``pop costs``
without the tables)."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pop_nb.analytics.schema import FILES, LOGS, literal_path, struct
from pop_nb.safejson import loads
from pop_nb.store import layout, listing

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

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


def snapshot_calls(files: list[str], pairs: str) -> str:
    """SQL: the calls the snapshot holds for each (``job``, ``file``) of ``pairs`` (a table or a query),
    from the ``llm_calls`` Parquet ``files``: only the segment serving a job counts (an older one may
    still hold an earlier run of it)."""
    return (
        f"SELECT p.* EXCLUDE (filename) FROM read_parquet({sql_list(files)}, filename = true) p "
        f"SEMI JOIN {pairs} d ON p.job = d.job AND p.filename = d.file"
    )


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
    for entry in listing.job_entries(path):
        try:
            ctime = entry.stat(follow_symlinks=False).st_ctime_ns
        except FileNotFoundError:
            continue
        entries[entry.name] = (entry.path, entry.inode(), ctime)
    return entries


def table_shape(columns: dict[str, str]) -> str:
    """``(name TYPE, ...)``: a CREATE TABLE's columns."""
    return "(" + ", ".join(f"{k} {t}" for k, t in columns.items()) + ")"


def read_log(con: duckdb.DuckDBPyConnection, table: str, folders: list[str]) -> None:
    """``batch_<table>`` (a table of ``con``): the lines of that log (:data:`LOGS`) in ``folders``."""
    con.execute(f"DELETE FROM batch_{table}")
    for files in rounds(folders, [LOGS[table][0]]):
        insert_log(con, table, files[LOGS[table][0]])


def insert_log(con: duckdb.DuckDBPyConnection, table: str, files: list[str]) -> None:
    """Add the lines of these gathered copies of a log (:data:`LOGS`) to ``batch_<table>``."""
    if not files:
        return
    _, columns, key = LOGS[table]
    # ignore_errors turns a torn last line (a crash mid-append) into NULLs: left out
    con.execute(
        f"INSERT INTO batch_{table} SELECT * FROM read_json(?, "
        f"columns = {struct(columns)}, format = 'newline_delimited', "
        f"ignore_errors = true) WHERE {key} IS NOT NULL",
        [files],
    )


GATHER_PARTS = 4  # files handed to DuckDB per file name and round, which it reads in parallel
GATHER_ROUND = 5_000  # job folders per round: ~50 MB of copies in the temporary folder, two rounds at most
READ_SIZE = 1 << 16
SLICE = 512  # job folders read before the way they are read is chosen again
SLOW_S = 30e-6  # a slice read this slowly, a file, was waiting for the disk: ~12 us from memory, ~80 cold
PROBE_EVERY = 8  # slices read by many threads before one is read by one thread again
WRITE_PIECES = min(1024, os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 16)


def rounds(folders: list[str], names: list[str]) -> Iterator[dict[str, list[str]]]:
    """The files called ``names`` in many job folders, copied into a few temporary ones for DuckDB to
    read, in rounds of :data:`GATHER_ROUND` folders: per round, name -> its copies (deleted once the
    caller asks for the next round).

    DuckDB's ``read_json`` pays about 0.1 ms for every file it opens; reading them here and handing it
    :data:`GATHER_PARTS` files per name is ten times faster over thousands of jobs. The next round is
    read on a thread while the caller's DuckDB reads this one (it lets go of the GIL), so the two take
    about as long as the longer of them. A file that does not exist is skipped; each file's last line
    is ended, so a torn one stays a line of its own (left out by ``ignore_errors``). The status
    (:data:`~pop_nb.store.layout.STATUS`, one JSON object written indented) is made one line and given
    its path as ``"filename"``, as ``read_json(filename = true)`` would."""
    chunks = [folders[start : start + GATHER_ROUND] for start in range(0, len(folders), GATHER_ROUND)]
    made = _ahead(chunks, names) if len(chunks) > 1 else (_gather_round(c, names) for c in chunks)
    try:
        for tmp, files in made:
            try:
                yield files
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    finally:
        made.close()  # now, not when collected: the thread ends and its round is deleted


def _ahead(chunks: list[list[str]], names: list[str]) -> Generator[tuple[str, dict[str, list[str]]]]:
    """The rounds of ``chunks``, each made on a thread while the caller works on the one before: two
    rounds' copies at most at any time (the caller deletes one before it asks for the next). A caller
    that stops early (an error) stops the thread after the round it is making, deleted too."""
    ready: queue.SimpleQueue[tuple[str, dict[str, list[str]]] | BaseException | None] = queue.SimpleQueue()
    room = threading.Semaphore(2)
    stop = threading.Event()

    def make() -> None:
        try:
            for chunk in chunks:
                room.acquire()
                if stop.is_set():
                    break
                ready.put(_gather_round(chunk, names))
        except BaseException as exc:  # the caller raises it
            ready.put(exc)
        finally:
            ready.put(None)

    thread = threading.Thread(target=make, name="pop-gather", daemon=True)
    thread.start()
    ended = False
    try:
        while (item := ready.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
            room.release()  # the caller is done with it, and has deleted it
        ended = True
    finally:
        stop.set()
        room.release(2)  # the thread waiting for room (once at most) goes on, sees stop and ends
        while not ended and (item := ready.get()) is not None:
            if isinstance(item, tuple):
                shutil.rmtree(item[0], ignore_errors=True)
        thread.join()


def _gather_round(folders: list[str], names: list[str]) -> tuple[str, dict[str, list[str]]]:
    """One round of :func:`rounds`: its temporary folder, and per name the copies written in it.

    Read in slices of :data:`SLICE` folders, by one thread while the files are in memory (several
    would only wait for the GIL in turn: twice as slow); a slice that took longer than
    :data:`SLOW_S` a file was waiting for the disk, and the next are read by :data:`GATHER_PARTS`
    threads at once, each its own part, as many reads waiting at once as the disk can serve (2.6x
    as fast from a cold cache, measured), with a slice read by one thread again now and then to see
    whether the disk is still the wait."""
    tmp = tempfile.mkdtemp(prefix="pop-gather-")
    # per part, per name: the pieces of its copy, in the folders' order
    parts: list[list[list[bytes]]] = [[[] for _ in names] for _ in range(GATHER_PARTS)]
    pool: ThreadPoolExecutor | None = None
    try:
        pooled, since_probe = False, 0
        for start in range(0, len(folders), SLICE):  # SLICE is a multiple of GATHER_PARTS
            slices = [folders[start + k : start + SLICE : GATHER_PARTS] for k in range(GATHER_PARTS)]
            if pooled and since_probe < PROBE_EVERY:
                assert pool is not None
                for _ in pool.map(_read_into, slices, [names] * GATHER_PARTS, parts):
                    pass
                since_probe += 1
                continue
            began = time.perf_counter()
            for some, pieces in zip(slices, parts, strict=True):
                _read_into(some, names, pieces)
            read = len(names) * sum(map(len, slices))
            pooled, since_probe = time.perf_counter() - began > SLOW_S * read, 0
            if pooled and pool is None:
                from concurrent.futures import ThreadPoolExecutor  # 5 ms of import, for a cold disk only

                pool = ThreadPoolExecutor(GATHER_PARTS, thread_name_prefix="pop-gather-read")
        files: dict[str, list[str]] = {name: [] for name in names}
        for k, name in enumerate(names):
            for n, pieces in enumerate(parts):
                if pieces[k]:
                    files[name].append(_write_all(os.path.join(tmp, f"{k}-{n}.jsonl"), pieces[k]))
        return tmp, files
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def _read_into(folders: list[str], names: list[str], pieces: list[list[bytes]]) -> None:
    """Append the files ``names`` in ``folders`` to ``pieces`` (one list per name), each ending with a
    line break; a status made one line, tagged with its path, or left out if it is no JSON object."""
    for folder in folders:
        prefix = folder + os.sep
        for name, out in zip(names, pieces, strict=True):
            raw = _read(prefix + name)
            if not raw:
                continue
            if name == layout.STATUS:
                line = _tagged(raw, prefix + name)
                if line is not None:
                    out.append(line)
                continue
            out.append(raw)
            if not raw.endswith(b"\n"):
                out.append(b"\n")


def _write_all(path: str, pieces: list[bytes]) -> str:
    """Write ``pieces`` one after another into a new file ``path`` (``os.writev``: no joined copy)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        for start in range(0, len(pieces), WRITE_PIECES):
            batch = pieces[start : start + WRITE_PIECES]
            done = os.writev(fd, batch)
            left = sum(map(len, batch)) - done
            if left:  # a short write (a full disk raises instead): the rest, as plain writes
                rest = memoryview(b"".join(batch))[done:]
                while rest:
                    rest = rest[os.write(fd, rest) :]
    finally:
        os.close(fd)
    return path


def _read(path: str) -> bytes | None:
    """The bytes of a file, None if there is none (``os.read``: half the time of ``open().read()``,
    which counts over hundreds of thousands of small files)."""
    try:  # not blocking: a named pipe put there by somebody reads as empty, not forever
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        chunks = []
        while chunk := os.read(fd, READ_SIZE):
            chunks.append(chunk)
    except IsADirectoryError:
        return None
    finally:
        os.close(fd)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


_PLAIN = re.compile(rb'[^"\\\x00-\x1f\x7f-\xff]*')  # a path written as a JSON string as it is


def _tagged(raw: bytes, path: str) -> bytes | None:
    """One status file as one line with its path in it; None if it is no JSON object with a key."""
    body = raw.strip()
    if not (body.startswith(b"{") and body.endswith(b"}") and body[1:].lstrip()[:1] == b'"'):
        return None
    # a JSON text holds a raw line break only between tokens (in a string it is escaped): a space there
    one_line = body[1:].replace(b"\r", b" ").replace(b"\n", b" ")
    encoded = path.encode("utf-8", "surrogateescape")
    quoted = b'"' + encoded + b'"' if _PLAIN.fullmatch(encoded) else json.dumps(path).encode()
    return b'{"filename":' + quoted + b"," + one_line + b"\n"


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
