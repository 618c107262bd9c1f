"""The ``local`` executor: the runner is a child process of this one, in its own session."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping

from pop_nb.config import PopSettings
from pop_nb.errors import JobStateError
from pop_nb.orchestrator.executors.base import Executor, JobHandle, RunnerProcess
from pop_nb.store.jobs import JobFolder, JobStore
from pop_nb.store.locks import FileLock

# what a runner (and the stage kernels it starts) is not given: the broker's URL, which may hold a password
RUNNER_NEEDS_NOT = frozenset({"POP_BROKER_URL"})
LOCK_PATIENCE_S = 2.0  # a daemon holds a job's lock only for a moment when it does not start it
FORK_WAIT_S = 120.0  # a kernel server still preloading (litellm: seconds) is worth waiting for


def claim(settings: PopSettings, job_id: str, lock: FileLock | None = None) -> FileLock:
    """The job's ``runner.lock``, taken (or ``lock``, already taken by the caller). Raises
    :class:`JobStateError` if a runner has it."""
    store = JobStore(settings.data)
    folder = store.get(job_id)
    lock = lock or FileLock(folder.runner_lock)
    deadline = time.monotonic() + LOCK_PATIENCE_S
    try:
        while not lock.acquire() and time.monotonic() < deadline:  # a daemon may be looking at the job
            time.sleep(0.02)
    except FileNotFoundError:  # it left current/ meanwhile: another runner took it, and it ended
        moved = store.find(job_id)
        raise JobStateError(
            f"job {job_id} was run by another runner meanwhile (a daemon's?); it is now in "
            f"{moved.place if moved else '?'}/. Fix: `pop status {job_id}`"
        ) from None
    if not lock.held:
        raise JobStateError(f"job {job_id} already has a runner. Fix: wait for it, or `pop cancel {job_id}`.")
    return lock


def runner_env(settings: PopSettings, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """A runner's environment: ours without what it needs not, plus ``env`` and where the project is."""
    return {
        **{k: v for k, v in os.environ.items() if k not in RUNNER_NEEDS_NOT},
        **(env or {}),
        "POP_ROOT": str(settings.root),
        "POP_DATA_DIR": str(settings.data),
    }


def forks_runners(settings: PopSettings) -> bool:
    """Runners are forked from the kernel server (as stage kernels are), unless kernels are spawned."""
    from pop_nb.execution.forkserver import fork_supported

    return settings.kernel_start == "fork" and fork_supported()


def start_runner(
    settings: PopSettings, job_id: str, lock: FileLock, env: Mapping[str, str] | None = None
) -> RunnerProcess | None:
    """Start the runner process for ``job_id`` in its own session (process group), handing it ``lock``
    (the job's ``runner.lock``, taken with :func:`claim`): from the claim until the runner exits there
    is no moment when a second runner (another daemon, a ``pop resume``, a Celery worker) could take the
    job. The runner's own output (not the notebooks', which go to stage logs) lands in
    ``<job>/runner.log``. ``env``: extra variables for the runner (``POP_WORKER``).

    The runner is forked from the preloaded kernel server when kernels are (its imports done: a job
    starts in milliseconds, not an interpreter's second), else spawned; a server that cannot be had
    (a folder that is not private, say) means spawned, with the reason in ``runner.log``. None: a
    runner was forked but its pid was lost with the server's answer (it runs; follow it by its lock).
    """
    from pop_nb.execution.forkserver import AnswerLost, ForkServerError, shared_server

    folder = JobStore(settings.data).get(job_id)
    try:
        with open(folder.runner_log, "ab") as log:
            if forks_runners(settings):
                try:
                    server = shared_server(settings.kernel_preload, settings.kernel_server_idle_s)
                    return server.launch_runner(
                        job_id,
                        str(settings.root),
                        runner_env(settings, env),
                        log.fileno(),
                        lock.hand_over(),
                        FORK_WAIT_S,
                    )
                except AnswerLost:
                    # The server had the request but its answer never came. A runner it forked has the
                    # lock (the same open file): then the job is running, and spawning would run it twice.
                    lock.forget()
                    try:
                        if not lock.acquire():
                            return None
                    except FileNotFoundError:  # it ran already, and moved the job on
                        return None
                except (ForkServerError, OSError) as exc:
                    log.write(f"pop-nb: runner spawned, not forked: {exc}\n".encode())
                    log.flush()
            fd = lock.hand_over()
            return subprocess.Popen(
                [sys.executable, "-m", "pop_nb.execution.runner_main", job_id, "--lock-fd", str(fd)],
                env=runner_env(settings, env),
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


class StandbyRunner:
    """A runner process started ahead of its job, its imports done and the kernel server warm, waiting
    on a socket for a job id, the job's lock and its ``runner.log`` (passed as descriptors). A job given
    to it starts in milliseconds instead of an interpreter's start-up. It exits if we go away."""

    def __init__(self, settings: PopSettings) -> None:
        self.channel, theirs = socket.socketpair()
        with theirs:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pop_nb.execution.runner_main", "--standby", str(theirs.fileno())],
                env=runner_env(settings),
                cwd=str(settings.root),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # until it has a job: then its runner.log
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                pass_fds=(theirs.fileno(),),
            )

    def take(self, folder: JobFolder, lock: FileLock) -> subprocess.Popen[bytes] | None:
        """Give it the job (and ``lock``, which it then holds); None if it is gone (the caller spawns)."""
        if self.process.poll() is not None:
            return None
        try:
            with open(folder.runner_log, "ab") as log:
                message = json.dumps({"job": folder.job_id}).encode()
                socket.send_fds(self.channel, [message], [lock.hand_over(), log.fileno()])
        except OSError:
            return None
        finally:
            self.channel.close()
        lock.forget()
        return self.process

    def stop(self) -> None:
        self.channel.close()  # it exits on its own when the channel closes
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class LocalExecutor(Executor):
    """Runners are child processes on this machine (the default)."""

    name = "local"

    def __init__(self, settings: PopSettings) -> None:
        super().__init__(settings)
        self._standby: StandbyRunner | None = None
        self._keep_one = False

    def prepare(self) -> None:
        """Have the next runner start at once from now on: the kernel server started (runners are
        forked from it), or, where runners are spawned, one :class:`StandbyRunner` kept waiting."""
        self._keep_one = True
        if forks_runners(self.settings):
            self.start_early()
            return
        if self._standby is None or self._standby.process.poll() is not None:
            self._standby = StandbyRunner(self.settings)

    def start_early(self) -> None:
        """The kernel server starting (runners and kernels are forked from it; its imports take seconds
        when it is not up), where runners are forked. A seed then found bad leaves it idle: it ends after
        ``kernel_server_idle_s``."""
        if forks_runners(self.settings):
            from pop_nb.execution.forkserver import ForkServerError, shared_server

            with contextlib.suppress(ForkServerError, OSError):  # the runner will say why, in its log
                shared_server(self.settings.kernel_preload, self.settings.kernel_server_idle_s)

    def submit(self, job_id: str, *, lock: FileLock | None = None, sends: int = 1) -> JobHandle:
        lock = claim(self.settings, job_id, lock)
        folder = JobStore(self.settings.data).get(job_id)
        try:
            self.record(folder)
        except BaseException:
            lock.release()
            raise
        process: RunnerProcess | None = None
        if self._standby is not None:
            standby, self._standby = self._standby, None
            process = standby.take(folder, lock)
        if process is None:
            process = start_runner(self.settings, job_id, lock)
        if self._keep_one:
            self.prepare()
        return JobHandle(self.settings, job_id, self.name, process=process)

    def close(self) -> None:
        if self._standby is not None:
            self._standby.stop()
            self._standby = None
