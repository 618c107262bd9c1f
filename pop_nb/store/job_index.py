"""The index that lists of jobs and ``pop status`` read: one entry per job, never a status file per job.

A job in ``complete/``, ``failed/`` or ``archive/`` does not change where it is (``pop resume`` first
moves it back to ``current/``). So each of those places has a shelf, kept in ``<data>/.index/<place>.json``
and brought up to date by whoever reads it:

- The place's folder has not changed since the shelf was made (:func:`pop_nb.store.listing.settled`):
  no job came or went, and the shelf is read as it is, without looking at one job folder.
- Otherwise the folder is listed, names only (``scandir``, no ``stat``): a name not on the shelf, or one
  whose folder has another inode (replaced), has its status read; a name gone is dropped.
- Either way, the lines ``complete/runs.jsonl`` gained since the shelf was made name the jobs that ended
  since; a job resumed and ended again in the same place (same name, same inode) is read again for that.

Jobs in ``current/`` change all the time and are few: their status files are stat'ed at each refresh
and read when they changed, as before.

The shelf file is three lines, so a reader that needs only the counts never parses the entries, and
one that needs only the first pages of a list newest first (``pop status --json``, the Lab's jobs list)
parses the :data:`NEWEST` newest only:

    {"version", "place", "folder": [inode, mtime], "made_ns", "runs": [inode, bytes read], "count", "totals",
     "newest", "crc": crc32 of the other two lines}
    {"dir": [...], "inode": [...], "job_id": [...], ... one list per column}: the NEWEST newest, newest first
    {"dir": [...], "inode": [...], "job_id": [...], ... one list per column}: every entry

It is only a cache: written atomically (not fsynced), rebuilt when it is missing, torn, or from another
version, and never written when the data folder is read-only.
"""

from __future__ import annotations

import contextlib
import gc
import heapq
import json
import os
import threading
import time
import zlib
from collections.abc import Callable
from itertools import islice, starmap
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from pop_nb.models.status import StatusHead
from pop_nb.safejson import columns, loads
from pop_nb.store import layout
from pop_nb.store.atomic import atomic_write_bytes
from pop_nb.store.jobs import ARCHIVE, PLACES, JobFolder
from pop_nb.store.listing import Stamp, as_int, ended_since, file_mark, job_entries, settled, stamp

T = TypeVar("T")

FOLDER = ".index"
VERSION = 2  # 2: the newest entries on a line of their own
NEWEST = 1000  # entries of a shelf kept apart, newest first: the pages a list newest first starts with
FINISHED = ("complete", "failed", ARCHIVE)
RUNS = "runs.jsonl"  # in complete/: one line per job that ended
SAVE_AFTER = 1000  # entries changed since the shelf on disk was made: write it now
SAVE_EVERY_S = 60.0  # else write it at most this often while jobs come and go


class Entry(NamedTuple):
    """One job as the index keeps it: what lists filter, sort and add up on. ``stamp`` changes whenever
    the status file is read again (its mtime), so a cache of anything built from it knows when to drop
    it; ``raw`` is the status's bytes for a job in ``current/`` (read anyway), None for a finished one."""

    path: str
    job_id: str
    name: str
    state: str
    pipeline: str
    created_at: str
    started_at: str
    ended_at: str
    totals: tuple[int, int, int, int, float, int]  # calls, attempts, input and output tokens, cost, unpriced
    stamp: int
    raw: bytes | None = None

    @property
    def folder(self) -> JobFolder:
        return JobFolder(Path(self.path))

    @property
    def place(self) -> str:
        return os.path.basename(os.path.dirname(self.path))

    def head(self) -> StatusHead:
        """What the job's summary needs of its status, read five times faster than all of it (raises
        OSError or ValueError if the job moved on or its file is broken)."""
        if self.raw is not None:
            return StatusHead.model_validate_json(self.raw)
        with open(os.path.join(self.path, layout.STATUS), "rb") as fh:
            return StatusHead.model_validate_json(fh.read())


def newest_first(entry: Entry) -> tuple[str, str]:
    """The order of a list newest first (descending on this): by creation, then by id, so that two jobs
    made in the same millisecond are in the same order on every page, however the page was found."""
    return entry.created_at, entry.job_id


COLUMNS = ("job_id", "name", "state", "pipeline", "created_at", "started_at", "ended_at")
TOTALS = ("calls", "attempts", "input_tokens", "output_tokens", "cost_usd", "unpriced_calls")
LINE_COLUMNS = ("dir", "inode", *COLUMNS, *TOTALS, "stamp")  # a shelf's line: one list each
# what filters, sorts and paths are made of is text; the rest is left to the crc
LINE_KINDS: dict[str, tuple[type, ...] | None] = {
    c: (str,) if c in ("dir", *COLUMNS) else None for c in LINE_COLUMNS
}


def read_entry(job_dir: str, keep_raw: bool = False) -> Entry | None:
    """The entry of the job in ``job_dir``; None if it has no readable status (being made, moved this
    instant, not a job, or broken: whoever opens that job is told why)."""
    try:
        with open(os.path.join(job_dir, layout.STATUS), "rb") as fh:
            stamp = os.fstat(fh.fileno()).st_mtime_ns
            raw = fh.read()
        head = StatusHead.model_validate_json(raw)
    except (OSError, ValueError):
        return None
    t = head.totals
    return Entry(
        job_dir,
        head.job_id,
        head.name or "",
        head.state,
        head.pipeline,
        head.created_at,
        head.started_at or "",
        head.ended_at or "",
        (t.calls, t.attempts, t.input_tokens, t.output_tokens, t.cost_usd, t.unpriced_calls),
        stamp,
        raw if keep_raw else None,
    )


class Shelf:
    """One finished place's entries (folder name -> (inode, entry)), and what they were checked against."""

    def __init__(
        self, place: str, head: dict[str, Any], body: bytes | None, root: str, newest: bytes = b""
    ) -> None:
        self.place = place
        self.head = head
        self._body = body
        self._newest_body = newest  # the newest entries' line, parsed only if the body is not
        self._root = root
        self._entries: dict[str, tuple[int, Entry]] | None = None if body is not None else {}
        self._cols: dict[str, list[Any]] | None = None  # the body parsed, entries not made yet
        self._newest: list[tuple[str, int, Entry]] | None = None  # (name, inode, entry), newest first
        self.broken = False  # its entries could not be read: to be built again from the folder
        self.saved_ns = as_int(head.get("made_ns")) if body is not None else 0  # the version on disk

    @property
    def entries(self) -> dict[str, tuple[int, Entry]]:
        if self._entries is None:
            self._entries = self._made(self._columns())
            self._cols = None
        return self._entries

    def matching(self, keep: Callable[[str, str, str, str], bool]) -> list[Entry]:
        """The entries whose job id, name, state and pipeline ``keep`` keeps: while the entries are not
        made, only those are (a search over 100,000 jobs makes the few it finds)."""
        if self._entries is not None:
            return [e for _, e in self._entries.values() if keep(e.job_id, e.name, e.state, e.pipeline)]
        cols = self._columns()
        if not cols:
            return []
        rows = zip(cols["job_id"], cols["name"], cols["state"], cols["pipeline"], strict=True)
        picked = [i for i, row in enumerate(rows) if keep(*row)]
        return [entry for _, entry in self._made(cols, picked).values()]

    def count(self) -> int:
        """How many entries it has, from its first line while they are not parsed."""
        count = self.head.get("count")
        if self._entries is None and isinstance(count, int) and not isinstance(count, bool):
            return count
        return len(self.entries)

    def changed(self) -> None:
        """Its entries were changed in place: what was derived from them is made again when asked."""
        self._newest = None

    def newest(self) -> list[Entry]:
        """The :data:`NEWEST` newest entries, newest first."""
        return [entry for _, _, entry in self._top()]

    def _top(self) -> list[tuple[str, int, Entry]]:
        """The newest entries with their folder names and inodes: from their own line while the entries
        are not parsed, else picked from them."""
        if self._newest is None:
            if self._entries is None and self._newest_body:
                made = self._made(self._parse(self._newest_body))
                self._newest = [(name, inode, entry) for name, (inode, entry) in made.items()]
            else:
                rows = ((name, inode, entry) for name, (inode, entry) in self.entries.items())
                self._newest = heapq.nlargest(NEWEST, rows, key=lambda row: newest_first(row[2]))
        return self._newest

    def _columns(self) -> dict[str, list[Any]]:
        """The body's columns, parsed once; {} when it could not be (``broken``)."""
        if self._cols is None:
            self._cols = self._parse(self._body or b"")
            self._body = None
        return self._cols

    def _parse(self, line: bytes) -> dict[str, list[Any]]:
        """A line of columns, each a list and all as long; {} and ``broken`` if it is not that."""
        if not line:
            return {}
        try:
            found = columns(loads(line), LINE_KINDS)
        except ValueError:
            found = None
        if found is None:
            self.broken = True
            return {}
        return found

    def _made(
        self, cols: dict[str, list[Any]], picked: list[int] | None = None
    ) -> dict[str, tuple[int, Entry]]:
        """Entries from columns (those of rows ``picked``, or all): folder name -> (inode, entry).

        No collection while 100,000 entries are made (each would walk them all: 40% of the time); then
        they go straight to the oldest generation (freeze and unfreeze move lists, in O(1)): young, they
        were walked by the next two or three collections, 60-90 ms in all."""
        if not cols:
            return {}
        if picked is not None:
            cols = {c: [cols[c][i] for i in picked] for c in LINE_COLUMNS}
        was_on = gc.isenabled()
        gc.disable()
        try:
            # made column by column in C (starmap, zip): a row at a time in Python was 4x slower
            names = cols["dir"]
            prefix = os.path.join(self._root, "")
            paths = [prefix + name for name in names]
            totals = zip(*(cols[c] for c in TOTALS), strict=True)
            fields = zip(paths, *(cols[c] for c in COLUMNS), totals, cols["stamp"], strict=True)
            return dict(zip(names, zip(cols["inode"], starmap(Entry, fields), strict=True), strict=True))
        except TypeError:  # a name that is no text
            self.broken = True
            return {}
        finally:
            gc.freeze()
            gc.unfreeze()
            if was_on:
                gc.enable()

    def fresh(self, folder: Stamp) -> bool:
        """No job came or went since the shelf was made (and no status was left unread)."""
        made = as_int(self.head.get("made_ns"))
        return settled(folder, self.head.get("folder"), made) and not self.head.get("unread")

    def to_bytes(self) -> bytes:
        every = [(name, inode, entry) for name, (inode, entry) in self.entries.items()]
        lines = _columns(self._top()) + _columns(every)
        head = json.dumps({**self.head, "crc": zlib.crc32(lines)}, separators=(",", ":"))
        return head.encode() + b"\n" + lines


def _columns(rows: list[tuple[str, int, Entry]]) -> bytes:
    """Entries as a shelf's line: one list per column."""
    cols: dict[str, list[Any]] = {"dir": [name for name, _, _ in rows]}
    cols["inode"] = [inode for _, inode, _ in rows]
    for i, column in enumerate(COLUMNS, start=1):
        cols[column] = [entry[i] for _, _, entry in rows]
    for i, column in enumerate(TOTALS):
        cols[column] = [entry.totals[i] for _, _, entry in rows]
    cols["stamp"] = [entry.stamp for _, _, entry in rows]
    return (json.dumps(cols, separators=(",", ":")) + "\n").encode()


def summed(entries: list[Entry]) -> dict[str, Any]:
    """What ``pop status`` shows of a place without its entries: how many, their totals, the newest."""
    columns = [sum(column) for column in zip(*(e.totals for e in entries), strict=True)] if entries else []
    newest = max(entries, key=lambda e: e.created_at, default=None)
    return {
        "count": len(entries),
        "totals": columns or [0, 0, 0, 0, 0.0, 0],
        "newest": newest.job_id if newest else None,
    }


class JobIndex:
    """Every job of some places, kept current as described above. Thread-safe; one per process and data
    folder (:func:`pop_nb.service.queries.index_of`) is what makes a server's lists warm."""

    def __init__(self, data_dir: Path, places: tuple[str, ...] = PLACES) -> None:
        self.data_dir = data_dir
        self.places = places
        self._shelves: dict[str, Shelf] = {}
        self._live: dict[str, dict[str, Entry]] = {}  # place -> status path -> entry, for current/
        self._lock = threading.Lock()

    def refresh(self) -> list[Entry]:
        """Every entry of the index's places, up to date."""
        return [entry for place in self.places for entry in self.entries(place)]

    def entries(self, place: str) -> list[Entry]:
        """Every entry of one place, up to date."""
        with self._lock:
            if place not in FINISHED:
                return self._current(place)
            _, entries = self._read(place, lambda shelf: shelf.entries)
            return [entry for _, entry in entries.values()]

    def matching(self, keep: Callable[[str, str, str, str], bool]) -> list[Entry]:
        """The entries of the index's places whose job id, name, state and pipeline ``keep`` keeps (a
        finished job's entry is made only if it is kept, while its shelf's are not made yet)."""
        found = []
        with self._lock:
            for place in self.places:
                if place not in FINISHED:
                    found += [e for e in self._current(place) if keep(e.job_id, e.name, e.state, e.pipeline)]
                    continue
                found += self._read(place, lambda shelf: shelf.matching(keep))[1]
        return found

    def newest(self, n: int) -> tuple[list[Entry], int]:
        """The ``n`` newest jobs of the index's places (:func:`newest_first`), and how many jobs they
        hold: the first pages of a list newest first, for which no finished job is parsed but the
        :data:`NEWEST` newest of each place (``n`` is at most that)."""
        if not 0 <= n <= NEWEST:
            raise ValueError(f"the newest {n} jobs: at most {NEWEST} are kept apart")
        parts, total = [], 0
        with self._lock:
            for place in self.places:
                if place not in FINISHED:
                    found = self._current(place)
                    parts.append(heapq.nlargest(n, found, key=newest_first))
                    total += len(found)
                    continue
                shelf, top = self._read(place, Shelf.newest)
                parts.append(top[:n])
                total += shelf.count()
        merged = heapq.merge(*parts, key=newest_first, reverse=True)
        return list(islice(merged, n)), total

    def _read(self, place: str, what: Callable[[Shelf], T]) -> tuple[Shelf, T]:
        """``what`` of a finished place's shelf, brought up to date; a shelf found damaged on the way (a
        file cut, edited, from a broken disk) is built again from the folder and asked again."""
        shelf = self._shelf(place)
        found = what(shelf)
        if shelf.broken:
            self._shelves[place] = Shelf(place, {}, None, str(self.data_dir / place))
            shelf = self._shelf(place)
            found = what(shelf)
        return shelf, found

    def counts(self, place: str) -> dict[str, Any]:
        """:func:`summed` for a finished place, from the shelf's first line when it is up to date."""
        with self._lock:
            shelf = self._shelf(place)
            if "count" not in shelf.head:
                shelf.head.update(summed([entry for _, entry in shelf.entries.values()]))
            return dict(shelf.head)

    def _current(self, place: str) -> list[Entry]:
        found: dict[str, Entry] = {}
        for dir_entry in list(job_entries(self.data_dir / place)):
            path = os.path.join(dir_entry.path, layout.STATUS)
            try:
                mtime = os.stat(path).st_mtime_ns
            except FileNotFoundError:  # being made, or not a job
                continue
            entry = self._live.get(place, {}).get(path)
            if entry is None or entry.stamp != mtime:
                entry = read_entry(dir_entry.path, keep_raw=True)
                if entry is None:  # replaced this instant: next refresh
                    continue
            found[path] = entry
        self._live[place] = found
        return list(found.values())

    def _shelf(self, place: str) -> Shelf:
        folder = self.data_dir / place
        now = stamp(folder)
        if now is None:
            self._shelves[place] = Shelf(place, {}, None, str(folder))
            return self._shelves[place]
        shelf = self._shelves.get(place) or self._load(place)
        self._shelves[place] = shelf
        runs = file_mark(self.data_dir / "complete" / RUNS)
        unchanged = shelf.fresh(now)
        if unchanged and shelf.head.get("runs") == runs:
            return shelf
        made = time.time_ns()
        again, runs = (
            ended_since(self.data_dir / "complete" / RUNS, shelf.head.get("runs"), runs)
            if shelf.head
            else (None, runs)
        )
        unread, changed = self._update(shelf, folder, again, list_folder=not unchanged or again is None)
        shelf.head = {
            "version": VERSION,
            "place": place,
            "folder": list(now),
            "made_ns": made,
            "runs": runs,
            **({"unread": unread} if unread else {}),
            **summed([entry for _, entry in shelf.entries.values()]),
        }
        # Writing the shelf costs ~0.8 s at 100,000 jobs: done when there is none, when it lags by many
        # jobs, or once it is SAVE_EVERY_S old; meanwhile a new process lists the folder and reads the
        # few jobs that came since (a server keeps its own up to date in memory).
        stale = made - shelf.saved_ns >= SAVE_EVERY_S * 1e9 and (changed or not unchanged)
        if not shelf.saved_ns or changed >= SAVE_AFTER or stale:
            self._save(shelf)
        return shelf

    def _update(
        self, shelf: Shelf, folder: Path, again: set[str] | None, list_folder: bool
    ) -> tuple[int, int]:
        """Bring the shelf's entries to what is on disk: (how many jobs' statuses could not be read, how
        many entries changed). ``again``: jobs that ended since (None: unknown, so every job is read)."""
        entries = shelf.entries if again is not None else {}
        unread, changed = 0, 0
        if list_folder:
            on_disk = {item.name: item.inode() for item in job_entries(folder)}
            for name in [n for n in entries if n not in on_disk]:
                del entries[name]
                changed += 1
            wanted = [n for n, inode in on_disk.items() if n not in entries or entries[n][0] != inode]
        else:
            on_disk = {name: inode for name, (inode, _) in entries.items()}
            wanted = []
        wanted += [n for n in (again or ()) if n in on_disk and n not in wanted]
        for name in wanted:
            entry = read_entry(os.path.join(folder, name))
            if entry is None:
                unread += os.path.exists(os.path.join(folder, name, layout.SEED))  # a job, not a stray
                entries.pop(name, None)
                continue
            entries[name] = (on_disk[name], entry)
            changed += 1
        shelf._entries = entries
        shelf.changed()
        return unread, changed

    def _load(self, place: str) -> Shelf:
        root = str(self.data_dir / place)
        try:
            with open(self.data_dir / FOLDER / f"{place}.json", "rb") as fh:
                head_line, _, lines = fh.read().partition(b"\n")
            head = loads(head_line)
            # the columns are as written (a file cut, hand-edited or from a broken disk is rebuilt: a
            # cost that is text would break the sums and sorts), checked at C speed (~10 ms at 100k)
            if (
                isinstance(head, dict)
                and head.get("version") == VERSION
                and head.get("place") == place
                and head.pop("crc", None) == zlib.crc32(lines)
            ):
                newest, _, body = lines.partition(b"\n")
                return Shelf(place, head, body, root, newest)
        except (OSError, ValueError):
            pass
        return Shelf(place, {}, None, root)

    def _save(self, shelf: Shelf) -> None:
        # a read-only data folder: answered from the folders each time, as before the index
        with contextlib.suppress(OSError):
            atomic_write_bytes(
                self.data_dir / FOLDER / f"{shelf.place}.json", shelf.to_bytes(), durable=False
            )
            shelf.saved_ns = shelf.head["made_ns"]
