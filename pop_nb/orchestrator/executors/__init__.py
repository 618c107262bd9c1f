"""Executors, found by name the way papermill finds its engines: every entry point of the
``pop_nb.executors`` group (``name = "package.module:ExecutorClass"``; pop-nb's own ``local`` and
``celery`` are declared in its ``pyproject.toml``), plus any registered in-process with
:func:`register`. ``POP_EXECUTOR`` (or ``--executor``) picks one by name.
"""

from __future__ import annotations

import functools
from importlib.metadata import entry_points

from pop_nb.config import PopSettings
from pop_nb.errors import ExecutorError, did_you_mean
from pop_nb.orchestrator.executors.base import Executor, JobHandle
from pop_nb.store.jobs import JobStore

GROUP = "pop_nb.executors"
_registered: dict[str, type[Executor]] = {}


def register(name: str, executor: type[Executor]) -> None:
    """Make ``executor`` available as ``name`` in this process (it wins over an entry point)."""
    _registered[name] = executor
    is_remote.cache_clear()


def known_executors() -> list[str]:
    return sorted({*_registered, *(ep.name for ep in entry_points(group=GROUP))})


def executor_class(name: str) -> type[Executor]:
    if name in _registered:
        return _registered[name]
    for ep in entry_points(group=GROUP, name=name):
        try:
            found = ep.load()
        except ImportError as exc:
            raise ExecutorError(
                f"executor {name!r} ({ep.value}) cannot be imported: {exc}. "
                + ("Fix: pip install 'pop-nb[celery]'" if name == "celery" else "Fix: install what it needs")
            ) from None
        if not (isinstance(found, type) and issubclass(found, Executor)):
            raise ExecutorError(f"entry point {name} = {ep.value} ({GROUP}) is not an Executor subclass")
        return found
    known = known_executors()
    listed = ", ".join(known) or "(none: is pop-nb installed, `pip install -e .`?)"
    raise ExecutorError(
        f"executor {name!r} is not known.{did_you_mean(name, known)} "
        f"Fix: set POP_EXECUTOR (or --executor) to one of: {listed}"
    )


@functools.cache  # asked for every queued job at every wake of the daemon; entry points cost milliseconds
def is_remote(name: str) -> bool:
    """Whether jobs handed to executor ``name`` run elsewhere (:attr:`Executor.remote`): then they are
    that executor's to run and recover. One that cannot be loaded here counts as remote (someone else's)."""
    try:
        return executor_class(name).remote
    except ExecutorError:
        return True


def get_executor(settings: PopSettings, name: str | None = None) -> Executor:
    """The executor ``name`` (default: ``settings.executor``, i.e. ``POP_EXECUTOR``), checked ready to
    take jobs (:meth:`Executor.check`: a broker that answers): get it before making a job, so that a
    wrong name or a dead broker leaves nothing half-submitted."""
    executor = executor_class(name or settings.executor)(settings)
    executor.check()
    return executor


KEEP_HANDLES = 256
_runners: dict[tuple[str, str], JobHandle] = {}  # (data folder, job id) -> the handle submit returned


def submit(settings: PopSettings, job_id: str, executor: Executor | None = None) -> JobHandle:
    """Hand ``job_id`` (in ``current/``) to ``executor`` (default: the configured one, closed after):
    what :mod:`pop_nb.service` does to start, resume and approve a job. The handle is kept for
    :func:`handle_of` (a runner this process started is followed by its process, not only its files)."""
    owned = executor is None
    executor = executor or get_executor(settings)
    try:
        handle = executor.submit(job_id)
    finally:
        if owned:
            executor.close()
    if len(_runners) >= KEEP_HANDLES:  # a long-lived process (the Jupyter server) starts many jobs
        for key in [k for k, h in _runners.items() if h.process is None or h.process.poll() is not None]:
            del _runners[key]
    _runners[(str(settings.data), job_id)] = handle
    return handle


def handle_of(settings: PopSettings, job_id: str) -> JobHandle:
    """A handle on ``job_id``: the one :func:`submit` returned in this process, if it was here, or one
    that follows the job by its folder."""
    handle = _runners.get((str(settings.data), job_id))
    if handle is None:
        folder = JobStore(settings.data).find(job_id)
        dispatch = folder.read_dispatch() if folder is not None else None
        handle = JobHandle(settings, job_id, dispatch.executor if dispatch else "unknown")
    return handle


__all__ = [
    "Executor",
    "JobHandle",
    "executor_class",
    "get_executor",
    "handle_of",
    "is_remote",
    "known_executors",
    "register",
    "submit",
]
