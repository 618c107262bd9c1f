"""Job folders and the moves between ``pending/``, ``current/``, ``complete/``, ``failed/``, ``rejected/``."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from pop_nb.errors import JobNotFound, JobStateError, UnreadableStatus
from pop_nb.models.pipeline import stage_number
from pop_nb.models.records import Dispatch, Event, EventStatus, RunRecord
from pop_nb.models.seed import Seed, check_job_id
from pop_nb.models.status import JobStatus, TaskStatus, now_iso
from pop_nb.store import layout, listing
from pop_nb.store.atomic import (
    append_jsonl,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    read_json,
    read_jsonl,
)

HEARTBEAT_S = 5.0  # a runner rewrites runner.json this often
CANCEL_POLL_S = 0.5  # and looks for cancel.request this often

Place = Literal["current", "complete", "failed", "archive"]
PLACES: tuple[Place, ...] = ("current", "complete", "failed")
ARCHIVE: Place = (
    "archive"  # ended jobs moved out of the way (`pop archive`): found by id, never listed as live
)


@dataclass(frozen=True)
class JobFolder:
    """One job's folder. Every path inside a job is built here, so the layout lives in one place."""

    path: Path

    @property
    def job_id(self) -> str:
        return self.path.name

    @property
    def place(self) -> str:
        return self.path.parent.name

    seed_file = property(lambda self: self.path / layout.SEED)
    pipeline_file = property(lambda self: self.path / "pipeline.yaml")
    status_file = property(lambda self: self.path / layout.STATUS)
    runner_log = property(lambda self: self.path / layout.RUNNER_LOG)  # the runner's own output
    runner_file = property(lambda self: self.path / "runner.json")
    runner_lock = property(lambda self: self.path / "runner.lock")
    dispatch_file = property(lambda self: self.path / "dispatch.json")  # which executor was given it
    cancel_file = property(lambda self: self.path / "cancel.request")  # cancel asked from another host
    events_file = property(lambda self: self.path / layout.EVENTS)
    usage_file = property(lambda self: self.path / layout.USAGE)
    products_dir = property(lambda self: self.path / "products")
    snapshot_dir = property(lambda self: self.path / "pipeline")

    def history_dir(self, resume: int) -> Path:
        """Where the files of the tasks a resume ran again are kept (``history/<n>/<task>``)."""
        return self.path / "history" / str(resume)

    def task_dir(self, task: str) -> Path:
        return self.path / "tasks" / task

    def artifacts_dir(self, task: str) -> Path:
        return self.path / "files" / "artifacts" / task

    def stage_notebook(self, task: str, stage: str, refinement: int = 0) -> Path:
        return self.task_dir(task) / f"{stage_number(stage):02d}-{stage}{run_suffix(refinement)}.ipynb"

    def stage_output(self, task: str, stage: str, refinement: int = 0) -> Path:
        return self.task_dir(task) / "outputs" / f"{stage}{run_suffix(refinement)}.json"

    def stage_context(self, task: str, stage: str, refinement: int = 0) -> Path:
        """What the stage was told (inputs, prev, validation errors); kept per run, for replay and review."""
        return self.task_dir(task) / "context" / f"{stage}{run_suffix(refinement)}.json"

    def stage_log(self, task: str, stage: str, refinement: int = 0) -> Path:
        return self.task_dir(task) / "logs" / f"{stage}{run_suffix(refinement)}.log"

    def validation_record(self, task: str, refinement: int = 0) -> Path:
        """The outcome of one validation pass (both validation stages), so a resumed task can skip it."""
        return self.task_dir(task) / "outputs" / f"validation{run_suffix(refinement)}.json"

    def flags_file(self, task: str) -> Path:
        return self.task_dir(task) / "flags.json"

    def final_output(self, task: str) -> Path:
        return self.task_dir(task) / "outputs" / "final.json"

    def final_outputs(self, status: JobStatus) -> dict[str, Any]:
        """Each done task's final output (a task that failed or was reset may have left one: not its)."""
        found = {}
        for name, task in status.tasks.items():
            final = self.final_output(name)
            if task.state == "done" and final.exists():
                found[name] = read_json(final)
        return found

    def rel(self, path: Path) -> str:
        return str(path.relative_to(self.path))

    # --- state -----------------------------------------------------------------------------
    def read_seed(self) -> Seed:
        return Seed.model_validate(read_json(self.seed_file))

    def read_status(self) -> JobStatus:
        try:
            return JobStatus.model_validate(read_json(self.status_file))
        except ValueError as exc:  # not JSON, or not a status (pydantic's ValidationError is one too)
            why = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise UnreadableStatus(self.job_id, self.status_file, why) from None

    def has_runner(self) -> bool:
        """True if a runner (on any machine sharing this folder) holds the job's ``runner.lock``; the
        operating system drops the lock when the runner dies."""
        from pop_nb.store.locks import is_locked

        return is_locked(self.runner_lock)

    def read_dispatch(self) -> Dispatch | None:
        """Who the job was last handed to (``dispatch.json``); None if never, or unreadable."""
        try:
            return Dispatch.model_validate(read_json(self.dispatch_file))
        except (OSError, ValueError):
            return None

    def write_status(self, status: JobStatus) -> None:
        status.refresh_progress()
        atomic_write_json(self.status_file, status)

    def append_event(self, event: Event) -> None:
        append_jsonl(self.events_file, event)

    def events(self) -> list[dict[str, Any]]:
        return list(read_jsonl(self.events_file))

    def usage(self) -> list[dict[str, Any]]:
        return list(read_jsonl(self.usage_file))


def run_suffix(refinement: int) -> str:
    return f".r{refinement}" if refinement else ""


class JobStore:
    """The data folder. Moves between places are single ``rename`` calls, so watchers see them whole."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir

    def dir(self, place: str) -> Path:
        path = self.root / place
        path.mkdir(parents=True, exist_ok=True)
        return path

    def ensure_layout(self) -> None:
        for place in ("pending", "current", "complete", "failed", "rejected"):
            self.dir(place)

    def create(
        self,
        job_id: str,
        seed: Seed,
        tasks: list[str],
        snapshot: Callable[[JobFolder], object],
        seed_bytes: bytes | None = None,
    ) -> JobFolder:
        """Make ``current/<id>/`` with the seed (``seed_bytes``: the dropped file, kept byte for byte),
        the pipeline's snapshot (``snapshot(folder)`` writes it) and a pending status listing every task.
        The status file is written last: until it exists, no runner or daemon treats the folder as a job."""
        check_job_id(job_id)
        if self.find(job_id) is not None:
            raise JobStateError(f"job {job_id!r} already exists in {self.root}. Fix: pick another --id.")
        folder = JobFolder(self.dir("current") / job_id)
        folder.path.mkdir(parents=True)
        try:
            if seed_bytes is not None:
                atomic_write_bytes(folder.seed_file, seed_bytes)
            else:
                atomic_write_text(folder.seed_file, seed.model_dump_json(indent=2, exclude_none=True) + "\n")
            snapshot(folder)
            status = JobStatus(job_id=job_id, pipeline=seed.pipeline, name=seed.name)
            status.tasks = {name: TaskStatus() for name in tasks}
            folder.write_status(status)
        except BaseException:
            # Not a job yet (no status): nobody else can have it. Leave no half-made folder behind,
            # which a daemon would otherwise wait on; the caller still has the seed.
            shutil.rmtree(folder.path, ignore_errors=True)
            raise
        folder.append_event(Event(job=job_id, kind="job", status="created"))
        return folder

    def find(self, job_id: str) -> JobFolder | None:
        check_job_id(job_id)
        for place in (*PLACES, ARCHIVE):
            path = self.root / place / job_id
            if path.is_dir():
                return JobFolder(path)
        return None

    def get(self, job_id: str) -> JobFolder:
        folder = self.find(job_id)
        if folder is None:
            raise JobNotFound(job_id, self.root)
        return folder

    def move(self, folder: JobFolder, place: Place) -> JobFolder:
        if folder.place == place:
            return folder
        target = self.dir(place) / folder.job_id
        if target.exists():
            # A leftover from an earlier run of the same id: keep it, never overwrite silently.
            shutil.move(str(target), str(target.with_name(f"{folder.job_id}.old-{os.getpid()}")))
        os.rename(folder.path, target)
        return JobFolder(target)

    def close(self, folder: JobFolder, status: JobStatus) -> JobFolder:
        """End a job: final status and event, then the move that tells watchers how it ended
        (``complete/`` if done, else ``failed/``), and its line in ``complete/runs.jsonl``."""
        status.ended_at = status.ended_at or now_iso()
        status.current_task = status.current_stage = None
        folder.write_status(status)
        message = f"{status.error.type}: {status.error.message}" if status.error else None
        folder.append_event(
            Event(
                job=folder.job_id,
                kind="job",
                status=cast(EventStatus, status.state),  # done | failed | cancelled: all event statuses
                message=message,
                pid=os.getpid(),
            )
        )
        folder.runner_file.unlink(missing_ok=True)
        folder.cancel_file.unlink(missing_ok=True)
        final = self.move(folder, "complete" if status.state == "done" else "failed")
        self.record_run(final, status)
        from pop_nb.notify import announce  # webhooks, if any: posted by a process of their own

        announce(final.path, status)
        return final

    def record_run(self, folder: JobFolder, status: JobStatus) -> None:
        duration = None
        if status.started_at and status.ended_at:
            from datetime import datetime

            delta = datetime.fromisoformat(status.ended_at) - datetime.fromisoformat(status.started_at)
            duration = int(delta.total_seconds() * 1000)
        append_jsonl(
            self.dir("complete") / "runs.jsonl",
            RunRecord(
                job=status.job_id,
                pipeline=status.pipeline,
                name=status.name,
                state=status.state,
                started_at=status.started_at,
                ended_at=status.ended_at or now_iso(),
                duration_ms=duration,
                tasks=len(status.tasks),
                calls=status.totals.calls,
                attempts=status.totals.attempts,
                unpriced_calls=status.totals.unpriced_calls,
                input_tokens=status.totals.input_tokens,
                output_tokens=status.totals.output_tokens,
                cost_usd=status.totals.cost_usd,
                executor=status.executor,
                host=status.host,
                worker=status.worker,
            ),
        )

    def jobs(self, places: tuple[str, ...] = PLACES) -> list[JobFolder]:
        """Every job in ``places``. A place not made yet has none; one that cannot be read (not a folder,
        no permission, a mount gone) raises, so a caller never takes "unreadable" for "empty"."""
        found = []
        for place in places:
            for entry in listing.job_entries(self.root / place):
                if os.path.exists(os.path.join(entry.path, layout.SEED)):
                    found.append(JobFolder(Path(entry.path)))
        return found
