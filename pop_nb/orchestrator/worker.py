"""``pop worker``: a Celery worker that runs the jobs of the celery executor on this machine."""

from __future__ import annotations

import os
import sys

from pop_nb.config import PopSettings
from pop_nb.errors import ExecutorError


def check_data_folder(settings: PopSettings) -> str:
    """The id of the data folder this worker serves; raises :class:`ExecutorError` if the folder is not
    there or not writable, since a worker runs jobs in the folder its dispatchers share."""
    from pop_nb.orchestrator.celery_app import data_id

    current = settings.data / "current"
    if not current.is_dir():
        raise ExecutorError(
            f"pop worker: cannot see the data folder {settings.data} (it has no current/). A worker runs "
            "jobs in the folder its dispatchers share. Fix: mount that folder here and set POP_DATA_DIR "
            "to it (POP_ROOT to the project), then start the worker again"
        )
    if not os.access(current, os.W_OK | os.X_OK):
        raise ExecutorError(
            f"pop worker: the data folder {settings.data} is read-only for this user. "
            "Fix: give the worker's user write access to it"
        )
    return data_id(settings.data)


def run_worker(
    settings: PopSettings,
    queues: list[str] | None = None,
    concurrency: int | None = None,
    name: str | None = None,
) -> int:
    """Check the data folder and the broker, then run a Celery worker in this process until it is
    stopped (SIGTERM: warm shutdown, the running jobs' messages go back to the queue)."""
    from pop_nb.orchestrator.celery_app import make_app
    from pop_nb.orchestrator.executors.celery_queue import CeleryExecutor, redacted_url

    ident = check_data_folder(settings)
    CeleryExecutor(settings).check()
    queues = queues or [settings.queue]
    slots = concurrency or settings.max_running_jobs
    node = name or f"pop-{os.getpid()}@{os.uname().nodename}"
    print(
        f"pop worker {node}: data folder {settings.data} (id {ident}), queues {', '.join(queues)}, "
        f"{slots} job(s) at once, broker {redacted_url(settings.broker_url)}",
        file=sys.stderr,
        flush=True,
    )
    app = make_app(settings)
    app.worker_main(
        [
            "worker",
            "--queues",
            ",".join(queues),
            "--concurrency",
            str(slots),
            "--pool",
            "threads",  # a job is a runner process; a slot only waits for it, so threads are enough
            "--hostname",
            node,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "INFO",
        ]
    )
    return 0
