"""A job followed in the terminal until it ends: live progress, then its outcome and, on failure, the
evidence (failing cell, traceback end, fix)."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pop_nb.errors import EXIT_DONE, EXIT_FAILED, EXIT_WAITING, JobStateError

if TYPE_CHECKING:
    from pop_nb.models.status import JobStatus


def follow_job(job: Any, quiet: bool) -> int:
    """Show live progress until the job ends; Ctrl-C cancels the job."""
    from pop_nb import service

    print(f"job {job.id}  ({job.path})", file=sys.stderr)
    try:
        status = _follow_plain(job) if quiet or not sys.stderr.isatty() else _follow_live(job)
    except KeyboardInterrupt:
        print("\ncancelling...", file=sys.stderr)
        with contextlib.suppress(JobStateError):  # it ended meanwhile
            service.cancel(job.settings, job.id)
        status = job.wait()
    _print_outcome(job, status)
    if status.state == "waiting":
        return EXIT_WAITING
    return EXIT_DONE if status.state == "done" else EXIT_FAILED


def _watch(job: Any, show: Any, poll_s: float) -> JobStatus:
    """Call ``show(status, elapsed)`` every ``poll_s`` until the runner exits; return the final status."""
    started = time.monotonic()
    while not job.handle.ended():
        show(job.wait(timeout=poll_s), time.monotonic() - started)
    return job.status  # type: ignore[no-any-return]


def _follow_plain(job: Any) -> JobStatus:
    """One line per change of task/stage/state (for logs and CI, where a live display would spam)."""
    last: list[Any] = [None]

    def show(st: JobStatus, elapsed: float) -> None:
        key = (st.state, st.current_task, st.current_stage, st.totals.calls)
        if key != last[0]:
            print(_progress_line(st, elapsed), file=sys.stderr)
            last[0] = key

    return _watch(job, show, 0.5)


def _follow_live(job: Any) -> JobStatus:
    from rich.console import Console
    from rich.live import Live

    with Live(console=Console(stderr=True), refresh_per_second=4, transient=True) as live:
        return _watch(job, lambda st, elapsed: live.update(_progress_line(st, elapsed)), 0.25)


def _progress_line(st: JobStatus, elapsed: float) -> str:
    where: str = st.state
    if st.current_task and st.state == "running":
        where = f"{st.current_task}/{st.current_stage or 'starting'}"
    return (
        f"[{st.progress:3d}%] {where:<40} {elapsed:6.1f}s  calls {st.totals.calls:3d}  "
        f"tokens {st.totals.input_tokens}+{st.totals.output_tokens}  {st.totals.cost_text(4)}"
    )


def _print_outcome(job: Any, st: JobStatus) -> None:
    from pop_nb.models.lifecycle import is_final  # here: `pop --help` imports no pydantic

    print(f"{st.state}: job {job.id} in {job.path}", file=sys.stderr)
    t = st.totals
    retried = f" ({t.attempts} attempts)" if t.attempts != t.calls else ""
    saved = f", {t.saved_text()}" if t.cache_hits else ""
    print(
        f"  {t.calls} LLM calls{retried}, {t.input_tokens} input + {t.output_tokens} output tokens, "
        f"{t.cost_text()}{saved}",
        file=sys.stderr,
    )
    if st.state == "waiting":
        gates = ", ".join(st.waiting_gates) or "a gated task"
        print(
            f"  waiting at the gate after {gates}: `pop approve {job.id}` to go on, "
            f"`pop reject {job.id} [--reason R]` to end it",
            file=sys.stderr,
        )
    elif not is_final(st.state):
        print(
            f"  the runner exited without finishing the job; see {job.path / 'runner.log'}", file=sys.stderr
        )
    if st.error:
        for line in error_lines(st.error, job.path):
            print(line, file=sys.stderr)


def error_lines(error: Any, job_dir: Path) -> list[str]:
    """A failure as people need it: where, what, the failing cell, the end of its traceback, the fix."""
    where = f"task {error.task}, stage {error.stage}" if error.stage else f"task {error.task}"
    lines = [f"  error: {where}: {error.type}: {error.message}"]
    if error.notebook:
        cell = f" (cell In [{error.exec_count}])" if error.exec_count is not None else ""
        lines.append(f"  notebook: {job_dir / error.notebook}{cell}")
    if error.cell_source:
        lines += ["  cell:", *(f"    {line}" for line in error.cell_source.splitlines()[:12])]
    if error.traceback:
        lines += [
            "  traceback (end):",
            *(f"    {line}" for line in "\n".join(error.traceback).splitlines()[-6:]),
        ]
    lines.append(f"  fix: {error.fix}" if error.fix else f"  fix: see above, then pop resume {job_dir.name}")
    return lines
