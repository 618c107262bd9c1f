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
from pathlib import Path
from typing import Any

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
