"""The tour notebooks as a new user opens them in JupyterLab: with the project's kernel started, none is
marked changed before anything is done to it (stored with the metadata Lab writes for that kernel)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.test_lab import TOKEN, open_notebook, shot
from tests.conftest import needs_programs, wait_for
from tests.notebooks.golden import NOTEBOOKS, scratch_project

pytestmark = [pytest.mark.slow]

DIRTY = "return window.jupyterapp.shell.currentWidget.context.model.dirty"
SPEC = "return window.jupyterapp.shell.currentWidget.sessionContext.kernelDisplayName"


def test_the_tour_notebooks_open_clean(tmp_path: Path) -> None:
    needs_programs("chromium", "chromedriver", install="apt-get install chromium chromium-driver")
    from pop_nb.testing.lab import chromium, jupyter_lab

    root = scratch_project(tmp_path)
    with chromium() as d, jupyter_lab(root, tmp_path, TOKEN) as url:
        for name in NOTEBOOKS:
            open_notebook(d, url, f"notebooks/{name}")
            wait_for(lambda: d.execute_script(SPEC) == "Python 3 (ipykernel)", 60)
            wait_for(lambda: "Idle" in d.find_element("id", "jp-main-statusbar").text, 60)
            if d.execute_script(DIRTY):
                shot(d, f"tour-dirty-{name}")
            assert d.execute_script(DIRTY) is False, f"{name} opened as changed"
