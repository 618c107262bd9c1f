"""pop-nb in JupyterLab Dark: the job widget takes Lab's colours (no white blocks in the grid), plotly
charts take the dark template, and the panel and job view follow (screenshots of each)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.browser.test_lab import FINISHED, command, grids, open_notebook, shot
from tests.browser.test_lab import lab as lab  # the fixture
from tests.conftest import wait_for

pytestmark = [pytest.mark.slow]

# how light a colour is, 0 (black) to 1 (white), from the "rgb(r, g, b)" the browser computes
LUMINANCE = """
const rgb = c => (c.match(/[\\d.]+/g) || [255, 255, 255]).slice(0, 3).map(Number);
const lum = c => { const [r, g, b] = rgb(c); return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255; };
"""


def test_in_jupyterlab_dark_the_widget_and_charts_follow_the_theme(
    lab: tuple[str, Path], browser: Any
) -> None:
    url, root = lab
    d = browser
    notebook = nbformat.read(root / "run.ipynb", as_version=4)
    notebook.cells.append(
        nbformat.v4.new_code_cell(
            "from pop_nb.widgets.theme import plotly_template\nprint(plotly_template())"
        )
    )
    nbformat.write(notebook, root / "theme.ipynb")
    open_notebook(d, url, "theme.ipynb")
    command(d, "apputils:change-theme", {"theme": "JupyterLab Dark"})
    wait_for(lambda: d.execute_script("return document.body.dataset.jpThemeLight") == "false", 60)
    picked = root.parent / "settings/@jupyterlab/apputils-extension/themes.jupyterlab-settings"
    wait_for(lambda: picked.is_file() and "Dark" in picked.read_text(), 30)  # where the kernel reads it
    command(d, "notebook:run-all-cells")
    wait_for(lambda: any("<b>done</b>" in g for g in grids(d)), 120)
    wait_for(lambda: d.execute_script(FINISHED), 60)
    # the grid's lines and empty squares are the page's colours, not white
    colours = d.execute_script(
        LUMINANCE + "const page = getComputedStyle(document.querySelector('.jp-Notebook')).backgroundColor;"
        "const cells = [...document.querySelectorAll('.pop-job td.pop-cell')];"
        "const track = document.querySelector('.pop-job > div:nth-child(2)');"
        "return {page: lum(page), lines: cells.map(c => lum(getComputedStyle(c).borderTopColor)),"
        " track: lum(getComputedStyle(track).backgroundColor)};"
    )
    assert colours["page"] < 0.3, colours  # Lab Dark
    assert colours["lines"] and max(colours["lines"]) < 0.3, colours  # were white (1.0)
    assert colours["track"] < 0.5, colours  # was #eee (0.93)
    # plotly charts in a kernel started under the dark theme take the dark template
    text = d.execute_script("return window.jupyterapp.shell.currentWidget.node.innerText")
    assert "plotly_dark" in text, text[-500:]
    shot(d, "dark-1-widget")
    command(d, "pop:show-panel")
    row = wait_for(lambda: d.find_elements("css selector", ".pop-JobRow"), 60)[0]
    row.click()
    wait_for(lambda: d.find_elements("css selector", ".pop-Grid td.pop-Cell-open"), 60)
    shot(d, "dark-2-panel-and-job-view")
    command(d, "apputils:change-theme", {"theme": "JupyterLab Light"})  # as it was, for the next test
    wait_for(lambda: d.execute_script("return document.body.dataset.jpThemeLight") == "true", 60)
    shot(d, "dark-3-back-to-light")
