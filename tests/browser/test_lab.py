"""JupyterLab in a real browser (Debian's chromium, driven by selenium and chromedriver): a pipeline run
from a notebook cell, followed live; a click on a stage square opens its executed notebook in a Lab tab
without leaving the page; the saved notebook, reopened without a kernel, still shows the grid.

Screenshots go to ``artifacts/browser/`` (kept by CI)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.conftest import REPO, wait_for

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM and DRIVER) and not os.environ.get("CI"),
        reason="needs Debian's chromium and chromium-driver (.ci/run installs them)",
    ),
]
ARTIFACTS = REPO / "artifacts" / "browser"
TOKEN = "pop-browser-test-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``jupyter lab`` on a copy of the hello project, with a token (and --allow-root, as CI is root)."""
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
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("POP_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            f"--port={port}",
            "--ip=127.0.0.1",
            f"--IdentityProvider.token={TOKEN}",
            f"--ServerApp.root_dir={root}",
            "--allow-root",
            "--LabApp.expose_app_in_browser=True",
            "--ServerApp.disable_check_xsrf=False",
        ],
        cwd=root,
        env=env,
        stdout=(tmp_path / "lab.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _up(f"{url}/api/status?token={TOKEN}"), timeout=60)
        yield url, root
    finally:
        proc.terminate()
        proc.wait(30)


def _up(url: str) -> bool:
    try:
        return urllib.request.urlopen(url, timeout=2).status == 200
    except OSError:
        return False


@pytest.fixture
def browser() -> Iterator[object]:
    os.environ.setdefault("SE_OFFLINE", "true")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or "/usr/bin/chromium"
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--window-size=1400,1000",
        "--disable-dev-shm-usage",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER or "/usr/bin/chromedriver"), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


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


def grids(driver: object) -> list[str]:
    """The job grids in the open notebooks, as HTML (one script, so nothing goes stale between calls)."""
    return driver.execute_script(  # type: ignore[attr-defined, no-any-return]
        "return [...document.querySelectorAll('.jp-OutputArea .pop-job')].map(e => e.innerHTML)"
    )


# the current notebook's cells have all run: no "[*]" prompt left
FINISHED = (
    "return [...window.jupyterapp.shell.currentWidget.node.querySelectorAll('.jp-InputPrompt')]"
    ".every(e => !e.textContent.includes('*'))"
)


def test_a_job_run_from_a_cell_in_jupyterlab(lab: tuple[str, Path], browser: object) -> None:
    from selenium.webdriver.common.by import By

    url, root = lab
    d = browser
    d.get(f"{url}/lab/tree/run.ipynb?token={TOKEN}")  # type: ignore[attr-defined]
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
    wait_for(lambda: json.loads((root / "run.ipynb").read_text())["cells"][0]["outputs"], 30)
    saved = json.loads((root / "run.ipynb").read_text())["cells"][0]["outputs"]
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
