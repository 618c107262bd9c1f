"""A job's view in JupyterLab for what stops a job: a budget (Lab raises it, where only the CLI could) and
a cancel (the stopped stage reads as cancelled, not failed)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_lab import BADGE, TOKEN, command, open_lab, shot, steady
from tests.conftest import Project, wait_for

pytestmark = [pytest.mark.slow]

ACTIONS = ".pop-JobView-actions"


def test_a_job_stopped_by_its_budget_is_resumed_with_a_larger_one_from_its_view(
    tmp_path: Path, browser: Any
) -> None:
    from selenium.webdriver.common.keys import Keys

    from pop_nb.testing.lab import jupyter_lab

    project = Project(tmp_path / "project")
    project.pipeline(
        "costly",
        {"a": {"cells": [("inference", "pop.output({'text': pop.chat('Write an essay').content})")]}},
        llm={"model": "mock/gpt-4o", "mock_responses": {"*": {"inference": "An essay."}}},
        budget_usd=0.000001,
    )
    project.run("costly", job_id="b1")
    assert project.job("b1").status.error.type == "BudgetExceeded"
    d = browser
    with jupyter_lab(project.root, tmp_path, TOKEN) as url:
        open_lab(d, url)
        command(d, "pop:open-job", {"id": "b1"})
        error = wait_for(lambda: d.find_elements("css selector", ".pop-Error"), 60)[0]
        assert error.text.count("BudgetExceeded") == 1, error.text  # once, not "X: X: ..."
        assert "Or here: a new budget above" in error.text  # the fix says how, in Lab too
        # the grid is reachable with the keyboard: a square is a button Enter opens
        cell = d.find_element("css selector", ".pop-Grid td[data-stage='inference']")
        assert cell.get_attribute("tabindex") == "0" and cell.get_attribute("role") == "button"
        empty = d.find_element("css selector", ".pop-Grid td.pop-Cell-empty")
        assert empty.get_attribute("tabindex") in (None, "-1")  # nothing to open: not a stop
        cell.send_keys(Keys.ENTER)
        opened = "return window.jupyterapp.shell.currentWidget?.context?.path || ''"
        wait_for(lambda: d.execute_script(opened).endswith("b1/tasks/a/04-inference.ipynb"), 60)
        command(d, "pop:open-job", {"id": "b1"})  # back to the view
        resume = wait_for(lambda: d.find_elements("css selector", f"{ACTIONS} button.jp-mod-accept"), 30)[0]
        assert resume.text == "Resume with this budget" and not resume.is_enabled()  # as it is: no use
        field = d.find_element("css selector", f"{ACTIONS} .pop-Budget input")
        field.send_keys("0.5")
        wait_for(lambda: resume.is_enabled(), 10)
        shot(d, "budget-1-raise")
        resume.click()
        wait_for(steady(lambda: any("done" in e.text for e in d.find_elements("css selector", BADGE))), 90)
        assert not d.find_elements("css selector", ".pop-Error")
        shot(d, "budget-2-done")
    seed = json.loads((project.data / "complete" / "b1" / "seed.json").read_text())
    assert seed["budget_usd"] == 0.5 and project.job("b1").outputs() == {"a": {"text": "An essay."}}


def test_a_job_failing_in_the_background_is_a_notification_and_a_count_on_the_panel_icon(
    tmp_path: Path, browser: Any
) -> None:
    from selenium.common.exceptions import ElementNotInteractableException

    from pop_nb.testing.lab import jupyter_lab
    from tests.conftest import WAIT_FOR_GO

    project = Project(tmp_path / "project")
    go = tmp_path / "go"
    cells = [("inference", WAIT_FOR_GO.format(go=str(go)) + "raise ValueError('the source was empty')")]
    project.pipeline("fragile", {"a": {"cells": cells}})
    d = browser
    with jupyter_lab(project.root, tmp_path, TOKEN) as url:
        project.run("fragile", job_id="n1", wait=False)
        open_lab(d, url)  # the file browser shows; the Pipelines panel is not open
        icon = ".jp-SideBar .lm-TabBar-tab[data-id='pop-pipelines']"
        wait_for(lambda: d.find_elements("css selector", icon), 60)
        wait_for(lambda: (project.data / "current" / "n1").is_dir(), 60)
        go.write_text("go")

        def toasts() -> list[Any]:
            return [t for t in d.find_elements("css selector", ".Toastify__toast") if "n1 failed" in t.text]

        toast = wait_for(steady(toasts), 90)[0]
        assert "a / inference: ValueError" in toast.text
        tab = d.find_element("css selector", icon)
        assert "pop-has-news" in tab.get_attribute("class") and tab.get_attribute("data-pop-unseen") == "1"
        button = toast.find_element("xpath", ".//button[normalize-space()='Open job']")

        def clicked() -> bool:  # once the toast has slid in
            try:
                button.click()
            except ElementNotInteractableException:
                return False
            return True

        time.sleep(1)
        shot(d, "notify-1-failed")
        wait_for(clicked, 30, every=0.2)
        current = "return window.jupyterapp.shell.currentWidget.id"
        wait_for(lambda: d.execute_script(current) == "pop-job-n1", 30)
        d.find_element("css selector", icon).click()  # the panel seen: the count goes
        classes = lambda: d.find_element("css selector", icon).get_attribute("class")  # noqa: E731
        wait_for(lambda: "pop-has-news" not in classes(), 30)
        assert d.find_element("css selector", icon).get_attribute("data-pop-unseen") is None


def test_run_pipeline_from_the_file_browser_on_its_pipeline_yaml(tmp_path: Path, browser: Any) -> None:
    """jupyter-scheduler's "Create job", for a pipeline: the file browser's context menu on a
    pipeline.yaml (or a task notebook) offers Run pipeline <slug>..., and the form opens on it."""
    import shutil

    from selenium.webdriver.common.action_chains import ActionChains

    from pop_nb.testing.lab import jupyter_lab
    from tests.conftest import REPO

    root = tmp_path / "project"
    (root / "pipelines").mkdir(parents=True)
    shutil.copytree(REPO / "pop_nb" / "templates" / "hello", root / "pipelines" / "hello")
    d = browser

    def shown(css: str) -> list[Any]:  # Lab keeps more than one listing; the one on screen
        return [e for e in d.find_elements("css selector", css) if e.is_displayed()]

    with jupyter_lab(root, tmp_path, TOKEN) as url:
        open_lab(d, url, "pipelines/hello")
        item = ".jp-DirListing-item[title*='pipeline.yaml']"
        ActionChains(d).context_click(wait_for(lambda: shown(item), 60)[0]).perform()
        entry = ".lm-Menu-item[data-command='pop:run-pipeline-of-file']"
        wait_for(lambda: d.find_elements("css selector", entry), 30)
        assert d.find_element("css selector", entry).text.strip().startswith("Run pipeline hello")
        shot(d, "file-1-context-menu")
        d.find_element("css selector", entry).click()
        picked = wait_for(lambda: d.find_elements("css selector", ".jp-Dialog .pop-RunForm select"), 30)[0]
        assert picked.get_attribute("value") == "hello"
        d.find_element("css selector", ".jp-Dialog .jp-mod-reject").click()
        # a file that is not the definition nor a notebook: not offered
        wait_for(lambda: not d.find_elements("css selector", ".jp-Dialog"), 30)
        other = ".jp-DirListing-item[title*='mock-responses.yaml']"
        ActionChains(d).context_click(wait_for(lambda: shown(other), 60)[0]).perform()
        wait_for(lambda: d.find_elements("css selector", ".lm-Menu-item"), 30)
        assert not [e for e in d.find_elements("css selector", entry) if e.is_displayed()]
