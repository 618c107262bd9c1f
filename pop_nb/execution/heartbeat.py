"""A runner's heartbeat: ``runner.json`` (who runs the job, where, since when, and that it is still
alive), rewritten every ``HEARTBEAT_S``; and, every ``CANCEL_POLL_S``, a look for ``cancel.request``
(a cancel from another machine, which cannot signal this process)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from pop_nb.models.status import now_iso
from pop_nb.store.atomic import atomic_write_json
from pop_nb.store.jobs import CANCEL_POLL_S, HEARTBEAT_S, JobFolder


class Heartbeat:
    def __init__(
        self,
        job: JobFolder,
        lock: threading.RLock,
        ended: threading.Event,
        cancelled: threading.Event,
        cancel: Callable[[], None],
    ) -> None:
        self.job = job
        self.lock = lock  # the runner's: runner.json is not written while the folder moves
        self.ended = ended  # set when the job ends: no beat after it
        self.cancelled = cancelled  # set once the runner is cancelling, however it was asked
        self.cancel = cancel
        self.started_at = now_iso()

    def start(self) -> None:
        """Beat now, then on a thread of its own until ``ended``."""
        self.beat()
        threading.Thread(target=self._run, daemon=True, name="pop-heartbeat").start()

    def _run(self) -> None:
        last = time.monotonic()
        while not self.ended.wait(CANCEL_POLL_S):
            if not self.cancelled.is_set() and self.job.cancel_file.exists():
                self.cancel()
            if time.monotonic() - last >= HEARTBEAT_S:
                last = time.monotonic()
                with self.lock:
                    if self.job.path.exists():
                        self.beat()

    def beat(self) -> None:
        atomic_write_json(
            self.job.runner_file,
            {
                "pid": os.getpid(),
                "pgid": os.getpgid(0),
                "host": os.uname().nodename,
                "worker": os.environ.get("POP_WORKER"),
                "started_at": self.started_at,
                "heartbeat_at": now_iso(),
            },
            durable=False,
        )
