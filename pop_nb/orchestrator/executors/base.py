"""The executor seam: an :class:`Executor` takes a job that exists in ``current/`` and sees that a runner
runs it, here or elsewhere; the :class:`JobHandle` it returns says alive, waits and cancels.

Whatever the executor, a job's truth stays in its folder: a runner holds ``runner.lock`` while it runs
(so liveness is the lock, on whichever machine shares the folder), the status file says how far it got,
and the folder's move out of ``current/`` says it ended. An executor only decides *where* the runner
starts; ``dispatch.json`` records that choice, so that whoever finds the job unattended later (the
daemon, a batch) knows whether to look after it or to leave it to that executor.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar, Protocol

from pop_nb.config import PopSettings
from pop_nb.models.records import Dispatch, Event
from pop_nb.store.atomic import atomic_write_json
from pop_nb.store.jobs import JobFolder, JobStore

if TYPE_CHECKING:
    from pop_nb.store.locks import FileLock

FINAL_STATES = ("done", "failed", "cancelled")


def this_host() -> str:
    return os.uname().nodename


class RunnerProcess(Protocol):
    """A runner this process started: a ``Popen``, or a ``ForkedProcess`` (forked by the kernel server)."""

    pid: int
    returncode: int | None

    def poll(self) -> int | None: ...
    def wait(self, timeout: float | None = None) -> int: ...
    def kill(self) -> None: ...


class JobHandle:
    """A job given to an executor. ``process``: the runner, when this process started it."""

    def __init__(
        self,
        settings: PopSettings,
        job_id: str,
        executor: str,
        *,
        process: RunnerProcess | None = None,
        ticket: str | None = None,
    ) -> None:
        self.settings = settings
        self.job_id = job_id
        self.executor = executor
        self.process = process
        self.ticket = ticket

    def __repr__(self) -> str:
        how = f"pid {self.process.pid}" if self.process else f"ticket {self.ticket}"
        return f"<JobHandle {self.job_id} on {self.executor}, {how}>"

    def _folder(self) -> JobFolder | None:
        return JobStore(self.settings.data).find(self.job_id)

    def running(self) -> bool:
        """A runner holds the job right now (on any machine sharing the data folder)."""
        folder = self._folder()
        return folder is not None and folder.has_runner()

    def ended(self) -> bool:
        """Nothing more will happen without someone acting: the runner we started exited, or the job
        left ``current/``, or it waits at a gate with no runner. A job whose remote runner died is not
        ended: its executor gives it to another runner."""
        if self.process is not None:
            return self.process.poll() is not None
        folder = self._folder()
        if folder is None or folder.place != "current":
            return True
        try:
            state = folder.read_status().state
        except (OSError, ValueError):  # being rewritten, or the folder just moved
            return False
        return state in (*FINAL_STATES, "waiting") and not folder.has_runner()

    def wait(self, timeout: float | None = None, poll_s: float = 0.2) -> bool:
        """Block until :meth:`ended` (True) or ``timeout`` seconds pass (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.ended():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            if self.process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(poll_s)
            else:
                time.sleep(poll_s)
        return True

    def cancel(self, grace_s: float = 10.0) -> bool:
        from pop_nb.jobs import cancel_job

        return cancel_job(self.settings, self.job_id, grace_s)


class Executor(ABC):
    """Where runners run. Subclasses set :attr:`name` and implement :meth:`submit`; they are found by
    name in the ``pop_nb.executors`` entry point group (see :mod:`pop_nb.orchestrator.executors`)."""

    name: ClassVar[str]
    remote: ClassVar[bool] = False  # its runners may run on other machines (cancel by request file)

    def __init__(self, settings: PopSettings) -> None:
        self.settings = settings

    def check(self) -> None:  # noqa: B027 (a hook: an executor with nothing to check keeps this)
        """Raise :class:`~pop_nb.errors.ExecutorError` if jobs cannot be dispatched now (a broker that
        does not answer); called before a batch dispatches anything."""

    @abstractmethod
    def submit(self, job_id: str, *, lock: FileLock | None = None) -> JobHandle:
        """See that a runner runs ``job_id`` (in ``current/``). ``lock``: its ``runner.lock``, already
        taken by the caller (who decided under it that the job should run); the executor hands it to the
        runner or releases it. Raises :class:`~pop_nb.errors.JobStateError` if a runner has the job."""

    def prepare(self) -> None:  # noqa: B027 (a hook: an executor with nothing to start ahead keeps this)
        """Start ahead what the next :meth:`submit` needs, and again after each (a long-lived caller, the
        daemon, calls this once; a one-off ``pop run`` does not)."""

    def handle(self, job_id: str) -> JobHandle:
        """A handle on a job submitted earlier (by this process or another)."""
        return JobHandle(self.settings, job_id, self.name)

    def close(self) -> None:  # noqa: B027 (a hook: an executor holding no connection keeps this)
        """Let go of connections (a broker's); the executor is not used after this."""

    def record(self, folder: JobFolder, queue: str | None = None, ticket: str | None = None) -> None:
        """Write ``dispatch.json`` and a ``dispatched`` event: the job now belongs to this executor."""
        atomic_write_json(
            folder.dispatch_file, Dispatch(executor=self.name, queue=queue, ticket=ticket, by=this_host())
        )
        where = self.name + (f" queue {queue}" if queue else "")
        folder.append_event(Event(job=folder.job_id, kind="job", status="dispatched", message=where))
