"""``pop experiment show <name> --item K``: one item under every variant, side by side: each job's
outputs and scores, its cost, its stage notebooks, and what differs from the baseline's job
(:mod:`pop_nb.service.diff`)."""

from __future__ import annotations

from pop_nb.config import PopSettings
from pop_nb.errors import ExperimentNotFound, PopError, did_you_mean
from pop_nb.models.compare import ItemRun, ItemView
from pop_nb.orchestrator.experiments import Experiment, items


def show(
    settings: PopSettings, experiment: Experiment, item: str, repeat: int = 0, *, ask: bool = True
) -> ItemView:
    """``item`` (its ``repeat``) under every variant; ``ask=False`` shows only grades already kept."""
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
        raise ExperimentNotFound(
            f"experiment {experiment.name}: no item {item!r} in {experiment.dataset}."
            f"{did_you_mean(item, known)}"
        )
    times = experiment.spec.repeat
    if not 0 <= repeat < times:
        raise PopError(
            f"experiment {experiment.name} repeats each item {times} times: --repeat 0 to {times - 1}"
        )
    store = JobStore(settings.data)
    scoring = Scoring(settings, experiment, ask=ask)
    runs = []
    source = f"{item}#{repeat}"
    for name in experiment.spec.all_variants():
        manifest = settings.data / "batches" / experiment.batch_name(name) / "manifest.jsonl"
        lines = read_manifest(manifest) if manifest.is_file() else []
        job = next((line.job for line in lines if line.source == source and line.job), None)
        folder = store.find(job) if job else None
        run = ItemRun(variant=name, job=job if folder else None)
        if folder is not None:
            status = folder.read_status()
            run.state, run.cost_usd = status.state, status.totals.cost_usd
            run.outputs = folder.final_outputs(status)
            data = settings.data
            run.notebooks = [str(p.relative_to(data)) for p in sorted(folder.path.glob("tasks/*/*.ipynb"))]
            if status.state == "done":
                metrics = stage_metrics(folder.path / layout.METRICS)
                done = Done(item, folder.job_id, run.outputs, metrics, name, str(folder.path))
                [run.scores], _, _ = scored(experiment, scoring, [done], {item: found})
        runs.append(run)
    baseline = experiment.spec.baseline_name
    base = next((r for r in runs if r.variant == baseline), None)
    for run in runs:
        if run is not base and base is not None and base.job and run.job:
            run.diff = diff_jobs(settings, base.job, run.job)
    return ItemView(
        experiment=experiment.name,
        item=item,
        repeat=repeat,
        data=found.data,
        expected=found.expected,
        baseline=baseline,
        runs=runs,
        data_dir=str(settings.data),
    )
