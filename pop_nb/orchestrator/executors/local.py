"""The ``local`` executor: the runner is a child process of this one, in its own session."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping

from pop_nb.config import PopSettings
from pop_nb.errors import JobStateError
from pop_nb.orchestrator.executors.base import Executor, JobHandle
from pop_nb.store.jobs import JobStore
from pop_nb.store.locks import FileLock

# what a runner (and the stage kernels it starts) is not given: the broker's URL, which may hold a password
RUNNER_NEEDS_NOT = frozenset({"POP_BROKER_URL"})
LOCK_PATIENCE_S = 2.0  # a daemon holds a job's lock only for a moment when it does not start it


def claim(settings: PopSettings, job_id: str, lock: FileLock | None = None) -> FileLock:
    """The job's ``runner.lock``, taken (or ``lock``, already taken by the caller). Raises
    :class:`JobStateError` if a runner has it."""
    folder = JobStore(settings.data).get(job_id)
    lock = lock or FileLock(folder.runner_lock)
    deadline = time.monotonic() + LOCK_PATIENCE_S
    while not lock.acquire() and time.monotonic() < deadline:  # a daemon may be looking at the job
        time.sleep(0.02)
    if not lock.held:
        raise JobStateError(f"job {job_id} already has a runner. Fix: wait for it, or `pop cancel {job_id}`.")
    return lock


def spawn_runner(
    settings: PopSettings, job_id: str, lock: FileLock, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start the runner process for ``job_id`` in its own session (process group), handing it ``lock``
    (the job's ``runner.lock``, taken with :func:`claim`): from the claim until the runner exits there
    is no moment when a second runner (another daemon, a ``pop resume``, a Celery worker) could take the
    job. The runner's own output (not the notebooks', which go to stage logs) lands in
    ``<job>/runner.log``. ``env``: extra variables for the runner (``POP_WORKER``).
    """
    folder = JobStore(settings.data).get(job_id)
    full_env = {
        **{k: v for k, v in os.environ.items() if k not in RUNNER_NEEDS_NOT},
        **(env or {}),
        "POP_ROOT": str(settings.root),
        "POP_DATA_DIR": str(settings.data),
    }
    fd = lock.hand_over()
    try:
        with open(folder.path / "runner.log", "ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "pop_nb.execution.runner_main", job_id, "--lock-fd", str(fd)],
                env=full_env,
                cwd=str(settings.root),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                pass_fds=(fd,),
            )
    except BaseException:
        lock.release()
        raise
    finally:
        lock.forget()


class LocalExecutor(Executor):
    """Runners are child processes on this machine (the default)."""

    name = "local"

    def submit(self, job_id: str, *, lock: FileLock | None = None) -> JobHandle:
        lock = claim(self.settings, job_id, lock)
        try:
            self.record(JobStore(self.settings.data).get(job_id))
        except BaseException:
            lock.release()
            raise
        process = spawn_runner(self.settings, job_id, lock)
        return JobHandle(self.settings, job_id, self.name, process=process)
