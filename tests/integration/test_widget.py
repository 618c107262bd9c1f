"""The live job widget follows a real job; on failure it shows the error and the failing cell."""

from __future__ import annotations

import html
import json
import os
import re

from pop_nb.widgets import JobWidget, render_job
from tests.conftest import WAIT_FOR_GO, Project, wait_for


def cell_states(markup: str) -> dict[tuple[str, str], str]:
    found = re.findall(r'data-task="([^"]+)" data-stage="([^"]+)" data-state="([^"]+)"', markup)
    return {(task, stage): state for task, stage, state in found}


def test_the_widget_follows_a_running_job(project: Project) -> None:
    go = project.root / "go"
    project.pipeline(
        "two",
        {
            "a": {
                "cells": [
                    ("ingestion", "pop.output(1)"),
                    ("inference", WAIT_FOR_GO.format(go=str(go)) + "pop.output(2)"),
                ]
            },
            "b": {"needs": ["a"], "cells": [("inference", "pop.output(pop.inputs['a'])")]},
        },
    )
    job = project.run("two", wait=False)
    widget = JobWidget(job, interval_s=0.1, base=project.root)
    # it shows the stage running while it runs (the stage waits for our go), and nothing of b yet
    running = wait_for(lambda: (s := cell_states(widget.markup)).get(("a", "inference")) == "running" and s)
    assert ("b", "inference") not in running
    go.touch()
    widget._thread.join(90)  # it stops following by itself once the job has ended
    assert widget.state == "done"
    final = cell_states(widget.markup)
    assert final == {("a", "ingestion"): "done", ("a", "inference"): "done", ("b", "inference"): "done"}
    # each stage links to its executed notebook, relative to where the widget is shown
    href = re.search(r'data-stage="inference"[^>]*><a href="([^"]+)"', widget.markup).group(1)
    assert (project.root / href).resolve() == (job.path / "tasks/a/04-inference.ipynb").resolve()
    # in Lab, the link opens the job's record by its id (its folder has moved since), with no kernel
    args = re.search(r'data-stage="inference"[^>]*><a [^>]*data-commandlinker-args="([^"]+)"', widget.markup)
    assert json.loads(html.unescape(args.group(1))) == {
        "path": f"pop-job:{job.id}/tasks/a/04-inference.ipynb",
        "factory": "pop-nb record",
    }
    assert "100%" in widget.markup and "<b>done</b>" in widget.markup


def test_a_final_status_is_not_an_end_until_the_folder_has_moved(project: Project) -> None:
    """The runner writes a job's final status, then moves its folder out of current/: a widget that
    looked in between goes on following, and its frozen grid links the notebooks where they end up."""
    project.pipeline("one", {"a": {}})
    job = project.run("one")
    assert job.state == "done", job.status.error
    done, still_open = job.path, project.data / "current" / job.id
    done.rename(still_open)  # as between the final status and the move
    widget = JobWidget(job, interval_s=3600, base=project.root)
    try:
        assert widget.state == "done" and not widget.ended
        still_open.rename(done)
        widget.update()
        assert widget.ended
        href = re.search(r'data-stage="inference"[^>]*><a href="([^"]+)"', widget.markup).group(1)
        assert (project.root / href).resolve() == (done / "tasks/a/04-inference.ipynb").resolve()
    finally:
        widget.stop()


def test_a_failure_shows_the_error_and_the_failing_cell(project: Project) -> None:
    project.pipeline("boom", {"t": {"cells": [("inference", "x = {'a': 1}\nx['b']")]}})
    job = project.run("boom")
    markup = render_job(job.status, job.path, base=project.root)
    assert 'class="pop-error"' in markup and "KeyError" in markup and "t/inference" in markup
    assert "x = {&#x27;a&#x27;: 1}" in markup  # the failing cell's source
    link = os.path.relpath(job.path / "tasks/t/04-inference.ipynb", project.root)
    assert re.search(rf'href="{re.escape(link)}" data-commandlinker-[^>]*>open the failed notebook', markup)
