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
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar, Protocol

from pop_nb.config import PopSettings
from pop_nb.models.lifecycle import is_settled
from pop_nb.models.records import Dispatch, Event
from pop_nb.store.atomic import atomic_write_json
from pop_nb.store.jobs import JobFolder, JobStore

if TYPE_CHECKING:
    from pop_nb.store.locks import FileLock


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
        return is_settled(state) and not folder.has_runner()

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
    def submit(self, job_id: str, *, lock: FileLock | None = None, sends: int = 1) -> JobHandle:
        """See that a runner runs ``job_id`` (in ``current/``). ``lock``: its ``runner.lock``, already
        taken by the caller (who decided under it that the job should run); the executor hands it to the
        runner or releases it. ``sends``: the how-manieth time this run is sent (see :func:`resend`).
        Raises :class:`~pop_nb.errors.JobStateError` if a runner has the job."""

    def workers(self) -> list[str] | None:
        """Who can take jobs now, if the executor can tell (a queue's live workers); None if it cannot."""
        return None

    def prepare(self) -> None:  # noqa: B027 (a hook: an executor with nothing to start ahead keeps this)
        """Start ahead what the next :meth:`submit` needs, and again after each (a long-lived caller, the
        daemon, calls this once; a one-off ``pop run`` does not)."""

    def start_early(self) -> None:  # noqa: B027 (a hook: an executor with nothing slow to start keeps this)
        """Start, without waiting, what the next :meth:`submit` will need and is slow to start (a one-off
        ``pop run`` calls this before it compiles the pipeline, so that the two overlap)."""

    def handle(self, job_id: str) -> JobHandle:
        """A handle on a job submitted earlier (by this process or another)."""
        return JobHandle(self.settings, job_id, self.name)

    def close(self) -> None:  # noqa: B027 (a hook: an executor holding no connection keeps this)
        """Let go of connections (a broker's); the executor is not used after this."""

    def record(
        self, folder: JobFolder, queue: str | None = None, ticket: str | None = None, sends: int = 1
    ) -> None:
        """Write ``dispatch.json`` and a ``dispatched`` event: the job now belongs to this executor."""
        atomic_write_json(
            folder.dispatch_file,
            Dispatch(executor=self.name, queue=queue, ticket=ticket, by=this_host(), sends=sends),
        )
        where = self.name + (f" queue {queue}" if queue else "")
        folder.append_event(Event(job=folder.job_id, kind="job", status="dispatched", message=where))


def lease_over(dispatch: Dispatch | None, lease_s: float, now: datetime | None = None) -> bool:
    """A job sent to a queue (a remote executor) has waited past its lease untaken: ``lease_s`` after its
    first send, then twice as long after each later one (a long queue is not flooded with copies).
    Meaningful only for a job still ``pending`` with nobody holding its lock."""
    return lease_left_s(dispatch, lease_s, now) < 0


def lease_left_s(dispatch: Dispatch | None, lease_s: float, now: datetime | None = None) -> float:
    """How long a job sent to a queue has left of its lease (see :func:`lease_over`): negative once it is
    over; infinite for a job not sent to a queue."""
    from pop_nb.orchestrator.executors import is_remote

    if dispatch is None or not is_remote(dispatch.executor):
        return float("inf")
    try:
        sent = datetime.fromisoformat(dispatch.at)
    except ValueError:
        return -1.0
    waited = ((now or datetime.now(UTC)) - sent).total_seconds()
    return float(lease_s * 2 ** (dispatch.sends - 1) - waited)


def resend(executor: Executor, folder: JobFolder, lock: FileLock, dispatch: Dispatch) -> JobHandle:
    """Send again a job that no worker took within its lease (the broker lost the message: a Redis
    without persistence restarted). ``lock``: the job's, taken by the caller, who found it ``pending``
    under it. A late copy of the lost message finds the lock taken, or the job moved on, and does nothing:
    the lock, not the broker, keeps the job run once."""
    folder.append_event(
        Event(
            job=folder.job_id,
            kind="job",
            status="resent",
            message=f"no worker took it from {dispatch.queue or executor.name} since {dispatch.at} "
            f"(send {dispatch.sends}); sent again",
        )
    )
    return executor.submit(folder.job_id, lock=lock, sends=dispatch.sends + 1)
