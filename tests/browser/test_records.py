"""A job's record in JupyterLab: a stage notebook opened while its job runs stays valid when the job ends
and its folder moves (saving says read-only, a reload restores the tab); looking starts no kernel and
writes nothing into the job; its outputs are trusted; "Open a copy to experiment" gives an editable copy
with a kernel; a task notebook's toolbar runs its pipeline."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.browser.test_lab import TOKEN, command, open_lab, shot, steady
from tests.conftest import WAIT_FOR_GO, Project, wait_for

pytestmark = [pytest.mark.slow]

RECORD = "pop-job:r1/tasks/a/04-inference.ipynb"
CURRENT = "window.jupyterapp.shell.currentWidget"
PATH = f"const w = {CURRENT}; return w?.context ? w.context.path : null"
# a Javascript output is rendered as such only in a trusted notebook (else as its text/plain)
PROBE = (
    "from IPython.display import Javascript, display\n"
    "display(Javascript(\"document.body.dataset.popProbe = 'ran'\"))"
)


def sessions(d: Any) -> list[Any]:
    """The kernels' sessions the server has, asked from the page (its cookie is the login)."""
    return d.execute_async_script(  # type: ignore[no-any-return]
        "const done = arguments[0];"
        "window.jupyterapp.serviceManager.sessions.refreshRunning()"
        ".then(() => done([...window.jupyterapp.serviceManager.sessions.running()].map(s => s.path)))"
    )


def test_a_stage_notebook_stays_valid_read_only_and_kernel_free_as_its_job_moves(
    tmp_path: Path, browser: Any
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    from pop_nb.testing.lab import jupyter_lab

    project = Project(tmp_path / "project")
    go = tmp_path / "go"
    project.pipeline(
        "slow",
        {
            "a": {"cells": [("inference", f"{PROBE}\nprint('the answer is 42')\npop.output({{'n': 42}})")]},
            "b": {"needs": ["a"], "cells": [("inference", WAIT_FOR_GO.format(go=str(go)) + "pop.output(1)")]},
        },
    )
    d = browser
    d.set_script_timeout(30)
    with jupyter_lab(project.root, tmp_path, TOKEN) as url:
        project.run("slow", job_id="r1", wait=False)
        wait_for(lambda: (project.data / "current/r1/tasks/a/04-inference.ipynb").is_file(), 120)
        open_lab(d, url)
        command(d, "pop:open-job", {"id": "r1"})
        square = wait_for(lambda: d.find_elements("css selector", ".pop-Cell-open[data-task='a']"), 60)[0]
        square.click()
        wait_for(lambda: d.execute_script(PATH) == RECORD, 60)
        wait_for(lambda: "the answer is 42" in d.execute_script(f"return {CURRENT}.node.innerText"), 60)
        caption = d.execute_script(f"return {CURRENT}.title.caption")
        assert RECORD in caption, caption  # on hover: the job and the task, not only the file's name
        # trusted (its Javascript output is rendered), no kernel, locked cells, a note and the copy action
        assert d.find_elements("css selector", ".jp-RenderedJavaScript.jp-mod-trusted")
        assert "IPython.core.display.Javascript object" not in d.execute_script(
            f"return {CURRENT}.node.innerText"
        )
        assert d.execute_script(f"return {CURRENT}.sessionContext.session") is None
        assert sessions(d) == []
        toolbar = d.execute_script(f"return {CURRENT}.toolbar.node.innerText")
        assert "Read-only record of job r1" in toolbar and "Open a copy to experiment" in toolbar
        assert d.execute_script(f"return {CURRENT}.context.model.readOnly") is True
        shot(d, "record-1-open-while-running")

        # the job ends and its folder moves to complete/: the tab still reads, Save says read-only
        go.write_text("go")
        wait_for(lambda: (project.data / "complete/r1").is_dir(), 120)
        assert not (project.data / "current/r1").exists()
        d.find_element("css selector", ".jp-Notebook").click()
        ActionChains(d).key_down(Keys.CONTROL).send_keys("s").key_up(Keys.CONTROL).perform()
        time.sleep(2)  # Lab's Save is off for a read-only document: no "File Save Error", nothing written
        assert not d.find_elements("css selector", ".jp-Dialog"), d.find_element(
            "css selector", ".jp-Dialog"
        ).text
        assert "read-only" in d.execute_script(f"return {CURRENT}.node.innerText")
        shot(d, "record-2-after-save-and-move")
        command(d, "docmanager:reload")  # read again from wherever the job is now
        time.sleep(1)
        assert not d.find_elements("css selector", ".jp-Dialog .jp-mod-warn")  # no "File Load Error"

        # a reload of the page restores the tab from the moved job, still without a kernel
        time.sleep(2)  # Lab saves the layout shortly after a change
        d.get(f"{url}/lab?token={TOKEN}")
        wait_for(lambda: d.execute_script("return !!window.jupyterapp"), 90)
        wait_for(
            steady(
                lambda: any(
                    "the answer is 42" in e.text for e in d.find_elements("css selector", ".jp-Notebook")
                )
            ),
            90,
        )
        assert not d.find_elements("css selector", ".jp-Dialog")  # no 404 about a vanished folder
        assert sessions(d) == []
        shot(d, "record-3-restored-after-move")

        # looking wrote nothing into the job
        assert not [p for p in project.data.rglob(".ipynb_checkpoints")], "checkpoints in the job folder"

        # Open a copy: an editable notebook under scratch/, with a kernel, the record untouched
        command(d, "docmanager:open", {"path": RECORD, "factory": "pop-nb record"})
        wait_for(lambda: d.execute_script(PATH) == RECORD, 60)
        button = wait_for(
            steady(lambda: [b for b in d.find_elements("css selector", ".pop-OpenCopy") if b.is_displayed()]),
            30,
        )[0]
        button.click()
        wait_for(steady(lambda: opened(d, "scratch/r1/a-04-inference.ipynb")), 60)
        wait_for(lambda: "scratch/r1/a-04-inference.ipynb" in sessions(d), 60)
        assert d.execute_script(f"return {CURRENT}.context.model.readOnly") is False
        shot(d, "record-4-copy")
    assert (project.root / "scratch/r1/a-04-inference.ipynb").is_file()


def opened(d: Any, path: str) -> bool:
    """Whether ``path`` is the current tab, accepting Lab's "Select Kernel" as a user would."""
    for accept in d.find_elements("css selector", ".jp-Dialog .jp-mod-accept"):
        accept.click()
    return bool(d.execute_script(PATH) == path)


def test_a_task_notebooks_toolbar_runs_its_pipeline(tmp_path: Path, browser: Any) -> None:
    from pop_nb.testing.lab import jupyter_lab

    project = Project(tmp_path / "project")
    task = project.pipeline("tiny", {"a": {}}) / "tasks/a.ipynb"
    notebook = nbformat.read(task, as_version=4)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, task)
    nbformat.write(notebook, project.root / "other.ipynb")  # the same notebook outside a pipeline: no button
    d = browser
    with jupyter_lab(project.root, tmp_path, TOKEN) as url:
        open_lab(d, url)
        command(d, "docmanager:open", {"path": "other.ipynb"})
        wait_for(steady(lambda: opened(d, "other.ipynb")), 60)
        time.sleep(1)
        assert not [b for b in d.find_elements("css selector", ".pop-RunFromNotebook") if b.is_displayed()]
        command(d, "docmanager:open", {"path": "pipelines/tiny/tasks/a.ipynb"})
        wait_for(steady(lambda: opened(d, "pipelines/tiny/tasks/a.ipynb")), 60)
        button = wait_for(
            steady(
                lambda: [
                    b for b in d.find_elements("css selector", ".pop-RunFromNotebook") if b.is_displayed()
                ]
            ),
            30,
        )[0]
        shot(d, "record-5-task-toolbar")
        button.click()
        picked = wait_for(lambda: d.find_elements("css selector", ".jp-Dialog select"), 30)[0]
        assert picked.get_attribute("value") == "tiny"
