"""A broker that forgets: a Redis without persistence restarts and loses its queue, a message outlives
Redis's visibility timeout, or no worker is there at all. Each job still runs exactly once, and nobody
waits forever."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.celery.conftest import Redis, Worker
from tests.celery.test_celery import pop_background, stage_counts
from tests.conftest import Project, pop, wait_for
from tests.orchestrator.test_daemon import Daemon

pytestmark = pytest.mark.slow


def events_named(project: Project, job_id: str, status: str) -> list[dict[str, object]]:
    return [e for e in project.events(project.job(job_id)) if e["kind"] == "job" and e["status"] == status]


@pytest.mark.timeout(400)
def test_a_batch_sends_again_what_a_restarted_broker_lost_and_each_job_runs_once(
    celery_project: Project,
    redis_server: Redis,
    workers: list[Worker],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = celery_project
    monkeypatch.setenv("POP_DISPATCH_LEASE_S", "3")
    project.pipeline(
        "slow", {"a": {"cells": [("inference", "import time; time.sleep(1); pop.output(pop.seed['n'])")]}}
    )
    workers.append(Worker(project, "only", concurrency=1))
    (project.root / "six.jsonl").write_text("".join(json.dumps({"data": {"n": n}}) + "\n" for n in range(6)))
    batch = pop_background(
        project, "batch", "slow", "--seeds", "six.jsonl", "--name", "b", "--concurrency", "6", "--json"
    )
    wait_for(lambda: any((project.data / "complete").glob("b-*")), timeout=120)
    redis_server.restart()  # the queued messages (and the one being worked on) are gone
    out, err = batch.communicate(timeout=300)
    assert batch.returncode == 0, (out, err, workers[0].text()[-3000:])
    summary = json.loads(out)
    assert summary["done"] == 6 and summary["stalled"] is None
    resent = [job for n in range(1, 7) for job in [f"b-{n}"] if events_named(project, job, "resent")]
    assert resent, "no job was sent again: the restart lost nothing?"
    for n in range(1, 7):
        job = project.job(f"b-{n}")
        assert job.outputs() == {"a": n - 1}
        assert stage_counts(project, f"b-{n}", "started") == Counter({"inference": 1}), f"b-{n}"


@pytest.mark.timeout(300)
def test_the_daemon_sends_again_a_job_no_worker_took_within_its_lease(
    celery_project: Project, redis_server: Redis, workers: list[Worker], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = celery_project
    monkeypatch.setenv("POP_DISPATCH_LEASE_S", "2")
    project.pipeline("tiny", {"a": {"cells": [("inference", "pop.output(1)")]}})
    assert pop("submit", "tiny", "--data", "{}", "--id", "d1").returncode == 0
    daemon = Daemon(project, "--once")
    wait_for(lambda: "dispatched d1 to celery" in daemon.output(), timeout=60)  # sent: in Redis's queue
    redis_server.restart()  # and lost, before any worker saw it
    workers.append(Worker(project, "late", concurrency=1))
    assert daemon.wait(240) == 0, daemon.output()
    job = project.job("d1")
    assert job.state == "done" and events_named(project, "d1", "resent"), daemon.output()
    assert stage_counts(project, "d1", "started") == Counter({"inference": 1})
    assert json.loads((job.path / "dispatch.json").read_text())["sends"] >= 2


@pytest.mark.timeout(300)
def test_a_job_longer_than_the_visibility_timeout_runs_once(
    celery_project: Project, workers: list[Worker], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = celery_project
    monkeypatch.setenv("POP_VISIBILITY_TIMEOUT_S", "2")
    project.pipeline(
        "long",
        {
            "a": {
                "cells": [
                    ("ingestion", "pop.output(0)"),
                    ("inference", "import time; time.sleep(8); pop.output(1)"),
                ]
            }
        },
    )
    worker = Worker(project, "w", concurrency=2)
    workers.append(worker)
    (project.root / "one.jsonl").write_text('{"data": {}}\n')
    run = pop("batch", "long", "--seeds", "one.jsonl", "--name", "v", "--json", timeout=240)
    assert run.returncode == 0, run.stdout + run.stderr
    assert stage_counts(project, "v-1", "started") == Counter({"ingestion": 1, "inference": 1})
    # Redis did give the message again while the job ran; the copy found the job's lock taken
    wait_for(lambda: "another runner has it" in worker.text(), timeout=30)


@pytest.mark.timeout(120)
def test_a_batch_with_no_worker_stops_waiting_and_says_why(
    celery_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = celery_project
    monkeypatch.setenv("POP_DISPATCH_LEASE_S", "1")
    monkeypatch.setenv("POP_BATCH_STALL_S", "3")
    project.pipeline("tiny", {"a": {}})
    (project.root / "two.jsonl").write_text('{"data": {}}\n{"data": {}}\n')
    run = pop("batch", "tiny", "--seeds", "two.jsonl", "--name", "n", "--json", timeout=100)  # not forever
    assert run.returncode == 1, run.stdout + run.stderr
    summary = json.loads(run.stdout)
    assert summary["done"] == 0 and summary["failed"] == 2, summary
    assert "no worker answers" in summary["stalled"] and "pop worker" in summary["stalled"]
    assert {job["state"] for job in summary["jobs"]} == {"pending"}  # kept, to run when a worker comes
    text = pop("batch", "tiny", "--seeds", "two.jsonl", "--name", "n", timeout=100)
    assert text.returncode == 1 and "stopped waiting: nothing moved" in text.stdout, text.stdout


@pytest.mark.timeout(200)
def test_a_worker_faster_than_the_dispatcher_waits_for_its_lock_instead_of_dropping_the_job(
    celery_project: Project, workers: list[Worker]
) -> None:
    """The sender holds the job's lock until its send returns; a worker that gets the message first
    used to answer "another runner has it" and leave the job to the dispatch lease (120 s)."""
    import time

    from pop_nb.models.seed import Seed
    from pop_nb.orchestrator.executors import get_executor
    from pop_nb.service import create_job
    from pop_nb.store.jobs import JobStore
    from pop_nb.store.locks import FileLock

    project = celery_project
    project.pipeline("quick", {"a": {"cells": [("inference", "pop.output('ran')")]}})
    workers.append(Worker(project, "fast", concurrency=1))
    settings = project.settings()
    create_job(settings, Seed(pipeline="quick"), "quick-1", where="test")
    folder = JobStore(settings.data).get("quick-1")
    lock = FileLock(folder.runner_lock)
    assert lock.acquire()
    executor = get_executor(settings, "celery")
    try:
        executor.record(folder, queue="pop", ticket="t-1", sends=1)
        executor._send("quick-1", "pop", "t-1")  # type: ignore[attr-defined]
        wait_for(lambda: "received" in workers[0].text(), timeout=60)
        time.sleep(1.5)  # the worker has the message; the sender still holds the lock
    finally:
        lock.release()
        executor.close()
    wait_for(lambda: (project.data / "complete" / "quick-1").is_dir(), timeout=60)  # not the 120 s lease
    assert project.job("quick-1").outputs() == {"a": "ran"}
