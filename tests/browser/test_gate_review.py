"""A gate in JupyterLab gives something to review: the waiting task's output rendered (Markdown as
Markdown, JSON as a tree), its row marked, and Approve, Reject and "Edit, then approve" beside it; an
edit is what the next task reads and the events say whose it is."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_lab import BADGE, TOKEN, command, open_lab, shot, steady
from tests.conftest import Project, wait_for

pytestmark = [pytest.mark.slow]

DRAFT = "# Launch notes\\n\\nWe ship **teh** new feature on Monday."


def test_a_gate_shows_its_output_and_is_approved_with_an_edit(tmp_path: Path, browser: Any) -> None:
    from selenium.webdriver.common.keys import Keys

    from pop_nb.testing.lab import jupyter_lab

    project = Project(tmp_path / "project")
    project.pipeline(
        "notes",
        {
            "draft": {"gate": True, "cells": [("inference", f"pop.output('{DRAFT}')")]},
            "publish": {"needs": ["draft"], "cells": [("inference", "pop.output(pop.inputs['draft'])")]},
        },
    )
    project.pipeline(
        "facts",
        {
            "check": {
                "gate": True,
                "cells": [("inference", "pop.output({'claims': [{'text': 'x', 'ok': True}]})")],
            }
        },
    )
    project.run("notes", job_id="n1")
    project.run("facts", job_id="j1")
    d = browser
    with jupyter_lab(project.root, tmp_path, TOKEN) as url:
        open_lab(d, url)
        # JSON as a tree (Lab's JSON renderer), not a string with escaped quotes
        command(d, "pop:open-job", {"id": "j1"})
        review = wait_for(lambda: d.find_elements("css selector", "#pop-job-j1 .pop-Review"), 60)[0]
        wait_for(lambda: review.find_elements("css selector", ".pop-Review-output .jp-RenderedJSON"), 30)
        assert "claims" in review.text and '\\"' not in review.text

        command(d, "pop:open-job", {"id": "n1"})
        review = wait_for(lambda: d.find_elements("css selector", "#pop-job-n1 .pop-Review"), 60)[0]
        assert review.get_attribute("data-task") == "draft" and "waits for your approval" in review.text
        heading = wait_for(lambda: review.find_elements("css selector", ".pop-Review-output h1"), 30)[0]
        assert heading.text.startswith("Launch notes")  # Markdown, rendered
        assert review.find_elements("css selector", ".pop-Review-output strong")
        row = d.find_element("css selector", "#pop-job-n1 .pop-Grid tr.pop-Row-waiting th")
        assert row.text.startswith("draft") and row.text.endswith("waits")
        shot(d, "gate-1-review")

        buttons = {b.text: b for b in review.find_elements("css selector", "button")}
        assert set(buttons) == {"Approve", "Edit, then approve", "Reject"}
        buttons["Edit, then approve"].click()
        editor = review.find_element("css selector", "textarea.pop-Review-editor")
        assert editor.get_attribute("value").startswith("# Launch notes")
        editor.send_keys(Keys.CONTROL, "a")
        editor.send_keys("# Launch notes\n\nWe ship the new feature on Monday.")
        shot(d, "gate-2-editing")
        review.find_element("xpath", ".//button[normalize-space()='Approve with my edit']").click()
        wait_for(steady(lambda: any("done" in e.text for e in d.find_elements("css selector", BADGE))), 90)
        time.sleep(0.5)
        assert not d.find_elements("css selector", "#pop-job-n1 .pop-Review")  # nothing waits now
        shot(d, "gate-3-done")
    job = project.job("n1")
    assert job.outputs()["publish"] == "# Launch notes\n\nWe ship the new feature on Monday."
    events = [json.loads(line) for line in (job.path / "events.jsonl").read_text().splitlines()]
    edited = [e for e in events if e["kind"] == "task" and e["status"] == "approved"]
    assert len(edited) == 1 and edited[0]["task"] == "draft" and "edited by" in edited[0]["message"]
