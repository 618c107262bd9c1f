"""What the job functions change: make a job from a seed, hand it to an executor, resume, approve,
reject, cancel, recover. Each applies a :mod:`pop_nb.models.lifecycle` transition to the job's folder
and returns the job as :class:`~pop_nb.models.api.JobSummary`.

Every front end comes through here: ``pop run`` / ``pop resume`` / ..., ``%pop``, ``pop_nb.run`` and
``Job``, the dashboard's buttons, the Jupyter server, the batch, the daemon (a dropped seed) and the
Celery worker.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pop_nb.config import PopSettings
from pop_nb.errors import JobStateError, PopError, RequestError, SeedError, did_you_mean
from pop_nb.models import lifecycle
from pop_nb.models.api import JobDeleted, JobSummary
from pop_nb.models.records import Event, EventStatus
from pop_nb.models.seed import Seed, check_job_id, new_job_id, parse_seed
from pop_nb.models.status import JobStatus
from pop_nb.redaction import redact
from pop_nb.service.queries import summary
from pop_nb.store.atomic import atomic_write_bytes, atomic_write_json, read_json
from pop_nb.store.jobs import ARCHIVE, JobFolder, JobStore, Place

if TYPE_CHECKING:
    from pop_nb.orchestrator.executors import Executor
    from pop_nb.pipeline.load import Pipeline


def validate_seed(settings: PopSettings, seed: Seed, where: str) -> Pipeline:
    """The seed's pipeline, compiled, after checking the seed's data against its ``seed_schema``;
    raises :class:`PipelineNotFound`, :class:`PipelineError` or :class:`SeedError` (``invalid_seed``,
    naming each field)."""
    from pop_nb.pipeline.compile import compile_pipeline
    from pop_nb.pipeline.schemas import schema_errors

    pipeline = compile_pipeline(settings.root, seed.pipeline)
    schema_file = pipeline.seed_schema_path()
    if schema_file is not None:
        problems = schema_errors(read_json(schema_file), seed.data, "data")
        if problems:
            raise SeedError(
                "invalid_seed",
                f"{where} does not fit the seed_schema of pipeline {seed.pipeline!r} ({schema_file.name}): "
                + "; ".join(problems)
                + ". Fix: correct the seed's data and submit it again",
            )
    if seed.tasks:
        from pop_nb.pipeline.compile import with_seed_tasks

        pipeline = with_seed_tasks(pipeline, settings.root, seed.tasks, where)
    return pipeline


def check_seed(settings: PopSettings, pipeline: str, seed: dict[str, Any] | Seed) -> dict[str, Any]:
    """Check a seed as a start would (its shape, its pipeline, the pipeline's seed_schema) without making
    a job; raises the error a start would raise."""
    validate_seed(settings, _seed_of(seed, pipeline, "the seed"), "the seed")
    return {"ok": True, "pipeline": pipeline}


def _seed_of(seed: dict[str, Any] | Seed, pipeline: str | None, where: str) -> Seed:
    """A seed given as JSON or already parsed, through the one seed rule (a seed naming another pipeline
    is refused, wherever it comes from)."""
    value = seed.model_dump(mode="json", exclude_none=True) if isinstance(seed, Seed) else seed
    return parse_seed(value, where, pipeline)


def create_job(
    settings: PopSettings,
    seed: Seed,
    job_id: str | None = None,
    *,
    where: str = "the seed",
    seed_bytes: bytes | None = None,
) -> JobFolder:
    """Check the seed against its pipeline and make ``current/<id>/`` with a snapshot of the pipeline
    (pending: whoever holds its lock next runs it)."""
    from pop_nb.pipeline.snapshot import write_snapshot

    pipeline = validate_seed(settings, seed, where)
    store = JobStore(settings.data)
    store.ensure_layout()
    return store.create(
        check_job_id(job_id) if job_id else new_job_id(seed.pipeline),
        seed,
        list(pipeline.spec.tasks),
        lambda folder: write_snapshot(folder, pipeline),
        seed_bytes=seed_bytes,
    )


@contextmanager
def _executor(settings: PopSettings) -> Iterator[Executor]:
    """The configured executor, checked ready (a wrong name or a dead broker fails here, before anything
    is changed), and let go of afterwards."""
    from pop_nb.orchestrator.executors import get_executor

    executor = get_executor(settings)
    try:
        yield executor
    finally:
        executor.close()


def _hand_on(settings: PopSettings, job_id: str, executor: Executor) -> JobSummary:
    """Give a job ready to run (in ``current/``, pending) to ``executor``."""
    from pop_nb.orchestrator.executors import submit

    submit(settings, job_id, executor)
    return summary(JobStore(settings.data).get(job_id))


def start_job(
    settings: PopSettings,
    pipeline: str,
    data: dict[str, Any] | None = None,
    *,
    seed: dict[str, Any] | Seed | None = None,
    job_id: str | None = None,
    where: str | None = None,
) -> JobSummary:
    """Check the seed (``seed``, or ``data`` as its data), make the job and start its runner (it goes on
    in its own process; follow it with :class:`pop_nb.jobs.Job`). ``where``: how errors name the seed
    (``the seed``, or its file)."""
    where = where or "the seed"
    parsed = _seed_of({"data": data or {}} if seed is None else seed, pipeline, where)
    with _executor(settings) as executor:
        executor.start_early()  # the kernel server starts while the pipeline is compiled and the job made
        folder = create_job(settings, parsed, job_id, where=where)
        return _hand_on(settings, folder.job_id, executor)


def drop_seed(
    settings: PopSettings,
    pipeline: str,
    seed: dict[str, Any],
    job_id: str | None = None,
    where: str = "the seed",
) -> Path:
    """Check a seed now and drop it into ``pending/`` for the daemon (which checks it again when it takes
    it); the file it wrote."""
    from pop_nb.store.pending import submit_seed

    parsed = _seed_of(seed, pipeline, where)
    validate_seed(settings, parsed, where)
    return submit_seed(settings, {**seed, "pipeline": parsed.pipeline}, job_id or new_job_id(pipeline))


def resume_job(
    settings: PopSettings, job_id: str, from_task: str | None = None, budget_usd: float | None = None
) -> JobSummary:
    """Run an ended (or stalled) job again from ``from_task`` (default: its failed and pending tasks);
    calls it already paid for are answered from its ledger at $0. ``budget_usd`` replaces its budget."""
    with _executor(settings) as executor:
        reset_for_resume(settings, job_id, from_task, budget_usd)
        return _hand_on(settings, job_id, executor)


def reset_for_resume(
    settings: PopSettings, job_id: str, from_task: str | None = None, budget_usd: float | None = None
) -> JobFolder:
    """Keep every task upstream of ``from_task`` (default: every task that is done), reset the rest,
    and move the job back to ``current/``. Reset tasks' files move to ``history/<n>/`` (nothing is lost).
    The job takes the pipeline's current definition and notebooks (a new snapshot); the ``resumed``
    event says what changed. ``budget_usd`` replaces the job's budget (written into its ``seed.json``).
    A job whose runner died (``from_task`` not given) goes on from the interrupted stage with the
    snapshot it had: half a task must not run under two definitions.
    """
    from pop_nb.pipeline.compile import compile_pipeline
    from pop_nb.pipeline.snapshot import describe_changes, snapshot_hashes, write_snapshot

    store = JobStore(settings.data)
    folder = store.get(job_id)
    if folder.has_runner():
        raise JobStateError(
            f"job {job_id} is running (pid in {folder.runner_file}). Fix: wait, or `pop cancel {job_id}`."
        )
    folder.cancel_file.unlink(missing_ok=True)  # a cancel asked for an earlier run is not for this one
    status = folder.read_status()
    if folder.place == "current" and status.state in ("pending", "running") and from_task is None:
        # its runner died (a crash, kill -9): go on from the interrupted stage, keeping all done work
        how = "interrupted run: from the interrupted stage"
        if budget_usd is not None:
            _set_budget(folder, budget_usd)
            how += f"; budget_usd -> {budget_usd:g}"
        folder.append_event(Event(job=job_id, kind="job", status="resumed", message=how))
        return folder
    pipeline = compile_pipeline(settings.root, status.pipeline)
    changed = folder.read_seed().tasks
    if changed:  # the notebooks the job was made to run in place of the tasks' own
        from pop_nb.pipeline.compile import with_seed_tasks

        pipeline = with_seed_tasks(pipeline, settings.root, changed, f"job {job_id}'s seed")
    if from_task is not None and from_task not in pipeline.spec.tasks:
        raise PopError(
            f"job {job_id}: pipeline {status.pipeline!r} has no task {from_task!r}."
            f"{did_you_mean(from_task, pipeline.spec.tasks)} "
            f"Fix: use one of {', '.join(pipeline.spec.tasks)}."
        )
    if from_task is not None:
        rerun = pipeline.downstream(from_task)
    else:
        rerun = {n for n in pipeline.spec.tasks if n not in status.tasks or status.tasks[n].state != "done"}
    lifecycle.reset(status, list(pipeline.spec.tasks), rerun)
    history = folder.history_dir(status.resumes)
    for name in rerun:
        task_dir = folder.task_dir(name)
        if task_dir.exists():
            history.mkdir(parents=True, exist_ok=True)
            shutil.move(str(task_dir), str(history / name))
    # Everything is written where it is (failed/, complete/: no daemon looks there), and the move back
    # to current/ comes last: a daemon that saw the folder there with its old, ended status would
    # close it again.
    before = snapshot_hashes(folder)
    changes = describe_changes(before, write_snapshot(folder, pipeline))
    how = f"from task {from_task}" if from_task else "failed and pending tasks"
    how += f"; {changes}"
    if budget_usd is not None:
        how += f"; budget_usd {folder.read_seed().budget_usd} -> {budget_usd:g}"
        _set_budget(folder, budget_usd)
    folder.write_status(status)
    folder.append_event(Event(job=job_id, kind="job", status="resumed", message=how))
    return store.move(folder, "current")


def _set_budget(folder: JobFolder, budget_usd: float) -> None:
    raised = folder.read_seed().model_copy(update={"budget_usd": budget_usd})
    atomic_write_json(folder.seed_file, raised.model_dump(mode="json", exclude_none=True))


def _waiting_job(settings: PopSettings, job_id: str) -> tuple[JobStore, JobFolder]:
    store = JobStore(settings.data)
    folder = store.get(job_id)
    status = folder.read_status()
    if lifecycle.activity(folder.place, status.state, has_runner=False) != "waiting":
        raise JobStateError(
            f"job {job_id} is {status.state} in {folder.place}/, not waiting at a gate. "
            "Fix: only a job whose gated task is done (state waiting) can be approved or rejected."
        )
    return store, folder


def approve(
    settings: PopSettings, job_id: str, outputs: dict[str, Any] | None = None, by: str | None = None
) -> JobSummary:
    """Let a job waiting at a gate go on: its gates are approved and a runner takes it from there.

    ``outputs`` (task -> value) is the approver's correction of a waiting task's output: checked against
    the task's output schema, it becomes what downstream tasks read, the task's own output is kept as
    ``outputs/final.before-approval.json``, and a ``task approved`` event says who edited it (``by``)."""
    with _executor(settings) as executor:
        _, folder = _waiting_job(settings, job_id)
        status = folder.read_status()
        if outputs:
            _edit_outputs(settings, folder, status, outputs, by)
        gates = lifecycle.approve(status)
        folder.write_status(status)
        folder.append_event(Event(job=job_id, kind="job", status="approved", message=", ".join(gates)))
        return _hand_on(settings, job_id, executor)


def _edit_outputs(
    settings: PopSettings, folder: JobFolder, status: JobStatus, outputs: dict[str, Any], by: str | None
) -> None:
    from pop_nb.pipeline.schemas import schema_errors
    from pop_nb.pipeline.snapshot import job_pipeline

    waiting = status.waiting_gates
    pipeline = job_pipeline(folder, settings.root, status.pipeline)
    for task, value in outputs.items():
        if task not in waiting:
            raise RequestError(
                f"job {folder.job_id}: task {task!r} does not wait at a gate (waiting: "
                f"{', '.join(waiting)}); only a waiting task's output can be edited before approving"
            )
        schema = pipeline.output_schema(task)
        problems = schema_errors(schema, value) if schema is not None else []
        if problems:
            raise RequestError(
                f"job {folder.job_id}: the edited output of {task} does not fit its schema: "
                + "; ".join(problems[:5])
            )
    who = by or "the approver"
    for task, value in outputs.items():
        final = folder.final_output(task)
        kept = final.with_name("final.before-approval.json")
        if final.exists() and not kept.exists():  # the task's own answer, kept once (a copy: no gap)
            atomic_write_bytes(kept, final.read_bytes())
        atomic_write_json(final, value)
        message = f"output edited by {who} before approval (the task's own: {folder.rel(kept)})"
        folder.append_event(
            Event(job=folder.job_id, kind="task", status="approved", task=task, message=message)
        )


def reject(settings: PopSettings, job_id: str, reason: str | None = None) -> JobSummary:
    """End a job waiting at a gate: it fails with ``GateRejected`` and moves to ``failed/``."""
    store, folder = _waiting_job(settings, job_id)
    status = folder.read_status()
    lifecycle.reject(status, reason)
    folder.append_event(Event(job=job_id, kind="job", status="rejected", message=reason))
    return summary(store.close(folder, status))


def _ended_only(folder: JobFolder, done_to_it: str) -> None:
    if folder.place == "current":
        raise JobStateError(
            f"job {folder.job_id} is in current/ (running, queued or waiting); only an ended job is "
            f"{done_to_it}. Fix: wait for it, or `pop cancel {folder.job_id}` first."
        )


def _moved(store: JobStore, folder: JobFolder, place: Place, event: EventStatus, message: str) -> JobSummary:
    moved = store.move(folder, place)
    moved.append_event(Event(job=folder.job_id, kind="job", status=event, message=message))
    return summary(moved)


def archive(settings: PopSettings, job_id: str) -> JobSummary:
    """Move an ended job out of the way (``archive/<id>``): no longer listed with the live ones, still
    found by its id, read and opened as before; :func:`restore` brings it back."""
    store = JobStore(settings.data)
    folder = store.get(job_id)
    if folder.place == ARCHIVE:
        return summary(folder)
    _ended_only(folder, "archived")
    return _moved(store, folder, ARCHIVE, "archived", f"from {folder.place}/")


def restore(settings: PopSettings, job_id: str) -> JobSummary:
    """An archived job back where it ended (``complete/`` if done, else ``failed/``)."""
    store = JobStore(settings.data)
    folder = store.get(job_id)
    if folder.place != ARCHIVE:
        return summary(folder)
    place: Place = "complete" if folder.read_status().state == "done" else "failed"
    return _moved(store, folder, place, "restored", f"to {place}/")


def delete(settings: PopSettings, job_id: str) -> JobDeleted:
    """Remove an ended (or archived) job's folder for good; its line in ``complete/runs.jsonl`` stays."""
    store = JobStore(settings.data)
    folder = store.get(job_id)
    _ended_only(folder, "deleted")
    files = size = 0
    for path in folder.path.rglob("*"):
        if path.is_file():
            files, size = files + 1, size + path.stat().st_size
    # renamed first (one atomic step: no reader sees half a job), then removed
    doomed = folder.path.with_name(f".deleting-{job_id}-{os.getpid()}")
    os.rename(folder.path, doomed)
    shutil.rmtree(doomed, ignore_errors=True)
    return JobDeleted(id=job_id, place=folder.place, files=files, bytes=size)


def cancel(settings: PopSettings, job_id: str, grace_s: float = 10.0, *, wait: bool = True) -> JobSummary:
    """Stop a job, wherever its runner runs (:mod:`pop_nb.orchestrator.executors.stop`); a job not yet
    started (queued, sent to a queue, at a gate) is cancelled on the spot. It ends ``cancelled`` in
    ``failed/`` (resumable). ``wait=False`` answers at once with the job as it is, and the stop goes on
    in a thread (the server's way: the end arrives as an event). Raises :class:`JobStateError` if the
    job had already ended otherwise, or its remote runner did not stop."""
    from pop_nb.orchestrator.executors.stop import ask_to_stop

    store = JobStore(settings.data)
    folder = store.get(job_id)
    state = folder.read_status().state
    if state == "cancelled" and folder.place != "current":  # asked again: it is
        return summary(folder)
    if folder.place != "current" or lifecycle.is_final(state):
        raise JobStateError(
            f"job {job_id} has already ended ({state}, in {folder.place}/); there is nothing to cancel"
        )
    if not folder.has_runner():
        _end_cancelled(store, folder)
        return summary(store.get(job_id))
    if not wait:
        with _stopping_lock:  # a cancel asked again (a double click, a script) joins the one under way
            key = (str(settings.data), job_id)
            if key in _stopping:
                return summary(store.get(job_id))
            _stopping.add(key)
        request = ask_to_stop(folder)
        threading.Thread(
            target=_finish_cancel_logged,
            args=(settings, job_id, request, grace_s),
            name=f"cancel {job_id}",
            daemon=True,
        ).start()
        return summary(store.get(job_id))
    request = ask_to_stop(folder)
    _finish_cancel(settings, job_id, request, grace_s)
    return summary(store.get(job_id))


def _finish_cancel(settings: PopSettings, job_id: str, request: Any, grace_s: float) -> None:
    from pop_nb.orchestrator.executors.stop import runner_info, see_it_stopped

    see_it_stopped(request, grace_s)
    store = JobStore(settings.data)
    folder = store.get(job_id)  # the runner moves it when it ends
    if folder.place != "current" or lifecycle.is_final(folder.read_status().state):
        return
    if folder.has_runner():
        raise JobStateError(
            f"job {job_id}: its runner on {runner_info(folder).get('host', 'another host')} did not stop "
            f"within {grace_s:g} s of the cancel request. Fix: check that machine's worker, then cancel "
            "again."
        )
    _end_cancelled(store, folder)  # killed before it could write its end: written here


_stopping: set[tuple[str, str]] = set()  # (data folder, job id) of the stops going on in threads
_stopping_lock = threading.Lock()


def _finish_cancel_logged(settings: PopSettings, job_id: str, request: Any, grace_s: float) -> None:
    """:func:`_finish_cancel` in a thread: what goes wrong is logged (nobody is waiting for an answer)."""
    try:
        _finish_cancel(settings, job_id, request, grace_s)
    except (PopError, OSError) as exc:
        logging.getLogger("pop_nb").warning("cancel of job %s: %s", job_id, redact(str(exc)))
    finally:
        with _stopping_lock:
            _stopping.discard((str(settings.data), job_id))


def _end_cancelled(store: JobStore, folder: JobFolder) -> None:
    status = folder.read_status()
    lifecycle.cancel(status)
    store.close(folder, status)


def recover(store: JobStore, folder: JobFolder, max_recoveries: int) -> bool:
    """A job in ``current/`` whose runner died: count the recovery and leave it ready to go on from the
    interrupted stage (True), or, past ``max_recoveries``, fail it with the reason (False)."""
    status = folder.read_status()
    where = lifecycle.interrupted_at(status)
    if not lifecycle.recover(status, max_recoveries, str(folder.runner_log)):
        store.close(folder, status)
        return False
    folder.write_status(status)
    folder.append_event(
        Event(
            job=folder.job_id,
            kind="job",
            status="recovered",
            message=f"runner died during {where}; recovery {status.recoveries} of {max_recoveries}",
        )
    )
    return True
