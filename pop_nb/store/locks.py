"""Advisory file locks (``flock``) that the operating system releases when their holder dies.

A job's runner holds ``<job>/runner.lock`` for as long as it runs: that lock, not a pid that may have
been reused, is how anyone tells whether a job has a live runner, and it is what keeps two runners
(two daemons, or a daemon and ``pop resume``) from ever running one job at once.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class FileLock:
    """An exclusive, non-blocking ``flock``; held until :meth:`release` or the process ends."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock if it is free; ``False`` if another open file (any process) holds it.

        Its folder must exist (``FileNotFoundError`` otherwise): a job folder that has just moved away
        must not be brought back to life as an empty folder holding a lock file.
        """
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    @classmethod
    def inherited(cls, path: Path, fd: int) -> FileLock:
        """The lock a parent took and handed down as ``fd`` (the same open file, so the same lock)."""
        lock = cls(path)
        lock._fd = fd
        return lock

    def hand_over(self) -> int:
        """The descriptor to pass to a child process (``pass_fds``); call :meth:`forget` after spawning."""
        assert self._fd is not None, "take the lock first"
        return self._fd

    def forget(self) -> None:
        """Close our descriptor without unlocking: a child holding the same open file keeps the lock."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None


def is_locked(path: Path) -> bool:
    """True if some process holds the lock at ``path`` (checked by trying to take it)."""
    probe = FileLock(path)
    try:
        if probe.acquire():
            probe.release()
            return False
    except FileNotFoundError:  # no such job folder (any more): nobody runs it there
        return False
    return True
