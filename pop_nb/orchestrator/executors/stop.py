"""Stopping a job's runner, wherever it runs: a signal to its process group on this machine, a
``cancel.request`` in the shared job folder for a runner on another (which it reads at every heartbeat).

Two halves, so a caller that must answer at once (the Jupyter server) can ask now and let the rest go
on in a thread: :func:`ask_to_stop` and :func:`see_it_stopped`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from typing import Any

from pop_nb.models.status import now_iso
from pop_nb.orchestrator.executors.base import this_host
from pop_nb.store.atomic import atomic_write_json, read_json
from pop_nb.store.jobs import CANCEL_POLL_S, JobFolder

STARTING_S = 5.0  # a runner that holds the lock but has not written runner.json yet gets this long
GONE_S = 5.0  # after SIGKILL, the system drops the dead runner's lock within moments


@dataclass
class StopRequest:
    """A stop asked of a runner: by signal to ``pgid`` (this machine), or by request file (another)."""

    folder: JobFolder
    pgid: int | None
    host: str | None

    @property
    def remote(self) -> bool:
        return self.host not in (None, this_host())


def runner_info(folder: JobFolder) -> dict[str, Any]:
    """``runner.json`` (pid, pgid, host of the runner), or {} while it is being written or gone."""
    try:
        info = read_json(folder.runner_file)
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def ask_to_stop(folder: JobFolder) -> StopRequest:
    """SIGTERM the job's runner (it writes the job ``cancelled`` and moves it), or, when it runs on
    another machine, write the request it polls for. Returns at once, but for a runner just starting
    (up to :data:`STARTING_S` for its ``runner.json``)."""
    deadline = time.monotonic() + STARTING_S
    while not folder.runner_file.exists() and folder.has_runner() and time.monotonic() < deadline:
        time.sleep(0.05)
    info = runner_info(folder)
    host = info.get("host")
    try:
        pgid: int | None = int(info["pgid"])
    except (KeyError, TypeError, ValueError):
        pgid = None
    request = StopRequest(folder, pgid, host)
    if request.remote:
        atomic_write_json(folder.cancel_file, {"requested_at": now_iso(), "by": this_host()})
    elif pgid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
    return request


def see_it_stopped(request: StopRequest, grace_s: float) -> None:
    """Wait until the runner has let go of the job: ``grace_s`` for it to end by itself, then (on this
    machine) SIGKILL its process group. Its kernels notice their runner is gone and exit by themselves
    (:mod:`pop_nb.execution.kernel_main`)."""
    folder = request.folder
    if request.remote:
        deadline = time.monotonic() + grace_s + 2 * CANCEL_POLL_S
        while folder.has_runner() and time.monotonic() < deadline:
            time.sleep(0.1)
        return
    if request.pgid is None:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            os.killpg(request.pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(request.pgid, signal.SIGKILL)
    deadline = time.monotonic() + GONE_S
    while folder.has_runner() and time.monotonic() < deadline:
        time.sleep(0.05)
