"""A running stage is visible in JupyterLab: the job view follows its output live, a click on its running
square follows it again after closing, and its notebook opens as it stands while it still runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_lab import TOKEN, command, open_lab, shot, steady
from tests.conftest import Project, wait_for

pytestmark = [pytest.mark.slow]

LOG = "#pop-job-l1 .pop-LiveLog"
PATH = "const w = window.jupyterapp.shell.currentWidget; return w?.context ? w.context.path : null"


def test_the_running_stage_is_followed_live_and_opens_as_it_stands(tmp_path: Path, browser: Any) -> None:
    from pop_nb.testing.lab import jupyter_lab

    project = Project(tmp_path / "project")
    go = tmp_path / "go"
    cell = (
        "import pathlib, time\nprint('line one', flush=True)\nn = 0\n"
        f"while not pathlib.Path({str(go)!r}).exists():\n"
        "    n += 1\n    print(f'tick {n}', flush=True)\n    time.sleep(0.2)\n"
        "print('line two')\npop.output(n)"
    )
    project.pipeline("live", {"a": {"cells": [("inference", cell)]}})
    d = browser

    def shown() -> str:
        found = d.find_elements("css selector", f"{LOG} .pop-LiveLog-text")
        return str(found[0].text) if found else ""

    with jupyter_lab(project.root, tmp_path, TOKEN) as url:
        project.run("live", job_id="l1", wait=False)
        open_lab(d, url)
        command(d, "pop:open-job", {"id": "l1"})
        # followed without a click: the running stage's output, growing
        wait_for(steady(lambda: "line one" in shown()), 90)
        wait_for(steady(lambda: "tick 3" in shown()), 30)
        head = d.find_element("css selector", f"{LOG} .pop-LiveLog-head").text
        assert "a / inference" in head and "running" in head
        shot(d, "live-1-following")
        # closed, then followed again by a click on the running square
        d.find_element("css selector", f"{LOG} button[title='Stop following this stage']").click()
        wait_for(lambda: not d.find_elements("css selector", LOG), 10)
        square = d.find_element("css selector", "#pop-job-l1 .pop-Grid td[data-stage='inference']")
        assert "follow its output" in square.get_attribute("aria-label")
        square.click()
        wait_for(steady(lambda: "tick" in shown()), 30)
        # its notebook as it stands: opened as the job's record, with the output so far
        button = d.find_element(
            "xpath", "//div[contains(@class,'pop-LiveLog')]//button[contains(., 'as it stands')]"
        )
        button.click()
        wait_for(lambda: d.execute_script(PATH) == "pop-job:l1/tasks/a/04-inference.ipynb", 30)
        text = "return window.jupyterapp.shell.currentWidget.node.innerText"
        wait_for(lambda: "line one" in d.execute_script(text), 30)
        assert (project.data / "current/l1").is_dir()  # it still runs
        shot(d, "live-2-notebook-as-it-stands")
        command(d, "pop:open-job", {"id": "l1"})
        go.write_text("go")
        wait_for(steady(lambda: "line two" in shown()), 60)
        wait_for(
            steady(lambda: "done" in d.find_element("css selector", f"{LOG} .pop-LiveLog-head").text), 30
        )
        shot(d, "live-3-done")
