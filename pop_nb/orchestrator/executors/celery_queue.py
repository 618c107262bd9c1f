"""The ``celery`` executor: jobs go to a Redis-brokered Celery queue; ``pop worker`` on each machine that
shares the data folder runs them (see :mod:`pop_nb.orchestrator.celery_app`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pop_nb.errors import ExecutorError
from pop_nb.orchestrator.executors.base import Executor, JobHandle
from pop_nb.store.jobs import JobStore

if TYPE_CHECKING:
    from pop_nb.store.locks import FileLock


def redacted_url(url: str) -> str:
    """The broker URL without its password, fit for a message."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


class CeleryExecutor(Executor):
    """Dispatch to the pipeline's ``queue:`` (default ``POP_QUEUE``) on ``POP_BROKER_URL``."""

    name = "celery"
    remote = True

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        try:
            from pop_nb.orchestrator.celery_app import data_id, make_app
        except ImportError as exc:
            raise ExecutorError(
                f"the celery executor needs Celery and redis ({exc}). Fix: pip install 'pop-nb[celery]'"
            ) from None
        self.app = make_app(settings)
        self.data = data_id(settings.data)
        self._connection: Any = None

    def check(self) -> None:
        """Connect to the broker now (3 s at most): a broker that does not answer stops a dispatch before
        it starts, not halfway through a batch."""
        try:
            connection = self.app.connection_for_write()
            connection.ensure_connection(max_retries=1, timeout=3)
            connection.default_channel.client.ping()
        except Exception as exc:  # kombu, redis and socket errors alike: the broker is not there
            raise ExecutorError(
                f"the Celery broker at {redacted_url(self.settings.broker_url)} does not answer "
                f"({type(exc).__name__}: {exc}); nothing was dispatched. Fix: start Redis there, or set "
                "POP_BROKER_URL to where it runs"
            ) from None
        self._connection = connection

    def queue_of(self, job_id: str) -> str:
        from pop_nb.pipeline.snapshot import snapshot_spec

        folder = JobStore(self.settings.data).get(job_id)
        return snapshot_spec(folder).queue or self.settings.queue

    def submit(self, job_id: str, *, lock: FileLock | None = None, sends: int = 1) -> JobHandle:
        import uuid

        folder = JobStore(self.settings.data).get(job_id)
        try:
            if lock is None and folder.has_runner():
                from pop_nb.errors import JobStateError

                raise JobStateError(
                    f"job {job_id} already has a runner. Fix: wait for it, or `pop cancel {job_id}`."
                )
            queue = self.queue_of(job_id)
            if self._connection is None:
                self.check()
            ticket = str(uuid.uuid4())
            before = folder.dispatch_file.read_bytes() if folder.dispatch_file.exists() else None
            self.record(folder, queue=queue, ticket=ticket, sends=sends)  # first: a fast worker reads it
            try:
                self._send(job_id, queue, ticket)
            except Exception as exc:
                _put_back(folder.dispatch_file, before)
                raise ExecutorError(
                    f"job {job_id} could not be sent to queue {queue!r} at "
                    f"{redacted_url(self.settings.broker_url)} ({type(exc).__name__}: {exc}); it stays in "
                    "current/, not dispatched. Fix: check the broker, then `pop resume " + job_id + "`"
                ) from None
        finally:
            if lock is not None:
                lock.release()  # the worker takes it: a lock cannot travel through the broker
        return JobHandle(self.settings, job_id, self.name, ticket=ticket)

    def _send(self, job_id: str, queue: str, ticket: str) -> None:
        """Send the job's message; a connection that went bad since it was made (the broker restarted
        under a long-lived daemon or batch) is made again once before giving up."""
        from pop_nb.orchestrator.celery_app import TASK_NAME

        for attempt in (1, 2):
            try:
                self.app.send_task(
                    TASK_NAME,
                    args=[job_id, self.data],
                    queue=queue,
                    task_id=ticket,
                    connection=self._connection,
                )
                return
            except Exception:
                if attempt == 2:
                    raise
                self.close()
                self.check()

    def workers(self) -> list[str]:
        """The workers that answer a ping within a second (any queue)."""
        try:
            answers = self.app.control.ping(timeout=1.0, connection=self._connection)
        except Exception:  # a broker gone meanwhile: nobody can be reached
            return []
        return sorted(name for answer in answers for name in answer)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.release()
            self._connection = None


def _put_back(path: Any, before: bytes | None) -> None:
    from pop_nb.store.atomic import atomic_write_bytes

    if before is None:
        path.unlink(missing_ok=True)
    else:
        atomic_write_bytes(path, before)
