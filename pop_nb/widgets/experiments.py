"""The dashboard's Experiments tab: pick an experiment; each variant's jobs from DuckDB (the
``experiments`` view: done, failed, running, cost, tokens, time), its scores compared against the
baseline (graded with what is kept: the tab never pays a judge), and cost per item against the leading
metric with the Pareto front marked.

The DuckDB part is read on every refresh; the comparison only when the set of finished jobs changed.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from pop_nb.widgets.theme import STATE, themed

if TYPE_CHECKING:
    from pop_nb.analytics import Analytics
    from pop_nb.config import PopSettings
    from pop_nb.models.compare import Comparison

BY_VARIANT = """
    SELECT variant, count(*) AS jobs,
           count(*) FILTER (WHERE state = 'done') AS done,
           count(*) FILTER (WHERE place = 'failed') AS failed,
           count(*) FILTER (WHERE place = 'current') AS running,
           sum(cost_usd) AS cost_usd, sum(input_tokens) AS input_tokens,
           sum(output_tokens) AS output_tokens, median(duration_ms) / 1000.0 AS median_s
    FROM experiments WHERE experiment = ? GROUP BY variant
"""


def jobs_table(rows: list[dict[str, Any]], order: list[str]) -> str:
    """Each variant's jobs as HTML, in the experiment's order of variants."""
    by_name = {r["variant"]: r for r in rows}
    head = "".join(
        f"<th>{h}</th>"
        for h in ("variant", "jobs", "done", "failed", "running", "cost", "tokens in+out", "median")
    )
    body = []
    for name in order:
        r = by_name.get(name)
        if r is None:
            body.append(f"<tr><td>{html.escape(name)}</td><td colspan=7><i>not run yet</i></td></tr>")
            continue
        failed = f"<span style='color:{STATE['failed']}'>{r['failed']}</span>" if r["failed"] else "0"
        median = "" if r["median_s"] is None else f"{r['median_s']:.2f} s"
        body.append(
            f"<tr><td>{html.escape(name)}</td><td>{r['jobs']}</td><td>{r['done']}</td><td>{failed}</td>"
            f"<td>{r['running']}</td><td>${r['cost_usd'] or 0:.6f}</td>"
            f"<td>{r['input_tokens'] or 0}+{r['output_tokens'] or 0}</td><td>{median}</td></tr>"
        )
    return f"<table class='pop-exp-jobs'><tr>{head}</tr>{''.join(body)}</table>"


def scores_table(comparison: Comparison) -> str:
    """Each metric's mean [95 % interval] and win/tie/loss against the baseline, per variant, as HTML."""
    metrics = list(dict.fromkeys(m for v in comparison.variants for m in v.metrics))
    head = "<th>variant</th>" + "".join(f"<th>{html.escape(m)}</th><th>W/T/L</th>" for m in metrics)
    head += "<th>per item</th><th>grading</th><th>pending</th>"
    body = []
    for v in comparison.variants:
        cells = [html.escape(v.name) + (" <i>(baseline)</i>" if v.name == comparison.baseline else "")]
        for metric in metrics:
            m = v.metrics.get(metric)
            if m is None or m.mean is None:
                cells += ["-", ""]
                continue
            cells.append(f"<b>{m.mean:.2f}</b> [{m.low:.2f}, {m.high:.2f}]")
            cells.append("baseline" if m.win is None else f"{m.win}/{m.tie}/{m.loss}")
        cells += [f"${v.cost_per_item_usd:.6f}", f"${v.judge_cost_usd:.6f}", str(v.pending or "")]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table class='pop-exp-scores'><tr>{head}</tr>{''.join(body)}</table>"


class ExperimentsTab:
    def __init__(self, settings: PopSettings, analytics: Analytics) -> None:
        import ipywidgets as w

        self.settings = settings
        self.analytics = analytics
        self.pick = w.Dropdown(options=[], description="experiment")
        self.jobs = w.HTML()
        self.scores = w.HTML()
        self.chart = w.Output()
        self.message = w.HTML()
        self.pick.observe(lambda _: self.show(), names="value")
        self.widget = w.VBox([self.pick, self.message, self.jobs, self.scores, self.chart])
        self.order: dict[str, list[str]] = {}  # experiment -> its variants, in order
        self._compared: tuple[Any, ...] | None = None
        self.comparison: Comparison | None = None
        self.figure: Any = None  # the plotly figure of cost against the leading metric

    def load(self) -> None:
        """Find the project's experiments again (the refresh button, and the tab's first showing)."""
        from pop_nb.service.experiments import experiments

        found = experiments(self.settings)
        self.order = {e.name: [v.name for v in e.variants] for e in found if e.error is None}
        broken = [e for e in found if e.error is not None]
        red = f"<div style='color:{STATE['failed']}'>"
        self.message.value = "".join(
            f"{red}{html.escape(e.name)}: {html.escape(e.error or '')}</div>" for e in broken
        )
        shown = self.pick.value
        self.pick.options = list(self.order)
        if self.order:
            self.pick.value = shown if shown in self.order else next(iter(self.order))
        else:
            self.jobs.value = "<i>no experiment: write experiments/&lt;name&gt;.yaml (docs/contract.md)</i>"
        self.show()

    def show(self) -> None:
        """The picked experiment's jobs (DuckDB); its comparison again if its finished jobs changed."""
        name = self.pick.value
        if not name:
            return
        rows = self.analytics.query(BY_VARIANT, [name])
        self.jobs.value = jobs_table(rows, self.order.get(name, []))
        signature = (name, tuple(sorted((r["variant"], r["done"], r["failed"]) for r in rows)))
        if signature == self._compared:
            return
        self._compared = signature
        self._compare(name)

    def _compare(self, name: str) -> None:
        from pop_nb.errors import PopError
        from pop_nb.service.experiments import experiment

        try:
            self.comparison = experiment(self.settings, name, ask=False).comparison
        except PopError as exc:
            self.scores.value = f"<span style='color:{STATE['failed']}'>{html.escape(str(exc))}</span>"
            return
        self.scores.value = scores_table(self.comparison)
        self._chart(self.comparison)

    def _chart(self, comparison: Comparison) -> None:
        import plotly.graph_objects as go
        from IPython.display import display

        metric = comparison.primary()
        self.chart.clear_output(wait=True)
        if metric is None:
            return
        front = set(comparison.pareto(metric))
        points = [
            (v.name, v.cost_per_item_usd, m.mean)
            for v in comparison.variants
            if (m := v.metrics.get(metric)) is not None and m.mean is not None
        ]
        self.figure = go.Figure(
            go.Scatter(
                x=[p[1] for p in points],
                y=[p[2] for p in points],
                text=[p[0] for p in points],
                mode="markers+text",
                textposition="top center",
                marker={
                    "size": 12,
                    "color": [STATE["done"] if p[0] in front else STATE["skipped"] for p in points],
                },
            ),
            layout={
                "title": f"{metric} against cost per item (green: the Pareto front)",
                "xaxis": {"title": "USD per item", "type": "log"},
                "yaxis": {"title": metric},
                "height": 320,
                "margin": {"t": 40, "b": 40, "l": 50, "r": 10},
            },
        )
        themed(self.figure)
        with self.chart:
            display(self.figure)
