"""``pop_nb.dashboard()``: every job of the data folder, from the DuckDB tables, in one ipywidgets app.

- **Jobs**: filter by state and pipeline, search by id; a table of the latest jobs.
- **Job**: the live grid (links to each stage notebook), the error and failing cell, the log tail,
  outputs and artifacts; actions: resume from a task, cancel.
- **Costs**: plotly charts of cost by model, task and day, tokens by model, cache savings by day.
- **Pipelines**: each pipeline's intention and verdict (``pop compile --explain``) and architecture.
- **Experiments**: each variant's jobs, its scores against the baseline, cost against quality
  (:mod:`pop_nb.widgets.experiments`).

It refreshes itself every ``refresh_s`` seconds (only changed job folders are read again).
"""

from __future__ import annotations

import html
import json
import threading
from pathlib import Path
from typing import Any, get_args

from pop_nb.analytics import Analytics, costs
from pop_nb.models.api import PipelineInfo
from pop_nb.models.status import JobState, cost_text
from pop_nb.widgets.experiments import ExperimentsTab
from pop_nb.widgets.job import render_job, show_html
from pop_nb.widgets.theme import STATE, themed

STATES = ("all", *get_args(JobState))
MAX_ROWS = 200
COSTS_TAB = 2
PIPELINES_TAB = 3
EXPERIMENTS_TAB = 4
COLUMNS = ("job", "pipeline", "state", "%", "cost", "calls", "created", "ran on", "error")
LIST_CSS = (  # one monospace font and size for the header and the rows, so the columns line up
    ".pop-job-list.widget-select select, .pop-job-head {font-family: var(--jp-code-font-family, monospace);"
    " font-size: 12px; white-space: pre; margin: 0; overflow: hidden}"
    " .pop-job-head {padding-left: 5px; font-size: 12px !important}"  # over the HTML widget's <pre> size
)


def job_lines(rows: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """The job list's header and one line per job, in columns as wide as their widest value."""
    table = [
        (
            r["job"],
            r["pipeline"],
            r["state"],
            str(r["progress"]),
            cost_text(r["cost_usd"], r["unpriced_calls"], r["calls"], 4),
            str(r["calls"]),
            str(r["created_at"])[:16],
            r.get("worker") or r.get("host") or "",
            r["error_type"] or "",
        )
        for r in rows
    ]
    widths = [max([len(name), *(len(line[i]) for line in table)]) + 2 for i, name in enumerate(COLUMNS)]

    def line(values: tuple[str, ...]) -> str:
        return "".join(f"{v:<{w}}" for v, w in zip(values, widths, strict=True)).rstrip()

    return line(COLUMNS), [line(values) for values in table]


class Dashboard:
    def __init__(
        self, data_dir: Path | str | None = None, refresh_s: float = 5.0, root: Path | None = None
    ) -> None:
        import ipywidgets as w

        from pop_nb.config import load_settings

        # one set of settings for what it shows and what its buttons do: the folder given, if any
        self.settings = load_settings(root, **({"data_dir": Path(data_dir)} if data_dir else {}))
        self.data_dir = self.settings.data
        self.analytics = Analytics(self.data_dir)
        self.refresh_s = refresh_s
        self.state = w.Dropdown(options=STATES, value="all", description="state")
        self.pipeline = w.Dropdown(options=["all"], value="all", description="pipeline")
        self.search = w.Text(placeholder="job id contains...", description="search")
        self.jobs_table = w.HTML()
        # the rows: a click (or arrow keys) on one opens it in the Job tab
        self.job_list = w.Select(options=[], rows=16, layout=w.Layout(width="100%"))
        self.job_list.add_class("pop-job-list")
        self.job_pick = w.Dropdown(options=[], description="job")
        # an Output, not an HTML widget: Lab renders it, so a click on a square opens the stage's
        # notebook in a tab instead of navigating the page
        self.job_view = w.Output()
        self.job_markup = ""
        self.log_view = w.HTML()
        self.outputs_view = w.HTML()
        self.from_task = w.Dropdown(options=[], description="from task")
        self.resume_button = w.Button(description="resume", icon="play")
        self.cancel_button = w.Button(description="cancel", icon="stop", button_style="danger")
        self.message = w.HTML()
        self.charts = w.Output()
        self.summary = w.HTML()
        self.live = w.Checkbox(value=True, description="live")
        refresh = w.Button(description="refresh", icon="refresh")
        for control in (self.state, self.pipeline, self.search):
            control.observe(lambda _: self._show_jobs(), names="value")
        self.job_pick.observe(lambda _: self._show_job(), names="value")
        self.job_list.observe(lambda change: self.open_job(change["new"]), names="value")
        refresh.on_click(lambda _: self.refresh())
        self.resume_button.on_click(lambda _: self.resume())
        self.cancel_button.on_click(lambda _: self.cancel())
        style = w.HTML(f"<style>{LIST_CSS}</style>")
        jobs_tab = w.VBox(
            [style, w.HBox([self.state, self.pipeline, self.search]), self.jobs_table, self.job_list]
        )
        job_tab = w.VBox(
            [
                self.job_pick,
                self.job_view,
                w.HBox([self.from_task, self.resume_button, self.cancel_button]),
                self.message,
                self.outputs_view,
                self.log_view,
            ]
        )
        self.pipeline_pick = w.Dropdown(options=[], description="pipeline")
        self.pipeline_view = w.HTML()
        self.pipelines: dict[str, PipelineInfo] | None = None
        self.pipeline_pick.observe(lambda _: self._show_pipeline(), names="value")
        pipelines_tab = w.VBox([self.pipeline_pick, self.pipeline_view])
        self.experiments = ExperimentsTab(self.settings, self.analytics)
        self._experiments_loaded = False
        self.tabs = w.Tab(
            children=[
                jobs_tab,
                job_tab,
                w.VBox([self.summary, self.charts]),
                pipelines_tab,
                self.experiments.widget,
            ]
        )
        for i, title in enumerate(("Jobs", "Job", "Costs", "Pipelines", "Experiments")):
            self.tabs.set_title(i, title)
        self.tabs.observe(lambda change: self._on_tab(change["new"]), names="selected_index")
        self.widget = w.VBox([w.HBox([refresh, self.live]), self.tabs])
        self._stop = threading.Event()
        self._charted: tuple[Any, ...] | None = None
        self._costs_shown = False
        self.figures: list[Any] = []
        self.refresh()
        self._thread = threading.Thread(target=self._follow, daemon=True, name="pop-dashboard")
        self._thread.start()

    # -- data ---------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Read the data folder again (only changed job folders), and the pipelines once they are shown."""
        self._refresh_jobs()
        if self.pipelines is not None:
            self._load_pipelines()
        if self._experiments_loaded:
            self.experiments.load()

    def _on_tab(self, index: int | None) -> None:
        if index == COSTS_TAB and not self._costs_shown:
            self._costs_shown = True  # first shown: plotly and five charts wait until then
            self._show_costs()
        if index == PIPELINES_TAB and self.pipelines is None:
            self._load_pipelines()  # first shown: reading every pipeline's notebooks waits until then
        if index == EXPERIMENTS_TAB and not self._experiments_loaded:
            self._experiments_loaded = True  # likewise: comparing waits until it is looked at
            self.experiments.load()

    def _load_pipelines(self) -> None:
        from pop_nb.service import pipelines

        self.pipelines = {info.slug: info for info in pipelines(self.settings)}
        shown = self.pipeline_pick.value
        self.pipeline_pick.options = list(self.pipelines)
        if self.pipelines:
            self.pipeline_pick.value = shown if shown in self.pipelines else next(iter(self.pipelines))
        self._show_pipeline()

    def _show_pipeline(self) -> None:
        from pop_nb.widgets.pipelines import render_pipeline

        info = (self.pipelines or {}).get(self.pipeline_pick.value or "")
        self.pipeline_view.value = render_pipeline(info) if info else "<i>no pipeline under pipelines/</i>"

    def _refresh_jobs(self) -> None:
        self.analytics.refresh()
        pipelines = [
            r["pipeline"] for r in self.analytics.query("SELECT DISTINCT pipeline FROM jobs ORDER BY 1")
        ]
        self.pipeline.options = ["all", *pipelines]
        self._show_jobs()
        self._show_job()
        if self._costs_shown:
            self._show_costs()
        if self._experiments_loaded:
            self.experiments.show()

    def _filters(self) -> tuple[str, list[Any]]:
        where, params = ["1=1"], []
        if self.state.value != "all":
            where.append("state = ?")
            params.append(self.state.value)
        if self.pipeline.value != "all":
            where.append("pipeline = ?")
            params.append(self.pipeline.value)
        if self.search.value:
            where.append("contains(job, ?)")
            params.append(self.search.value)
        return " AND ".join(where), params

    def jobs(self) -> list[dict[str, Any]]:
        """The rows the jobs table shows (the latest ``MAX_ROWS``), with the current filters."""
        where, params = self._filters()
        return self.analytics.query(
            "SELECT job, pipeline, state, place, progress, cost_usd, unpriced_calls, calls, created_at, "
            "duration_ms, host, worker, "
            f"error_type FROM jobs WHERE {where} ORDER BY created_at DESC LIMIT {MAX_ROWS}",
            params,
        )

    def _show_jobs(self) -> None:
        rows = self.jobs()
        where, params = self._filters()
        total = self.analytics.query(f"SELECT count(*) AS n FROM jobs WHERE {where}", params)[0]["n"]
        shown = f", the latest {len(rows)} shown" if total > len(rows) else ""
        hint = "; click a job to open it" if rows else ""
        head, lines = job_lines(rows)
        self.jobs_table.value = (
            f"<div>{total} job(s){shown}{hint}</div><pre class='pop-job-head'>{html.escape(head)}</pre>"
        )
        options = [(text, r["job"]) for text, r in zip(lines, rows, strict=True)]
        if options != list(self.job_list.options):
            picked = self.job_list.value
            self.job_list.options = options
            self.job_list.value = picked if picked in {job for _, job in options} else None
        picked = self.job_pick.value
        self.job_pick.options = [r["job"] for r in rows]
        if picked in self.job_pick.options:
            self.job_pick.value = picked

    def open_job(self, job_id: str | None) -> None:
        """Show ``job_id`` in the Job tab (what a click on its row does)."""
        if job_id is None:
            return
        if job_id not in self.job_pick.options:
            self.job_pick.options = [*self.job_pick.options, job_id]
        self.job_pick.value = job_id
        self.tabs.selected_index = 1

    def _folder(self) -> Any:
        from pop_nb.store.jobs import JobStore

        return JobStore(self.data_dir).find(self.job_pick.value) if self.job_pick.value else None

    def _show_job(self) -> None:
        folder = self._folder()
        if folder is None:
            self._show_markup("<i>no job selected: click one in the Jobs tab</i>")
            self.log_view.value = self.outputs_view.value = ""
            self.cancel_button.disabled = self.resume_button.disabled = True
            return
        status = folder.read_status()
        self._show_markup(render_job(status, folder.path))
        from pop_nb.service import summary

        allowed = summary(folder, status).actions  # the rule every front end shows
        self.cancel_button.disabled = "cancel" not in allowed
        self.resume_button.disabled = "resume" not in allowed
        self.from_task.options = list(status.tasks)
        outputs = folder.final_outputs(status)
        artifacts = sorted(
            str(p.relative_to(folder.path)) for p in (folder.path / "files").rglob("*") if p.is_file()
        )
        self.outputs_view.value = (
            "<b>outputs</b><pre>"
            + html.escape(json.dumps(outputs, indent=2)[:5000])
            + "</pre>"
            + ("<b>artifacts</b><br>" + "<br>".join(html.escape(a) for a in artifacts) if artifacts else "")
        )
        logs = sorted(folder.path.glob("tasks/*/logs/*.log"), key=lambda p: p.stat().st_mtime)
        tail = ""
        for log in [folder.runner_log, *logs[-1:]]:
            if log.exists():
                lines = log.read_text(errors="replace").splitlines()[-15:]
                tail += (
                    f"<b>{html.escape(str(log.relative_to(folder.path)))}</b><pre>"
                    + html.escape("\n".join(lines))
                    + "</pre>"
                )
        self.log_view.value = tail

    def _show_markup(self, markup: str) -> None:
        if markup != self.job_markup:
            self.job_markup = markup
            show_html(self.job_view, markup)

    def _show_costs(self) -> None:
        import plotly.graph_objects as go
        from IPython.display import display

        by_model = costs(self.analytics, "model").to_dict("records")
        by_task = costs(self.analytics, "task").to_dict("records")
        by_day = costs(self.analytics, "day").sort_values("key").to_dict("records")
        total = sum(r["cost_usd"] for r in by_model)
        saved = sum(r["saved_usd"] for r in by_model)
        signature = (total, saved, sum(r["attempts"] for r in by_model), len(by_day))
        if signature == self._charted:
            return  # nothing new: do not redraw (a redraw every refresh would flicker)
        self._charted = signature
        calls = sum(r["calls"] for r in by_model)
        unpriced = sum(r["unpriced_calls"] for r in by_model)
        self.summary.value = (
            f"<b>{html.escape(cost_text(total, unpriced, calls, 4))}</b> over {calls} calls "
            f"({sum(r['attempts'] for r in by_model)} attempts); cache saved ${saved:.4f}"
        )
        self.figures = [
            go.Figure(
                go.Bar(x=[r["key"] for r in by_model], y=[r["cost_usd"] for r in by_model]),
                layout={"title": "cost by model (USD)"},
            ),
            go.Figure(
                go.Bar(x=[r["key"] for r in by_task], y=[r["cost_usd"] for r in by_task]),
                layout={"title": "cost by task (USD)"},
            ),
            go.Figure(
                go.Scatter(
                    x=[r["key"] for r in by_day], y=[r["cost_usd"] for r in by_day], mode="lines+markers"
                ),
                layout={"title": "cost by day (USD)"},
            ),
            go.Figure(
                [
                    go.Bar(
                        name="input", x=[r["key"] for r in by_model], y=[r["input_tokens"] for r in by_model]
                    ),
                    go.Bar(
                        name="output",
                        x=[r["key"] for r in by_model],
                        y=[r["output_tokens"] for r in by_model],
                    ),
                ],
                layout={"title": "tokens by model", "barmode": "stack"},
            ),
            go.Figure(
                go.Bar(x=[r["key"] for r in by_day], y=[r["saved_usd"] for r in by_day]),
                layout={"title": "cache savings by day (USD)"},
            ),
        ]
        self.charts.clear_output(wait=True)
        with self.charts:
            for fig in self.figures:
                themed(fig, height=280, margin={"t": 40, "b": 30, "l": 40, "r": 10})
                display(fig)

    # -- actions ------------------------------------------------------------------------------------
    def resume(self) -> None:
        from pop_nb import service

        job_id = self.job_pick.value
        try:
            service.resume_job(self.settings, job_id, self.from_task.value)
            self.message.value = (
                f"resumed {html.escape(job_id)} from {html.escape(self.from_task.value or '')}"
            )
        except Exception as exc:  # shown, not raised: a button has no caller to catch it
            self.message.value = f"<span style='color:{STATE['failed']}'>{html.escape(str(exc))}</span>"
        self._refresh_jobs()

    def cancel(self) -> None:
        from pop_nb import service

        job_id = self.job_pick.value
        try:
            service.cancel(self.settings, job_id, grace_s=5, wait=False)
            self.message.value = f"cancelled {html.escape(job_id)}"
        except Exception as exc:
            self.message.value = f"<span style='color:{STATE['failed']}'>{html.escape(str(exc))}</span>"
        self._refresh_jobs()

    def _follow(self) -> None:
        while not self._stop.wait(self.refresh_s):
            if self.live.value:
                try:
                    self._refresh_jobs()  # the pipelines are read again by the refresh button
                except Exception:  # a folder moving under us: the next round catches up
                    continue

    def stop(self) -> None:
        self._stop.set()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def dashboard(data_dir: Path | str | None = None, refresh_s: float = 5.0) -> Dashboard:
    """The dashboard over ``data_dir`` (default: the project's ``pipeline-data``); display it in a cell."""
    return Dashboard(data_dir, refresh_s)
