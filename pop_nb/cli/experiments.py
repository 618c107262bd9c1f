"""``pop experiment run | compare``: variants of a pipeline over a dataset, scored and compared."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from pop_nb.cli.common import ProgressLine, load_settings
from pop_nb.errors import EXIT_FAILED

if TYPE_CHECKING:
    from pop_nb.models.compare import Comparison, ItemView, MetricSummary
    from pop_nb.orchestrator.batch import Progress


def cmd_experiment(args: argparse.Namespace) -> int:
    from pop_nb.orchestrator import experiment_compare as comparing
    from pop_nb.orchestrator import experiments

    settings = load_settings()
    experiment = experiments.find(settings, args.name)
    if args.action == "run":
        only = {v.strip() for v in args.only.split(",") if v.strip()} if args.only else None

        shown = ProgressLine()

        def moved(variant: str, progress: Progress) -> None:
            shown.show(f"{variant}: {progress.line()}")

        def said(variant: str, summary: object) -> None:
            shown.end()
            done, failed = getattr(summary, "done", 0), getattr(summary, "failed", 0)
            cost = getattr(summary, "cost_this_run_usd", 0.0)
            print(f"variant {variant}: {done} done, {failed} failed, ${cost:.6f} this run", file=sys.stderr)

        summaries = experiments.run(
            settings,
            experiment,
            only=only,
            concurrency=args.concurrency,
            executor=args.executor,
            on_variant=said,
            on_progress=moved,
        )
        print_comparison(comparing.compare(settings, experiment))
        return EXIT_FAILED if any(s.failed for s in summaries.values()) else 0
    if args.action == "show":
        from pop_nb.orchestrator.experiment_show import show

        view = show(settings, experiment, args.item, args.repeat)
        print_item(view)
        if args.html is not None:
            from pop_nb.cli.diff import write_html_of

            diffs = [r.diff for r in view.runs if r.diff is not None]
            write_html_of(f"experiment {view.experiment}, item {view.item}", diffs, args.html)
        return 0
    comparison = comparing.compare(settings, experiment)
    if args.json:
        print(comparing.to_json(comparison))
    else:
        print_comparison(comparison)
    return 0


def print_comparison(c: Comparison) -> None:
    print(f"experiment {c.experiment} ({c.pipeline}): {c.items} items x {c.repeat}, baseline {c.baseline}")
    print(
        f"  {'variant':<24} {'done':>5} {'failed':>6} {'cost USD':>11} {'per item':>10} {'tokens':>13} "
        f"{'saved USD':>10} {'p50 s':>6} {'p95 s':>6} {'judge USD':>10}"
    )
    for v in c.variants:
        tokens = f"{v.input_tokens}+{v.output_tokens}"
        p50 = "-" if v.latency_p50_s is None else f"{v.latency_p50_s:.2f}"
        p95 = "-" if v.latency_p95_s is None else f"{v.latency_p95_s:.2f}"
        print(
            f"  {v.name:<24} {v.done:>5} {v.failed:>6} {v.cost_usd:>11.6f} {v.cost_per_item_usd:>10.6f} "
            f"{tokens:>13} {v.saved_usd:>10.6f} {p50:>6} {p95:>6} {v.judge_cost_usd:>10.6f}"
        )
        for metric, m in v.metrics.items():
            print(f"      {metric:<20} {_metric_text(m)}")
        for refused in v.rejected[:5]:
            print(f"      not run: {refused.item}: {refused.error}")
        if len(v.rejected) > 5:
            print(f"      not run: {len(v.rejected) - 5} more (--json lists them)")
        for worst in v.regressed:
            print(
                f"      regressed: {worst.item} ({worst.metric} {worst.baseline:.3f} -> {worst.variant:.3f})"
            )


def print_item(view: ItemView) -> None:
    import json

    from pop_nb.service import diff

    def line(value: object) -> str:
        return json.dumps(value, ensure_ascii=False)

    print(
        f"item {view.item} (repeat {view.repeat}) of experiment {view.experiment}; baseline {view.baseline}"
    )
    print(f"  data:     {line(view.data)}")
    print(f"  expected: {line(view.expected)}")
    for run in view.runs:
        if run.job is None:
            print(f"\n{run.variant}: not run (pop experiment run {view.experiment} --only {run.variant})")
            continue
        print(f"\n{run.variant}: job {run.job}, {run.state}, ${run.cost_usd:.6f}")
        if run.scores:
            scores = "  ".join(f"{k} {'-' if v is None else f'{v:.3f}'}" for k, v in run.scores.items())
            print(f"  scores: {scores}")
        for task, output in run.outputs.items():
            print(f"  {task}: {line(output)}")
        if run.diff is not None:
            differ = [t for t in run.diff.tasks if not t.same]
            print(f"  against {view.baseline}:" + ("" if differ else " the same"))
            for t in differ:
                what = [diff.change_text(c).replace("\n", " ") for c in t.changes]
                if t.prompt_diff:
                    what.insert(0, "prompt changed")
                if t.models_differ:
                    what.insert(0, f"model {', '.join(t.a.models) or '-'} -> {', '.join(t.b.models) or '-'}")
                print(f"    {t.task}: {'; '.join(what) or 'validation differs'}")
            if differ:
                print(f"    (pop diff {run.diff.a} {run.diff.b}: the prompts and the rest)")
        if run.notebooks:
            print(f"  stage notebooks (in {view.data_dir}):")
            print("".join(f"    {n}\n" for n in run.notebooks), end="")


def _metric_text(m: MetricSummary) -> str:
    if m.mean is None:
        return f"no item scored ({m.errors} could not be)"
    text = f"{m.mean:.3f} [{m.low:.3f}, {m.high:.3f}] over {m.items} items"
    if m.errors:
        text += f", {m.errors} not scored"
    if m.win is not None:
        text += f"; against the baseline: {m.win} better, {m.tie} same, {m.loss} worse"
    return text
