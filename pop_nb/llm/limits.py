"""``max_concurrent_calls``: at most N calls in flight per provider across all of a job's kernels.

Slots are lock files (``llm/slots/<provider>.<i>.lock``) held with ``flock``: the kernel holding one may
crash, and the operating system frees its slot with it, so no slot is ever leaked.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

POLL_S = 0.02


@contextmanager
def call_slot(folder: Path | None, provider: str, limit: int | None) -> Iterator[None]:
    """Hold one of ``limit`` slots for ``provider`` while the body runs (no limit: no wait)."""
    if folder is None or not limit or limit <= 0:
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    fd = _acquire(folder, provider, limit)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _acquire(folder: Path, provider: str, limit: int) -> int:
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in provider)
    while True:
        for i in range(limit):
            fd = os.open(folder / f"{safe}.{i}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                os.close(fd)
        time.sleep(POLL_S)
