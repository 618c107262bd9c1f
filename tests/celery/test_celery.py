"""The celery executor with real Redis and real `pop worker` processes: spread, kill -9, cancel, broker
down."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tests.celery.conftest import Worker, kill_runner
from tests.conftest import WAIT_FOR_GO, Project, pop, wait_for

pytestmark = pytest.mark.slow


def stage_counts(project: Project, job_id: str, status: str) -> Counter[str]:
    job = project.job(job_id)
    return Counter(e["stage"] for e in project.events(job) if e["kind"] == "stage" and e["status"] == status)


def test_a_twenty_seed_batch_uses_both_workers(celery_project: Project, workers: list[Worker]) -> None:
    project = celery_project
    project.pipeline("tiny", {"a": {"cells": [("inference", "pop.output(pop.seed['n'] * 2)")]}})
    workers += [Worker(project, "w1"), Worker(project, "w2")]
    seeds = project.root / "twenty.jsonl"
    seeds.write_text("".join(json.dumps({"data": {"n": n}}) + "\n" for n in range(20)))
    run = pop("batch", "tiny", "--seeds", str(seeds), "--concurrency", "4", "--json", timeout=600)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["done"] == 20 and summary["executor"] == "celery"
    ran_by = Counter(job["where"].split()[-1].split("@")[0] for job in summary["jobs"])
    assert set(ran_by) == {"w1", "w2"}, ran_by
    for n in range(20):
        job = project.job(f"tiny-twenty-{n + 1}")
        assert job.outputs() == {"a": 2 * n} and job.status.executor == "celery"
        assert json.loads((job.path / "dispatch.json").read_text())["queue"] == "pop"
    # the same batch again: nothing to do, nothing dispatched
    again = pop("batch", "tiny", "--seeds", str(seeds), "--json", timeout=120)
    assert json.loads(again.stdout)["skipped"] == 20


@pytest.mark.parametrize("driver", ["batch", "daemon"])
def test_a_worker_killed_mid_job_leaves_it_to_another_worker_each_stage_done_once(
    celery_project: Project, workers: list[Worker], driver: str
) -> None:
    project = celery_project
    go = project.root / "go"
    project.pipeline(
        "long",
        {
            "a": {
                "cells": [
                    ("ingestion", "pop.output('in')"),
                    ("inference", WAIT_FOR_GO.format(go=str(go)) + "pop.output('thought')"),
                    ("integration", "pop.output(pop.prev + '!')"),
                ]
            }
        },
    )
    doomed = Worker(project, "doomed", concurrency=1)
    workers.append(doomed)
    (project.root / "one.jsonl").write_text('{"data": {}}\n')
    if driver == "batch":
        driving = pop_background(project, "batch", "long", "--seeds", "one.jsonl", "--json")
    else:
        assert pop("submit", "long", "--data", "{}", "--id", "long-one-1").returncode == 0
        driving = pop_background(project, "orchestrate", "--once", "--poll", "0.2")
    folder = project.data / "current" / "long-one-1"
    log = folder / "tasks/a/logs/inference.log"
    wait_for(lambda: log.exists(), timeout=120)  # inside the inference stage, on the doomed worker
    assert "doomed@" in (folder / "runner.json").read_text()
    doomed.kill9()  # first: a worker that outlives its runner recovers the job itself, at once
    kill_runner(folder)
    go.touch()
    workers.append(Worker(project, "rescuer", concurrency=1))
    out, _ = driving.communicate(timeout=300)
    assert driving.returncode == 0, out
    if driver == "batch":
        assert json.loads(out)["done"] == 1, out
    else:
        assert "recovering long-one-1" in out and "dispatched long-one-1 to celery" in out, out
    job = project.job("long-one-1")
    assert job.outputs() == {"a": "thought!"}
    assert job.status.worker.startswith("rescuer@") and job.status.recoveries == 1
    assert stage_counts(project, "long-one-1", "done") == Counter(
        {"ingestion": 1, "inference": 1, "integration": 1}
    )
    assert stage_counts(project, "long-one-1", "started")["ingestion"] == 1  # done work was not redone


def test_cancel_reaches_a_job_on_a_worker_of_another_machine(
    celery_project: Project, workers: list[Worker]
) -> None:
    project = celery_project
    project.pipeline("wait", {"a": {"cells": [("inference", WAIT_FOR_GO.format(go="/nonexistent/go"))]}})
    workers.append(Worker(project, "far", host="far-box"))
    run = pop_background(project, "run", "wait", "--data", "{}", "--id", "c1", "--quiet")
    folder = project.data / "current" / "c1"
    wait_for(lambda: (folder / "tasks/a/logs/inference.log").exists(), timeout=120)
    assert json.loads((folder / "runner.json").read_text())["host"] == "far-box"
    cancelled = pop("cancel", "c1", timeout=60)
    assert cancelled.returncode == 0, cancelled.stderr
    run.communicate(timeout=60)
    job = project.job("c1")
    assert job.state == "cancelled" and job.path.parent.name == "failed"
    assert job.status.host == "far-box" and job.status.worker.startswith("far@")
    assert not (job.path / "cancel.request").exists()


def test_broker_down_is_a_clear_error_and_nothing_is_dispatched(
    celery_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pop_nb.testing.lab import free_port

    project = celery_project
    project.pipeline("tiny", {"a": {"cells": [("inference", "pop.output(1)")]}})
    monkeypatch.setenv("POP_BROKER_URL", f"redis://:s3cret-pass@127.0.0.1:{free_port()}/0")
    (project.root / "two.jsonl").write_text('{"data": {}}\n{"data": {}}\n')
    batch = pop("batch", "tiny", "--seeds", "two.jsonl", timeout=60)
    assert batch.returncode == 2
    assert "does not answer" in batch.stderr and "nothing was dispatched" in batch.stderr
    assert "s3cret-pass" not in batch.stderr and ":***@127.0.0.1" in batch.stderr
    run = pop("run", "tiny", "--data", "{}", "--id", "r1", timeout=60)
    assert run.returncode == 2 and "does not answer" in run.stderr
    assert not any((project.data / "current").iterdir()) and not (project.data / "batches").exists()
    worker = pop("worker", timeout=60)
    assert worker.returncode == 2 and "does not answer" in worker.stderr


def test_a_worker_that_cannot_see_the_data_folder_refuses_to_start(
    celery_project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POP_DATA_DIR", str(tmp_path / "not-mounted"))
    worker = pop("worker", timeout=60)
    assert worker.returncode == 2
    assert "cannot see the data folder" in worker.stderr and "not-mounted" in worker.stderr


def pop_background(project: Project, *args: str):  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    return subprocess.Popen(
        [sys.executable, "-m", "pop_nb.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_the_daemon_runs_up_to_its_cap_here_and_spills_the_rest_to_workers(
    celery_project: Project, workers: list[Worker], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.orchestrator.test_intake import drop

    project = celery_project
    monkeypatch.setenv("POP_EXECUTOR", "local")
    monkeypatch.setenv("POP_SPILL_TO", "celery")
    monkeypatch.setenv("POP_MAX_RUNNING_JOBS", "1")
    project.pipeline("tiny", {"a": {"cells": [("inference", "import time; time.sleep(1); pop.output(1)")]}})
    workers.append(Worker(project, "spill"))
    for n in range(4):
        drop(project, f"s{n}-seed.json", json.dumps({"pipeline": "tiny", "data": {}}).encode())
    daemon = pop("orchestrate", "--once", "--poll", "0.2", timeout=300)
    assert daemon.returncode == 0, daemon.stdout + daemon.stderr
    executors = Counter(project.job(f"s{n}").status.executor for n in range(4))
    assert executors["local"] >= 1 and executors["celery"] >= 1, (executors, daemon.stdout)
    assert all(project.job(f"s{n}").state == "done" for n in range(4))
    assert "dispatched s" in daemon.stdout and "to celery" in daemon.stdout


def test_a_pipeline_queue_routes_its_jobs_and_a_failure_on_a_worker_ends_in_failed(
    celery_project: Project, workers: list[Worker]
) -> None:
    project = celery_project
    project.pipeline(
        "gpu", {"a": {"cells": [("inference", "raise RuntimeError('out of GPU memory')")]}}, queue="gpu-boxes"
    )
    # a stage sees no broker URL (it may hold a password): runners are not given it
    project.pipeline(
        "plain",
        {
            "a": {
                "cells": [("inference", "import os\npop.output(os.environ.get('POP_BROKER_URL', 'absent'))")]
            }
        },
    )
    workers += [Worker(project, "gpuw", queues="gpu-boxes"), Worker(project, "cpuw")]
    failed = pop("run", "gpu", "--data", "{}", "--id", "g1", "--quiet", timeout=180)
    assert failed.returncode == 1, failed.stderr
    job = project.job("g1")
    assert job.path.parent.name == "failed" and job.status.error.type == "RuntimeError"
    assert "out of GPU memory" in job.status.error.message and job.status.worker.startswith("gpuw@")
    assert json.loads((job.path / "dispatch.json").read_text())["queue"] == "gpu-boxes"
    assert "RuntimeError: out of GPU memory" in failed.stderr
    ok = pop("run", "plain", "--data", "{}", "--id", "p1", "--quiet", timeout=180)
    assert ok.returncode == 0 and project.job("p1").status.worker.startswith("cpuw@")
    assert project.job("p1").outputs() == {"a": "absent"}
    status = pop("status", "g1").stdout
    assert "ran on" in status and "worker gpuw@" in status


def test_prompt_tests_run_on_workers_from_the_recording(
    celery_project: Project, workers: list[Worker]
) -> None:
    project = celery_project
    project.copy_example("ticket-triage")
    workers.append(Worker(project, "w1"))
    done = pop("test", "ticket-triage", "--json", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert [o["result"] for o in report["outcomes"]] == ["passed", "passed"]
    for outcome in report["outcomes"]:
        job = project.job(outcome["job"])
        assert job.status.executor == "celery" and job.status.worker and job.status.worker.startswith("w1@")
        assert job.status.totals.cache_hits == job.status.totals.calls == 3  # answered from the recording


def test_an_experiment_runs_on_workers_and_compares_as_it_does_here(
    celery_project: Project, workers: list[Worker]
) -> None:
    from tests.integration.test_experiments import compare, setup

    project = celery_project
    setup(project)
    workers += [Worker(project, "w1"), Worker(project, "w2")]
    ran = pop("experiment", "run", "triage", "--executor", "celery", "--concurrency", "4", timeout=600)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    variants = compare(project)
    assert variants["mini"]["metrics"]["category"]["mean"] == 0.75  # what the local run gives
    assert variants["billing-minded"]["metrics"]["category"]["mean"] == 0.25
    jobs = [project.job(f"exp-triage-{v}-{n}") for v in ("mini", "billing-minded") for n in range(1, 5)]
    assert all(job.status.executor == "celery" and job.status.state == "done" for job in jobs)
    assert {job.status.worker.split("@")[0] for job in jobs if job.status.worker} == {"w1", "w2"}
    stamps = {job.id: job.status.updated_at for job in jobs}
    again = pop("experiment", "run", "triage", "--executor", "celery", timeout=120)
    assert again.returncode == 0 and "4 done, 0 failed" in again.stderr
    assert {job.id: job.status.updated_at for job in jobs} == stamps  # done: nothing sent again
