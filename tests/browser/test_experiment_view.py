"""The shipped experiment in JupyterLab, as a user meets it: listed in the Pipelines panel and followed
live while `pop experiment run` runs it; a click opens the comparison; the worst regression opens its
item under every variant with what differs from the baseline; a notebook link opens the executed stage
notebook in a tab; the view comes back after a reload. Screenshots go to ``artifacts/browser/``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_lab import TOKEN, open_lab, shot, steady
from tests.conftest import needs_programs, wait_for

pytestmark = [pytest.mark.slow]

PANEL_ROW = ".pop-ExperimentRow[data-experiment='triage']"
CURRENT_PATH = "const w = window.jupyterapp.shell.currentWidget; return w?.context ? w.context.path : null"
SHOWN = "const w = window.jupyterapp.shell.currentWidget; return w.isRevealed ? w.node.innerText : ''"
PARTWAY = re.compile(r"\b([1-9]|[1-5]\d)/60 done")
ROWS = ".pop-Exp-comparison tbody tr"
REWORDED = ".pop-Exp-run[data-variant='mini-reworded']"
NOTEBOOK = "pop-job:exp-triage-mini-reworded-10/tasks/classify/04-inference.ipynb"


def text(d: Any, css: str) -> str:
    found = d.find_elements("css selector", css)
    return found[0].text if found else ""


def test_an_experiment_followed_live_compared_and_opened_item_by_item(tmp_path: Path) -> None:
    from tests.notebooks.golden import scratch_project

    needs_programs("chromium", "chromedriver", install="apt-get install chromium chromium-driver")
    from pop_nb.testing.lab import chromium, jupyter_lab

    root = scratch_project(tmp_path)
    with chromium(1600, 1100) as d, jupyter_lab(root, tmp_path, TOKEN) as url:
        open_lab(d, url)
        wait_for(lambda: d.find_elements("css selector", ".jp-SideBar [data-id='pop-pipelines']"), 60)
        d.find_element("css selector", ".jp-SideBar [data-id='pop-pipelines']").click()
        wait_for(lambda: "0/60 done" in text(d, PANEL_ROW), 60)
        assert "3 variants" in text(d, PANEL_ROW) and "20 items" in text(d, PANEL_ROW)

        run = subprocess.Popen(
            [sys.executable, "-m", "pop_nb.cli", "experiment", "run", "triage"],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            # the panel follows the run without a reload: a count part way, then all of it
            seen = wait_for(steady(lambda: PARTWAY.search(text(d, PANEL_ROW))), 240)
            shot(d, "experiment-view-1-running")
            out, _ = run.communicate(timeout=300)
        finally:
            run.kill()
        assert run.returncode == 0, out
        wait_for(steady(lambda: "60/60 done" in text(d, PANEL_ROW)), 60)
        assert seen is not None

        d.find_element("css selector", PANEL_ROW).click()
        wait_for(lambda: len(d.find_elements("css selector", ROWS)) == 3, 60)
        table = {row.get_attribute("data-variant"): row.text for row in d.find_elements("css selector", ROWS)}
        assert "0.45 [" in table["mini"] and "baseline" in table["mini"]
        assert "0.95 [" in table["mini-reworded"] and "11/8/1" in table["mini-reworded"]
        assert "1.00 [1.00, 1.00]" in table["big"] and "20/0/0" in table["big"]
        assert len(d.find_elements("css selector", ".pop-Exp-heat tbody tr")) == 20
        assert not d.find_elements("css selector", ".pop-Exp-grade")  # the run graded everything
        shot(d, "experiment-view-2-comparison")

        # the worst regression: naming "network" in the prompt sends a VPN invoice there
        d.find_element("css selector", ".pop-Exp-regressed a[data-item='vpn-invoice']").click()
        changed = 'category: "billing" → "network"'
        wait_for(steady(lambda: changed in text(d, f"{REWORDED} .pop-Exp-diff")), 60)
        assert "against mini: the same" not in text(d, REWORDED)
        assert "model mock/gpt-4o-mini → mock/gpt-4o" in text(d, ".pop-Exp-run[data-variant='big']")
        shot(d, "experiment-view-3-item")

        link = d.find_element("css selector", f"{REWORDED} .pop-Exp-diff .pop-Exp-notebook")
        assert link.get_attribute("data-notebook").endswith("tasks/classify/04-inference.ipynb")
        link.click()
        wait_for(lambda: d.execute_script(CURRENT_PATH) == NOTEBOOK, 60)
        wait_for(lambda: "network" in d.execute_script(SHOWN), 60)  # what the model answered, in the tab
        assert d.current_url.startswith(url), "the page stayed; the notebook opened in a tab"
        shot(d, "experiment-view-4-notebook")

        # after a reload, Lab puts the experiment view back
        d.get(f"{url}/lab?token={TOKEN}")
        wait_for(
            lambda: d.execute_script(
                "return [...document.querySelectorAll('.lm-TabBar-tabLabel')]"
                ".some(e => e.textContent === 'triage (experiment)')"
            ),
            90,
        )
