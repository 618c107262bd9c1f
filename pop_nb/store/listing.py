"""When a folder's listing can be reused without listing it again: the one rule for every cache of the
finished places (the job index, the analytics tables and their snapshot's cost rollup).

Adding, removing or renaming an entry changes a folder's mtime. A listing taken when the folder had
stamp (inode, mtime) still holds while the stamp is the same, provided that mtime was already a tick of
the file system's clock old when the listing was taken: a change made in the same tick as the listing
leaves the mtime as it was. An mtime in whole seconds may come from a clock of a second or two (FAT,
HFS+, some NFS servers): :data:`SETTLE_NS`. One with a fraction of a second comes from a clock that ticks
in milliseconds at most (ext4, XFS, btrfs, tmpfs: a jiffy, 4-10 ms; exFAT: 10 ms): :data:`FINE_SETTLE_NS`,
so a listing taken a moment after a job ended is kept, not taken again at every call for two seconds.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pop_nb.models.ids import JOB_ID_RE
from pop_nb.safejson import loads

SETTLE_NS = 2_000_000_000
FINE_SETTLE_NS = 100_000_000

Stamp = tuple[int, int]  # inode, mtime (ns)


def stamp(folder: Path | str) -> Stamp | None:
    """The folder's (inode, mtime); None when it does not exist."""
    try:
        st = os.stat(folder)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


def settled(now: Stamp | None, recorded: Any, listed_at_ns: int) -> bool:
    """Whether a listing taken at ``listed_at_ns``, of a folder then stamped ``recorded``, still holds
    for the folder stamped ``now`` (``recorded`` may come from a file: anything else is "no")."""
    if now is None or not isinstance(recorded, (list, tuple)) or tuple(recorded) != now:
        return False
    tick = SETTLE_NS if now[1] % 1_000_000_000 == 0 else FINE_SETTLE_NS
    return now[1] < listed_at_ns - tick


def file_mark(path: Path | str) -> list[int]:
    """Where an append-only file is now: [inode, size] ([0, 0] when there is none). A file that only
    grew keeps its inode and has a larger size."""
    try:
        st = os.stat(path)
    except OSError:
        return [0, 0]
    return [st.st_ino, st.st_size]


def job_entries(place: Path | str) -> Iterator[os.DirEntry[str]]:
    """The job folders of a place as its listing gives them, without a ``stat``: directories (not a
    symlink: nothing is read elsewhere) named as a job id is (not a stray ``x.old-<pid>`` left by a move,
    nor a name in no encoding). Nothing when the place does not exist."""
    try:
        with os.scandir(place) as found:
            for entry in found:
                if JOB_ID_RE.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False):
                    yield entry
    except FileNotFoundError:
        return


def ended_since(runs: Path | str, before: Any, now: list[int]) -> tuple[set[str] | None, list[int]]:
    """The jobs named by the whole lines the ``runs.jsonl`` at ``runs`` gained from mark ``before`` to
    mark ``now`` (:func:`file_mark`), and the mark after them (a line being written is left for next
    time). None for the jobs when they cannot be told (the log was replaced or cut, or ``before`` is not
    a mark: it may come from a file), so whoever asked reads every job again."""
    if before == [0, 0] or (
        isinstance(before, list)
        and len(before) == 2
        and before[0] == now[0]
        and 0 <= as_int(before[1]) <= now[1]
    ):
        start = as_int(before[1])  # 0 for anything but a whole number: then every line is read
    else:
        return None, now
    if start == now[1]:
        return set(), now
    try:
        with open(runs, "rb") as fh:
            fh.seek(start)
            tail = fh.read(now[1] - start)
    except OSError:
        return None, now
    whole = tail[: tail.rfind(b"\n") + 1]
    jobs = set()
    for line in whole.splitlines():
        try:
            job = loads(line).get("job")
        except (ValueError, AttributeError):
            continue
        if isinstance(job, str):
            jobs.add(job)
    return jobs, [now[0], start + len(whole)]


def as_int(value: Any) -> int:
    """An int as a cache file wrote it; 0 for anything else (a hand-edited or foreign file: then nothing
    in it is trusted)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
