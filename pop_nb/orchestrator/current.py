"""What ``pop orchestrate`` sees of ``current/``: its jobs, listed again only when the folder changed, and
one look at a job under its ``runner.lock``: a runner has it, or its place in the queue (recoveries first,
then lost messages, then the oldest queued), or nothing to do. The daemon (:mod:`.daemon`) decides what to
start from these looks; a look parses a job's files again only when they were replaced.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pop_nb.config import PopSettings
from pop_nb.models.lifecycle import is_final
from pop_nb.models.records import Dispatch
from pop_nb.models.status import JobStatus
from pop_nb.orchestrator.executors import is_remote
from pop_nb.orchestrator.executors.base import lease_left_s, lease_over, this_host
from pop_nb.store import layout, listing
from pop_nb.store.jobs import JobFolder, JobStore
from pop_nb.store.locks import FileLock

RECOVER, RESEND, QUEUED = 0, 1, 2  # queue order: runners that died, messages lost, then the oldest queued
FRESH_S = 5.0  # a pending job this new may be about to get its runner from `pop run` / `pop approve`

Place = tuple[int, str]  # (RECOVER | RESEND | QUEUED, created_at): sorted, the order jobs start in
FileStamp = tuple[int, int, int]  # inode, mtime (ns), size: every write of ours makes a new file


@dataclass
class Look:
    """One look at a job under its lock. ``runner``: a runner holds the lock, on this machine (True)
    or elsewhere (False); else None, and ``place`` says where it queues (None: nothing to start) with
    ``lock`` held for it. ``open``: it is still to run or running (for ``--once``). ``rest_s``: a job
    waiting at a remote executor's queue, with this long left of its lease: nothing about it needs the
    daemon before then, short of a worker taking it and dying (seen at the next full look)."""

    open: bool
    runner: bool | None = None
    place: Place | None = None
    lock: FileLock | None = None
    rest_s: float | None = None


class CurrentJobs:
    """The daemon's view of current/. ``claimed``: the jobs this daemon made (started at once, without
    waiting :data:`FRESH_S` for a ``pop run`` that may be about to take them); shared with the daemon."""

    def __init__(self, store: JobStore, settings: PopSettings, claimed: set[str]) -> None:
        self.store = store
        self.settings = settings
        self.claimed = claimed
        # job -> (stamps of its status and dispatch files, what they held): see read
        self._seen: dict[str, tuple[tuple[FileStamp | None, ...], JobStatus, Dispatch | None]] = {}
        # current/'s jobs at the last listing: (the folder's stamp then, when, the jobs by id)
        self._listing: tuple[listing.Stamp | None, int, dict[str, JobFolder]] = (None, 0, {})

    def jobs(self) -> tuple[dict[str, JobFolder], bool]:
        """The jobs in current/ by id, as :meth:`JobStore.jobs` finds them, and whether that changed
        since the last call. For the price of a stat when none came or went (the listing is kept while
        the folder's stamp holds: :mod:`pop_nb.store.listing`), else of listing names: a folder met
        before is not looked into again, a new one counts once its seed is there (until then it is
        being made). What was read of a job that left is forgotten."""
        place = self.store.dir("current")
        now = listing.stamp(place)
        kept_stamp, kept_at, kept = self._listing
        if listing.settled(now, kept_stamp, kept_at):
            return kept, False
        listed_at = time.time_ns()
        names = [entry.name for entry in listing.job_entries(place)]
        folders, whole = {}, True
        for name in names:
            folder = kept.get(name)
            if folder is None:
                folder = JobFolder(place / name)
                if not (folder.path / layout.SEED).exists():
                    whole = False
                    continue
            folders[name] = folder
        self._listing = (now if whole else None, listed_at, folders)
        if folders.keys() == kept.keys():
            return folders, False
        self._seen = {job: seen for job, seen in self._seen.items() if job in folders}
        return folders, True

    def look(self, folder: JobFolder) -> Look | None:
        """One look at a job, under its lock; None if it moved on meanwhile. A job whose files are being
        written for the first time is open, with no place: the next wake looks again."""
        lock = FileLock(folder.runner_lock)
        try:
            taken = lock.acquire()
        except FileNotFoundError:
            return None
        if not taken:
            return Look(open=True, runner=_runs_here(folder))
        try:
            status, dispatch = self.read(folder)
        except (OSError, ValueError):
            lock.release()
            return Look(open=True)
        is_open = status.state in ("pending", "running")
        place = self._runnable(folder, status, dispatch)
        if place is not None:
            return Look(open=is_open, place=place, lock=lock)
        lock.release()
        if status.state == "pending" and dispatch is not None and is_remote(dispatch.executor):
            return Look(open=True, rest_s=lease_left_s(dispatch, self.settings.dispatch_lease_s))
        return Look(open=is_open)

    def dispatch(self, job_id: str) -> Dispatch | None:
        """The dispatch record of a job looked at (where it was sent to run, if anywhere)."""
        seen = self._seen.get(job_id)
        return seen[2] if seen is not None else None

    def read(self, folder: JobFolder) -> tuple[JobStatus, Dispatch | None]:
        """The job's status and dispatch record, parsed again only when either file was replaced (every
        write is a new file: :func:`~pop_nb.store.atomic.atomic_write_bytes`). Treat them as read-only."""
        stamp = (_stamp(folder.status_file), _stamp(folder.dispatch_file))
        seen = self._seen.get(folder.job_id)
        if seen is not None and seen[0] == stamp:
            return seen[1], seen[2]
        status, dispatch = folder.read_status(), folder.read_dispatch()
        self._seen[folder.job_id] = (stamp, status, dispatch)
        return status, dispatch

    def _runnable(self, folder: JobFolder, status: JobStatus, dispatch: Dispatch | None) -> Place | None:
        """Under the job's lock: its place in the queue, or None."""
        if is_final(status.state):  # the runner died between status and move
            self.store.close(folder, status.model_copy(deep=True))
            return None
        if status.state == "waiting":
            return None
        if dispatch is not None and is_remote(dispatch.executor):
            # Its executor runs it. If its runner died on a worker (running, no lock) we take it up now, back
            # to the same executor, rather than wait for the broker's visibility timeout; if no worker took
            # it within its lease (the broker lost the message), we send it again.
            if status.state == "running":
                return (RECOVER, status.created_at)
            if status.state == "pending" and lease_over(dispatch, self.settings.dispatch_lease_s):
                return (RESEND, status.created_at)
            return None
        if status.state == "running":  # and nobody holds its lock: the runner died
            return (RECOVER, status.created_at)
        if folder.job_id not in self.claimed and _age_s(status.updated_at) < FRESH_S:
            return None
        return (QUEUED, status.created_at)


def _stamp(path: Path) -> FileStamp | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _runs_here(folder: JobFolder) -> bool:
    """Its runner is on this machine (a job just claimed has no runner.json yet: it is starting here)."""
    from pop_nb.store.atomic import read_json

    try:
        return bool(read_json(folder.runner_file).get("host", this_host()) == this_host())
    except (OSError, ValueError, AttributeError):
        return True


def _age_s(iso: str) -> float:
    try:
        then = datetime.fromisoformat(iso)
    except ValueError:
        return float("inf")
    return (datetime.now(UTC) - then).total_seconds()
