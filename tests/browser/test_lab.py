"""JupyterLab in a real browser (Debian's chromium, driven by selenium and chromedriver): a pipeline run
from a notebook cell, followed live; a click on a stage square opens its executed notebook in a Lab tab
without leaving the page; the saved notebook, reopened without a kernel, still shows the grid.

Screenshots go to ``artifacts/browser/`` (kept by CI)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import nbformat
import pytest

from pop_nb.testing.lab import jupyter_lab
from tests.conftest import REPO, needs_programs, wait_for

pytestmark = [pytest.mark.slow]


@pytest.fixture(autouse=True)
def _browser() -> None:
    needs_programs("chromium", "chromedriver", install="apt-get install chromium chromium-driver")


ARTIFACTS = REPO / "artifacts" / "browser"
TOKEN = "pop-browser-test-token"


def start_lab(tmp_path: Path, root: Path, config: dict[str, Any] | None = None) -> Iterator[str]:
    """JupyterLab serving ``root`` with the tests' token; yields its URL."""
    with jupyter_lab(root, tmp_path, TOKEN, config) as url:
        yield url


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """JupyterLab on a copy of the hello project, with a notebook that runs it."""
    root = tmp_path / "project"
    (root / "pipelines").mkdir(parents=True)
    shutil.copytree(REPO / "pop_nb" / "templates" / "hello", root / "pipelines" / "hello")
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                'import pop_nb\njob = pop_nb.run("hello", data={"topic": "tidal power"})'
            )
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    nbformat.write(nb, root / "run.ipynb")
    for url in start_lab(tmp_path, root):
        yield url, root


def shot(driver: object, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))  # type: ignore[attr-defined]


def command(driver: object, name: str, args: dict | None = None) -> None:
    driver.execute_script(  # type: ignore[attr-defined]
        "window.jupyterapp.commands.execute(arguments[0], arguments[1] || {}); return null;", name, args
    )


def steady(check: Any) -> Any:
    """``check``, counting an element Lab re-rendered under us as "not yet" rather than an error."""
    from selenium.common.exceptions import StaleElementReferenceException

    def attempt() -> Any:
        try:
            return check()
        except StaleElementReferenceException:
            return False

    return attempt


def stage_class(driver: Any, stage: str, unless: str) -> str | None:
    """The class of ``stage``'s cell in the open job view's grid, once it no longer says ``unless``."""
    from selenium.webdriver.common.by import By

    found = driver.find_element(By.CSS_SELECTOR, f".pop-Grid td[data-stage='{stage}']").get_attribute("class")
    return found if found and f"pop-state-{unless}" not in found else None


def grids(driver: object) -> list[str]:
    """The job grids in the open notebooks, as HTML (one script, so nothing goes stale between calls)."""
    return driver.execute_script(  # type: ignore[attr-defined, no-any-return]
        "return [...document.querySelectorAll('.jp-OutputArea .pop-job')].map(e => e.innerHTML)"
    )


def saved_notebook(path: Path) -> dict[str, Any] | None:
    """The notebook as Jupyter saved it, or None while it is being written (Jupyter's save truncates the
    file and then writes it: a read in between sees an empty or partial file)."""
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, FileNotFoundError):
        return None


def open_notebook(d: Any, url: str, path: str) -> None:
    """Open ``path`` in Lab and wait until its kernel is idle (choosing Python 3 if Lab asks)."""
    from selenium.webdriver.common.by import By

    d.get(f"{url}/lab/tree/{path}?token={TOKEN}")
    wait_for(
        lambda: d.execute_script("return !!(window.jupyterapp && document.querySelector('.jp-Notebook'))"), 90
    )
    wait_for(lambda: d.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell"), 60)

    def kernel_ready() -> bool:
        for button in d.find_elements(By.CSS_SELECTOR, ".jp-Dialog .jp-mod-accept"):
            button.click()  # "Select Kernel" (Python 3), when Lab asks, as a user would
            return False
        return "Idle" in d.find_element(By.ID, "jp-main-statusbar").text

    wait_for(steady(kernel_ready), 90)


# the current notebook's cells have all run: no "[*]" prompt left
FINISHED = (
    "return [...window.jupyterapp.shell.currentWidget.node.querySelectorAll('.jp-InputPrompt')]"
    ".every(e => !e.textContent.includes('*'))"
)


def test_a_job_run_from_a_cell_in_jupyterlab(lab: tuple[str, Path], browser: object) -> None:
    from selenium.webdriver.common.by import By

    url, root = lab
    d = browser
    open_notebook(d, url, "run.ipynb")
    command(d, "notebook:run-all-cells")
    # it is followed live, then replaced by the final grid (read in one script: the live view re-renders)
    try:
        wait_for(lambda: grids(d), 90)
    except AssertionError:
        shot(d, "0-no-grid")
        raise AssertionError(f"no grid in the cell: {d.page_source[-4000:]}") from None
    shot(d, "1-running")
    wait_for(lambda: any("<b>done</b>" in g for g in grids(d)), 120)
    wait_for(lambda: d.execute_script(FINISHED), 60)  # the cell has ended: the grid is the final one
    shot(d, "2-done")
    squares = d.find_elements(By.CSS_SELECTOR, ".pop-job td.pop-cell a")
    assert squares, d.page_source[-3000:]
    size = squares[0].size
    assert size["width"] >= 30 and size["height"] >= 18  # the whole square is the target
    before = d.current_url
    squares[0].click()
    opened = wait_for(
        steady(
            lambda: [
                t.text
                for t in d.find_elements(By.CSS_SELECTOR, ".lm-TabBar-tab")
                if "ingestion" in t.text or "promptTemplating" in t.text
            ]
        ),
        60,
    )
    assert opened and d.current_url.split("?")[0].startswith(before.split("?")[0].rsplit("/lab", 1)[0])
    shot(d, "3-stage-notebook-open")
    assert d.execute_script("return window.jupyterapp !== undefined")  # the page did not reload
    # the notebook that ran the job still has its outputs; save it, stop its kernel, reopen it
    tab = next(
        t for t in d.find_elements(By.CSS_SELECTOR, ".lm-TabBar-tab") if t.text.startswith("run.ipynb")
    )
    tab.click()  # back to the notebook that ran the job
    wait_for(
        lambda: d.execute_script("return window.jupyterapp.shell.currentWidget.context.path") == "run.ipynb"
    )
    assert grids(d)  # its output is still there
    command(d, "docmanager:save")
    saved = wait_for(
        lambda: (saved_notebook(root / "run.ipynb") or {"cells": [{}]})["cells"][0].get("outputs"), 30
    )
    assert any(
        "text/html" in o.get("data", {}) and "pop-job" in "".join(o["data"]["text/html"]) for o in saved
    )
    assert not any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in saved)
    command(d, "kernelmenu:shutdown")
    d.get(f"{url}/lab/tree/run.ipynb?token={TOKEN}")  # type: ignore[attr-defined]
    grid = wait_for(lambda: grids(d), 90)
    assert "<b>done</b>" in grid[0]
    assert "Error displaying widget" not in d.page_source
    shot(d, "4-reopened")


def open_lab(d: Any, url: str, path: str = "") -> None:
    d.get(f"{url}/lab{'/tree/' + path if path else ''}?token={TOKEN}")
    wait_for(
        lambda: d.execute_script("return !!(window.jupyterapp && document.querySelector('.jp-LabShell'))"), 90
    )


def test_the_pipelines_panel_runs_a_pipeline_and_opens_its_stages(
    lab: tuple[str, Path], browser: Any
) -> None:
    """As a user: the Pipelines panel, Run pipeline..., a seed checked as it is typed, the job followed
    live to done, a stage square clicked: its executed notebook opens in a tab, the page stays."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url, root = lab
    d = browser
    explained = subprocess.run(
        [sys.executable, "-m", "pop_nb.cli", "compile", "hello", "--explain"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert explained.returncode == 0, explained.stderr
    open_lab(d, url)
    wait_for(lambda: d.find_elements(By.CSS_SELECTOR, ".jp-SideBar [data-id='pop-pipelines']"), 60)
    d.find_element(By.CSS_SELECTOR, ".jp-SideBar [data-id='pop-pipelines']").click()  # the sidebar icon
    wait_for(lambda: "live" in d.find_element(By.CSS_SELECTOR, ".pop-Connection").text, 30)
    assert str(root / "pipeline-data") in d.find_element(By.CSS_SELECTOR, ".pop-Panel-dataDir").text
    assert "No jobs yet" in d.find_element(By.CSS_SELECTOR, ".pop-Panel").text
    command(d, "launcher:create")
    wait_for(
        lambda: d.execute_script(
            "return [...document.querySelectorAll('.jp-LauncherCard')].some(e => e.textContent.includes("
            "'Run pipeline'))"
        ),
        30,
    )
    shot(d, "panel-1-empty")

    d.find_element(By.CSS_SELECTOR, ".pop-RunButton").click()
    editor = wait_for(lambda: d.find_elements(By.CSS_SELECTOR, ".jp-Dialog .pop-SeedEditor"), 30)[0]
    verdict = ".jp-Dialog .pop-RunForm-verdict"
    # what the pipeline is for and how it runs, as `pop compile --explain` wrote it, one click away
    about = d.find_element(By.CSS_SELECTOR, ".jp-Dialog .pop-About")
    assert "aligned" in about.text and not about.find_element(By.CSS_SELECTOR, "ol").is_displayed()
    about.find_element(By.CSS_SELECTOR, "summary").click()
    steps = wait_for(
        lambda: [e.text for e in about.find_elements(By.CSS_SELECTOR, ".pop-About-architecture li")]
    )
    assert steps[0].startswith("explain (tasks/explain.ipynb); first, from the seed"), steps
    assert about.find_element(By.CSS_SELECTOR, ".pop-About-architecture li b").text == "explain"
    assert "Writes a short explainer" in about.find_element(By.CSS_SELECTOR, ".pop-About-intention").text
    assert "nothing checks that the text is about the topic" in about.text
    shot(d, "panel-1b-about")
    # it starts from the pipeline's example seed, which fits
    assert json.loads(editor.get_attribute("value")) == {
        "name": "Tidal power",
        "data": {"topic": "tidal power"},
    }
    wait_for(lambda: d.find_element(By.CSS_SELECTOR, verdict).text == "fits hello", 30)
    # a seed the schema refuses is named before anything runs, and Run shows the form again
    editor.send_keys(Keys.CONTROL, "a")
    editor.send_keys('{"data": {"subject": "wave power"}}')
    wait_for(lambda: "'topic' is a required property" in d.find_element(By.CSS_SELECTOR, verdict).text, 30)
    # the verdict sits above the editor, seen while typing, however long the About fold above it
    said, typed = d.find_element(By.CSS_SELECTOR, verdict), d.find_element(By.CSS_SELECTOR, ".pop-SeedEditor")
    assert said.location["y"] < typed.location["y"] and said.is_displayed()
    shot(d, "panel-2-seed-refused")
    d.find_element(By.CSS_SELECTOR, ".jp-Dialog .jp-mod-accept").click()
    again = wait_for(lambda: d.find_elements(By.CSS_SELECTOR, ".jp-Dialog .pop-SeedEditor"), 30)[0]
    assert "subject" in again.get_attribute("value")  # what was typed is kept
    assert not (root / "pipeline-data" / "current").exists() or not any(
        (root / "pipeline-data/current").iterdir()
    )
    again.send_keys(Keys.CONTROL, "a")
    again.send_keys('{"name": "Wave power", "data": {"topic": "wave power"}}')
    wait_for(lambda: d.find_element(By.CSS_SELECTOR, verdict).text == "fits hello", 30)
    d.find_element(By.CSS_SELECTOR, ".jp-Dialog .jp-mod-accept").click()

    # the job's view opens, and the panel follows the job live (no reload, no refresh click)
    wait_for(lambda: d.find_elements(By.CSS_SELECTOR, ".pop-JobView .pop-Grid"), 60)
    row = ".pop-JobRow .pop-JobRow-name"
    wait_for(steady(lambda: "Wave power" in d.find_element(By.CSS_SELECTOR, row).text), 30)
    seen: set[str] = set()

    def state_seen() -> bool:
        seen.add(d.find_element(By.CSS_SELECTOR, ".pop-JobRow .pop-Badge").text)
        return "done" in seen

    wait_for(steady(state_seen), 120, every=0.1)
    assert seen & {"pending", "running"}, seen  # it was seen moving, not only at its end
    wait_for(
        steady(lambda: "done" in d.find_element(By.CSS_SELECTOR, ".pop-JobView-meta .pop-Badge").text), 30
    )
    shot(d, "panel-3-done")
    assert d.find_element(By.CSS_SELECTOR, ".pop-JobView-cost").text.startswith("$")
    # its tab says which job it is (name and the end of its id; the whole id on hover)
    tab = d.execute_script(
        "const t = window.jupyterapp.shell.currentWidget.title; return {label: t.label, caption: t.caption}"
    )
    assert tab["label"].startswith("Wave power (…") and tab["caption"].startswith("pop-nb job hello-"), tab
    # a Markdown product opens rendered, not as source in the text editor (the products are listed once
    # the view has read the ended job's detail, a moment after its badge says done)
    wait_for(lambda: d.find_elements(By.CSS_SELECTOR, ".pop-Products a"), 30)[0].click()
    opened = "return window.jupyterapp.shell.currentWidget?.context?.path || ''"
    wait_for(lambda: d.execute_script(opened).endswith("products/explainer.md"), 60)
    wait_for(
        lambda: d.find_elements(
            By.CSS_SELECTOR,
            ".jp-MarkdownViewer .jp-RenderedMarkdown h1, .jp-MarkdownViewer .jp-RenderedMarkdown p",
        ),
        30,
    )
    assert not d.find_elements(By.CSS_SELECTOR, ".jp-FileEditor")
    d.find_element(By.CSS_SELECTOR, ".pop-JobRow").click()  # back to the job's view
    current_id = "return window.jupyterapp.shell.currentWidget.id"
    wait_for(lambda: d.execute_script(current_id).startswith("pop-job-"))
    # what a done job allows, as the server says: run again from a task (no cancel, no approve)
    buttons = [b.text for b in d.find_elements(By.CSS_SELECTOR, ".pop-JobView-actions button")]
    assert buttons == ["Resume", "Run again with these inputs", "Archive", "Delete"], buttons
    picked = d.find_element(By.CSS_SELECTOR, ".pop-JobView-actions select")
    assert (
        picked.get_attribute("value") == "explain"
    )  # from its first task: a done job has no "where it stopped"

    # a refine pass is listed and opens too; a square opens its stage's notebook in a tab
    runs = [a.text for a in d.find_elements(By.CSS_SELECTOR, ".pop-RunLink")]
    assert "explain / inference" in runs and any(".r1" in r for r in runs), runs
    d.execute_script("window.__popMarker = 1")
    d.find_element(By.CSS_SELECTOR, ".pop-Cell-open[data-stage='inference']").click()
    wait_for(
        lambda: d.execute_script(
            "return window.jupyterapp.shell.currentWidget?.context?.path || ''"
        ).endswith("tasks/explain/04-inference.ipynb"),
        60,
    )
    path = d.execute_script("return window.jupyterapp.shell.currentWidget.context.path")
    assert path.startswith("pop-job:hello-"), path  # the job's record, named by its id (its folder moves)
    assert d.execute_script("return window.__popMarker") == 1  # the page did not navigate
    wait_for(lambda: d.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-OutputArea-output"), 60)
    # it opens as it was written, and looking starts no kernel
    current = "window.jupyterapp.shell.currentWidget"
    time.sleep(1)
    assert d.execute_script(f"return {current}.sessionContext.session") is None
    assert d.execute_script(f"return {current}.context.model.dirty") is False
    assert not d.find_elements(By.CSS_SELECTOR, ".lm-TabBar-tab.jp-mod-dirty")
    shot(d, "panel-4-stage-notebook")

    # the panel's job opens its view again from the list
    d.find_element(By.CSS_SELECTOR, ".pop-JobRow").click()
    wait_for(
        lambda: d.execute_script("return window.jupyterapp.shell.currentWidget.id").startswith("pop-job-")
    )

    # a reload with the panel open from the start (the layout restored): the jobs show, not "No jobs yet"
    time.sleep(2)  # Lab saves the layout shortly after a change
    d.get(f"{url}/lab?token={TOKEN}")
    wait_for(
        steady(lambda: any("Wave power" in e.text for e in d.find_elements(By.CSS_SELECTOR, ".pop-JobRow"))),
        60,
    )

    # run the done job again from its first task, as after a prompt change: one click, and it is done
    # again with its earlier run kept in history/ (the same requests are answered from its ledger at $0)
    d.find_element(By.CSS_SELECTOR, ".pop-JobRow").click()
    resume = wait_for(lambda: d.find_elements(By.CSS_SELECTOR, ".pop-JobView-actions button"), 30)[0]
    assert resume.text == "Resume"
    resume.click()
    again = root / "pipeline-data" / "complete" / path.split(":")[1].split("/")[0]

    def ran_again() -> bool:
        try:
            status = json.loads((again / "tasks-status.json").read_text())
        except (OSError, ValueError):  # moving between current/ and complete/
            return False
        return status["resumes"] == 1 and status["state"] == "done" and (again / "history" / "1").is_dir()

    wait_for(ran_again, 120)
    wait_for(
        steady(lambda: "done" in d.find_element(By.CSS_SELECTOR, ".pop-JobView-meta .pop-Badge").text), 60
    )
    # what the cache saved shows beside what was spent: the resumed run's calls cost nothing
    saved = wait_for(lambda: d.find_elements(By.CSS_SELECTOR, ".pop-JobView-saved"), 30)[0].text
    assert saved.startswith("saved $0.0000") and "cache hits)" in saved, saved
    # its runs: the first with the notebooks it left in history/1/ (one opens as a record), then this one
    runs = wait_for(steady(lambda: d.find_elements(By.CSS_SELECTOR, ".pop-History li")), 30)
    assert [r.get_attribute("data-run") for r in runs] == ["1", "2"]
    assert "Run 1 done" in runs[0].text and "resumed from task explain" in runs[1].text
    shot(d, "panel-5-resumed")
    kept = d.find_element(By.CSS_SELECTOR, ".pop-History li[data-run='1'] a.pop-RunLink")
    assert kept.get_attribute("data-notebook").startswith("history/1/explain/")
    kept.click()
    wait_for(lambda: "/history/1/explain/" in d.execute_script(opened), 60)


BADGE = ".pop-JobView-meta .pop-Badge"


def test_a_running_job_is_cancelled_from_its_view(tmp_path: Path, browser: Any) -> None:
    """As a user: a running job's view, Cancel, confirmed; the view answers at once and shows the job
    cancelled when its end arrives over the event stream (no reload, no refresh click); Resume is then
    what it offers."""
    from selenium.webdriver.common.by import By

    from tests.conftest import WAIT_FOR_GO, Project

    project = Project(tmp_path / "project")
    go = tmp_path / "go"
    project.pipeline(
        "slow", {"a": {"cells": [("inference", WAIT_FOR_GO.format(go=str(go)) + "pop.output(1)")]}}
    )
    d = browser
    for url in start_lab(tmp_path, project.root):
        project.run("slow", job_id="c1", wait=False)  # its runner: a process of its own
        open_lab(d, url)
        command(d, "pop:open-job", {"id": "c1"})
        wait_for(
            steady(lambda: any("running" in e.text for e in d.find_elements(By.CSS_SELECTOR, BADGE))), 90
        )
        buttons = {b.text: b for b in d.find_elements(By.CSS_SELECTOR, ".pop-JobView-actions button")}
        assert sorted(buttons) == ["Cancel", "Run again with these inputs"], sorted(buttons)
        buttons["Cancel"].click()
        confirm = wait_for(lambda: d.find_elements(By.CSS_SELECTOR, ".jp-Dialog .jp-mod-warn"), 30)
        shot(d, "cancel-1-confirm")
        confirm[0].click()
        wait_for(
            steady(lambda: any("cancelled" in e.text for e in d.find_elements(By.CSS_SELECTOR, BADGE))), 60
        )
        assert not d.find_elements(By.CSS_SELECTOR, ".jp-Dialog")  # no error shown
        wait_for(
            steady(
                lambda: (
                    [b.text for b in d.find_elements(By.CSS_SELECTOR, ".pop-JobView-actions button")]
                    == ["Resume", "Run again with these inputs", "Archive", "Delete"]
                )
            ),
            30,
        )
        # the badge and the buttons are what the event carried; the grid follows with the job's detail,
        # fetched once the burst of events is over
        settled = wait_for(steady(lambda: stage_class(d, "inference", unless="running")), 30)
        shot(d, "cancel-2-cancelled")
        assert "pop-state-cancelled" in settled  # stopped, not failed: not red
        assert "failed" not in d.find_element(By.CSS_SELECTOR, ".pop-Runs").text
        assert "Open the failed notebook" not in d.find_element(By.CSS_SELECTOR, ".pop-JobView-body").text
        status = json.loads((project.data / "failed" / "c1" / "tasks-status.json").read_text())
        assert status["state"] == "cancelled" and status["error"]["type"] == "Cancelled"


def test_the_panel_says_so_when_the_server_has_no_pop_extension(tmp_path: Path, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    root = tmp_path / "project"
    root.mkdir()
    for url in start_lab(tmp_path, root, {"ServerApp": {"jpserver_extensions": {"pop_nb": False}}}):
        open_lab(browser, url)
        browser.execute_script("window.jupyterapp.shell.activateById('pop-pipelines')")
        message = wait_for(
            lambda: browser.find_elements(By.CSS_SELECTOR, ".pop-Panel .pop-Message-error"), 60
        )[0]
        assert "no pop-nb extension" in message.text and "pip install pop-nb" in message.text
        assert "no server extension" in browser.find_element(By.CSS_SELECTOR, ".pop-Connection").text
        assert not browser.find_elements(By.CSS_SELECTOR, ".pop-RunButton")  # nothing offered that would fail
        shot(browser, "panel-5-no-server-extension")


DENY_POP = """
from jupyter_server.auth.authorizer import Authorizer


class DenyPop(Authorizer):
    def is_authorized(self, handler, user, action, resource):
        return resource != "pop"
"""


def test_the_panel_says_so_when_the_user_may_not_use_pop(
    tmp_path: Path, browser: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from selenium.webdriver.common.by import By

    root = tmp_path / "project"
    (root / "pipelines").mkdir(parents=True)
    (tmp_path / "deny_pop.py").write_text(DENY_POP)
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    labs = start_lab(tmp_path, root, {"ServerApp": {"authorizer_class": "deny_pop.DenyPop"}})
    for url in labs:
        open_lab(browser, url)
        browser.execute_script("window.jupyterapp.shell.activateById('pop-pipelines')")
        found = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, ".pop-Panel .pop-Message-error"), 60)
        assert "not allowed to use pop-nb" in found[0].text
        assert "not allowed" in browser.find_element(By.CSS_SELECTOR, ".pop-Connection").text
        assert not browser.find_elements(By.CSS_SELECTOR, ".pop-RunButton")
        shot(browser, "panel-6-not-allowed")


BATCH = "return [...document.querySelectorAll('.jp-OutputArea .pop-batch')].map(e => e.textContent)"


def saved_summary(path: Path) -> bool:
    """The saved batch notebook's run cell holds the summary as HTML."""
    nb = saved_notebook(path)
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"] if nb else []
    return len(cells) > 1 and any(
        "3 done" in "".join(o.get("data", {}).get("text/html", "")) for o in cells[1]["outputs"]
    )


def test_the_batch_notebook_in_jupyterlab(tmp_path: Path, browser: Any) -> None:
    """notebooks/04-batch.ipynb run as a user would: a live progress bar, then the summary, which the
    saved notebook keeps as HTML (no widget needed to show it)."""
    from tests.notebooks.golden import scratch_project

    root = scratch_project(tmp_path)
    path = root / "notebooks" / "04-batch.ipynb"
    d = browser
    for url in start_lab(tmp_path, root):
        open_notebook(d, url, "notebooks/04-batch.ipynb")
        command(d, "notebook:run-all-cells")
        wait_for(lambda: d.execute_script(BATCH), 90)
        shot(d, "batch-1-running")
        wait_for(lambda: any("3 done, 0 failed" in text for text in d.execute_script(BATCH)), 240)
        wait_for(lambda: d.execute_script(FINISHED), 60)
        shot(d, "batch-2-summary")
        # shown as written, not typeset: Lab reads text between two "$" as TeX
        assert any("this run, $0.000" in text for text in d.execute_script(BATCH)), d.execute_script(BATCH)
        command(d, "docmanager:save")
        wait_for(partial(saved_summary, path), 30)
        outputs = [
            o
            for c in wait_for(partial(saved_notebook, path))["cells"]
            if c["cell_type"] == "code"
            for o in c["outputs"]
        ]
        assert not any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
        command(d, "kernelmenu:shutdown")
        open_lab(d, url, "notebooks/04-batch.ipynb")
        wait_for(lambda: any("3 done" in text for text in d.execute_script(BATCH)), 60)
        assert "Error displaying widget" not in d.page_source
        shot(d, "batch-3-reopened")


PLOTS = "return document.querySelectorAll('.jp-OutputArea .js-plotly-plot').length"
# scroll the notebook a screen down (Lab draws the cells near the view) and say which cells (by their
# prompt, "[5]:") show a chart drawn: plotly's, or (reopened) the picture of it saved beside it
SCROLL_CHARTS = """
const outer = window.jupyterapp.shell.currentWidget.node.querySelector('.jp-WindowedPanel-outer');
outer.scrollTop += outer.clientHeight * 0.8;
const charts = [...document.querySelectorAll(
  '.jp-OutputArea .js-plotly-plot, .jp-OutputArea .jp-RenderedPlotly img')];
return [charts.map(e => e.closest('.jp-Cell').querySelector('.jp-InputPrompt').textContent.trim()),
        outer.scrollTop + outer.clientHeight >= outer.scrollHeight - 2];
"""


REPORT_CHARTS = {"[4]:", "[5]:", "[7]:"}  # the cells of the means, cost against quality, the items


def charts_seen(d: Any) -> set[str]:
    """The cells showing a chart in the open notebook, scrolled through from the top as a reader would."""
    seen: set[str] = set()
    d.execute_script(
        "window.jupyterapp.shell.currentWidget.node.querySelector('.jp-WindowedPanel-outer').scrollTop = 0"
    )
    for _ in range(100):
        time.sleep(1)  # plotly draws a chart some time after its cell comes into view
        titles, bottom = d.execute_script(SCROLL_CHARTS)
        seen.update(titles)
        if bottom:
            time.sleep(1)
            seen.update(d.execute_script(SCROLL_CHARTS)[0])
            return seen
    return seen


DIFFS = "return [...document.querySelectorAll('.jp-OutputArea .pop-diff h1')].map(e => e.textContent)"


def test_the_experiment_report_in_jupyterlab(tmp_path: Path, browser: Any) -> None:
    """notebooks/05-experiments.ipynb run as a user would: the experiment's 60 jobs, then the report's
    charts (plotly) and the worst regression's diff; saved and reopened without a kernel, all still show."""
    from tests.notebooks.golden import scratch_project

    root = scratch_project(tmp_path)
    path = root / "notebooks" / "05-experiments.ipynb"
    d = browser
    for url in start_lab(tmp_path, root):
        open_notebook(d, url, "notebooks/05-experiments.ipynb")
        command(d, "notebook:run-all-cells")
        wait_for(lambda: d.execute_script(FINISHED) and d.execute_script(PLOTS) >= 1, 600)
        assert d.execute_script(DIFFS) == [
            "pop diff exp-triage-mini-10 -> exp-triage-mini-reworded-10"
        ]  # vpn-invoice
        d.execute_script("document.querySelector('.jp-OutputArea .js-plotly-plot').scrollIntoView()")
        shot(d, "experiment-1-charts")
        d.execute_script("document.querySelector('.jp-OutputArea .pop-diff').scrollIntoView()")
        shot(d, "experiment-2-regression")
        command(d, "docmanager:save")
        wait_for(lambda: "pop-diff" in json.dumps(saved_notebook(path) or {}), 30)
        command(d, "kernelmenu:shutdown")
        open_lab(d, url, "notebooks/05-experiments.ipynb")
        wait_for(lambda: d.execute_script("return !!document.querySelector('.jp-Notebook .jp-Cell')"), 60)
        wait_for(lambda: charts_seen(d) >= REPORT_CHARTS, 90)
        assert "Error displaying widget" not in d.page_source
        shot(d, "experiment-3-reopened")
