"""Cancel and the CLI's read commands, against real runner processes."""

import json
import os
import subprocess
import sys
from collections.abc import Callable

import pytest

from pop_nb.execution.job_runner import JobRunner
from pop_nb.execution.kernels import FreshKernelProvider, KernelManager
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


class _CancelledWhileAcquiring(FreshKernelProvider):
    """The cancel (or a fault) arrives while the stage waits for its kernel: a real provider, the race
    made certain."""

    def __init__(self, arrives: Callable[[], None]) -> None:
        super().__init__(60, start="fork", preload=[])
        self.arrives = arrives

    def acquire(self, cwd: str) -> KernelManager:
        self.arrives()
        return super().acquire(cwd)


@pytest.mark.parametrize("cancelled", [True, False], ids=["cancelled", "provider-fault"])
def test_a_stage_that_never_got_its_kernel_is_not_left_running(
    project: Project, cancelled: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Whatever stops a stage before its kernel is its own (a cancel that shut the provider while the
    stage waited for a kernel, the provider failing), the stage ends with the task: the job view's grid
    shows it stopped (or failed), never running in a job that has ended. What the failure says is
    masked like a cell's error (a key in it never reaches the status or runner.log)."""
    from pop_nb.models.seed import parse_seed
    from pop_nb.pipeline.snapshot import job_pipeline
    from pop_nb.service import create_job

    monkeypatch.setenv("OPENAI_API_KEY", "sk-canary-5c1d0e8f7a6b")
    project.pipeline("one", {"t": {"cells": [("inference", "pop.output(1)")]}})
    settings = project.settings()
    folder = create_job(settings, parse_seed({"pipeline": "one", "data": {}}, "test"), None, where="test")
    runner: JobRunner

    def arrives() -> None:
        if cancelled:
            runner.cancel()
        else:
            raise OSError(24, f"Too many open files (key {os.environ['OPENAI_API_KEY']})")

    provider = _CancelledWhileAcquiring(arrives)
    runner = JobRunner(settings, folder, job_pipeline(folder, settings.root, "one"), provider=provider)
    st = runner.run()
    stage = st.tasks["t"].stages["inference"]
    assert stage.state == ("cancelled" if cancelled else "failed") and stage.ended_at
    assert st.state == ("cancelled" if cancelled else "failed")
    assert st.error is not None
    assert st.error.type == ("Cancelled" if cancelled else "OSError"), st.error
    assert (st.error.task, st.error.stage) == ("t", "inference")
    if not cancelled:
        assert st.error.message == "[Errno 24] Too many open files (key [REDACTED])", st.error.message
        assert any("OSError" in line for line in st.error.traceback)  # where it came from
    assert "sk-canary" not in capsys.readouterr().out + json.dumps(st.model_dump())
    events = [json.loads(line) for line in (runner.job.path / "events.jsonl").read_text().splitlines()]
    said = [e["status"] for e in events if e["kind"] == "stage" and e.get("stage") == "inference"]
    assert said == ["started", stage.state]


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
