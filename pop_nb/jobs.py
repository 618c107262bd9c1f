"""``pop_nb.run``, ``pop_nb.batch`` and :class:`Job`: pipelines run from Python (a notebook cell, a
script), over the job functions of :mod:`pop_nb.service` like every other front end."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pop_nb.config import PopSettings, load_settings
from pop_nb.errors import PopError
from pop_nb.models.seed import check_job_id, loads_seed
from pop_nb.models.status import JobStatus
from pop_nb.store.jobs import JobFolder, JobStore

if TYPE_CHECKING:
    from pop_nb.models.batch import BatchSummary
    from pop_nb.orchestrator.executors.base import JobHandle


class Job:
    """A handle on one job: its status, outputs and executed notebooks, wherever its folder is now."""

    def __init__(self, job_id: str, settings: PopSettings | None = None) -> None:
        self.id = check_job_id(job_id)
        self.settings = settings or load_settings()

    @property
    def handle(self) -> JobHandle:
        """How its runner is followed: by its process when this process started it, else by its files."""
        from pop_nb.orchestrator.executors import handle_of

        return handle_of(self.settings, self.id)

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
        self.handle.wait(timeout, poll_s)
        deadline = time.monotonic() + 10.0
        while True:
            try:
                return self.status
            except FileNotFoundError:  # caught between a folder move and its re-read
                if time.monotonic() > deadline:  # a folder with no status: say so, never hang
                    raise
                time.sleep(0.02)

    def resume(self, from_task: str | None = None, wait: bool = True, budget_usd: float | None = None) -> Job:
        """Run the job again from ``from_task`` (default: its failed tasks); calls it already paid for
        are answered from its ledger at $0. ``budget_usd`` raises (or lowers) its budget."""
        from pop_nb import service

        service.resume_job(self.settings, self.id, from_task, budget_usd)
        if wait:
            self.wait()
        return self

    def cancel(self, grace_s: float = 10.0) -> bool:
        """Stop the job and wait until it has (see :func:`pop_nb.service.cancel`): True when it ended
        cancelled. Raises :class:`~pop_nb.errors.JobStateError` if it had already ended."""
        from pop_nb import service

        return service.cancel(self.settings, self.id, grace_s).state == "cancelled"


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
    from pop_nb import service

    settings = load_settings(root)
    given: Any = seed
    if seed is not None and not isinstance(seed, dict):
        given = loads_seed(Path(seed).read_bytes(), str(seed))
    where = "seed" if seed is not None else "data"
    started = service.start_job(settings, pipeline, data, seed=given, job_id=job_id, where=where)
    job = Job(started.id, settings)
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


def batch(
    pipeline: str,
    seeds: str | Path | list[dict[str, Any]] | None = None,
    *,
    data: list[dict[str, Any]] | None = None,
    glob: str | None = None,
    concurrency: int | None = None,
    executor: str | None = None,
    name: str | None = None,
    root: str | Path | None = None,
) -> BatchSummary:
    """Run ``pipeline`` over many seeds and return the :class:`BatchSummary`; in a notebook, a live
    widget shows the progress and then the summary. The seeds: ``seeds`` (a JSON Lines file, or a list
    of seed objects ``{"data": ..., "name"?: ...}``), ``data`` (a list of seed data), or ``glob`` (seed
    files, relative to the project root). Calling it again with the same seeds (or ``name``) resumes
    the batch: done jobs are kept, failed ones resumed, paid calls answered from each job's ledger.
    """
    from pop_nb.orchestrator.batch import BatchRun
    from pop_nb.orchestrator.batch_plan import default_name, read_manifest, read_seeds

    settings = load_settings(root)
    given = [x is not None for x in (seeds, data, glob)]
    if sum(given) != 1:
        raise PopError("pop_nb.batch: give exactly one of seeds=, data= or glob=")
    listed: list[tuple[str, dict[str, Any] | str]]
    if glob is not None:
        listed = list(read_seeds(None, glob, settings.root))
        name = name or default_name(pipeline, None, glob)
    elif isinstance(seeds, (str, Path)):
        path = Path(seeds) if Path(seeds).is_absolute() else settings.root / seeds
        listed = list(read_seeds(path, None, settings.root))
        name = name or default_name(pipeline, path, None)
    else:
        objects = seeds if seeds is not None else [{"data": d} for d in data or []]
        listed = [(f"seeds[{n}]", obj) for n, obj in enumerate(objects, 1)]
        digest = hashlib.sha256(json.dumps(objects, sort_keys=True, default=str).encode()).hexdigest()[:8]
        name = name or f"{pipeline}-{digest}"
    show: Callable[[Any], None] | None = None
    widget = None
    if _in_notebook():
        from IPython.display import display

        from pop_nb.widgets.batch import BatchWidget

        widget = BatchWidget(name)
        display(widget.view, display_id=widget.display_id)
        show = widget.update
    run = BatchRun(
        settings, pipeline, name, listed, concurrency=concurrency, executor=executor, on_progress=show
    )
    summary = run.run()
    if widget is not None:
        widget.finish(summary, read_manifest(run.manifest_file))
    return summary


def experiment(
    name: str,
    *,
    run: bool = True,
    only: list[str] | None = None,
    concurrency: int | None = None,
    executor: str | None = None,
    root: str | Path | None = None,
) -> Any:
    """Run the experiment ``name`` (``experiments/<name>.yaml``: only what is missing or failed runs) and
    return its :class:`~pop_nb.orchestrator.experiment_compare.Comparison`; ``run=False`` only compares.
    In a notebook a live widget follows each variant's batch, then the comparison shows as a table."""
    from pop_nb.orchestrator import experiments
    from pop_nb.orchestrator.experiment_compare import compare, rows

    settings = load_settings(root)
    found = experiments.find(settings, name)
    shown = _in_notebook()
    if run:
        widgets: dict[str, Any] = {}

        def widget(variant: str) -> Any:
            from IPython.display import display

            from pop_nb.widgets.batch import BatchWidget

            if variant not in widgets:
                widgets[variant] = BatchWidget(found.batch_name(variant))
                display(widgets[variant].view, display_id=widgets[variant].display_id)
            return widgets[variant]

        def follow(variant: str, progress: Any) -> None:
            widget(variant).update(progress)

        def finish(variant: str, summary: Any) -> None:
            """The variant's summary in its widget's place, as HTML: a saved notebook shows it."""
            from pop_nb.orchestrator.batch_plan import read_manifest

            manifest = settings.data / "batches" / found.batch_name(variant) / "manifest.jsonl"
            widget(variant).finish(summary, read_manifest(manifest) if manifest.is_file() else [])

        experiments.run(
            settings,
            found,
            only=set(only) if only else None,
            concurrency=concurrency,
            executor=executor,
            on_progress=follow if shown else None,
            on_variant=finish if shown else None,
        )
    result = compare(settings, found)
    if shown:
        import pandas as pd
        from IPython.display import display

        display(pd.DataFrame(rows(result)))
    return result


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"
