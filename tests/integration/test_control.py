"""Cancel and the CLI's read commands, against real runner processes."""

import json
import subprocess
import sys

from tests.conftest import Project, kernels_of, pop, wait_for


def test_cancel_stops_the_runner_and_its_kernels(project: Project) -> None:
    project.pipeline(
        "long",
        {"t": {"cells": [("inference", "import time\nprint('working', flush=True)\ntime.sleep(300)")]}},
    )
    job = project.run("long", wait=False)
    log = project.data / "current" / job.id / "tasks/t/logs/inference.log"
    wait_for(lambda: log.exists() and "working" in log.read_text(), timeout=60)  # mid-cell
    assert kernels_of(project.data)
    assert job.cancel() is True
    st = job.wait(timeout=60)
    assert st.state == "cancelled" and job.folder.place == "failed"
    assert st.error.type == "Cancelled"
    # the stage it stopped reads as stopped, not failed, wherever the job is shown
    assert st.tasks["t"].stages["inference"].state == "cancelled"
    stopped = [e for e in project.events(job) if e["kind"] == "stage" and e.get("stage") == "inference"]
    assert stopped[-1]["status"] == "cancelled"
    from pop_nb.widgets.job import render_job

    shown = render_job(st, job.folder.path)
    assert 'data-state="cancelled"' in shown and "<b>Cancelled</b> in t/inference:" in shown
    assert "failed notebook" not in shown
    wait_for(lambda: kernels_of(project.data) == [], timeout=10)  # none outlives its runner
    assert job.handle is not None and job.handle.process is not None
    assert job.handle.process.poll() is not None


def test_cli_status_logs_compile_and_pipelines(project: Project) -> None:
    project.pipeline("cli", {"t": {"cells": [("inference", "print('hello from the stage')\npop.output(1)")]}})
    proc = pop("run", "cli", "--data", '{"a": 1}', "--id", "c1", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "done: job c1" in proc.stderr

    status = json.loads(pop("status", "c1", "--json").stdout)
    assert status["state"] == "done" and status["schema_version"] == 1
    assert status["tasks"]["t"]["stages"]["inference"]["notebook"] == "tasks/t/04-inference.ipynb"
    assert "c1" in pop("status").stdout

    logs = pop("logs", "c1", "--task", "t")
    assert "hello from the stage" in logs.stdout
    bad = pop("logs", "c1", "--task", "nope")
    assert bad.returncode == 2 and "has no task 'nope'" in bad.stderr

    assert pop("compile", "cli").returncode == 0
    listed = json.loads(pop("pipelines", "--json").stdout)
    assert [p["slug"] for p in listed] == ["cli"]
    missing = pop("run", "ghost")
    assert missing.returncode == 2 and "no pipeline named 'ghost'" in missing.stderr


def test_run_with_model_sends_every_call_of_the_job_to_that_model(project: Project) -> None:
    script = {"*": {"inference": "hello"}}
    project.pipeline(
        "m",
        {"t": {"cells": [("inference", "pop.output(pop.chat('say hi').model)")]}},
        llm={"model": "mock/gpt-4o-mini", "mock_responses": script},
    )
    proc = pop("run", "m", "--data", "{}", "--id", "m1", "--model", "mock/gpt-4o", "--quiet")
    assert proc.returncode == 0, proc.stderr
    final = project.data / "complete/m1/tasks/t/outputs/final.json"
    assert json.loads(final.read_text()) == "mock/gpt-4o"  # the task's own script still answered
    [row] = [json.loads(line) for line in (project.data / "complete/m1/usage.jsonl").read_text().splitlines()]
    assert row["model"] == "mock/gpt-4o" and row["cost_usd"] > 0


def test_bad_seed_data_is_refused_with_the_key(project: Project) -> None:
    project.pipeline("s", {"t": {}})
    proc = pop("run", "s", "--data", "[1, 2]")
    assert proc.returncode == 2 and "data" in proc.stderr and "Fix" in proc.stderr
    proc = pop("run", "s", "--id", "../escape")
    assert proc.returncode == 2 and "not allowed" in proc.stderr
    assert not (project.root / "escape").exists()


def test_pop_init_scaffolds_a_project_that_runs(tmp_path, monkeypatch) -> None:
    target = tmp_path / "fresh"
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("POP_ROOT", raising=False)
    monkeypatch.delenv("POP_DATA_DIR", raising=False)
    assert pop("init", str(target)).returncode == 0
    proc = subprocess.run(
        [sys.executable, "-m", "pop_nb.cli", "run", "hello", "--data", '{"topic": "tides"}', "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=target,
    )
    assert proc.returncode == 0, proc.stderr
    [report] = (target / "pipeline-data" / "complete").glob("*/products/explainer.md")
    assert "Tidal power" in report.read_text()
    assert pop("init", str(target)).returncode == 2  # never overwrites
