"""The live job widget: a task x stage grid in colour, progress, the current stage, running cost, a
link to every executed stage notebook, and, on failure, the error with the failing cell.

It follows the job's ``tasks-status.json`` from a background thread, so the kernel stays free (and
a cell blocked in ``job.wait()`` still sees it move). :func:`render_job` is the pure HTML part.
"""

from __future__ import annotations

import html
import json
import os
import threading
from pathlib import Path
from typing import Any

from pop_nb.models.lifecycle import activity
from pop_nb.models.pipeline import STAGES
from pop_nb.models.status import JobStatus
from pop_nb.widgets.theme import EMPTY, ERROR_BG, GAP, STATE, TRACK, state_fill

SHORT = {
    "ingestion": "ingest",
    "preProcessing": "pre",
    "promptTemplating": "prompt",
    "inference": "infer",
    "parsing": "parse",
    "validateStructure": "v.struct",
    "validateQuality": "v.qual",
    "critique": "critique",
    "refine": "refine",
    "finalValidation": "final",
    "integration": "integr",
}


def _link(job_dir: Path, notebook: str | None, base: Path) -> str | None:
    """The attributes of a link that opens a stage notebook in a Lab tab: in Lab with pop-nb's extension,
    the job's read-only record (``pop-job:<id>/...``, valid wherever the job's folder moves, no kernel),
    through Lab's command linker; elsewhere the ``href``, relative to the notebook showing the widget."""
    if not notebook:
        return None
    target = job_dir / notebook
    try:
        href = os.path.relpath(target, base)
    except ValueError:
        href = str(target)
    record = json.dumps({"path": f"pop-job:{job_dir.name}/{notebook}", "factory": "pop-nb record"})
    return (
        f'href="{html.escape(href)}" data-commandlinker-command="docmanager:open" '
        f'data-commandlinker-args="{html.escape(record)}"'
    )


def show_html(view: Any, markup: str, text: str = "") -> None:
    """Show ``markup`` in an ``ipywidgets.Output`` (safe from any thread): JupyterLab renders it, so its
    relative links open files in Lab tabs."""
    view.outputs = (
        {"output_type": "display_data", "data": {"text/html": markup, "text/plain": text}, "metadata": {}},
    )


def grid(status: JobStatus) -> dict[str, dict[str, dict[str, Any]]]:
    """task -> stage -> {state, runs, notebook}: the latest run of each stage (refine passes counted)."""
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for name, task in status.tasks.items():
        row: dict[str, dict[str, Any]] = {}
        for run in sorted(task.stages.values(), key=lambda r: (r.started_at or "", r.refinement)):
            cell = row.setdefault(run.stage, {"runs": 0})
            cell.update(state=run.state, notebook=run.notebook, refinement=run.refinement)
            cell["runs"] += 1
        table[name] = row
    return table


def render_job(status: JobStatus, job_dir: Path, base: Path | None = None) -> str:
    """The widget's HTML for one moment of the job."""
    base = base or Path.cwd()
    colour = STATE.get(status.state, STATE["pending"])
    where = f"{status.current_task}/{status.current_stage}" if status.current_task else ""
    totals = status.totals
    parts = [
        '<div class="pop-job" style="font-family: var(--jp-ui-font-family, sans-serif); font-size: 12px">',
        f"<div><b>{html.escape(status.job_id)}</b> &middot; {html.escape(status.pipeline)} &middot; "
        f'<span class="pop-state" style="color:{colour}"><b>{status.state}</b></span> '
        f"{' &middot; ' + html.escape(where) if where else ''} &middot; {totals.calls} calls, "
        f"{totals.input_tokens}+{totals.output_tokens} tokens, "
        f'<b class="pop-cost">{html.escape(totals.cost_text(4))}</b>'
        + (
            f' &middot; <span class="pop-saved">{html.escape(totals.saved_text(4))}</span>'
            if totals.cache_hits
            else ""
        )
        + "</div>",
        f'<div style="background:{TRACK};width:100%;height:6px;margin:4px 0">'
        f'<div class="pop-progress" style="background:{colour};width:{status.progress}%;height:6px">'
        "</div></div>",
        '<table style="border-collapse:collapse"><tr><th></th>',
    ]
    cells = grid(status)
    used = [s for s in STAGES if any(s in row for row in cells.values())] or list(STAGES)
    parts += [f'<th style="padding:0 4px;font-weight:normal">{SHORT[s]}</th>' for s in used]
    parts.append("</tr>")
    for name, task in status.tasks.items():
        parts.append(f'<tr><td style="padding-right:6px"><b>{html.escape(name)}</b> {task.state}</td>')
        for stage in used:
            cell = cells[name].get(stage)
            if cell is None:
                parts.append(f'<td style="background:{EMPTY};border:1px solid {GAP}"></td>')
                continue
            label = f"&times;{cell['runs']}" if cell["runs"] > 1 else "&nbsp;"
            link = _link(job_dir, cell.get("notebook"), base)
            inner = (  # the whole square is the link: Lab opens the stage notebook in a tab
                f'<a {link} title="open {html.escape(cell.get("notebook") or "")}" '
                f'style="display:block;color:#fff;text-decoration:none;line-height:22px">{label}</a>'
                if link
                else label
            )
            parts.append(
                f'<td class="pop-cell" data-task="{html.escape(name)}" data-stage="{stage}" '
                f'data-state="{cell["state"]}" title="{stage}: {cell["state"]}" '
                f'style="background:{state_fill(cell["state"])};min-width:38px;'
                f'text-align:center;border:1px solid {GAP}">{inner}</td>'
            )
        parts.append("</tr>")
    parts.append("</table>")
    if status.error:
        err = status.error
        cancelled = err.type == "Cancelled"
        where = "/".join(part for part in (err.task, err.stage) if part)
        parts.append(
            f'<div class="pop-error" style="color:{STATE["cancelled" if cancelled else "failed"]};'
            f'margin-top:4px"><b>{html.escape(err.type)}</b>'
            f"{' in ' + html.escape(where) if where else ''}: {html.escape(err.message[:500])}</div>"
        )
        if err.cell_source is not None:
            label = f"In [{err.exec_count}]" if err.exec_count is not None else "the failing cell"
            parts.append(
                f'<div class="pop-failing-cell">{label}:</div>'
                f'<pre style="background:{ERROR_BG};padding:4px;margin:2px 0">'
                f"{html.escape(err.cell_source)}\n"
                f"&rarr; {html.escape(err.type)}: {html.escape(err.message[:500])}</pre>"
            )
        link = _link(job_dir, err.notebook, base)
        if link:
            what = "the notebook where it stopped" if cancelled else "the failed notebook"
            parts.append(f"<a {link}>open {what}</a>")
        if err.fix:
            parts.append(f'<div class="pop-fix"><b>fix:</b> {html.escape(err.fix)}</div>')
    parts.append("</div>")
    return "".join(parts)


class JobWidget:
    """Follows a job until it ends (or :meth:`stop`), from a background thread.

    While the job runs, the grid is HTML inside an ``ipywidgets.Output``, which JupyterLab renders with
    its own renderers: a click on a square opens that stage's notebook in a Lab tab (Lab's link handler),
    never by navigating the page. When the job ends, the cell's output is replaced by the final grid as
    plain ``text/html`` (the display is updated by its id), so a saved notebook, nbviewer or GitHub shows
    it without a kernel or a widget manager.
    """

    def __init__(self, job: Any, interval_s: float = 0.5, base: Path | None = None) -> None:
        import ipywidgets

        self.job = job
        self.interval_s = interval_s
        self.base = base or Path.cwd()
        self.view = ipywidgets.Output()
        self.markup = ""
        self.status: JobStatus | None = None
        self.place = "current"  # where its folder was when its status was read
        self._handle: Any = None  # the cell output showing us, once displayed
        self._stop = threading.Event()
        self.update()
        self._thread = threading.Thread(target=self._follow, daemon=True, name=f"pop-widget-{job.id}")
        self._thread.start()

    def update(self) -> None:
        folder = self.job.folder  # it moves when the job ends
        try:
            status = folder.read_status()
        except (OSError, ValueError):  # being replaced this instant
            return
        self.status, self.place = status, folder.place
        markup = render_job(status, folder.path, self.base)
        if markup != self.markup:
            self.markup = markup
            show_html(self.view, markup, f"job {self.job.id}: {status.state} {status.progress}%")

    def _follow(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.update()
            if self.ended:
                self._freeze()
                return

    @property
    def ended(self) -> bool:
        """Nothing left to follow: the job waits at a gate, or has ended, which its folder's move out of
        ``current/`` says (its final status is written just before: a grid frozen then would link its
        notebooks where they no longer are)."""
        if self.status is None:
            return False
        return activity(self.place, self.status.state, has_runner=True) in ("ended", "waiting")

    def _freeze(self) -> None:
        """Replace the live view in the cell by the last grid as static HTML."""
        if self._handle is not None:
            from IPython.display import HTML

            self._handle.update(HTML(self.markup))

    def stop(self) -> None:
        self._stop.set()

    def finish(self) -> None:
        """Stop following, show the job as it is now, and leave it in the cell as static HTML."""
        self.stop()
        self._thread.join(5)
        self.update()
        self._freeze()

    @property
    def state(self) -> str | None:
        return self.status.state if self.status else None

    def _ipython_display_(self) -> None:
        from IPython.display import HTML, display

        if self.ended:  # nothing left to follow: the static grid straight away
            display(HTML(self.markup))
            return
        self._handle = display(self.view, display_id=True)
        if self.ended:  # it ended while being shown
            self._freeze()
