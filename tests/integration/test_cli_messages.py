"""The CLI tells the fix: typos get "did you mean", a pipe closed early is no error, a gate is not a
failure."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import Project, pop


def test_typos_get_did_you_mean_and_logs_checks_its_filters(project: Project) -> None:
    project.pipeline(
        "tiny", {"alpha": {"cells": [("ingestion", "print('x\\n' * 5000)"), ("inference", "pop.output(1)")]}}
    )
    ran = pop("run", "tiny", "--id", "j1", "--quiet")
    assert ran.returncode == 0, ran.stderr
    typo = pop("run", "tinny")
    assert typo.returncode == 2 and "Did you mean 'tiny'?" in typo.stderr
    assert "Did you mean 'alpha'?" in pop("logs", "j1", "--task", "alpah").stderr
    nosuch = pop("logs", "j1", "--stage", "inferance")
    assert nosuch.returncode == 2
    assert (
        "Did you mean 'inference'?" in nosuch.stderr
        and "Stages that ran: inference, ingestion" in nosuch.stderr
    )
    assert "Did you mean 'alpha'?" in pop("resume", "j1", "--from-task", "alpah").stderr
    help_text = pop("logs", "--help").stdout
    assert "only this task's stages" in help_text and "only this stage" in help_text


def test_logs_into_a_pipe_closed_early_ends_quietly(project: Project) -> None:
    project.pipeline("chatty", {"a": {"cells": [("inference", "print('line\\n' * 20000)\npop.output(1)")]}})
    assert pop("run", "chatty", "--id", "c1", "--quiet").returncode == 0
    shell = subprocess.run(
        f"{sys.executable} -m pop_nb.cli logs c1 | head -n 2",
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shell.stdout.count("\n") == 2
    assert "Traceback" not in shell.stderr and "BrokenPipeError" not in shell.stderr


def test_run_stopping_at_a_gate_says_so_with_its_own_exit_code(project: Project) -> None:
    project.pipeline(
        "gated",
        {
            "draft": {"gate": True, "cells": [("inference", "pop.output('d')")]},
            "publish": {"needs": ["draft"], "cells": [("inference", "pop.output(pop.inputs['draft'])")]},
        },
    )
    run = pop("run", "gated", "--id", "g1", "--quiet")
    assert run.returncode == 3, run.stderr
    assert "waiting at the gate after draft: `pop approve g1`" in run.stderr and "pop reject g1" in run.stderr
    assert "without finishing" not in run.stderr
    assert pop("approve", "g1", "--quiet").returncode == 0


def test_a_run_without_a_seed_names_the_pipelines_example_seeds(project: Project) -> None:
    project.copy_example("code-generation")
    bare = pop("run", "code-generation")
    assert bare.returncode != 0
    assert "'module' is a required property" in bare.stderr
    assert "this pipeline's examples: pipelines/code-generation/seeds/slugify.json" in bare.stderr
    assert not (project.data / "current").exists() or not any((project.data / "current").iterdir())
