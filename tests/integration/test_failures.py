"""Failures: a raising task, a fix and resume; timeouts; os._exit; retries; on_failure policies."""

import json

import nbformat

from tests.conftest import Project, kernels_of, pop, write_notebook


def test_failing_task_fails_the_job_and_resume_after_fix_finishes_it(project: Project) -> None:
    folder = project.pipeline(
        "flaky",
        {
            "first": {"cells": [("inference", "pop.output({'n': 1})")]},
            "second": {
                "needs": ["first"],
                "cells": [
                    ("ingestion", "print('about to fail')"),
                    ("inference", "n = pop.inputs['first']['n']\nraise ValueError(f'bad value {n}')"),
                ],
            },
        },
    )
    job = project.run("flaky", job_id="f1")
    st = job.status
    assert st.state == "failed" and job.folder.place == "failed"
    assert (st.error.task, st.error.stage, st.error.type) == ("second", "inference", "ValueError")
    assert st.error.message == "bad value 1"
    assert st.error.notebook == "tasks/second/04-inference.ipynb"
    nb = nbformat.read(job.path / st.error.notebook, as_version=4)
    failing = [
        c
        for c in nb.cells
        if c.cell_type == "code" and any(o.get("ename") == "ValueError" for o in c.outputs)
    ]
    assert failing and "raise ValueError" in failing[0].source
    assert nb.metadata.papermill["exception"] is True
    # the evidence travels with the error: cell, In [n], source, traceback; and into the logs
    assert nb.cells[st.error.cell_index + 2] is failing[0]  # + papermill's banner and anchor cells
    assert st.error.exec_count == failing[0].execution_count
    assert "raise ValueError" in st.error.cell_source
    assert st.error.traceback[-1] == "ValueError: bad value 1" and "\x1b[" not in "".join(st.error.traceback)
    assert "pop resume f1" in st.error.fix and "cell In [" in st.error.fix
    stage_log = (job.path / "tasks/second/logs/inference.log").read_text()
    assert "ValueError: bad value 1" in stage_log and "raise ValueError" in stage_log
    runner_log = (job.path / "runner.log").read_text()
    assert "task second, stage inference failed" in runner_log and "ValueError: bad value 1" in runner_log
    assert "Passed unknown parameter" not in runner_log
    shown = pop("status", "f1").stdout
    assert "raise ValueError" in shown and "fix: fix the cause" in shown
    assert st.tasks["first"].state == "done"
    assert kernels_of(project.data) == []

    write_notebook(
        folder / "tasks" / "second.ipynb", [("inference", "pop.output({'n': pop.inputs['first']['n'] + 1})")]
    )
    first_nb = job.path / "tasks" / "first" / "04-inference.ipynb"
    mtime = first_nb.stat().st_mtime_ns
    job.resume()
    assert job.state == "done" and job.folder.place == "complete"
    assert job.outputs()["second"] == {"n": 2}
    assert first_nb.exists() is False  # the folder moved to complete/
    assert (job.path / "tasks" / "first" / "04-inference.ipynb").stat().st_mtime_ns == mtime


def test_stage_timeout_kills_the_kernel(project: Project) -> None:
    project.pipeline(
        "slow",
        {
            "nap": {
                "timeout_s": 3,
                "cells": [
                    ("ingestion", "pop.output('fast')"),
                    ("inference", "import time\nprint('sleeping')\ntime.sleep(120)"),
                ],
            }
        },
    )
    job = project.run("slow")
    st = job.status
    assert st.state == "failed" and st.error.type == "StageTimeout" and st.error.stage == "inference"
    assert "timeout_s of 3s" in st.error.message and "time.sleep(120)" in st.error.cell_source
    nb = nbformat.read(job.path / st.error.notebook, as_version=4)
    assert "StageTimeout" in json.dumps(nb.cells[-1].outputs)
    assert_banner(nb, "StageTimeout")
    assert "sleeping" in (job.path / "tasks/nap/logs/inference.log").read_text()
    assert "StageTimeout" in (job.path / "tasks/nap/logs/inference.log").read_text()
    assert kernels_of(project.data) == []


def assert_banner(nb: nbformat.NotebookNode, ename: str) -> None:
    """papermill's failure banner at the top, and its anchor before the failing cell."""
    first = nb.cells[0]
    assert first.cell_type == "markdown" and "papermill-error-cell-tag" in first.metadata.get("tags", [])
    assert "An Exception was encountered" in first.source
    anchors = [
        i for i, c in enumerate(nb.cells[1:], 1) if "papermill-error-cell-tag" in c.metadata.get("tags", [])
    ]
    assert anchors and any(o.get("ename") == ename for o in nb.cells[anchors[0] + 1].outputs)


def test_os_exit_in_a_task_fails_the_job_not_the_caller(project: Project) -> None:
    project.pipeline("crash", {"boom": {"cells": [("inference", "import os\nos._exit(3)")]}})
    job = project.run("crash")
    assert job.state == "failed" and job.status.error.type == "KernelDied"
    assert job.status.error.cell_source == "import os\nos._exit(3)"
    assert_banner(nbformat.read(job.path / job.status.error.notebook, as_version=4), "KernelDied")
    assert kernels_of(project.data) == []


def test_transient_error_is_retried(project: Project) -> None:
    marker = project.root / "tried-once"
    project.pipeline(
        "retry",
        {
            "t": {
                "retries": 2,
                "cells": [
                    (
                        "inference",
                        f"""
import pathlib
class RateLimitError(Exception):
    pass
marker = pathlib.Path({str(marker)!r})
if not marker.exists():
    marker.touch()
    raise RateLimitError("429 slow down")
pop.output({{'attempt': pop.attempt}})
""",
                    )
                ],
            }
        },
    )
    job = project.run("retry")
    assert job.state == "done", job.status.error
    assert job.outputs()["t"] == {"attempt": 2}
    retried = [e for e in project.events(job) if e["status"] == "retried"]
    assert len(retried) == 1 and "RateLimitError" in retried[0]["message"]
    assert (job.path / "tasks" / "t" / "04-inference.attempt1.ipynb").exists()


def test_permanent_error_is_not_retried(project: Project) -> None:
    project.pipeline("noretry", {"t": {"retries": 3, "cells": [("inference", "raise KeyError('x')")]}})
    job = project.run("noretry")
    assert job.state == "failed"
    assert [e for e in project.events(job) if e["status"] == "retried"] == []


def test_on_failure_continue_and_fallback(project: Project) -> None:
    project.pipeline(
        "policies",
        {
            "optional": {"on_failure": "continue", "cells": [("inference", "raise RuntimeError('meh')")]},
            "after_optional": {"needs": ["optional"]},
            "primary": {"on_failure": "backup", "cells": [("inference", "raise RuntimeError('down')")]},
            "backup": {"cells": [("inference", "pop.output({'from': 'backup'})")]},
            "consumer": {"needs": ["primary"], "cells": [("inference", "pop.output(pop.inputs['primary'])")]},
        },
    )
    job = project.run("policies")
    st = job.status
    assert st.state == "done", st.error
    states = {name: t.state for name, t in st.tasks.items()}
    assert states == {
        "optional": "failed",
        "after_optional": "skipped",
        "primary": "failed",
        "backup": "done",
        "consumer": "done",
    }
    assert st.tasks["backup"].fallback_for == "primary"
    assert job.outputs()["consumer"] == {"from": "backup"}


def test_unused_fallback_is_skipped(project: Project) -> None:
    project.pipeline("fine", {"a": {"on_failure": "b"}, "b": {}})
    job = project.run("fine")
    assert job.state == "done"
    assert job.status.tasks["b"].skip_kind == "unused_fallback"


def test_on_success_and_on_false_route_to_tasks_that_run_only_when_routed_to(project: Project) -> None:
    project.pipeline(
        "routes",
        {
            "triage": {"on_success": "escalate", "cells": [("inference", "pop.output({'score': 0.9})")]},
            "escalate": {"needs": ["triage"], "cells": [("inference", "pop.output('escalated')")]},
            "auto": {  # its condition is false: the route goes to manual instead
                "needs": ["triage"],
                "condition": "inputs['triage']['score'] < 0.5",
                "on_false": "manual",
            },
            "manual": {"needs": ["triage"], "cells": [("inference", "pop.output('by hand')")]},
            "spare": {"needs": ["auto"], "on_success": "after_spare"},
            "after_spare": {},
            "broken": {
                "on_success": "after_broken",
                "on_failure": "continue",
                "cells": [("inference", "raise RuntimeError('no')")],
            },
            "after_broken": {},
        },
    )
    job = project.run("routes")
    st = job.status
    assert st.state == "done", st.error
    states = {name: (t.state, t.skip_kind) for name, t in st.tasks.items()}
    assert states == {
        "triage": ("done", None),
        "escalate": ("done", None),  # triage succeeded
        "auto": ("skipped", "condition"),
        "manual": ("done", None),  # auto's condition was false
        "spare": ("done", None),  # needs auto, skipped by its condition: still runs
        "after_spare": ("done", None),  # spare succeeded
        "broken": ("failed", None),
        "after_broken": ("skipped", "not_routed"),  # broken did not succeed
    }
    assert job.outputs()["manual"] == "by hand"
    routed = [e for e in job.events() if e["status"] == "routed"]
    assert {(e["task"], e["message"]) for e in routed} >= {
        ("escalate", "from triage: succeeded"),
        ("manual", "from auto: condition is false"),
    }


def test_exhausted_refinements_fail_with_the_last_errors(project: Project) -> None:
    project.pipeline(
        "never",
        {
            "t": {
                "max_refinements": 2,
                "cells": [
                    ("inference", "pop.output({'words': 3})"),
                    ("validateQuality", "pop.invalid(f\"too short: {pop.prev['words']} words\")"),
                    ("refine", "pop.output({'words': pop.refinement + 3})"),
                ],
            }
        },
    )
    job = project.run("never")
    st = job.status
    assert st.state == "failed" and st.error.type == "ValidationFailed"
    assert "after 2 refinement(s)" in st.error.message and "too short: 5 words" in st.error.message
    names = sorted(p.name for p in (job.path / "tasks" / "t").glob("*.ipynb"))
    assert names == [
        "04-inference.ipynb",
        "07-validateQuality.ipynb",
        "07-validateQuality.r1.ipynb",
        "07-validateQuality.r2.ipynb",
        "09-refine.r1.ipynb",
        "09-refine.r2.ipynb",
    ]


def test_a_name_set_in_an_earlier_stage_gets_a_fix_about_fresh_kernels(project: Project) -> None:
    """The common mistake: each stage is a fresh kernel, so a variable of an earlier stage is gone. The
    fix says so, and names the task notebook to change, not the executed copy."""
    cells = [("preProcessing", "topic = pop.seed['topic']"), ("inference", "pop.output(topic)")]
    project.pipeline("forgetful", {"t": {"cells": cells}})
    job = project.run("forgetful", {"topic": "tides"})
    error = job.status.error
    assert error.type == "NameError" and error.stage == "inference"
    assert error.fix.startswith("'topic' is not defined in stage inference: each stage runs in a fresh")
    assert "untagged setup cell" in error.fix and "tasks/t.ipynb of pipeline forgetful" in error.fix
    assert "pop.prev" in error.fix and error.fix.endswith(f"Then `pop resume {job.id}`")
