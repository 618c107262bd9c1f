"""A columnar cache of finished jobs, beside their folders: ``<data>/.analytics/``.

A job in ``complete/`` or ``failed/`` no longer changes where it is (``pop resume`` first moves it back
to ``current/``), so its rows are written once to Parquet, and a new process loads ten thousand jobs in
one read of a few files instead of parsing thirty thousand JSON files.

    .analytics/manifest.json               {"version", "schema", "segments": {segment: jobs written},
                                            "jobs": {"job", "place", "inode", "ctime", "runs": [...],
                                                     "segment": [index in segments, ...]} (columns),
                                            "costs": {by: `pop costs --by <by>` rows, as JSON text
                                                      of their columns: {"key": [...], "calls": [...], ...}}}
    .analytics/<segment>/<table>.parquet   one per table of :data:`~pop_nb.analytics.schema.JOB_TABLES`
    .analytics/rollup.json                 the cost rows of the jobs held, and what they were found to
                                           hold for (:class:`Rollup`)
    .analytics/held-<name>.txt             the folders those rows are for, and the segment serving each
                                           (:class:`Held`)
    .analytics/lock                        flock'ed by the one process writing

A job's key is ``[place, inode and ctime of its folder, lines of complete/runs.jsonl naming it]``: a job
resumed and finished again has one more run line, a deleted or replaced folder another inode or place,
and either way its snapshot rows are dropped and it is read again from its files.

``pop costs`` takes the finished jobs' share from the manifest's ``costs``, without loading the snapshot,
while every finished folder is as its key says (:mod:`pop_nb.analytics.rollup`).

It is only a cache. Segments are immutable and the manifest, replaced atomically, names the complete
ones, so a reader sees a whole snapshot or the previous one; delete the folder and the next refresh
rebuilds it; a snapshot that cannot be read is deleted and rebuilt. Segments a newer manifest no longer
names are deleted only once no reader can still be loading them (:data:`KEEP_OBSOLETE_S`).
"""

from __future__ import annotations

import bisect
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pop_nb.analytics.schema import JOB_TABLES, SCHEMA, literal_path
from pop_nb.redaction import redact_bytes
from pop_nb.safejson import columns, loads
from pop_nb.store.atomic import atomic_write_bytes

if TYPE_CHECKING:
    import duckdb

FOLDER = ".analytics"
VERSION = 4  # 3: the manifest carries the cost rollup; 4: its rows as columns
Key = tuple[str, int, int, int]  # place, inode, ctime (ns) of the job folder, its runs.jsonl lines
JOB_KEY = ("place", "inode", "ctime", "runs")  # a Key's fields: the manifest's columns of them
JOB_KINDS: dict[str, tuple[type, ...] | None] = {
    "job": (str,), "place": (str,), "inode": (int,), "ctime": (int,), "runs": (int,), "segment": (int,)
}  # fmt: skip
MAX_SEGMENTS = 8  # past this many, the newer segments are merged into one
KEEP_OBSOLETE_S = 600.0
ROLLUP = "rollup.json"
HELD = "held-{}.txt"
HELD_NAME = re.compile(r"held-[0-9a-f]{32}\.txt")
SEGMENT_NAME = re.compile(r"[0-9a-f]{1,16}-[0-9]{1,10}")


# manifest path -> (its file's stamp, the manifest parsed from it): a process asks for it several times
_PARSED: dict[str, tuple[tuple[int, int, int, int], Manifest | None]] = {}


class SnapshotError(Exception):
    """The snapshot could not be read (torn, from another pop-nb, or the disk failed)."""


@dataclass
class Manifest:
    segments: dict[str, int] = field(default_factory=dict)  # segment -> jobs written to it, oldest first
    jobs: dict[str, tuple[Key, str]] = field(default_factory=dict)  # job -> (key, segment serving it)
    # by -> the rows of `pop costs --by <by>` as JSON text of their columns: parsed only for the grouping
    # asked for (columns: a row per job is 100,000 objects, each with its keys, and a nesting check each)
    costs: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> bytes:
        """The manifest's JSON: its jobs as columns (100,000 jobs parse in a tenth of the time of a list
        per job, and need no nesting scan), each job's segment by its index in ``segments``."""
        index = {segment: n for n, segment in enumerate(self.segments)}
        keys = [key for key, _ in self.jobs.values()]
        jobs: dict[str, list[Any]] = {"job": list(self.jobs)}
        for n, column in enumerate(JOB_KEY):
            jobs[column] = [key[n] for key in keys]
        jobs["segment"] = [index[segment] for _, segment in self.jobs.values()]
        body = {
            "version": VERSION,
            "schema": SCHEMA,
            "segments": self.segments,
            "jobs": jobs,
            "costs": self.costs,
        }
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def parse(cls, raw: bytes) -> Manifest | None:
        """The manifest in ``raw``; None if it is from another version or schema (so: rebuild)."""
        try:
            body = loads(raw)
            if body.get("version") != VERSION or body.get("schema") != SCHEMA:
                return None
            segments = {str(s): int(n) for s, n in body["segments"].items()}
            found = columns(body["jobs"], JOB_KINDS)
            if found is None:
                raise TypeError("its jobs are not columns of names and whole numbers, all as long")
            order = list(segments)
            if any(not 0 <= n < len(order) for n in found["segment"]):
                raise SnapshotError("the manifest serves a job from a segment it does not list")
            serving = [order[n] for n in found["segment"]]
            keys = zip(*(found[c] for c in JOB_KEY), strict=True)
            jobs = dict(zip(found["job"], zip(keys, serving, strict=True), strict=True))
            costs = {str(by): str(rows) for by, rows in body.get("costs", {}).items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SnapshotError(f"unreadable manifest: {exc}") from exc
        if not all(SEGMENT_NAME.fullmatch(name) for name in segments):  # only folders of its own
            raise SnapshotError("the manifest names a segment that is not one of ours")
        return cls(segments=segments, jobs=jobs, costs=costs)

    def copy(self) -> Manifest:
        """Another manifest with the same contents, to change (a parsed one is shared: see
        :meth:`Snapshot.manifest`)."""
        return Manifest(dict(self.segments), dict(self.jobs), dict(self.costs))

    def held(self) -> Held:
        """The finished folders it holds, and the segment serving each."""
        return Held.of((key[0], job, key[1], segment) for job, (key, segment) in self.jobs.items())

    def served(self) -> dict[str, list[str]]:
        """segment -> the jobs whose rows are read from it (a segment also holds rows of jobs that a
        newer segment serves since: those are left out on load)."""
        by_segment: dict[str, list[str]] = {segment: [] for segment in self.segments}
        for job, (_, segment) in self.jobs.items():
            by_segment.setdefault(segment, []).append(job)
        return by_segment


def folder_lines(folders: Iterable[tuple[str, str, int]]) -> list[str]:
    """Finished job folders (place, name, inode) as sorted ``place/name/inode`` lines (names are job ids):
    what :class:`Held` keeps, and a listing is compared with."""
    return sorted(f"{place}/{name}/{inode}" for place, name, inode in folders)


def held_digest(lines: list[str]) -> str:
    """One text for a set of :func:`folder_lines`: equal for the same set, and only for it."""
    return hashlib.blake2b("\n".join(lines).encode(), digest_size=16).hexdigest()


@dataclass
class Held:
    """The finished folders a manifest holds, as :func:`folder_lines`, and the segment serving each:
    ``.analytics/held-<name>.txt``. When a listing of the finished places no longer matches the
    rollup's digest, the lines tell which folders it holds are gone (deleted, archived, resumed, ended
    again) and which are new, and the segments where the gone ones' rows are, without parsing the
    manifest (``rollup._caught_up``).

    The file: a JSON line ``{"segments": [...], "serving": [index in segments, per line]}``, then the
    lines. It is named by the digest of the lines and the stamp of the manifest (:func:`_held_name`: the
    same folders are served by other segments after a save), and read only if its lines have that
    digest (a file torn or edited is not believed)."""

    lines: list[str]
    serving: list[str]  # the segment serving each line's job

    @classmethod
    def of(cls, folders: Iterable[tuple[str, str, int, str]]) -> Held:
        """From (place, name, inode, segment) of each folder held."""
        by_line = {f"{place}/{name}/{inode}": segment for place, name, inode, segment in folders}
        lines = sorted(by_line)
        return cls(lines, [by_line[line] for line in lines])

    @property
    def digest(self) -> str:
        return held_digest(self.lines)

    def to_bytes(self) -> bytes:
        order = list(dict.fromkeys(self.serving))
        index = {segment: n for n, segment in enumerate(order)}
        head = {"segments": order, "serving": [index[segment] for segment in self.serving]}
        return (json.dumps(head, separators=(",", ":")) + "\n" + "\n".join(self.lines)).encode()

    @classmethod
    def parse(cls, raw: bytes, digest: str) -> Held | None:
        """The folders in ``raw`` if their digest is ``digest`` and every segment is one of ours."""
        head_line, _, body = raw.partition(b"\n")
        if hashlib.blake2b(body, digest_size=16).hexdigest() != digest:
            return None
        try:
            head = loads(head_line)
            order = [str(segment) for segment in head["segments"]]
            if not all(type(n) is int and 0 <= n < len(order) for n in head["serving"]):
                return None
            serving = [order[n] for n in head["serving"]]
            lines = body.decode().split("\n") if body else []
        except (ValueError, KeyError, TypeError, IndexError, AttributeError):
            return None
        if len(serving) != len(lines) or not all(SEGMENT_NAME.fullmatch(name) for name in order):
            return None
        return cls(lines, serving)

    def compare(self, listed: set[str]) -> tuple[dict[str, str], set[str]]:
        """What differs from the folders ``listed`` (lines): job -> the segment serving it for each folder
        held that is not listed, and the listed ones not held."""
        held = set(self.lines)
        gone = {}
        for line in held - listed:
            gone[line.split("/")[1]] = self.serving[bisect.bisect_left(self.lines, line)]
        return gone, listed - held


@dataclass
class Rollup:
    """``.analytics/rollup.json``: the manifest's cost rows, and when they were last found to cover every
    finished job (each finished place's stamp and when it was listed, where ``runs.jsonl`` ended)."""

    places: dict[str, Any]  # place -> its (inode, mtime) when listed, or None when it did not exist
    listed_at: int
    runs: list[int]
    costs: dict[str, str]
    unheld: list[tuple[str, str]] = field(default_factory=list)  # (place, job): finished, not in the manifest
    held: str = ""  # the digest of the finished folders the rows are for (Held.digest)
    manifest: list[int] | None = None  # the stamp of the manifest they came from (Snapshot.stamp)
    # (job, segment serving it): held, no longer where it was held (deleted, moved, ended again): the
    # rows are for it still, and its calls, read from the segment, are taken off them
    gone: list[tuple[str, str]] = field(default_factory=list)
    folders: Held | None = field(default=None, compare=False, repr=False)  # what ``held`` digests, to keep

    def holds(self, data_dir: Path, runs: list[int]) -> bool:
        """No job came into or left a finished place since, and ``runs.jsonl`` is where it was."""
        from pop_nb.store import listing

        if runs != self.runs:
            return False
        for place, recorded in self.places.items():
            now = listing.stamp(data_dir / place)
            if not (now is None and recorded is None) and not listing.settled(now, recorded, self.listed_at):
                return False
        return True

    def to_bytes(self) -> bytes:
        """A header line, then one line per grouping (``<by> <rows' columns as JSON>``), so a reader
        parses the grouping asked for only (``--by job`` is a row per job)."""
        head = {"version": VERSION, "schema": SCHEMA, "places": self.places, "listed_at": self.listed_at}
        head |= {"runs": self.runs, "unheld": self.unheld, "held": self.held, "manifest": self.manifest}
        head["gone"] = self.gone
        lines = [json.dumps(head, separators=(",", ":"))]
        lines += [f"{by} {rows}" for by, rows in self.costs.items()]
        return ("\n".join(lines) + "\n").encode()

    @classmethod
    def parse(cls, raw: bytes) -> Rollup | None:
        try:
            head_line, *lines = raw.decode().splitlines()
            body = loads(head_line)
            if body.get("version") != VERSION or body.get("schema") != SCHEMA:
                return None
            places = {
                str(p): (list(map(int, m)) if m is not None else None) for p, m in body["places"].items()
            }
            runs = [int(n) for n in body["runs"]]
            costs = dict(line.split(" ", 1) for line in lines)
            unheld = [(str(place), str(job)) for place, job in body.get("unheld", [])]
            held, manifest = body.get("held"), body.get("manifest")
            gone = [(str(job), str(segment)) for job, segment in body.get("gone", [])]
            if not all(job and SEGMENT_NAME.fullmatch(segment) for job, segment in gone):
                return None  # a cache anyone could edit: it never names a file elsewhere
            return cls(
                places,
                int(body["listed_at"]),
                runs,
                costs,
                unheld,
                held if isinstance(held, str) else "",
                [int(n) for n in manifest] if isinstance(manifest, list) else None,
                gone,
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


class Snapshot:
    """The snapshot folder of one data folder; ``enabled`` turns False if it cannot be written."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir / FOLDER
        self.enabled = True

    # -- reading ------------------------------------------------------------------------------------
    def manifest(self) -> Manifest | None:
        """The manifest; parsed once per process while its file is the same one (every write replaces
        it: another inode). Shared: treat it as read-only (:meth:`Manifest.copy` to change it)."""
        path = self.dir / "manifest.json"
        try:
            with open(path, "rb") as fh:
                st = os.fstat(fh.fileno())
                stamp = _file_stamp(st)
                kept = _PARSED.get(str(path))
                if kept is not None and kept[0] == stamp:
                    return kept[1]
                raw = fh.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SnapshotError(f"cannot read {path}: {exc}") from exc
        manifest = Manifest.parse(raw)
        _PARSED[str(path)] = (stamp, manifest)
        return manifest

    def rollup(self) -> Rollup | None:
        """The kept cost rows (None when there are none, or they cannot be read: then the manifest)."""
        try:
            return Rollup.parse((self.dir / ROLLUP).read_bytes())
        except OSError:
            return None

    def keep_rollup(self, rollup: Rollup) -> None:
        """Keep the cost rows found to hold, and the folders they are for if that is new (a cache beside
        the snapshot: not fsynced, and not kept at all in a folder that cannot be written)."""
        if not self.dir.is_dir():
            return
        with contextlib.suppress(OSError):
            name = _held_name(rollup)
            if rollup.folders is not None and name is not None:
                self._keep_held(rollup.folders, name)
            atomic_write_bytes(self.dir / ROLLUP, rollup.to_bytes(), durable=False, make_parents=False)

    def _keep_held(self, held: Held, name: str) -> None:
        """Write ``held`` as ``name`` unless it is there, and delete the others (a reader that lost one
        checks the manifest instead)."""
        if not (self.dir / name).exists():
            atomic_write_bytes(self.dir / name, held.to_bytes(), durable=False, make_parents=False)
        for entry in os.scandir(self.dir):
            if entry.name != name and HELD_NAME.fullmatch(entry.name):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)

    def held(self, rollup: Rollup) -> Held | None:
        """The folders ``rollup``'s rows are for, as kept with them (None: not there, or not those)."""
        name = _held_name(rollup)
        if name is None:
            return None
        try:
            raw = (self.dir / name).read_bytes()
        except OSError:
            return None
        return Held.parse(raw, rollup.held)

    def stamp(self) -> list[int] | None:
        """Which manifest file is there now (see :func:`_file_stamp`), as :attr:`Rollup.manifest` keeps it."""
        try:
            return list(_file_stamp(os.stat(self.dir / "manifest.json")))
        except OSError:
            return None

    def file(self, segment: str, table: str) -> str:
        return str(self.dir / segment / f"{table}.parquet")

    def load(self, con: duckdb.DuckDBPyConnection, manifest: Manifest, skip: tuple[str, ...] = ()) -> None:
        """Insert the rows of every job the manifest serves into the tables but ``skip`` (in the
        caller's transaction). Segments holding only served jobs are read whole; others filtered."""
        import duckdb

        served = manifest.served()
        whole = [s for s in manifest.segments if len(served[s]) == manifest.segments[s]]
        partial = [s for s in manifest.segments if s not in whole and served[s]]
        for table in (t for t in JOB_TABLES if t not in skip):
            try:
                if whole:
                    con.execute(
                        f"INSERT INTO {table} SELECT * FROM read_parquet(?)", [self._files(whole, table)]
                    )
                for segment in partial:
                    con.execute(
                        f"INSERT INTO {table} SELECT * FROM read_parquet(?) WHERE job IN (SELECT unnest(?))",
                        [self._files([segment], table), served[segment]],
                    )
            except duckdb.Error as exc:
                raise SnapshotError(f"cannot read the snapshot's {table} in {self.dir}: {exc}") from exc

    def _files(self, segments: list[str], table: str) -> list[str]:
        return [literal_path(self.file(segment, table)) for segment in segments]

    # -- writing ------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[bool]:
        """Hold the writer's lock if it is free (True); another process writing now: False."""
        self.dir.mkdir(exist_ok=True)
        fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    def save(
        self, con: duckdb.DuckDBPyConnection, jobs: dict[str, Key], finished: Collection[str]
    ) -> Manifest | None:
        """Add ``jobs`` (finished, their rows in ``con``'s tables as of ``key``) to the snapshot, and
        leave out the jobs it holds that are no longer ``finished`` (deleted, or resumed): a manifest
        that names a job gone never matches the folders again (``rollup.finished_costs``).

        Returns the manifest written (or found already up to date); None when another process is
        writing (try again later) or the folder cannot be written (``enabled`` turns False)."""
        import duckdb

        try:
            with self._locked() as mine:
                if not mine:
                    return None
                return self._save(con, jobs, finished)
        except (OSError, duckdb.Error):  # a read-only data folder, a full disk: go on from the JSON files
            self.enabled = False
            return None

    def _save(
        self, con: duckdb.DuckDBPyConnection, jobs: dict[str, Key], finished: Collection[str]
    ) -> Manifest:
        try:
            manifest = self.manifest() or Manifest()
        except SnapshotError:
            manifest = Manifest()
        gone = [job for job in manifest.jobs if job not in finished]
        if gone:
            manifest = _without(manifest, gone)
        add = {
            job: key for job, key in jobs.items() if job not in manifest.jobs or manifest.jobs[job][0] != key
        }
        if not add:
            if gone:  # no rows to write: the manifest and its cost rows without them
                manifest.costs = _cost_rollup(con, list(manifest.jobs))
                self._publish(manifest)
                self._remove_obsolete(manifest)
            return manifest
        served = manifest.served()
        written = sum(manifest.segments.values()) + len(add)
        # rows no job is read from once ``add`` is written: their job is served by a newer segment
        outdated = written - len(add) - sum(len(j) for j in served.values())
        outdated += sum(1 for job in add if job in manifest.jobs)
        if outdated * 4 > written or len(manifest.segments) >= MAX_SEGMENTS:
            # Merge the newer segments (and the new jobs) into one; or everything, once they outgrow
            # the first segment or a quarter of the rows are outdated. Rows are so rewritten
            # O(log n) times, not at every save.
            base, *tail = manifest.segments
            in_tail = [job for segment in tail for job in served[segment]]
            if outdated * 4 > written or len(in_tail) + len(add) >= len(served[base]):
                manifest = self._write(con, dict(jobs), Manifest())
            else:
                merged = {job: jobs[job] for job in in_tail if jobs.get(job) == manifest.jobs[job][0]}
                kept = Manifest({base: manifest.segments[base]}, {j: manifest.jobs[j] for j in served[base]})
                manifest = self._write(con, {**merged, **add}, kept)
        else:
            manifest = self._write(con, add, manifest)
        self._remove_obsolete(manifest)
        return manifest

    def _write(self, con: duckdb.DuckDBPyConnection, jobs: dict[str, Key], manifest: Manifest) -> Manifest:
        segment = f"{time.time_ns():x}-{os.getpid()}"
        folder = self.dir / segment
        folder.mkdir()
        con.execute(
            "CREATE OR REPLACE TEMP TABLE snapshot_jobs AS SELECT unnest(?::VARCHAR[]) AS job", [list(jobs)]
        )
        for table in JOB_TABLES:
            path = folder / f"{table}.parquet"
            quoted = str(path).replace("'", "''")
            con.execute(
                f"COPY (SELECT * FROM {table} WHERE job IN (SELECT job FROM snapshot_jobs)) "
                f"TO '{quoted}' (FORMAT parquet)"
            )
            _fsync(path)
        _fsync(folder)
        con.execute("DROP TABLE snapshot_jobs")
        manifest = manifest.copy()  # the one given may be the shared parse of the file it replaces
        manifest.segments[segment] = len(jobs)
        manifest.jobs.update({job: (key, segment) for job, key in jobs.items()})
        manifest.costs = _cost_rollup(con, list(manifest.jobs))
        self._publish(manifest)
        return manifest

    def _publish(self, manifest: Manifest) -> None:
        """Replace the manifest with ``manifest``, and keep it as this process's parse of the new file
        (parsing 100,000 jobs back takes 0.2 s) unless redaction changed what was written."""
        raw = manifest.to_json()
        path = self.dir / "manifest.json"
        atomic_write_bytes(path, raw)
        if redact_bytes(raw) is raw:
            st = os.stat(path)  # ours still: every writer holds the lock
            _PARSED[str(path)] = (_file_stamp(st), manifest)

    def _remove_obsolete(self, manifest: Manifest) -> None:
        """Delete segments the manifest no longer names (merged, or left by a crash mid-save), once
        they are old enough that no reader can still be loading them."""
        cutoff = time.time() - KEEP_OBSOLETE_S
        live = set(manifest.segments)
        for entry in os.scandir(self.dir):
            if entry.is_dir() and entry.name not in live and entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry.path, ignore_errors=True)

    def drop(self) -> None:
        """Delete a snapshot that cannot be read, unless someone is writing it right now."""
        with contextlib.suppress(OSError), self._locked() as mine:
            if mine:
                for entry in os.scandir(self.dir):
                    if entry.name != "lock":
                        _remove(Path(entry.path))


def _without(manifest: Manifest, jobs: list[str]) -> Manifest:
    """A copy of ``manifest`` that no longer serves ``jobs`` (their rows stay in their segments, counted
    as outdated until a merge rewrites them); a segment left serving none leaves the manifest, and its
    folder is deleted later (:meth:`Snapshot._remove_obsolete`)."""
    kept = manifest.copy()
    for job in jobs:
        del kept.jobs[job]
    served = kept.served()
    kept.segments = {segment: n for segment, n in kept.segments.items() if served[segment]}
    return kept


def _cost_rollup(con: duckdb.DuckDBPyConnection, jobs: list[str]) -> dict[str, str]:
    """``pop costs --by <each grouping>`` over these jobs, as the CLI prints them: a new process asks
    the manifest instead of DuckDB while nothing has changed since (``rollup.finished_costs``)."""
    from pop_nb.analytics.cost_query import GROUPINGS, CostRows, costs_sql

    con.execute("CREATE OR REPLACE TEMP TABLE rollup_jobs AS SELECT unnest(?::VARCHAR[]) AS job", [jobs])
    rollup = {}
    for by in GROUPINGS:
        cursor = con.execute(costs_sql(by, "WHERE job IN (SELECT job FROM rollup_jobs)", rounded=False))
        names = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
        rollup[by] = CostRows({name: [row[i] for row in rows] for i, name in enumerate(names)}).to_json()
    con.execute("DROP TABLE rollup_jobs")
    return rollup


def _held_name(rollup: Rollup) -> str | None:
    """The file of the folders ``rollup``'s rows are for: named by their digest and the manifest they
    came from (the same folders have other segments in another manifest)."""
    if not rollup.held or rollup.manifest is None:
        return None
    made_of = json.dumps([rollup.held, rollup.manifest]).encode()
    return HELD.format(hashlib.blake2b(made_of, digest_size=16).hexdigest())


def _file_stamp(st: os.stat_result) -> tuple[int, int, int, int]:
    """Which manifest file this is: every write of ours replaces it (another inode); the size and the
    time tell one rewritten in place (by hand), unless it kept its size within the clock's tick."""
    return st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def describe(data_dir: Path) -> dict[str, Any]:
    """What the snapshot holds (for ``pop doctor``-like checks and tests)."""
    manifest = Snapshot(data_dir).manifest()
    if manifest is None:
        return {"segments": 0, "jobs": 0}
    return {"segments": len(manifest.segments), "jobs": len(manifest.jobs)}
