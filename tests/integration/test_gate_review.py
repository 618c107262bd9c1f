"""Approving a gate with an edit: the approver's correction of the waiting task's output is checked
against its schema, becomes what the next task reads, is recorded as theirs in the events, and the
task's own answer is kept beside it; from the CLI too (`pop approve ID --output TASK=FILE`)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pop_nb import service
from pop_nb.errors import JobStateError, RequestError
from tests.conftest import Project


def _pipeline(project: Project) -> None:
    project.pipeline(
        "review",
        {
            "draft": {
                "gate": True,
                "output": {"format": "json", "example": {"title": "A title", "body": "The text"}},
                "cells": [("inference", "pop.output({'title': 'Draft', 'body': 'teh text'})")],
            },
            "publish": {
                "needs": ["draft"],
                "cells": [("inference", "pop.output(pop.inputs['draft']['body'])")],
            },
        },
    )


def test_an_edited_output_is_checked_read_downstream_and_recorded_as_the_approvers(project: Project) -> None:
    _pipeline(project)
    job = project.run("review", job_id="r1")
    assert job.status.state == "waiting"
    settings = project.settings()
    with pytest.raises(RequestError, match="does not fit its schema"):
        service.approve(settings, "r1", {"draft": {"title": 3}}, by="ana")
    with pytest.raises(RequestError, match="'publish' does not wait at a gate"):
        service.approve(settings, "r1", {"publish": "x"}, by="ana")
    assert project.job("r1").status.state == "waiting"  # a refused edit changes nothing

    service.approve(settings, "r1", {"draft": {"title": "Draft", "body": "the text"}}, by="ana")
    done = project.job("r1")
    done.wait()
    assert done.status.state == "done" and done.outputs()["publish"] == "the text"
    kept = json.loads((done.path / "tasks/draft/outputs/final.before-approval.json").read_text())
    assert kept == {"title": "Draft", "body": "teh text"}  # the task's own answer
    edited = [e for e in project.events(done) if e["kind"] == "task" and e["status"] == "approved"]
    assert len(edited) == 1 and edited[0]["task"] == "draft" and "edited by ana" in edited[0]["message"]
    with pytest.raises(JobStateError):
        service.approve(settings, "r1", {"draft": {"title": "a", "body": "b"}})  # not waiting any more


def test_pop_approve_takes_an_edit_from_a_file(project: Project, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _pipeline(project)
    project.run("review", job_id="r2")
    edit = tmp_path / "edit.json"
    edit.write_text(json.dumps({"title": "Final", "body": "fixed by hand"}))
    bad = subprocess.run(
        [sys.executable, "-m", "pop_nb.cli", "approve", "r2", "--output", "draft"],
        capture_output=True,
        text=True,
        cwd=project.root,
    )
    assert bad.returncode == 2 and "write it TASK=FILE" in bad.stderr
    ran = subprocess.run(
        [sys.executable, "-m", "pop_nb.cli", "approve", "r2", "--quiet", "--output", f"draft={edit}"],
        capture_output=True,
        text=True,
        cwd=project.root,
    )
    assert ran.returncode == 0, ran.stderr
    assert project.job("r2").outputs()["publish"] == "fixed by hand"
