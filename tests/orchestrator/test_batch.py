"""``pop batch`` on the local executor: plan (bad seeds listed, the rest run), verify, run again."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import Project, pop

pytestmark = pytest.mark.slow

# fails while the file `broken` exists in the project: a bug the user then fixes
FLAKY = (
    "import pathlib\n"
    "if pop.seed['n'] == 2 and pathlib.Path({flag!r}).exists():\n"
    "    raise ValueError('bad luck')\n"
)


def stage_runs(project: Project, job_id: str) -> Counter[str]:
    job = project.job(job_id)
    return Counter(e["stage"] for e in project.events(job) if e["kind"] == "stage" and e["status"] == "done")


def test_a_batch_lists_bad_seeds_runs_the_rest_and_resumes_only_its_failures(project: Project) -> None:
    flag = project.root / "broken"
    flag.touch()
    project.pipeline(
        "sq",
        {
            "a": {
                "cells": [
                    ("ingestion", "pop.output(pop.seed['n'])"),
                    ("inference", FLAKY.format(flag=str(flag)) + "pop.output(pop.seed['n'] ** 2)"),
                ]
            }
        },
    )
    seeds = project.root / "numbers.jsonl"
    seeds.write_text(
        "\n".join(
            [
                '{"data": {"n": 1}}',
                '{"data": {"n": 2}}',
                "{not json",
                '{"pipeline": "elsewhere", "data": {"n": 4}}',
                "",  # blank lines are not seeds
                '{"data": {"n": 3}, "name": "three"}',
            ]
        )
        + "\n"
    )
    first = pop("batch", "sq", "--seeds", str(seeds), "--concurrency", "2", "--json", timeout=240)
    assert first.returncode == 1, first.stderr
    summary = json.loads(first.stdout)
    assert (summary["seeds"], summary["rejected"], summary["done"], summary["failed"]) == (5, 2, 2, 1)
    manifest = [
        json.loads(line)
        for line in (project.data / "batches/sq-numbers/manifest.jsonl").read_text().splitlines()
    ]
    assert [line["job"] for line in manifest] == ["sq-numbers-1", "sq-numbers-2", None, None, "sq-numbers-5"]
    assert "numbers.jsonl:3 is not valid JSON" in manifest[2]["error"]
    assert "names pipeline 'elsewhere' but was sent to 'sq'" in manifest[3]["error"]
    assert not (project.data / "current").exists() or not any((project.data / "current").iterdir())
    [failure] = [j for j in summary["jobs"] if j["state"] != "done"]
    assert failure["job"] == "sq-numbers-2" and "ValueError: bad luck" in failure["error"]
    assert failure["resume"] == "pop resume sq-numbers-2"
    assert summary["slowest_tasks"][0]["task"] == "a" and summary["jobs"][0]["where"]
    assert project.job("sq-numbers-5").outputs() == {"a": 9}

    text = pop("batch", "sq", "--seeds", str(seeds), timeout=240)  # the same batch: after the fix
    flag.unlink()
    again = pop("batch", "sq", "--seeds", str(seeds), "--json", timeout=240)
    assert again.returncode == 1  # the two bad seeds are still bad
    summary = json.loads(again.stdout)
    assert (summary["done"], summary["failed"], summary["skipped"]) == (3, 0, 2)
    assert project.job("sq-numbers-2").outputs() == {"a": 4}
    # done jobs were not run again; the failed one ran its failed task once per batch run
    assert stage_runs(project, "sq-numbers-1") == Counter({"ingestion": 1, "inference": 1})
    assert stage_runs(project, "sq-numbers-5") == Counter({"ingestion": 1, "inference": 1})
    assert stage_runs(project, "sq-numbers-2") == Counter({"ingestion": 3, "inference": 1})
    assert "rejected: " in text.stdout and "pop resume sq-numbers-2" in text.stdout


def test_a_glob_batch_and_bad_arguments(project: Project) -> None:
    project.pipeline("echo", {"a": {"cells": [("inference", "pop.output(pop.seed['word'])")]}})
    folder = project.root / "seeds"
    folder.mkdir()
    for word in ("alpha", "beta"):
        (folder / f"{word}.json").write_text(json.dumps({"pipeline": "echo", "data": {"word": word}}))
    run = pop("batch", "echo", "--glob", "seeds/*.json", "--name", "words", timeout=240)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "batch words: 2 done, 0 failed, 0 rejected of 2 seeds" in run.stdout
    assert sorted(project.job(f"words-{n}").outputs()["a"] for n in (1, 2)) == ["alpha", "beta"]

    none = pop("batch", "echo", "--glob", "nothing/*.json")
    assert none.returncode == 2 and "matches no file" in none.stderr
    bad_name = pop("batch", "echo", "--glob", "seeds/*.json", "--name", "../escape")
    assert bad_name.returncode == 2 and "is not allowed" in bad_name.stderr
    assert not (project.data / "escape-1").exists() and not (project.root / "escape-1").exists()
    missing = pop("batch", "echo", "--seeds", str(Path("no-such.jsonl")))
    assert missing.returncode == 2 and "cannot read the seeds file no-such.jsonl" in missing.stderr


def test_seeds_that_are_not_objects_or_too_big_are_listed_not_fatal(project: Project) -> None:
    project.pipeline("echo", {"a": {"cells": [("inference", "pop.output(pop.seed.get('word'))")]}})
    odd = project.root / "odd.jsonl"
    odd.write_text(
        '42\n[1, 2]\n"text"\n{"data": {"word": "fine"}}\n{"data": {"pad": "' + "x" * (1 << 20) + '"}}\n'
    )
    run = pop("batch", "echo", "--seeds", str(odd), "--json", timeout=240)
    assert run.returncode == 1, run.stderr
    summary = json.loads(run.stdout)
    assert (summary["seeds"], summary["rejected"], summary["done"]) == (5, 4, 1)
    manifest = (project.data / "batches/echo-odd/manifest.jsonl").read_text()
    assert (
        manifest.count("is JSON but not an object") == 3
        and "over the 1048576-byte limit for seeds" in manifest
    )


def test_a_remote_jobs_end_frees_its_slot_at_once_not_at_the_next_poll(project: Project) -> None:
    """A remote runner has no pidfd of ours: the wait ends when a job leaves current/ (on Celery a slot
    waited out the whole poll, 0.25 s, after every job)."""
    import threading
    import time

    from pop_nb.orchestrator.batch import until_one_ends
    from pop_nb.orchestrator.executors import JobHandle

    current = project.data / "current"
    (current / "r1").mkdir(parents=True)
    (project.data / "complete").mkdir(parents=True, exist_ok=True)
    handles = [JobHandle(project.settings(), "r1", "celery", ticket="t")]
    threading.Timer(0.2, lambda: (current / "r1").rename(project.data / "complete" / "r1")).start()
    started = time.monotonic()
    until_one_ends(handles, 45, current)
    assert not (current / "r1").exists()  # woken by the move
    assert time.monotonic() - started < 45  # not by the timeout
    started = time.monotonic()
    until_one_ends(handles, 0.3, current)  # nothing moves: the whole timeout
    assert time.monotonic() - started >= 0.3


def test_a_slot_is_noticed_free_when_its_runner_exits_not_at_the_next_poll(project: Project) -> None:
    """The batch's wait ends when a runner it started exits (its pidfd), spawned or forked alike."""
    import subprocess
    import sys
    import time

    from pop_nb.orchestrator.batch import until_one_ends
    from pop_nb.orchestrator.executors import JobHandle

    quick = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
    slow = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    handles = [
        JobHandle(project.settings(), job, "local", process=p) for job, p in (("a", quick), ("b", slow))
    ]
    try:
        started = time.monotonic()
        until_one_ends(handles, 45)
        assert quick.poll() is not None  # woken by the quick one's end
        assert time.monotonic() - started < 45  # not by the timeout
    finally:
        slow.kill()
        slow.wait()
