"""The Celery side of the ``celery`` executor: the app (Redis broker) and the one task, ``pop_nb.run_job``.

A worker runs a job exactly as the local executor does: a runner process of its own, in its own
session, holding the job's ``runner.lock`` in the shared data folder. What Celery adds is delivery:
late acknowledgement (the message is acknowledged when the job has ended, not when it starts), so a
worker killed mid-job leaves the message in Redis, and after ``visibility_timeout_s`` it goes to
another worker, which finds the lock free and the job ``running``, and goes on from the interrupted
stage. A message delivered twice (a redelivery while the first runner is alive) finds the lock held
and is dropped: the lock, not the broker, is what makes a job run at most once at a time.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from celery import Celery, Task

from pop_nb.config import PopSettings, load_settings
from pop_nb.models.lifecycle import is_final
from pop_nb.store.jobs import JobStore
from pop_nb.store.locks import FileLock, is_locked

TASK_NAME = "pop_nb.run_job"
DATA_ID_FILE = ".pop-data-id"  # names the data folder, so a worker can tell it sees the right one
RESTORE_EVERY_S = 10.0  # how often a worker's Redis transport looks for messages of dead workers


def make_app(settings: PopSettings) -> Celery:
    app = Celery("pop_nb", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        task_default_queue=settings.queue,
        task_serializer="json",
        accept_content=["json"],
        worker_prefetch_multiplier=1,  # a worker holds no job it cannot start: the others take it
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=False,
        broker_connection_timeout=3,
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout_s,
            "unacked_restore_interval": min(RESTORE_EVERY_S, settings.visibility_timeout_s),
            # kombu 5.7 scans only every Nth sweep (default 10): one sweep, one scan, so the interval
            # above is what it says (else a dead worker's job waited 10x as long to be given again)
            "unacked_restore_throttle": 1,
        },
    )
    app.task(name=TASK_NAME, bind=True)(run_job)
    return app


def data_id(data: Path) -> str:
    """The data folder's identity, made once by whoever comes first (a dispatcher or a worker): a worker
    whose folder has another id is not looking at the folder the job was put in."""
    path = data / DATA_ID_FILE
    if not path.exists():
        import secrets

        data.mkdir(parents=True, exist_ok=True)
        draft = data / f".{DATA_ID_FILE}.{os.getpid()}"
        draft.write_text(secrets.token_hex(8) + "\n")
        try:
            os.link(draft, path)  # fails if someone made it meanwhile: theirs stands
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


def run_job(task: Task, job_id: str, data: str) -> str:
    """Run ``job_id`` to its end on this worker (the body of ``pop_nb.run_job``); returns what happened.

    ``data``: the id of the data folder it was dispatched in (see :func:`data_id`).
    """
    from pop_nb.orchestrator.executors.local import start_runner
    from pop_nb.service import recover

    settings = load_settings()
    id_file = settings.data / DATA_ID_FILE
    mine = id_file.read_text().strip() if id_file.is_file() else None
    if mine != data:
        # Not the folder the job is in: let a worker that sees it have the job (retried later if none).
        raise task.retry(
            countdown=5,
            max_retries=60,
            exc=RuntimeError(
                f"job {job_id}: this worker's data folder {settings.data} is not the one the job is in "
                f"(id {data}, here {mine}). Fix: point POP_DATA_DIR at the shared data folder"
            ),
        )
    store = JobStore(settings.data)
    worker = str(task.request.hostname or f"pop@{os.uname().nodename}")
    ran = 0
    while True:
        folder = store.find(job_id)
        if folder is None or folder.place != "current":
            return f"ended ({folder.place if folder else 'gone'}) after {ran} run(s)"
        lock = FileLock(folder.runner_lock)
        try:
            if not lock.acquire():
                if ran == 0 and folder.read_status().state == "pending":
                    # whoever sent it holds the lock until the send returns: a fast worker is here first
                    raise task.retry(
                        countdown=1,
                        max_retries=30,
                        exc=RuntimeError(f"job {job_id} is still being dispatched (its lock is held)"),
                    )
                return "another runner has it"  # a second delivery while the first is alive
        except FileNotFoundError:  # moved on between the lookup and the lock
            continue
        status = folder.read_status()
        if status.state not in ("pending", "running"):
            lock.release()
            if is_final(status.state):
                store.close(folder, status)  # its runner died between the end and the move
            return f"{status.state} after {ran} run(s)"
        if status.state == "running" and not recover(store, folder, settings.max_recoveries):
            lock.release()
            return f"failed: its runner died more than {settings.max_recoveries} times"
        process = start_runner(settings, job_id, lock, env={"POP_WORKER": worker})
        ran += 1
        if process is not None:
            process.wait()
        # a runner whose pid we do not know (see start_runner); once its lock is free we look again at
        # once: the job has moved on, or its runner died and it goes on here
        while is_locked(folder.runner_lock):
            time.sleep(0.2)
