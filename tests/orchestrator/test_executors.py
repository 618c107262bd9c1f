"""The executor seam: executors found by name through the ``pop_nb.executors`` entry point group."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Project, pop

PLUGIN = '''
from pathlib import Path

from pop_nb.orchestrator.executors.local import LocalExecutor


class LoggingExecutor(LocalExecutor):
    """A third party's executor: runs jobs here, and keeps a list of what it was given."""

    name = "logging"

    def submit(self, job_id, *, lock=None, sends=1):
        with (Path(self.settings.root) / "given.txt").open("a") as out:
            out.write(job_id + "\\n")
        return super().submit(job_id, lock=lock)
'''


def install_plugin(site: Path) -> None:
    """A package installed the way pip leaves one: a module and a dist-info with its entry point."""
    (site / "popx_logging.py").write_text(PLUGIN)
    info = site / "popx_logging-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: popx-logging\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[pop_nb.executors]\nlogging = popx_logging:LoggingExecutor\n")


def test_an_executor_from_another_package_runs_jobs_by_name(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_plugin(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setenv("POP_EXECUTOR", "logging")
    project.pipeline("tiny", {"a": {"cells": [("inference", "pop.output(2 * pop.seed['n'])")]}})
    run = pop("run", "tiny", "--data", '{"n": 21}', "--id", "x1", "--quiet")
    assert run.returncode == 0, run.stderr
    assert (project.root / "given.txt").read_text() == "x1\n"
    job = project.job("x1")
    assert job.outputs() == {"a": 42}
    assert job.status.executor == "logging" and job.status.host
    assert json.loads((job.path / "dispatch.json").read_text())["executor"] == "logging"


def test_an_unknown_executor_is_refused_with_the_known_ones(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.pipeline("tiny", {"a": {"cells": [("inference", "pop.output(1)")]}})
    monkeypatch.setenv("POP_EXECUTOR", "celeri")
    run = pop("run", "tiny", "--data", "{}", "--id", "x2", "--quiet")
    assert run.returncode == 2
    assert "executor 'celeri' is not known. Did you mean 'celery'?" in run.stderr
    assert "one of: celery, local" in run.stderr
    daemon = pop("orchestrate", "--once")
    assert daemon.returncode == 2 and "executor 'celeri' is not known" in daemon.stderr


def test_register_in_process_wins_over_entry_points(project: Project) -> None:
    from pop_nb.orchestrator.executors import executor_class, known_executors, register
    from pop_nb.orchestrator.executors.local import LocalExecutor

    class Mine(LocalExecutor):
        name = "local"

    register("mine", Mine)
    try:
        assert "mine" in known_executors() and executor_class("mine") is Mine
    finally:
        from pop_nb.orchestrator import executors

        executors._registered.pop("mine")


def test_remote_is_what_the_executor_class_says_not_its_name() -> None:
    from pop_nb.orchestrator.executors import is_remote, register
    from pop_nb.orchestrator.executors.local import LocalExecutor

    class Here(LocalExecutor):
        name = "here-too"

    assert not is_remote("local") and is_remote("celery")
    assert is_remote("here-too")  # not known yet: someone else's
    register("here-too", Here)
    assert not is_remote("here-too")  # runs on this machine, whatever its name
