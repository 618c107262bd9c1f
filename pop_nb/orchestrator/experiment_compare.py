"""``pop experiment compare``: every finished job of an experiment scored, and the variants compared.

The built-in scorers are worked out from each job's outputs and the item's ``expected`` when compared
(so a changed scorer never runs a job again), beside the metrics the stages recorded (``pop.metric``);
per variant, each metric's mean over items with a 95 % bootstrap interval, paired win/tie/loss against
the baseline, exact cost, tokens, latency and what the cache saved, and the items that regressed most.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pop_nb.config import PopSettings
from pop_nb.dotted import MISSING, lookup
from pop_nb.models.compare import Comparison, MetricSummary, Regression, Rejected, VariantSummary
from pop_nb.models.experiment import Item, Scorer
from pop_nb.orchestrator.experiments import Experiment, items

if TYPE_CHECKING:
    from pop_nb.orchestrator.experiment_scoring import Scoring

BOOTSTRAP = 2000


def rows(comparison: Comparison) -> list[dict[str, Any]]:
    """The comparison as a table: a row per variant and metric (a variant with no metric: one row)."""
    found: list[dict[str, Any]] = []
    for v in comparison.variants:
        each: dict[str, Any] = {"variant": v.name, "done": v.done, "failed": v.failed}
        after = {
            "cost_usd": v.cost_usd,
            "cost_per_item_usd": v.cost_per_item_usd,
            "judge_cost_usd": v.judge_cost_usd,
            "saved_usd": v.saved_usd,
            "p50_s": v.latency_p50_s,
            "p95_s": v.latency_p95_s,
        }
        for metric, m in v.metrics.items():
            scores = {"metric": metric, "mean": m.mean, "low": m.low, "high": m.high}
            found.append({**each, **scores, "win": m.win, "tie": m.tie, "loss": m.loss, **after})
        if not v.metrics:
            found.append({**each, "metric": None, **after})
    return found


@dataclass
class Done:
    """A finished job of a variant: what scoring reads."""

    item: str
    job: str
    outputs: dict[str, Any]
    metrics: dict[str, float]  # its stages' own pop.metric values
    variant: str = ""
    path: str | None = None  # its folder


def compare(
    settings: PopSettings, experiment: Experiment, rng_seed: int = 0, *, ask: bool = True
) -> Comparison:
    """Score every finished job and compare the variants (see the module's docstring). ``ask=False``
    grades with what is kept only (nothing is sent to a judge; the rest is counted as pending)."""
    from pop_nb.orchestrator.experiment_scoring import Scoring

    listed = dict(items(experiment))
    names = list(experiment.spec.all_variants())
    read = {name: _read(settings, experiment, name, listed) for name in names}
    scoring = Scoring(settings, experiment, ask=ask)
    scores: dict[str, dict[str, dict[str, float | None]]] = {}  # variant -> metric -> item -> mean score
    summaries = []
    for name in names:
        summary, done = read[name]
        scores[name] = _scores(experiment, scoring, done, listed, summary)
        summaries.append(summary)
    baseline = experiment.spec.baseline_name
    import numpy as np

    rng = np.random.default_rng(rng_seed)
    for summary in summaries:
        for metric, by_item in scores[summary.name].items():
            values = [v for v in by_item.values() if v is not None]
            low, high = _bootstrap(values, rng)
            result = MetricSummary(
                mean=statistics.fmean(values) if values else None,
                low=low,
                high=high,
                items=len(values),
                errors=sum(1 for v in by_item.values() if v is None),
            )
            if summary.name != baseline:
                pairs = _paired(by_item, scores.get(baseline, {}).get(metric, {}))
                result.win = sum(1 for _, a, b in pairs if a > b + 1e-9)
                result.loss = sum(1 for _, a, b in pairs if a < b - 1e-9)
                result.tie = len(pairs) - result.win - result.loss
            summary.metrics[metric] = result
        if summary.name != baseline and summary.metrics:
            primary = next(iter(summary.metrics))
            pairs = _paired(scores[summary.name][primary], scores.get(baseline, {}).get(primary, {}))
            worst = sorted((p for p in pairs if p[1] < p[2] - 1e-9), key=lambda p: (p[1] - p[2], p[0]))
            summary.regressed = [
                Regression(item=item, metric=primary, baseline=base, variant=value)
                for item, value, base in worst[:5]
            ]
    return Comparison(
        experiment=experiment.name,
        pipeline=experiment.spec.pipeline,
        baseline=baseline,
        items=len(listed),
        repeat=experiment.spec.repeat,
        variants=summaries,
        scores=scores,
    )


def _paired(
    variant: dict[str, float | None], baseline: dict[str, float | None]
) -> list[tuple[str, float, float]]:
    """``(item, variant's score, baseline's score)`` for the items both scored."""
    return [(i, v, b) for i, v in variant.items() if v is not None and (b := baseline.get(i)) is not None]


def _scores(
    experiment: Experiment,
    scoring: Scoring,
    done: list[Done],
    listed: dict[str, Item],
    summary: VariantSummary,
) -> dict[str, dict[str, float | None]]:
    """``metric -> item -> score`` (the mean over the item's repeats; None: none could be scored)."""
    raw: dict[str, dict[str, list[float | None]]] = {}
    each, summary.judge_cost_usd, summary.pending = scored(experiment, scoring, done, listed)
    for job, values in zip(done, each, strict=True):
        for metric, value in values.items():
            raw.setdefault(metric, {}).setdefault(job.item, []).append(value)
    return {
        metric: {i: (statistics.fmean(v) if (v := [x for x in values if x is not None]) else None)
                 for i, values in by_item.items()}
        for metric, by_item in raw.items()
    }  # fmt: skip


def scored(
    experiment: Experiment, scoring: Scoring, done: list[Done], listed: dict[str, Item]
) -> tuple[list[dict[str, float | None]], float, int]:
    """Each finished job's scores (the scorers', then its stages' own metrics), what judging cost, and
    how many grades are pending (not kept, and the scoring may not ask)."""
    from pop_nb.orchestrator.experiment_scoring import Ask

    each: list[dict[str, float | None]] = []
    asks: list[tuple[int, Ask]] = []
    base = experiment.file.parent
    for n, job in enumerate(done):
        values: dict[str, float | None] = {}
        item = listed[job.item]
        for scorer in experiment.spec.scorers:
            if scorer.kind == "notebook":  # its metrics are named by the notebook
                asks.append((n, Ask(scorer, job.job, item, job.outputs, job.variant, job.path)))
                continue
            values[scorer.name] = None  # in the scorers' order; None: nothing there to score
            if scorer.kind != "judge":
                values[scorer.name] = score(scorer, job.outputs, item.expected, base)
            elif (got := lookup(job.outputs, scorer.path)) is not MISSING:
                asks.append((n, Ask(scorer, job.job, item, got, job.variant, job.path)))
        each.append({**values, **job.metrics})
    cost, pending = 0.0, 0
    for (n, ask), grade in zip(asks, scoring.grades([a for _, a in asks]), strict=True):
        if grade.pending:  # not asked for: neither a score nor an error
            each[n].pop(ask.scorer.name, None)
            pending += 1
        each[n].update(grade.values)
        cost += grade.cost_usd
    return each, cost, pending


def _read(
    settings: PopSettings, experiment: Experiment, name: str, listed: dict[str, Item]
) -> tuple[VariantSummary, list[Done]]:
    """A variant's jobs: its summary (counts, cost, latency) and its finished jobs. Status files are
    read as plain JSON and only the outputs the scorers read: tens of thousands of jobs are compared."""
    from pop_nb.orchestrator.batch_plan import read_manifest
    from pop_nb.orchestrator.experiment_jobs import JobReader
    from pop_nb.store.jobs import JobStore

    manifest = settings.data / "batches" / experiment.batch_name(name) / "manifest.jsonl"
    lines = read_manifest(manifest) if manifest.is_file() else []
    scorers = experiment.spec.scorers
    wanted = None if any(s.kind == "notebook" for s in scorers) else {s.path.split(".")[0] for s in scorers}
    kept = settings.data / "experiments" / experiment.name / "read" / f"{experiment.batch_name(name)}.json"
    read = JobReader(JobStore(settings.data), kept, wanted)
    finished: list[Done] = []
    jobs = done = failed = hits = tokens_in = tokens_out = 0
    cost = saved = 0.0
    durations = []
    rejected: list[Rejected] = []
    for line in lines:
        ident = line.source.rsplit("#", 1)[0]
        if line.job is None:  # its seed was refused (the pipeline's seed_schema): named, not run
            rejected.append(Rejected(item=ident, error=line.error or "refused"))
            continue
        jobs += 1
        seen = read.job(line.job)
        if seen is None or ident not in listed:
            failed += 1
            continue
        folder, status = seen.folder, seen.status
        totals = status.get("totals") or {}
        cost, saved = cost + float(totals.get("cost_usd") or 0), saved + float(totals.get("saved_usd") or 0)
        hits += int(totals.get("cache_hits") or 0)
        tokens_in += int(totals.get("input_tokens") or 0)
        tokens_out += int(totals.get("output_tokens") or 0)
        if status.get("state") != "done":
            failed += 1
            continue
        done += 1
        if seen.duration_s is not None:
            durations.append(seen.duration_s)
        finished.append(Done(ident, line.job, seen.outputs, seen.metrics, name, folder))
    read.save()
    n_items = len({line.source.rsplit("#", 1)[0] for line in lines}) or 1
    summary = VariantSummary(
        name=name,
        jobs=jobs,
        done=done,
        failed=failed,
        cost_usd=cost,
        cost_per_item_usd=(cost + saved) / n_items,
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        saved_usd=saved,
        cache_hits=hits,
        latency_p50_s=_quantile(durations, 0.5),
        latency_p95_s=_quantile(durations, 0.95),
        rejected=rejected,
    )
    return summary, finished


def score(scorer: Scorer, outputs: dict[str, Any], expected: dict[str, Any], base: Path) -> float | None:
    """A built-in scorer on one job: 1.0 passes, 0.0 fails, None when it cannot say (nothing to score)."""
    got = lookup(outputs, scorer.path)
    if got is MISSING:
        return None
    want = lookup(expected, scorer.expected or scorer.name)
    if scorer.kind == "schema":
        import jsonschema

        from pop_nb.safejson import loads

        try:
            schema = (
                loads((base / scorer.schema_).read_bytes())
                if isinstance(scorer.schema_, str)
                else scorer.schema_
            )
            return 1.0 if jsonschema.Draft202012Validator(schema or {}).is_valid(got) else 0.0
        except (OSError, ValueError, jsonschema.SchemaError):  # `check` names it before a run
            return None
    if scorer.kind == "contains":
        needle = scorer.value if scorer.value is not None else want
        if needle is MISSING:
            return None
        if isinstance(got, str) and isinstance(needle, str):
            return 1.0 if needle.lower() in got.lower() else 0.0
        return 1.0 if isinstance(got, list | dict) and needle in got else 0.0
    if want is MISSING:
        return None
    if scorer.kind == "tolerance":
        numbers = all(isinstance(x, int | float) and not isinstance(x, bool) for x in (got, want))
        return (1.0 if abs(got - want) <= scorer.tolerance else 0.0) if numbers else 0.0
    return 1.0 if got == want else 0.0


def _bootstrap(values: list[float], rng: Any) -> tuple[float | None, float | None]:
    """The 95 % percentile bootstrap interval of the mean of ``values`` (``rng``: numpy's Generator).

    When the values are few distinct ones (0 and 1, a judge's grades), a resample is drawn as how many
    times it takes each (a multinomial over their shares), the same distribution as drawing items, so
    ten thousand items cost what ten do; else items are drawn."""
    import numpy as np

    if not values:
        return None, None
    if len(values) == 1:
        return values[0], values[0]
    data = np.asarray(values, dtype=float)
    distinct, counts = np.unique(data, return_counts=True)
    n = len(values)
    by_counts = len(distinct) * 10 < n  # few distinct values: draw counts; else draw items
    means = np.empty(BOOTSTRAP)
    step = max(1, min(BOOTSTRAP, 2_000_000 // (len(distinct) if by_counts else n)))  # small memory
    for start in range(0, BOOTSTRAP, step):
        count = min(step, BOOTSTRAP - start)
        if by_counts:
            means[start : start + count] = rng.multinomial(n, counts / n, size=count) @ distinct / n
        else:
            means[start : start + count] = data[rng.integers(0, n, size=(count, n))].mean(axis=1)
    means.sort()
    return float(means[int(0.025 * BOOTSTRAP)]), float(means[int(0.975 * BOOTSTRAP) - 1])


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(int(q * len(ordered)), len(ordered) - 1)], 3)


def to_json(comparison: Comparison) -> str:
    return comparison.model_dump_json(indent=2)


def item_rows(comparison: Comparison) -> list[dict[str, Any]]:
    """Every item's score per variant and metric: ``{variant, metric, item, score}`` rows."""
    return [
        {"variant": variant, "metric": metric, "item": item, "score": value}
        for variant, metrics in comparison.scores.items()
        for metric, by_item in metrics.items()
        for item, value in by_item.items()
    ]
