"""The jobs table in JupyterLab (the panel's "Table"): sorted by a click on a column (the server sorts, so
paging stays right), a row opens its job; and from a job's view: its seed and each stage's cost, "Run
again with these inputs" (the Run form, filled), Archive (confirmed; out of the table, in the archived
one), Restore, Delete (confirmed) and Download zip."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_lab import TOKEN, command, open_lab, shot, steady
from tests.conftest import Project, wait_for

pytestmark = [pytest.mark.slow]

ROWS = "#pop-jobs-table tbody tr"
JOB_ROWS = f"{ROWS}[data-job]"


def test_the_jobs_table_sorts_and_a_job_is_run_again_archived_and_deleted(
    tmp_path: Path, browser: Any
) -> None:
    from pop_nb.testing.lab import jupyter_lab

    project = Project(tmp_path / "project")
    project.pipeline(
        "costly",
        {"a": {"cells": [("inference", "pop.output(pop.chat(pop.seed['ask']).content)")]}},
        llm={"model": "mock/gpt-4o", "mock_responses": {"*": {"inference": "An answer, of some length."}}},
    )
    project.pipeline("free", {"a": {}})
    project.run("free", job_id="t-free")
    project.run("costly", {"ask": "Write a long essay on the tides of the North Sea"}, job_id="t-costly")
    project.run("free", job_id="t-last")
    d = browser

    def rows() -> list[str]:
        return [r.get_attribute("data-job") for r in d.find_elements("css selector", ROWS)]

    with jupyter_lab(project.root, tmp_path, TOKEN) as url:
        open_lab(d, url)
        command(d, "pop:show-panel")
        wait_for(lambda: d.find_elements("css selector", ".pop-TableButton"), 60)[0].click()
        wait_for(steady(lambda: rows() == ["t-last", "t-costly", "t-free"]), 60)  # newest first
        d.find_element("css selector", "#pop-jobs-table th[data-sort='cost']").click()
        wait_for(steady(lambda: rows()[:1] == ["t-costly"]), 30)  # the most expensive first
        header = d.find_element("css selector", "#pop-jobs-table th[data-sort='cost']")
        assert header.get_attribute("aria-sort") == "descending"
        header.click()
        wait_for(steady(lambda: rows()[-1:] == ["t-costly"]), 30)  # and the other way
        shot(d, "table-1-sorted-by-cost")

        d.find_element("css selector", f"{ROWS}[data-job='t-costly']").click()
        view = "#pop-job-t-costly"
        wait_for(lambda: d.find_elements("css selector", f"{view} .pop-Seed"), 60)
        seed = d.find_element("css selector", f"{view} .pop-Seed")
        seed.find_element("css selector", "summary").click()
        assert "North Sea" in seed.text
        runs = d.find_element("css selector", f"{view} .pop-Runs").text
        assert "a / inference done" in runs and "· $0.0" in runs and "1 call" in runs  # the stage's cost
        zip_url = d.find_element("css selector", f"{view} a.pop-ButtonLink").get_attribute("href")
        request = urllib.request.Request(zip_url, headers={"Authorization": f"token {TOKEN}"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.headers["Content-Type"] == "application/zip" and answer.read(2) == b"PK"

        # Run again with these inputs: the Run form on its pipeline, with its seed
        d.find_element(
            "xpath", "//div[@id='pop-job-t-costly']//button[.='Run again with these inputs']"
        ).click()
        editor = wait_for(lambda: d.find_elements("css selector", ".jp-Dialog textarea"), 30)[0]
        assert "North Sea" in editor.get_attribute("value")
        assert d.find_element("css selector", ".jp-Dialog select").get_attribute("value") == "costly"
        shot(d, "table-2-run-again")
        d.find_element("css selector", ".jp-Dialog .jp-mod-reject").click()

        # archive (confirmed): out of the table, in the archived one, still opened; then restored
        d.find_element("xpath", "//div[@id='pop-job-t-costly']//button[.='Archive']").click()
        wait_for(lambda: d.find_elements("css selector", ".jp-Dialog .jp-mod-accept"), 30)[0].click()
        wait_for(lambda: (project.data / "archive/t-costly").is_dir(), 30)
        wait_for(
            steady(lambda: d.find_elements("xpath", "//div[@id='pop-job-t-costly']//button[.='Restore']")),
            30,
        )
        command(d, "pop:open-jobs-table")
        wait_for(steady(lambda: "t-costly" not in rows() and len(rows()) == 2), 30)
        d.find_element("css selector", "#pop-jobs-table input[type='checkbox']").click()
        wait_for(steady(lambda: rows() == ["t-costly"]), 30)
        shot(d, "table-3-archived")
        d.find_element("css selector", f"{ROWS}[data-job='t-costly']").click()
        wait_for(
            steady(lambda: d.find_elements("xpath", "//div[@id='pop-job-t-costly']//button[.='Restore']")),
            30,
        )[0].click()
        wait_for(lambda: (project.data / "complete/t-costly").is_dir(), 30)

        # delete (confirmed, for good)
        delete = wait_for(
            steady(lambda: d.find_elements("xpath", "//div[@id='pop-job-t-costly']//button[.='Delete']")), 30
        )[0]
        delete.click()
        wait_for(lambda: d.find_elements("css selector", ".jp-Dialog .jp-mod-warn.jp-mod-accept"), 30)[
            0
        ].click()
        wait_for(lambda: not (project.data / "complete/t-costly").exists(), 30)
        wait_for(steady(lambda: "Deleted: job t-costly" in d.find_element("css selector", view).text), 30)
        time.sleep(0.5)
        shot(d, "table-4-deleted")
    assert json.loads((project.data / "complete/runs.jsonl").read_text().splitlines()[0])["job"] == "t-free"


def test_the_jobs_table_scrolls_through_thousands_of_jobs_drawing_only_what_is_in_view(
    tmp_path: Path, browser: Any
) -> None:
    """3,000 finished jobs: the table says how many, draws a screenful (not 3,000 rows), and a scroll
    to the end brings the oldest from the server's last page; a filter starts again at the top."""
    from pop_nb.models.status import JobStatus
    from pop_nb.store.atomic import atomic_write_json
    from pop_nb.testing.lab import jupyter_lab

    project = Project(tmp_path / "project")
    for i in range(3000):
        folder = project.data / "complete" / f"bulk-{i:04d}"
        stamp = f"2026-11-{1 + i // 1440:02d}T{i // 60 % 24:02d}:{i % 60:02d}:00.000+00:00"
        atomic_write_json(
            folder / "tasks-status.json",
            JobStatus(job_id=folder.name, pipeline="bulk", state="done", created_at=stamp),
            durable=False,
        )
    d = browser

    def drawn() -> list[str]:
        return [r.get_attribute("data-job") for r in d.find_elements("css selector", f"{ROWS}[data-job]")]

    with jupyter_lab(project.root, tmp_path, TOKEN) as url:
        open_lab(d, url)
        command(d, "pop:open-jobs-table")

        def count() -> list[str]:
            return [e.text for e in d.find_elements("css selector", "#pop-jobs-table .pop-JobsTable-count")]

        wait_for(steady(lambda: count() == ["3000 jobs"]), 60)
        first = drawn()
        assert first[0] == "bulk-2999" and 10 <= len(first) <= 150  # newest first; a screenful
        scroller = d.find_element("css selector", "#pop-jobs-table .pop-JobsTable-scroll")
        d.execute_script("arguments[0].scrollTop = arguments[0].scrollHeight", scroller)
        wait_for(steady(lambda: drawn() and drawn()[-1] == "bulk-0000"), 60)  # the last page, asked for
        assert len(drawn()) <= 150
        rows = [
            int(r.get_attribute("data-row")) for r in d.find_elements("css selector", f"{ROWS}[data-row]")
        ]
        assert rows == list(range(rows[0], 3000))  # in order, up to the last
        shot(d, "table-5-scrolled-to-the-end")
        d.execute_script("arguments[0].scrollTop = 26 * 1500", scroller)  # the middle: its page comes
        wait_for(steady(lambda: "bulk-1499" in drawn()), 60)
        search = d.find_element("css selector", "#pop-jobs-table input[placeholder]")
        search.send_keys("bulk-00")
        wait_for(steady(lambda: count() == ["100 jobs"]), 30)
        assert drawn()[0] == "bulk-0099" and scroller.get_property("scrollTop") == 0
