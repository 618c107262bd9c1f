"""``PopEngine``: a papermill engine for stage notebooks. Import it through :mod:`pop_nb.execution.engine`.

Differences from papermill's default nbclient engine, and why:
- the kernel comes from a :class:`~pop_nb.execution.kernels.KernelProvider`, the seam for cheaper isolation;
- a whole-stage deadline (``timeout_s``) rather than a per-cell one: each cell may use what is left;
- the notebook is saved at most every ``autosave_s`` seconds while running (papermill rewrites it at
  every cell start and end, which dominates short stages with large outputs), and always at the end;
- the kernel is ready when it answers ``kernel_info`` and IOPub carries its status: checked every 10 ms,
  where jupyter_client's ``wait_for_ready`` waits a fixed 0.2 s for IOPub (a fifth of a second per stage).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import run_hook, run_sync
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, NotebookExecutionManager

from pop_nb.execution.failures import KernelDied, StageDeadlineExceeded
from pop_nb.execution.kernels import (
    FreshKernelProvider,
    KernelProvider,
    connected_client,
    disconnect,
    kernel_ready,
)
from pop_nb.redaction import redact_notebook
from pop_nb.store import layout


class ThrottledExecutionManager(NotebookExecutionManager):
    """Saves the running notebook at most every ``autosave_s`` seconds; the final write is papermill's."""

    def __init__(self, *args: Any, autosave_s: float = 10.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.autosave_s = autosave_s
        self._last_write = time.monotonic()
        output = Path(self.output_path) if self.output_path else None
        self._request = output.with_name(layout.save_request(output.name)) if output else None

    def save(self, force: bool = False, **kwargs: Any) -> None:
        if self.output_path is None:
            return
        if self._request is not None and self._request.exists():  # someone asked to see it as it stands
            self._request.unlink(missing_ok=True)
            force = True
        if not force and (self.autosave_s <= 0 or time.monotonic() - self._last_write < self.autosave_s):
            return
        self._last_write = time.monotonic()
        redact_notebook(self.nb)  # a cell that prints a key must not write it to disk
        super().save(**kwargs)

    def autosave_cell(self) -> None:
        self.save()


class StageNotebookClient(PapermillNotebookClient):
    kernel_info: dict[str, Any] | None = None  # the kernel's answer when it was found ready

    def execute(self, **kwargs: Any) -> nbformat.NotebookNode:
        """papermill's, but the notebook's ``language_info`` is the one the kernel gave when it was found
        ready, not asked for again after the cells (a round trip: 2 ms of a short stage)."""
        self.reset_execution_trackers()
        with self.setup_kernel(**kwargs):
            self.log.info(f"Executing notebook with kernel: {self.kernel_name}")
            self.papermill_execute_cells()
            if self.kernel_info is None:  # its client was not started here: ask, as papermill does
                self.kernel_info = self.wait_for_reply(self.kc.kernel_info())["content"]
            self.nb.metadata["language_info"] = self.kernel_info["language_info"]
            self.set_widgets_metadata()
        return self.nb

    async def async_start_new_kernel_client(self) -> Any:
        assert self.km is not None
        try:
            self.kc = connected_client(self.km)
            self.kernel_info = await kernel_ready(self.kc, self.startup_timeout)
        except Exception:
            if self.kc is not None:  # the kernel itself is let go of by its provider
                disconnect(self.kc)
                self.kc = None
            raise
        self.kc.allow_stdin = False
        await run_hook(self.on_notebook_start, notebook=self.nb)
        return self.kc

    # papermill's execute() calls the blocking wrapper, which nbclient bound to its own coroutine
    start_new_kernel_client = run_sync(async_start_new_kernel_client)


class PopEngine(NBClientEngine):
    @classmethod
    def execute_notebook(
        cls,
        nb: nbformat.NotebookNode,
        kernel_name: str,
        output_path: str | None = None,
        progress_bar: bool = False,
        log_output: bool = False,
        autosave_s: float = 10.0,
        **kwargs: Any,
    ) -> nbformat.NotebookNode:
        nb_man = ThrottledExecutionManager(
            nb, output_path=output_path, progress_bar=False, log_output=log_output, autosave_s=autosave_s
        )
        nb_man.notebook_start()
        try:
            cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
        finally:
            nb_man.cleanup_pbar()
            nb_man.notebook_complete()
            redact_notebook(nb_man.nb)  # papermill writes the final notebook from this very object
        return nb_man.nb

    @classmethod
    def execute_managed_notebook(
        cls,
        nb_man: NotebookExecutionManager,
        kernel_name: str,
        log_output: bool = False,
        stdout_file: Any = None,
        stderr_file: Any = None,
        start_timeout: float = 60,
        execution_timeout: float | None = None,
        kernel_provider: KernelProvider | None = None,
        deadline: float | None = None,
        kernel_cwd: str | None = None,
        **kwargs: Any,
    ) -> nbformat.NotebookNode:
        with _provider(kernel_provider, start_timeout) as provider:
            km = provider.acquire(cwd=kernel_cwd or ".")
            state = {"cell": None}

            def remaining(cell: Any) -> int | None:
                state["cell"] = cell
                if deadline is None:
                    return int(execution_timeout) if execution_timeout else None
                # nbclient wants whole seconds; never 0, which would mean "no timeout"
                return max(1, int(deadline - time.monotonic() + 0.999))

            client = StageNotebookClient(
                nb_man,
                km=km,
                timeout_func=remaining,
                startup_timeout=start_timeout,
                kernel_name=kernel_name,
                log_output=log_output,
                stdout_file=stdout_file,
                stderr_file=stderr_file,
                interrupt_on_timeout=False,
                raise_on_iopub_timeout=True,
            )
            # A timeout or a dead kernel is written into the cell that was running, as an error output, and
            # the notebook is handed back: papermill then treats it like any raised error (the banner at the
            # top, PapermillExecutionError with the cell's index, source and our ename).
            ran = False  # its cells ran: the kernel may end as papermill's would, not be killed at once
            try:
                executed = client.execute()
                ran = True
                return executed
            except CellTimeoutError:
                index = _index_of(nb_man.nb, state["cell"])
                _mark_failed(
                    nb_man, index, "StageTimeout", "the stage ran past its timeout_s; the kernel was stopped"
                )
                if index is None:
                    raise StageDeadlineExceeded(index) from None
                return nb_man.nb
            except DeadKernelError:
                index = _index_of(nb_man.nb, state["cell"])
                _mark_failed(
                    nb_man,
                    index,
                    "KernelDied",
                    "the kernel process exited while this cell ran (os._exit, a crash, or out of memory)",
                )
                if index is None:
                    raise KernelDied(index) from None
                return nb_man.nb
            finally:
                if client.kc is not None:
                    disconnect(client.kc)
                provider.release(km, exiting=ran)


@contextlib.contextmanager
def _provider(given: KernelProvider | None, start_timeout: float) -> Iterator[KernelProvider]:
    """The provider a stage takes its kernel from: the runner's, or one made for this notebook alone
    (papermill's own callers, such as a check notebook), shut down after it: its reaper thread and that
    thread's event loop end here, not at interpreter exit, where the loop's collection printed a traceback
    after the command's output."""
    if given is not None:
        yield given
        return
    own = FreshKernelProvider(start_timeout)
    try:
        yield own
    finally:
        own.shutdown_all()


def _index_of(nb: nbformat.NotebookNode, cell: Any) -> int | None:
    for i, c in enumerate(nb.cells):
        if c is cell:
            return i
    return None


def _mark_failed(nb_man: NotebookExecutionManager, index: int | None, ename: str, evalue: str) -> None:
    """Leave the reason in the notebook itself, on the cell that was running, and save it."""
    if index is not None:
        cell = nb_man.nb.cells[index]
        if cell.get("execution_count") is None:
            # The kernel died (or hung) before it said which number it gave the cell: it is the next one
            # (each cell before it was executed in this kernel), so the banner and the error still say
            # In [n] rather than In [None], whichever way the race went.
            counts = [c.get("execution_count") or 0 for c in nb_man.nb.cells[:index] if c.cell_type == "code"]
            cell.execution_count = max(counts, default=0) + 1
        cell.outputs.append(
            nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])
        )
        nb_man.cell_exception(cell, cell_index=index)
        nb_man.cell_complete(cell, cell_index=index)
    nb_man.nb.metadata.papermill["exception"] = True
    if isinstance(nb_man, ThrottledExecutionManager):
        nb_man.save(force=True)
    else:
        nb_man.save()
