"""What ``pop_nb.batch`` shows in a cell: a live progress bar while the batch runs, then its summary,
left in the cell as static HTML (a saved notebook shows it without a kernel)."""

from __future__ import annotations

import html
import uuid
from typing import Any

from pop_nb.widgets.job import show_html
from pop_nb.widgets.theme import STATE


def money(usd: float) -> str:
    """A cost in an element of its own: Lab typesets text between two "$" as TeX ("$0.0002 this run,
    $0.0003" came out as maths), and MathJax never pairs dollar signs across elements."""
    return f"<span class='pop-cost'>${usd:.6f}</span>"


def render_progress(name: str, progress: Any | None) -> str:
    if progress is None:
        return (
            f"<div class='pop-batch'><b>batch {html.escape(name)}</b>: planning (checking every seed)</div>"
        )
    ended = progress.done + progress.failed
    return (
        f"<div class='pop-batch'><b>batch {html.escape(name)}</b> "
        f"<progress value='{ended}' max='{max(progress.total, 1)}' style='width:12em'></progress> "
        f"{html.escape(progress.line())}</div>"
    )


def render_summary(summary: Any, manifest: list[Any]) -> str:
    """The summary as HTML: the outcome, where jobs ran, the slowest tasks, rejected seeds, failures."""
    e = html.escape
    colour = STATE["done" if summary.failed == 0 and summary.rejected == 0 else "failed"]
    parts = [
        f"<div class='pop-batch'><b style='color:{colour}'>batch {e(summary.name)}</b>: "
        f"{summary.done} done, {summary.failed} failed, {summary.rejected} rejected of {summary.seeds} seeds "
        f"({summary.skipped} already done) in {summary.duration_s:.1f}s on {e(summary.executor)}; "
        f"cost {money(summary.cost_this_run_usd)} this run, {money(summary.cost_usd)} in all</div>"
    ]
    where = sorted({job.where for job in summary.jobs if job.where})
    if where:
        parts.append(f"<div>ran on: {e(', '.join(where))}</div>")
    if summary.slowest_tasks:
        rows = "".join(
            f"<tr><td>{e(t['task'])}</td><td>{t['runs']}</td><td>{t['mean_s']:.2f}s</td><td>{t['max_s']:.2f}s</td></tr>"
            for t in summary.slowest_tasks
        )
        parts.append(
            "<table><tr><th>slowest task</th><th>runs</th><th>mean</th><th>max</th></tr>" + rows + "</table>"
        )
    rejected = [line for line in manifest if line.error]
    if rejected:
        items = "".join(f"<li>{e(line.error)}</li>" for line in rejected)
        parts.append(f"<div>rejected seeds (not submitted):<ul>{items}</ul></div>")
    failed = [job for job in summary.jobs if job.state != "done"]
    if failed:
        rows = "".join(
            f"<tr><td><code>{e(job.job)}</code></td><td>{e(job.state)}</td><td>{e(job.error or '')}</td>"
            f"<td><code>{e(job.resume or '')}</code></td></tr>"
            for job in failed
        )
        parts.append(
            "<table><tr><th>job</th><th>state</th><th>error</th><th>resume</th></tr>" + rows + "</table>"
            "<div>Call <code>pop_nb.batch</code> again with the same seeds to resume every failure.</div>"
        )
    return "".join(parts)


class BatchWidget:
    """Shows a running batch; :meth:`finish` leaves the summary in its place as static HTML."""

    def __init__(self, name: str) -> None:
        import ipywidgets

        self.name = name
        self.view = ipywidgets.Output()
        self.display_id = uuid.uuid4().hex
        self.markup = render_progress(name, None)
        show_html(self.view, self.markup, f"batch {name}")

    def update(self, progress: Any) -> None:
        self.markup = render_progress(self.name, progress)
        show_html(self.view, self.markup, progress.line())

    def finish(self, summary: Any, manifest: list[Any]) -> None:
        from IPython.display import HTML, update_display

        self.markup = render_summary(summary, manifest)
        update_display(HTML(self.markup), display_id=self.display_id)
