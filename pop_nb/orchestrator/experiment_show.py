"""``pop experiment show <name> --item K``: one item under every variant, side by side: each job's
outputs and scores, its cost, its stage notebooks, and what differs from the baseline's job
(:mod:`pop_nb.service.diff`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pop_nb.config import PopSettings
from pop_nb.errors import PopError, did_you_mean
from pop_nb.orchestrator.experiments import Experiment, items
from pop_nb.service.diff import JobDiff


@dataclass
class ItemRun:
    variant: str
    job: str | None  # None: the variant has not run this item
    state: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, float | None] = field(default_factory=dict)
    cost_usd: float = 0.0
    notebooks: list[str] = field(default_factory=list)  # relative to the data folder
    diff: JobDiff | None = None  # against the baseline's job for this item


@dataclass
class ItemView:
    experiment: str
    item: str
    repeat: int
    data: dict[str, Any]
    expected: dict[str, Any]
    baseline: str
    runs: list[ItemRun]
    data_dir: str  # where the notebooks' paths start


def show(settings: PopSettings, experiment: Experiment, item: str, repeat: int = 0) -> ItemView:
    from pop_nb.orchestrator.batch_plan import read_manifest
    from pop_nb.orchestrator.experiment_compare import Done, scored
    from pop_nb.orchestrator.experiment_jobs import stage_metrics
    from pop_nb.orchestrator.experiment_scoring import Scoring
    from pop_nb.service.diff import diff_jobs
    from pop_nb.store import layout
    from pop_nb.store.jobs import JobStore

    found = None
    for ident, each in items(experiment):
        if ident == item:
            found = each
            break
    if found is None:
        known = [ident for ident, _ in items(experiment)]
        raise PopError(
            f"experiment {experiment.name}: no item {item!r} in {experiment.dataset}."
            f"{did_you_mean(item, known)}"
        )
    times = experiment.spec.repeat
    if not 0 <= repeat < times:
        raise PopError(
            f"experiment {experiment.name} repeats each item {times} times: --repeat 0 to {times - 1}"
        )
    store = JobStore(settings.data)
    scoring = Scoring(settings, experiment)
    runs = []
    source = f"{item}#{repeat}"
    for name in experiment.spec.all_variants():
        manifest = settings.data / "batches" / experiment.batch_name(name) / "manifest.jsonl"
        lines = read_manifest(manifest) if manifest.is_file() else []
        job = next((line.job for line in lines if line.source == source and line.job), None)
        folder = store.find(job) if job else None
        run = ItemRun(name, job if folder else None)
        if folder is not None:
            status = folder.read_status()
            run.state, run.cost_usd = status.state, status.totals.cost_usd
            run.outputs = folder.final_outputs(status)
            data = settings.data
            run.notebooks = [str(p.relative_to(data)) for p in sorted(folder.path.glob("tasks/*/*.ipynb"))]
            if status.state == "done":
                metrics = stage_metrics(folder.path / layout.METRICS)
                done = Done(item, folder.job_id, run.outputs, metrics, name, folder.path)
                [run.scores], _ = scored(experiment, scoring, [done], {item: found})
        runs.append(run)
    baseline = experiment.spec.baseline_name
    base = next((r for r in runs if r.variant == baseline), None)
    for run in runs:
        if run is not base and base is not None and base.job and run.job:
            run.diff = diff_jobs(settings, base.job, run.job)
    return ItemView(
        experiment.name, item, repeat, found.data, found.expected, baseline, runs, str(settings.data)
    )
