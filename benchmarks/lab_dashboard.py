"""`pop_nb.dashboard()` as a JupyterLab user meets it: a notebook cell run in a kernel Lab has just
started, until the dashboard is drawn in the browser (its jobs list filled), over a data folder of N
jobs. Three times each: in a fresh kernel (restarted before each run: the imports are paid), then a
click on its Costs tab until the five plotly charts are drawn (they are made when first shown), and
the cell again in the same kernel (warm). The anchor: a cell that prints, in the same fresh kernel
(what Lab itself costs a run, to the drawn output).

Needs Debian's chromium and chromium-driver, like the browser tests.

    python benchmarks/lab_dashboard.py [--jobs 1000 --calls 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).parent))
from analytics import generate  # noqa: E402  (benchmarks/analytics.py)

CELLS = ["print('anchor')", "import pop_nb\npop_nb.dashboard()"]
DRAWN = [  # the output of the cell, drawn: the anchor's text; the dashboard's jobs list with its rows
    "return [...document.querySelectorAll('.jp-OutputArea-output')]"
    ".some(e => e.textContent.includes('anchor'))",
    "return document.querySelectorAll('.jp-OutputArea .pop-job-list option').length > 0",
]


def run_cell(d: Any, index: int, timeout_s: float = 120) -> float:
    """Run cell ``index`` of the open notebook (its outputs cleared first); seconds until drawn."""
    from tests.browser.test_lab import command

    command(d, "notebook:clear-all-cell-outputs")
    d.execute_script(
        "const nb = window.jupyterapp.shell.currentWidget.content; nb.activeCellIndex = arguments[0];", index
    )
    began = time.perf_counter()
    command(d, "notebook:run-cell")
    while not d.execute_script(DRAWN[index]):
        if time.perf_counter() - began > timeout_s:
            raise TimeoutError(f"cell {index} was not drawn within {timeout_s:.0f} s")
        time.sleep(0.02)
    return time.perf_counter() - began


def costs_tab(d: Any, timeout_s: float = 120) -> float:
    """Click the dashboard's Costs tab; seconds until its five plotly charts are drawn."""
    tab = next(
        e for e in d.find_elements("css selector", ".jp-OutputArea .lm-TabBar-tab") if "Costs" in e.text
    )
    began = time.perf_counter()
    tab.click()
    while len(d.find_elements("css selector", ".jp-OutputArea .js-plotly-plot")) < 5:
        if time.perf_counter() - began > timeout_s:
            raise TimeoutError(f"the Costs tab was not drawn within {timeout_s:.0f} s")
        time.sleep(0.02)
    return time.perf_counter() - began


def restart(d: Any) -> None:
    from selenium.webdriver.common.by import By

    from tests.browser.test_lab import command, steady
    from tests.conftest import wait_for

    command(d, "kernelmenu:restart")
    time.sleep(0.5)
    for button in d.find_elements(By.CSS_SELECTOR, ".jp-Dialog .jp-mod-accept"):
        button.click()  # "Restart Kernel?"
    time.sleep(1)
    wait_for(steady(lambda: "Idle" in d.find_element(By.ID, "jp-main-statusbar").text), 90)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    import nbformat

    from pop_nb.testing.lab import chromium, jupyter_lab
    from tests.browser.test_lab import TOKEN, open_notebook
    from tests.conftest import Project

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "proj"
        Project(root).pipeline("p", {"t": {"cells": [("inference", "pop.output(1)")]}})
        generate(root / "pipeline-data", args.jobs, args.calls)
        (root / "pop.toml").write_text(f"data_dir = {json.dumps(str(root / 'pipeline-data'))}\n")
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3 (ipykernel)",
            "language": "python",
        }
        nbformat.write(nb, root / "dash.ipynb")
        fresh: list[float] = []
        warm: list[float] = []
        anchor: list[float] = []
        charts: list[float] = []
        with jupyter_lab(root, Path(tmp) / "lab", TOKEN) as url, chromium() as d:
            open_notebook(d, url, "dash.ipynb")
            for _ in range(args.runs):
                restart(d)
                anchor.append(run_cell(d, 0))
                fresh.append(run_cell(d, 1))
                charts.append(costs_tab(d))
                warm.append(run_cell(d, 1))
            d.save_screenshot(str(Path(tmp) / "dash.png"))
            shot = REPO / "artifacts" / "benchmarks" / "lab_dashboard.png"
            shot.parent.mkdir(parents=True, exist_ok=True)
            shot.write_bytes((Path(tmp) / "dash.png").read_bytes())

    def median(values: list[float]) -> str:
        return f"median {statistics.median(values):.2f} s (runs: {', '.join(f'{v:.2f}' for v in values)})"

    print(f"pop_nb.dashboard() in JupyterLab, {args.jobs} jobs x {args.calls} calls, to its jobs list drawn")
    print(f"  a fresh kernel (restarted): {median(fresh)}  goal 2 s")
    print(f"  the same kernel again     : {median(warm)}")
    print(f"  then its Costs tab, first click to five charts drawn: {median(charts)}")
    print(f"  anchor, print() in a fresh kernel: {median(anchor)}")
    print(f"  screenshot: {shot.relative_to(REPO)}")


if __name__ == "__main__":
    main()
