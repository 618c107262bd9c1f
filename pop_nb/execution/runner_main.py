"""Entry point of a runner process: ``python -m pop_nb.execution.runner_main <job-id>``.

A job always runs in its own process (and process group), so a crashing task can take down neither the
caller's kernel nor the daemon. SIGTERM cancels: kernels are stopped, the job ends ``cancelled``.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import signal
import socket
import sys
import traceback
from pathlib import Path
from types import FrameType

from pop_nb import _lean
from pop_nb.config import PopSettings, load_settings
from pop_nb.errors import PopError
from pop_nb.execution.job_runner import JobRunner
from pop_nb.models.lifecycle import why_not_runnable
from pop_nb.models.status import ErrorInfo, JobStatus
from pop_nb.pipeline.snapshot import job_pipeline
from pop_nb.redaction import load_dotenv_file, masked_output, redact
from pop_nb.store.jobs import JobStore
from pop_nb.store.locks import FileLock
from pop_nb.tracing.spans import offer_to_kernels

EXIT_ALREADY_RUNNING = 3  # another runner has (or had) the job: not an error of the job


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pop-runner")
    parser.add_argument("job_id")
    parser.add_argument("--lock-fd", type=int, help="the job's runner.lock, already taken by our parent")
    if argv is None and sys.argv[1:2] == ["--standby"]:
        argv = standby(int(sys.argv[2]))
        if argv is None:
            return 0
    args = parser.parse_args(argv)
    settings = load_settings()
    load_dotenv_file(settings.root)
    with masked_output():  # all the runner prints (runner.log) goes through the redaction rule
        try:
            return _run(args, settings)
        except Exception:
            traceback.print_exc()  # here, not after: masked too
            return 1


def _run(args: argparse.Namespace, settings: PopSettings) -> int:
    store = JobStore(settings.data)
    folder = store.get(args.job_id)
    if folder.place != "current":
        print(f"job {args.job_id} is in {folder.place}/, not current/; use `pop resume`", file=sys.stderr)
        return 2
    if args.lock_fd is not None:
        lock, claimed = FileLock.inherited(folder.runner_lock, args.lock_fd), True
    else:
        lock = FileLock(folder.runner_lock)
        try:
            claimed = lock.acquire()
        except FileNotFoundError:  # the folder moved away between the lookup and the lock
            claimed = False
    if not claimed:
        print(f"job {args.job_id} already has a runner; this one exits", file=sys.stderr)
        return EXIT_ALREADY_RUNNING
    # Checked again under the lock: a runner that just finished may have moved or closed the job.
    refusal = (
        why_not_runnable(args.job_id, folder.place, folder.read_status().state)
        if folder.status_file.exists()
        else f"job {args.job_id} has already ended; nothing to run"
    )
    if refusal:
        print(refusal, file=sys.stderr)
        return EXIT_ALREADY_RUNNING
    status = folder.read_status()
    try:  # what the job was created with (its snapshot), found where the pipeline lives now
        pipeline = job_pipeline(folder, settings.root, status.pipeline)
    except PopError as exc:
        status.state = "failed"
        status.error = ErrorInfo(type=type(exc).__name__, message=redact(str(exc)))
        store.close(folder, status)
        print(exc, file=sys.stderr)  # masked by masked_output
        return 1
    os.environ["POP_RUNNER_JOB"] = args.job_id  # its stage kernels write into the job; by hand they do not
    offer_to_kernels()  # spans a cell makes go under its stage
    runner = JobRunner(settings, folder, pipeline)

    def on_term(signum: int, frame: FrameType | None) -> None:
        runner.cancel()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    reserve = Reserve(settings.data, args.job_id)
    try:
        reserve.take()
        final = runner.run()
    except OSError as exc:
        if exc.errno not in DISK_FULL:
            raise
        reserve.release()  # room for the few kilobytes that say what happened
        return disk_full(store, args.job_id, runner.status, exc)
    finally:
        reserve.release()
    return 0 if final.state in ("done", "waiting") else 1  # waiting: paused at a gate, not failed


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class Reserve:
    """Room kept for the end of a job: ``<data>/.reserve/<id>``, 64 KiB written at the start and freed
    when the disk fills, so that the failed status, its event and the move to ``failed/`` can still be
    written (a full disk would otherwise leave the job silently ``running``)."""

    SIZE = 64 * 1024

    def __init__(self, data: Path, job_id: str) -> None:
        self.path = data / ".reserve" / job_id

    def take(self) -> None:
        self.path.parent.mkdir(exist_ok=True)
        with open(self.path, "wb") as out:
            out.write(bytes(self.SIZE))

    def release(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)


def disk_full(store: JobStore, job_id: str, status: JobStatus, exc: OSError) -> int:
    """End the job ``failed`` with ``DiskFull``: what was full and how to go on (resume keeps done work)."""
    where = store.root
    status.state = "failed"
    status.error = ErrorInfo(
        task=status.current_task,
        stage=status.current_stage,
        type="DiskFull",
        message=f"no space left on the disk of {where} ({exc.strerror}: {exc.filename or 'a job file'})",
        fix=f"free space there (`df -h {where}`), then `pop resume {job_id}`: done tasks are kept",
    )
    for task in status.tasks.values():
        if task.state == "running":
            task.state, task.error = "failed", status.error
    message = f"job {job_id}: {status.error.message}. Fix: {status.error.fix}"
    try:
        store.close(store.get(job_id), status)
    except OSError as again:  # not even that fits: the job stays resumable as it is (a runner died)
        message += f" (its failure could not be written either: {again.strerror})"
    with contextlib.suppress(OSError):
        print(message, file=sys.stderr, flush=True)
    return 1


def standby(channel_fd: int) -> list[str] | None:
    """Get ready for a job before there is one (``--standby <fd>``, see
    :class:`~pop_nb.orchestrator.executors.local.StandbyRunner`): import what running a stage imports,
    see that the kernel server is up, then wait on ``channel_fd`` for the job id, its lock and its log.
    Returns the runner's arguments for that job, or None if the daemon went away first."""
    from pop_nb.execution import forkserver
    from pop_nb.execution.engine import get_engine

    get_engine()  # papermill, nbclient, jupyter_client
    settings = load_settings()
    if settings.kernel_start == "fork" and forkserver.fork_supported():
        with contextlib.suppress(OSError, forkserver.ForkServerError):  # the job's runner will say why
            forkserver.shared_server(settings.kernel_preload, settings.kernel_server_idle_s)
    with socket.socket(fileno=channel_fd) as channel:
        try:
            data, fds, _, _ = socket.recv_fds(channel, 4096, 2)
        except OSError:
            return None
    if not data or len(fds) != 2:
        for fd in fds:
            os.close(fd)
        return None
    lock_fd, log_fd = fds
    os.dup2(log_fd, 1)  # from here on, our output is the job's runner.log
    os.dup2(log_fd, 2)
    os.close(log_fd)
    return [str(json.loads(data)["job"]), "--lock-fd", str(lock_fd)]


if __name__ == "__main__":  # a runner process of its own (a forked one shares the kernel server's imports)
    _lean.block()
    sys.exit(main())
