"""Parallel branches, conditions, stages without cells, the task API's world."""

from datetime import datetime

from tests.conftest import REPO, Project, UnixSocketKernel, kernels_of


def test_independent_tasks_overlap_and_false_condition_skips(project: Project) -> None:
    project.copy_example("ticket-triage")
    job = project.run("ticket-triage", {"ticket": "Printer jams.", "customer": "ACME"})
    st = job.status
    assert st.state == "done", st.error
    assert (
        st.tasks["escalate"].state == "skipped" and "condition is false" in st.tasks["escalate"].skip_reason
    )
    spans = {}
    for e in project.events(job):
        if e["kind"] == "task" and e["status"] in ("started", "done"):
            spans.setdefault(e["task"], {})[e["status"]] = datetime.fromisoformat(e["ts"])
    reply, tags = spans["reply"], spans["tags"]
    assert reply["started"] < tags["done"] and tags["started"] < reply["done"], spans
    assert (job.path / "products" / "reply.txt").read_text().startswith("Hello")
    assert kernels_of(project.data) == []


def test_condition_on_false_fail(project: Project) -> None:
    project.pipeline(
        "gate",
        {
            "a": {"cells": [("inference", "pop.output({'score': 0.2})")]},
            "b": {"needs": ["a"], "condition": "inputs['a']['score'] > 0.5", "on_false": "fail"},
        },
    )
    job = project.run("gate")
    assert job.state == "failed" and job.status.error.type == "ConditionFalse"


def test_stages_without_cells_start_no_kernel_and_world_flows(project: Project) -> None:
    project.pipeline(
        "world",
        {
            "up": {"cells": [("integration", "pop.output({'v': 41})")]},
            "down": {
                "needs": ["up"],
                "config": {"k": "from-yaml"},
                "cells": [
                    (
                        "ingestion",
                        "pop.output({'seed': pop.seed, 'up': pop.inputs['up'], 'config': pop.config})",
                    ),
                    (
                        "parsing",
                        "pop.flag('seen', pop.prev['up']['v'] + 1)\npop.write_artifact('note.txt', 'hello')\n"
                        "pop.output(pop.stages['ingestion'])",
                    ),
                    (
                        "integration",
                        "pop.output({'flag': pop.flags['seen'], "
                        "'art': pop.read_artifact('down', 'note.txt'), "
                        "'stages': sorted(pop.stages), 'attempt': pop.attempt})",
                    ),
                ],
            },
        },
    )
    job = project.run("world", {"x": 1})
    assert job.state == "done", job.status.error
    out = job.outputs()["down"]
    assert out == {"flag": 42, "art": "hello", "stages": ["ingestion", "parsing"], "attempt": 1}
    first = job.path / "tasks" / "down" / "outputs" / "ingestion.json"
    import json

    assert json.loads(first.read_text()) == {"seed": {"x": 1}, "up": {"v": 41}, "config": {"k": "from-yaml"}}
    assert sorted(job.status.tasks["down"].stages) == ["ingestion", "integration", "parsing"]
    assert [p.name for p in (job.path / "tasks" / "up").glob("*.ipynb")] == ["11-integration.ipynb"]


def test_task_notebook_runs_by_hand_on_its_sample() -> None:
    """The example notebooks run top to bottom in a plain kernel, as in JupyterLab (no runner)."""
    import nbformat
    from nbclient import NotebookClient

    path = REPO / "pipelines" / "content-generation" / "tasks" / "research.ipynb"
    nb = nbformat.read(path, as_version=4)
    resources = {"metadata": {"path": str(path.parent)}}
    NotebookClient(nb, timeout=120, resources=resources, kernel_manager_class=UnixSocketKernel).execute()
    outputs = str([c.get("outputs") for c in nb.cells])
    assert "findings, overall confidence" in outputs
