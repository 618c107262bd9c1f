"""``pop batch``: one pipeline over many seeds, in four steps: plan, dispatch, execute, verify.

Plan (:mod:`pop_nb.orchestrator.batch_plan`): every seed is read and checked against the pipeline
before anything runs; the plan is written to
``<data>/batches/<name>/manifest.jsonl``, one line per seed, with its job id (``<name>-<n>``, n its
place in the list) or why it was not submitted. Dispatch and execute: at most ``concurrency`` jobs at
once, through the chosen executor, with jobs whose runner died taken up again from their interrupted
stage. Verify: ``summary.json`` and the printed summary say what ended how, what it cost, the slowest
tasks, and how to resume each failure.

Running the same batch again (same name) keeps what is done, resumes what failed from its failed
tasks, and starts what never started; calls already paid for are answered from each job's ledger.
"""

from __future__ import annotations

import collections
import contextlib
import os
import select
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pop_nb.config import PopSettings
from pop_nb.errors import PopError
from pop_nb.models.batch import BatchSummary, JobOutcome, ManifestLine
from pop_nb.models.seed import Seed, check_job_id
from pop_nb.models.status import JobStatus, now_iso
from pop_nb.orchestrator.batch_plan import plan
from pop_nb.orchestrator.executors import Executor, JobHandle, get_executor
from pop_nb.store import listing
from pop_nb.store.atomic import atomic_write_json, atomic_write_text
from pop_nb.store.jobs import JobStore
from pop_nb.store.locks import FileLock

POLL_S = 0.25
REMOTE_CHECK_S = 0.01  # how often a batch of remote jobs looks whether one left current/ (a stat)
__all__ = ["BatchRun", "Progress"]


@dataclass
class Progress:
    """What the progress line shows."""

    total: int
    done: int = 0
    failed: int = 0
    running: int = 0
    cost_usd: float = 0.0
    started: float = field(default_factory=time.monotonic)

    def counts(self) -> tuple[int, int, int]:
        return self.done, self.failed, self.running

    def line(self) -> str:
        left = self.total - self.done - self.failed - self.running
        took = time.monotonic() - self.started
        return (
            f"done {self.done}/{self.total}  failed {self.failed}  running {self.running}  queued {left}  "
            f"${self.cost_usd:.4f}  {took:.0f}s"
        )


class BatchRun:
    """Dispatch and execute one planned batch, then verify it."""

    def __init__(
        self,
        settings: PopSettings,
        slug: str,
        name: str,
        seeds: Sequence[tuple[str, dict[str, Any] | str]],
        *,
        concurrency: int | None = None,
        executor: str | None = None,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> None:
        self.settings = settings
        self.slug = slug
        self.name = check_job_id(name)
        self.seeds = seeds
        self.concurrency = max(1, concurrency or settings.max_running_jobs)
        self.executor_name = executor or settings.executor
        self.on_progress = on_progress or (lambda progress: None)
        self.store = JobStore(settings.data)
        self.folder = settings.data / "batches" / self.name
        self.costs: dict[str, float] = {}  # each job's cost so far, read only while it runs
        self.not_started: dict[str, str] = {}  # jobs that could not start, and why
        self.stalled: str | None = None  # why the batch stopped waiting, if nothing could move
        self.resend_error: str | None = None  # why the last send of a lost job failed

    @property
    def manifest_file(self) -> Path:
        return self.folder / "manifest.jsonl"

    def run(self) -> BatchSummary:
        executor = get_executor(self.settings, self.executor_name)  # a dead broker stops us here
        started_at, t0 = now_iso(), time.monotonic()
        lines = plan(self.settings, self.slug, self.name, self.seeds)
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.manifest_file, "".join(line.model_dump_json() + "\n" for line in lines))
        jobs = [line for line in lines if line.job]
        todo, skipped, before = [], set(), {}
        for line in jobs:
            assert line.job is not None
            folder = self.store.find(line.job)
            if folder is not None:
                status = folder.read_status()
                before[line.job] = status.totals.cost_usd
                if status.state == "done":
                    skipped.add(line.job)
                    continue
            todo.append(line)
        progress = Progress(total=len(jobs), done=len(skipped))
        self.costs = dict(before)
        try:
            self._execute(executor, todo, progress)
        finally:
            executor.close()
        return self._verify(lines, skipped, before, started_at, time.monotonic() - t0, executor.name)

    # -- execute ---------------------------------------------------------------------------------------
    def _execute(self, executor: Executor, todo: list[ManifestLine], progress: Progress) -> None:
        queue = collections.deque(todo)
        running: dict[str, JobHandle] = {}
        shown: tuple[int, int, int] | None = None
        moved_at, seen = time.monotonic(), None
        while queue or running:
            while queue and len(running) < self.concurrency:
                line = queue.popleft()
                assert line.job is not None
                try:
                    handle = self._start(executor, line)
                except PopError as exc:  # this job cannot start (its folder, its state): the rest go on
                    self.not_started[line.job] = str(exc)
                    handle = None
                if handle is not None:
                    running[line.job] = handle
                else:
                    progress.failed += 1
            stamps: dict[str, str | None] = {}  # what each running job's status said: has anything moved?
            for job_id, handle in list(running.items()):
                status = self._status(job_id)  # only running jobs are read: at most `concurrency` a poll
                stamps[job_id] = status.updated_at if status is not None else None
                if status is not None:
                    self.costs[job_id] = status.totals.cost_usd
                if handle.ended():
                    del running[job_id]
                    status = self._status(job_id)
                    if status is not None:
                        self.costs[job_id] = status.totals.cost_usd
                    if status is not None and status.state == "done":
                        progress.done += 1
                    else:
                        progress.failed += 1
                elif status is not None and status.state == "running" and self._orphaned(handle):
                    self._take_up(executor, handle)
                elif status is not None and status.state == "pending" and handle.process is None:
                    self._resend_if_lost(executor, job_id)
            # Never wait forever: while a runner holds a job, or anything changes, it can move on.
            now = time.monotonic()
            looks = (progress.counts(), len(queue), stamps)
            if looks != seen or any(handle.running() for handle in running.values()):
                moved_at, seen = now, looks
            elif now - moved_at > self.settings.batch_stall_s:
                self.stalled = self._why_stalled(executor, list(running), now - moved_at)
                return
            progress.running = len(running)
            progress.cost_usd = sum(self.costs.values())
            if progress.counts() != shown:
                shown = progress.counts()
                self.on_progress(progress)
            if not (queue and len(running) < self.concurrency):  # a free slot takes the next at once
                until_one_ends(list(running.values()), POLL_S, self.store.dir("current"))

    def _start(self, executor: Executor, line: ManifestLine) -> JobHandle | None:
        from pop_nb.models.seed import parse_seed
        from pop_nb.service import create_job, reset_for_resume

        assert line.job is not None
        folder = self.store.find(line.job)
        if folder is None:
            raw = self.seeds[line.n - 1][1]
            assert isinstance(raw, dict)
            seed: Seed = parse_seed(raw, line.source, self.slug)
            create_job(self.settings, seed, line.job, where=line.source)
        else:
            status = folder.read_status()
            if folder.has_runner():  # still running from an earlier batch run: follow it
                return executor.handle(line.job)
            if status.state == "waiting":
                return None
            if folder.place != "current" or status.state != "pending":
                # failed: from its failed tasks; its runner died: from the interrupted stage
                reset_for_resume(self.settings, line.job)
        return executor.submit(line.job)

    def _resend_if_lost(self, executor: Executor, job_id: str) -> None:
        """Send again a job dispatched to a queue that no worker took within its lease (the broker lost
        it); under its lock, so that a worker taking it meanwhile wins."""
        from pop_nb.orchestrator.executors.base import lease_over, resend

        folder = self.store.find(job_id)
        if folder is None or not lease_over(folder.read_dispatch(), self.settings.dispatch_lease_s):
            return
        lock = FileLock(folder.runner_lock)
        if not lock.acquire():
            return  # a worker has it
        dispatch = folder.read_dispatch()
        status = self._status(job_id)
        if (
            folder.place != "current"
            or status is None
            or status.state != "pending"
            or dispatch is None
            or not lease_over(dispatch, self.settings.dispatch_lease_s)
        ):
            lock.release()
            return
        try:
            resend(executor, folder, lock, dispatch)
            self.resend_error = None
        except PopError as exc:  # the broker is gone too: the next look tries again
            self.resend_error = str(exc)

    def _why_stalled(self, executor: Executor, waiting: list[str], idle_s: float) -> str:
        """Why nothing could move, in words a user can act on."""
        workers = executor.workers()
        who = (
            ""
            if workers is None
            else f"; workers answering: {', '.join(workers)}"
            if workers
            else "; no worker answers on the broker"
        )
        jobs = ", ".join(waiting[:5]) + (f" and {len(waiting) - 5} more" if len(waiting) > 5 else "")
        if self.resend_error:
            who += f"; sending them again failed: {self.resend_error}"
        fix = (
            "start `pop worker` where the data folder is shared (or check the one that runs)"
            if executor.remote
            else "see each waiting job's runner.log"
        )
        return (
            f"nothing moved for {idle_s:.0f} s and no runner holds any of its jobs ({jobs} wait, "
            f"executor {executor.name}{who}). Fix: {fix}, then run the same `pop batch` command again: "
            f"done jobs are kept (POP_BATCH_STALL_S={self.settings.batch_stall_s:g} sets how long to wait)"
        )

    def _orphaned(self, handle: JobHandle) -> bool:
        """A job on a remote executor whose runner died (a worker killed mid-job): state running, nobody
        holding its lock. Celery would give it to another worker after the visibility timeout; we take it
        up at once (the lock makes sure only one of us does)."""
        if handle.process is not None:
            return False
        folder = self.store.find(handle.job_id)
        if folder is None or folder.place != "current" or folder.has_runner():
            return False
        status = self._status(handle.job_id)
        return status is not None and status.state == "running"

    def _take_up(self, executor: Executor, handle: JobHandle) -> None:
        from pop_nb.service import recover

        folder = self.store.get(handle.job_id)
        lock = FileLock(folder.runner_lock)
        if not lock.acquire():
            return
        status = folder.read_status()
        if status.state != "running":  # someone took it up between our look and the lock
            lock.release()
            return
        if recover(self.store, folder, self.settings.max_recoveries):
            executor.submit(handle.job_id, lock=lock)
        else:
            lock.release()

    def _status(self, job_id: str) -> JobStatus | None:
        folder = self.store.find(job_id)
        try:
            return folder.read_status() if folder else None
        except (OSError, ValueError):
            return None

    # -- verify ----------------------------------------------------------------------------------------
    def _verify(
        self,
        lines: list[ManifestLine],
        skipped: set[str],
        before: dict[str, float],
        started_at: str,
        took: float,
        executor: str,
    ) -> BatchSummary:
        from pop_nb.models.api import JobSummary
        from pop_nb.service import activity

        outcomes: list[JobOutcome] = []
        tasks: dict[str, list[int]] = {}
        for line in lines:
            if line.job is None:
                continue
            folder = self.store.find(line.job)
            status = self._status(line.job) if folder else None
            if folder is None or status is None or line.job in self.not_started:
                outcomes.append(
                    JobOutcome(job=line.job, state="not started", error=self.not_started.get(line.job))
                )
                continue
            view = JobSummary.of(status, folder.place, activity(folder, status))
            duration = None
            if status.started_at and status.ended_at:
                from datetime import datetime

                delta = datetime.fromisoformat(status.ended_at) - datetime.fromisoformat(status.started_at)
                duration = round(delta.total_seconds(), 2)
            error = f"{status.error.type}: {status.error.message}" if status.error else None
            if status.error and status.error.task:
                error = f"{status.error.task}/{status.error.stage or '-'}: {error}"
            outcomes.append(
                JobOutcome(
                    job=line.job,
                    state=status.state,
                    cost_usd=status.totals.cost_usd,
                    duration_s=duration,
                    where=view.where,
                    error=error,
                    resume=f"pop resume {line.job}" if status.state in ("failed", "cancelled") else None,
                )
            )
            for task_name, task in status.tasks.items():
                ms = sum(run.duration_ms or 0 for run in task.stages.values())
                if ms:
                    tasks.setdefault(task_name, []).append(ms)
        by_mean = sorted(tasks.items(), key=lambda item: -sum(item[1]) / len(item[1]))
        slowest: list[dict[str, Any]] = [
            {
                "task": name,
                "runs": len(ms),
                "mean_s": round(sum(ms) / len(ms) / 1000, 2),
                "max_s": round(max(ms) / 1000, 2),
            }
            for name, ms in by_mean[:5]
        ]
        cost = sum(o.cost_usd for o in outcomes)
        summary = BatchSummary(
            name=self.name,
            pipeline=self.slug,
            executor=executor,
            started_at=started_at,
            ended_at=now_iso(),
            duration_s=round(took, 2),
            seeds=len(lines),
            rejected=sum(1 for line in lines if line.job is None),
            done=sum(1 for o in outcomes if o.state == "done"),
            failed=sum(1 for o in outcomes if o.state != "done"),
            skipped=len(skipped),
            cost_usd=cost,
            cost_this_run_usd=cost - sum(before.values()),
            stalled=self.stalled,
            slowest_tasks=slowest,
            jobs=outcomes,
        )
        atomic_write_json(self.folder / "summary.json", summary)
        return summary


def until_one_ends(handles: list[JobHandle], timeout: float, current: Path | None = None) -> None:
    """Wait ``timeout`` seconds, or less: until a runner this process started exits (its pidfd turns
    readable), or, with jobs run elsewhere (a remote executor's runners have no pidfd of ours), until a
    job leaves ``current`` (its stamp changes: looked at every :data:`REMOTE_CHECK_S`), so a slot
    takes the next job at once, not at the next poll."""
    fds, opened = [], []
    for handle in handles:
        process = handle.process
        fd = getattr(process, "fileno", lambda: None)()  # a forked runner: its pidfd
        if fd is None and isinstance(process, subprocess.Popen) and hasattr(os, "pidfd_open"):
            with contextlib.suppress(OSError):  # a spawned one: a pidfd of our own
                fd = os.pidfd_open(process.pid)
                opened.append(fd)
        if fd is not None:
            fds.append(fd)
    # jobs run elsewhere: current/ is looked at; else only the pidfds, for the whole timeout
    watched = current if any(handle.process is None for handle in handles) else None
    before = listing.stamp(watched) if watched is not None else None
    deadline = time.monotonic() + timeout
    try:
        while (left := deadline - time.monotonic()) > 0:
            step = left if watched is None else min(left, REMOTE_CHECK_S)
            if fds:
                if select.select(fds, [], [], step)[0]:
                    return
            else:
                time.sleep(step)
            if watched is not None and listing.stamp(watched) != before:
                return
    finally:
        for fd in opened:
            os.close(fd)
