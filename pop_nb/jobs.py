"""Start, watch, resume and cancel jobs: what the CLI, a notebook cell and the daemon share."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pop_nb.config import PopSettings, load_settings
from pop_nb.errors import JobStateError, PopError, SeedError, did_you_mean
from pop_nb.models.records import Event
from pop_nb.models.seed import Seed, check_job_id, loads_seed, new_job_id, parse_seed
from pop_nb.models.status import JobStatus, now_iso
from pop_nb.store.atomic import atomic_write_json, read_json
from pop_nb.store.jobs import CANCEL_POLL_S, JobFolder, JobStore

if TYPE_CHECKING:
    from pop_nb.orchestrator.executors.base import JobHandle
    from pop_nb.pipeline.load import Pipeline

_FINAL_STATES = ("done", "failed", "cancelled")


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
    return pipeline


def create_job(
    settings: PopSettings,
    seed: Seed,
    job_id: str | None = None,
    *,
    where: str = "the seed",
    seed_bytes: bytes | None = None,
) -> JobFolder:
    """Check the seed against its pipeline and make ``current/<id>/`` with a snapshot of the pipeline."""
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
    if from_task is not None and from_task not in pipeline.spec.tasks:
        raise PopError(
            f"job {job_id}: pipeline {status.pipeline!r} has no task {from_task!r}."
            f"{did_you_mean(from_task, pipeline.spec.tasks)} "
            f"Fix: use one of {', '.join(pipeline.spec.tasks)}."
        )
    if from_task is not None:
        reset = pipeline.downstream(from_task)
    else:
        reset = {
            name
            for name in pipeline.spec.tasks
            if status.tasks.get(name) is None or status.tasks[name].state != "done"
        }
    status.resumes += 1
    history = folder.path / "history" / str(status.resumes)
    for name in reset:
        task_dir = folder.task_dir(name)
        if task_dir.exists():
            history.mkdir(parents=True, exist_ok=True)
            shutil.move(str(task_dir), str(history / name))
    from pop_nb.models.status import TaskStatus

    for name in pipeline.spec.tasks:
        if name in reset or name not in status.tasks:
            status.tasks[name] = TaskStatus()
    status.state, status.error, status.ended_at = "pending", None, None
    status.current_task = status.current_stage = None
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


def recover(store: JobStore, folder: JobFolder, max_recoveries: int) -> bool:
    """A job in ``current/`` whose runner died: count the recovery and leave it ready to go on from the
    interrupted stage (True), or, past ``max_recoveries``, fail it with the reason (False)."""
    from pop_nb.models.status import ErrorInfo

    status = folder.read_status()
    status.recoveries += 1
    where = f"{status.current_task}/{status.current_stage}" if status.current_task else "start-up"
    if status.recoveries > max_recoveries:
        status.state = "failed"
        status.error = ErrorInfo(
            task=status.current_task,
            stage=status.current_stage,
            type="RunnerDied",
            message=(
                f"its runner died {status.recoveries} times (the last during {where}); see "
                f"{folder.path / 'runner.log'}. Fix: find why (memory? a task that kills its process?), "
                f"then `pop resume {folder.job_id}`"
            ),
        )
        store.close(folder, status)
        return False
    status.state = "pending"  # to run again: whoever holds its lock now starts it, or queues it
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


def _waiting_job(settings: PopSettings, job_id: str) -> tuple[JobStore, JobFolder, JobStatus]:
    store = JobStore(settings.data)
    folder = store.get(job_id)
    status = folder.read_status()
    if status.state != "waiting" or folder.place != "current":
        raise JobStateError(
            f"job {job_id} is {status.state} in {folder.place}/, not waiting at a gate. "
            "Fix: only a job whose gated task is done (state waiting) can be approved or rejected."
        )
    return store, folder, status


def approve_gate(settings: PopSettings, job_id: str) -> JobFolder:
    """Let a job waiting at a gate go on: its waiting gates are approved and it is pending again
    (a runner, or the daemon, takes it from there)."""
    _, folder, status = _waiting_job(settings, job_id)
    gates = status.waiting_gates
    for name in gates:
        status.tasks[name].gate = "approved"
    status.state = "pending"
    folder.write_status(status)
    folder.append_event(Event(job=job_id, kind="job", status="approved", message=", ".join(gates)))
    return folder


def reject_gate(settings: PopSettings, job_id: str, reason: str | None = None) -> JobFolder:
    """End a job waiting at a gate: it fails with ``GateRejected`` and moves to ``failed/``."""
    from pop_nb.models.status import ErrorInfo

    store, folder, status = _waiting_job(settings, job_id)
    gates = status.waiting_gates
    for name in gates:
        status.tasks[name].gate = "rejected"
    status.state = "failed"
    status.error = ErrorInfo(
        task=gates[0] if gates else None,
        type="GateRejected",
        message=f"rejected at the gate after {', '.join(gates) or 'a task'}"
        + (f": {reason}" if reason else ""),
    )
    folder.append_event(Event(job=job_id, kind="job", status="rejected", message=reason))
    return store.close(folder, status)


def cancel_job(settings: PopSettings, job_id: str, grace_s: float = 10.0) -> bool:
    """Stop a job, wherever its runner runs: on this machine, SIGTERM its process group (SIGKILL after
    ``grace_s``); on another (a Celery worker), ask it through ``cancel.request`` in the shared job
    folder, which the runner checks at every heartbeat. A job not yet started (queued, dispatched to a
    queue, or waiting at a gate) is cancelled on the spot. Either way it ends ``cancelled`` in
    ``failed/`` (resumable). False if the job had already ended."""
    store = JobStore(settings.data)
    folder = store.get(job_id)
    if folder.has_runner():
        _stop_runner(folder, grace_s)
    folder = store.get(job_id)  # the runner moves it when it ends
    if folder.place != "current":
        return folder.read_status().state == "cancelled"
    status = folder.read_status()
    if status.state in _FINAL_STATES:
        return False
    if folder.has_runner():
        raise JobStateError(
            f"job {job_id}: its runner on {_runner_info(folder).get('host', 'another host')} did not stop "
            f"within {grace_s:g} s of the cancel request. Fix: check that machine's worker, then cancel "
            "again."
        )
    from pop_nb.models.status import ErrorInfo

    # never started, or its runner was killed before it could write the end: write it here
    status.state, status.error = "cancelled", ErrorInfo(type="Cancelled", message="the job was cancelled")
    store.close(folder, status)
    return True


def _runner_info(folder: JobFolder) -> dict[str, Any]:
    try:
        info = read_json(folder.runner_file)
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _stop_runner(folder: JobFolder, grace_s: float) -> None:
    from pop_nb.orchestrator.executors.base import this_host

    deadline = time.monotonic() + 5
    while not folder.runner_file.exists() and time.monotonic() < deadline:  # a runner just starting
        time.sleep(0.05)
    info = _runner_info(folder)
    if info.get("host") not in (None, this_host()):
        atomic_write_json(folder.cancel_file, {"requested_at": now_iso(), "by": this_host()})
        deadline = time.monotonic() + grace_s + 2 * CANCEL_POLL_S
        while folder.has_runner() and time.monotonic() < deadline:
            time.sleep(0.1)
        return
    try:
        pgid = int(info["pgid"])
    except (KeyError, TypeError, ValueError):
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 5  # gone in a moment: then the system drops the job's lock
    while folder.has_runner() and time.monotonic() < deadline:
        time.sleep(0.05)
    # its kernels notice their runner is gone and exit by themselves (pop_nb.execution.kernel_main)


class Job:
    """A handle on one job: its status, outputs and executed notebooks, wherever its folder is now."""

    def __init__(
        self, job_id: str, settings: PopSettings | None = None, handle: JobHandle | None = None
    ) -> None:
        self.id = check_job_id(job_id)
        self.settings = settings or load_settings()
        self.handle = handle  # from the executor that was given the job by this process, if any

    def __repr__(self) -> str:
        st = self.status
        return f"<Job {self.id} {st.pipeline} {st.state} {st.progress}% {st.totals.cost_text(4)}>"

    def widget(self) -> Any:
        """A live :class:`~pop_nb.widgets.JobWidget` of this job (it updates itself until the job ends)."""
        from pop_nb.widgets import JobWidget

        return JobWidget(self)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget())

    @property
    def folder(self) -> JobFolder:
        return JobStore(self.settings.data).get(self.id)

    @property
    def path(self) -> Path:
        return self.folder.path

    @property
    def status(self) -> JobStatus:
        return self.folder.read_status()

    @property
    def state(self) -> str:
        return self.status.state

    def outputs(self) -> dict[str, Any]:
        """Each finished task's final output."""
        folder = self.folder
        return folder.final_outputs(folder.read_status())

    def notebooks(self, task: str | None = None) -> list[Path]:
        """Executed stage notebooks, in the order they ran."""
        folder = self.folder
        runs = []
        for name, task_status in self.status.tasks.items():
            if task is None or name == task:
                runs += [
                    (run.started_at, folder.path / run.notebook)
                    for run in task_status.stages.values()
                    if run.notebook
                ]
        return [path for _, path in sorted(runs) if path.exists()]

    def events(self) -> list[dict[str, Any]]:
        return self.folder.events()

    def usage(self) -> list[dict[str, Any]]:
        return self.folder.usage()

    def wait(self, timeout: float | None = None, poll_s: float = 0.2) -> JobStatus:
        """Block until the job ends (done, failed, cancelled, or waiting at a gate) or ``timeout``
        seconds pass; its status then."""
        from pop_nb.orchestrator.executors.base import JobHandle

        handle = self.handle or JobHandle(self.settings, self.id, "unknown")
        handle.wait(timeout, poll_s)
        while True:
            try:
                return self.status
            except FileNotFoundError:  # caught between a folder move and its re-read
                time.sleep(0.02)

    def resume(self, from_task: str | None = None, wait: bool = True, budget_usd: float | None = None) -> Job:
        """Run the job again from ``from_task`` (default: its failed tasks); calls it already paid for
        are answered from its ledger at $0. ``budget_usd`` raises (or lowers) its budget."""
        from pop_nb.orchestrator.executors import get_executor, submit

        executor = get_executor(self.settings)
        reset_for_resume(self.settings, self.id, from_task, budget_usd)
        self.handle = submit(self.settings, self.id, executor)
        if wait:
            self.wait()
        return self

    def cancel(self) -> bool:
        return cancel_job(self.settings, self.id)


def run(
    pipeline: str,
    data: dict[str, Any] | None = None,
    *,
    seed: dict[str, Any] | str | Path | None = None,
    job_id: str | None = None,
    wait: bool = True,
    root: str | Path | None = None,
) -> Job:
    """Run ``pipeline`` on ``data`` in a child process and return its :class:`Job`.

    ``wait=True`` blocks until the job ends; ``wait=False`` returns at once (``job.wait()`` later).
    A task that crashes, or even calls ``os._exit``, cannot take down the calling kernel.
    """
    from pop_nb.orchestrator.executors import get_executor, submit

    settings = load_settings(root)
    executor = get_executor(settings)
    if seed is not None:
        raw = seed if isinstance(seed, dict) else loads_seed(Path(seed).read_bytes(), str(seed))
        parsed = parse_seed(raw, "seed", pipeline)
    else:
        parsed = parse_seed({"data": data or {}}, "data", pipeline)
    folder = create_job(settings, parsed, job_id, where="seed" if seed is not None else "data")
    job = Job(folder.job_id, settings, submit(settings, folder.job_id, executor))
    if wait:
        if not _in_notebook():
            job.wait()
            return job
        from IPython.display import display

        widget = job.widget()  # it moves while this cell waits (it updates from a thread)
        display(widget)
        job.wait()
        widget.finish()  # the final grid, as static HTML, before the cell ends
    return job


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"
