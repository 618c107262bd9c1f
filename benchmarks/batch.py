"""``pop batch`` throughput: N one-task jobs, side by side in one run,

- local executor, two jobs at once (``pop batch --executor local --concurrency 2``);
- celery executor, two ``pop worker`` processes of one slot each, on a Redis of its own;
- plain papermill running the same notebook N times, two at once: the ``papermill`` command in a clean
  environment (papermill and ipykernel only, built once: ``anchors.py``), and papermill in pop-nb's own
  environment, which is slower (README: Benchmarks);

and the Redis round-trip of one dispatch (``send_task`` to an idle queue, median of 200).

    python benchmarks/batch.py [--jobs 200]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

from anchors import (
    clean_papermill,
    described,
    failed_first,
    run_notebook,
    trivial_notebook,
)  # benchmarks/anchors.py, beside this file

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_project(root: Path, jobs: int) -> Path:
    from tests.conftest import Project

    Project(root).pipeline("trivial", {"a": {"cells": [("inference", "pop.output(1)")]}})
    seeds = root / "seeds.jsonl"
    seeds.write_text("".join(json.dumps({"data": {"n": n}}) + "\n" for n in range(jobs)))
    (root / "pipeline-data" / "current").mkdir(parents=True)
    return seeds


def pop_batch(root: Path, seeds: Path, executor: str, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, the wall clock when it began)."""
    began = time.time()
    start = time.perf_counter()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pop_nb.cli",
            "batch",
            "trivial",
            "--seeds",
            str(seeds),
            "--executor",
            executor,
            "--concurrency",
            "2",
            "--name",
            executor,
            "--json",
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    took = time.perf_counter() - start
    summary = json.loads(run.stdout)
    assert summary["done"] == summary["seeds"], run.stderr[-2000:]
    return took, began


STEPS = [  # a job's events in the order they happen, and what happens from each to the next
    (("job", "created"), "dispatch (folder made, pipeline snapshot taken; handed to the executor)"),
    (
        ("job", "dispatched"),
        "runner up (the executor has it, a runner forked from the kernel server, lock taken)",
    ),
    (("job", "started"), "task set up"),
    (("task", "started"), "stage set up"),
    (("stage", "started"), "stage (a fresh kernel; the notebook run and saved)"),
    (("stage", "done"), "task closed"),
    (("task", "done"), "job closed (status, event, moved to complete/)"),
    (("job", "done"), ""),
]


def slot_parts(data: Path, batch: str, began: float, concurrency: int = 2) -> list[tuple[str, float]]:
    """Where a slot's time goes (ms, from the jobs' events.jsonl): the start-up before the first job
    starts (the kernel server, once per batch), then per job the median of each step, and what is left
    between one job's end and the next one's creation on its slot (the runner's exit, the batch seeing
    it, the next seed checked)."""
    from datetime import datetime

    lines = (data / "batches" / batch / "manifest.jsonl").read_text().splitlines()
    times: list[dict[tuple[str, str], float]] = []
    for line in lines:
        job = json.loads(line)["job"]
        seen: dict[tuple[str, str], float] = {}
        for event in (data / "complete" / job / "events.jsonl").read_text().splitlines():
            e = json.loads(event)
            seen.setdefault((e["kind"], e.get("status")), datetime.fromisoformat(e["ts"]).timestamp())
        times.append(seen)
    first = min(t[("job", "started")] for t in times)
    parts = [("start-up, once: the batch, the kernel server, the first runner", 1000 * (first - began))]
    steps = []
    for (step, label), (after, _) in itertools.pairwise(STEPS):
        steps.append((label, 1000 * statistics.median(t[after] - t[step] for t in times)))
    last = max(t[("job", "done")] for t in times)
    slot = 1000 * (last - first) * concurrency / len(times)
    parts.append((f"then a slot's time per job: {slot:.0f} ms, of which", 0.0))
    parts += steps
    parts.append(
        ("between jobs: runner exit, the executor seeing it, the next seed", slot - sum(p for _, p in steps))
    )
    return parts


def plain_papermill(path: str) -> int:
    """One notebook by the ``papermill`` command, as its users run it, in the clean environment; how
    many runs failed first (see anchors.failed_first)."""
    return run_notebook(clean_papermill(), path)


def papermill_here(path: str) -> int:
    """The same in pop-nb's environment (what the benchmark measured before: flattering to pop-nb)."""
    import papermill

    def run() -> bool:
        try:
            papermill.execute_notebook(path, path + ".out.ipynb", progress_bar=False, kernel_name="python3")
        except RuntimeError:  # a kernel's TCP port taken by the other run (see anchors.failed_first)
            return False
        return True

    return failed_first(run, path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=200)
    jobs = parser.parse_args().jobs
    from pop_nb.testing.lab import free_port

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "proj"
        seeds = make_project(root, jobs)
        port = free_port()
        redis = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        env = {
            **os.environ,
            "POP_ROOT": str(root),
            "POP_BROKER_URL": url,
            "POP_DATA_DIR": str(root / "pipeline-data"),
        }
        time.sleep(0.5)
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "pop_nb.cli", "worker", "--name", f"b{i}@%h", "--concurrency", "1"],
                cwd=root,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            for i in (1, 2)
        ]
        try:
            time.sleep(3)  # the workers connect
            local, began = pop_batch(root, seeds, "local", env)
            local_parts = slot_parts(root / "pipeline-data", "local", began)
            celery, began = pop_batch(root, seeds, "celery", env)
            celery_parts = slot_parts(root / "pipeline-data", "celery", began)

            os.environ.update(env)
            from pop_nb.config import load_settings
            from pop_nb.orchestrator.celery_app import make_app

            app = make_app(load_settings(root))
            with app.connection_for_write() as conn:
                conn.ensure_connection()
                times = []
                for _ in range(200):
                    t = time.perf_counter()
                    app.send_task("pop_nb.noop", queue="bench-idle", connection=conn)
                    times.append(time.perf_counter() - t)
        finally:
            for worker in workers:
                os.killpg(worker.pid, signal.SIGTERM)
            for worker in workers:
                worker.wait(30)
            redis.terminate()

        nb = str(trivial_notebook(Path(tmp) / "trivial.ipynb"))
        copies = []
        for n in range(jobs):
            copy = Path(tmp) / f"pm-{n}.ipynb"
            copy.write_bytes(Path(nb).read_bytes())
            copies.append(str(copy))
        anchor = clean_papermill()
        start = time.perf_counter()
        with Pool(2) as pool:
            rerun = sum(pool.map(plain_papermill, copies))
        papermill_s = time.perf_counter() - start
        start = time.perf_counter()
        with Pool(2) as pool:
            rerun_here = sum(pool.map(papermill_here, copies))
        papermill_here_s = time.perf_counter() - start

    print(f"{jobs} one-task jobs, two at a time")
    print(f"plain papermill: the `papermill` command in a {described(anchor)}")
    for label, took in (
        ("pop batch, local", local),
        ("pop batch, celery (2 workers)", celery),
        ("plain papermill x2 (clean env)", papermill_s),
        ("papermill in pop-nb's env x2", papermill_here_s),
    ):
        print(
            f"  {label:<32} {took:7.1f} s  {60 * jobs / took:6.1f} jobs/min  "
            f"{took / papermill_s:4.2f}x papermill's time"
        )
    for name, took, parts in (("local", local, local_parts), ("celery", celery, celery_parts)):
        print(
            f"where the {name} batch's time went ({1000 * took * 2 / jobs:.0f} ms of slot time a job in all):"
        )
        for label, ms in parts:
            print(f"  {ms:7.1f} ms  {label}" if ms else f"  {label}")
    if rerun or rerun_here:
        print(f"  papermill runs that failed and were run again: {rerun} clean, {rerun_here} in pop-nb's env")
    print(
        f"Redis dispatch round-trip (send_task): median {1000 * statistics.median(times):.2f} ms, "
        f"p95 {1000 * sorted(times)[int(0.95 * len(times))]:.2f} ms"
    )


if __name__ == "__main__":
    main()
