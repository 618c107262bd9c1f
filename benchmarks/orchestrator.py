"""The drop-folder daemon: latency from drop to running, throughput, daemon memory.

- latency: one seed dropped into an idle daemon's ``pending/`` (nothing dropped for 3 s), until its
  runner logs ``job started`` (median of 5);
- throughput: N trivial one-stage jobs dropped at once, ``POP_MAX_RUNNING_JOBS=2``, until all are done;
  against plain papermill running the same notebook N times, two at a time (``multiprocessing``);
- memory: the daemon's peak RSS while it works through them.

    python benchmarks/orchestrator.py [--jobs 200]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from multiprocessing import Pool
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
IDLE_S = 3.0
sys.path.insert(0, str(REPO))


def make_project(root: Path) -> None:
    from tests.conftest import Project

    Project(root).pipeline("trivial", {"a": {"cells": [("inference", "pop.output(1)")]}})


def drop(data: Path, job_id: str) -> float:
    tmp = data / "pending" / f".{job_id}.tmp"
    tmp.write_text(json.dumps({"pipeline": "trivial", "data": {}}))
    os.rename(tmp, data / "pending" / f"{job_id}-seed.json")
    return time.time()


def started_at(folder: Path) -> float | None:
    for line in (folder / "events.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event["kind"] == "job" and event["status"] == "started":
            return datetime.fromisoformat(event["ts"]).timestamp()
    return None


def plain_papermill(path: str) -> None:
    import papermill

    papermill.execute_notebook(path, path + ".out.ipynb", progress_bar=False, kernel_name="python3")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=200)
    n = parser.parse_args().jobs
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_project(root)
        data = root / "pipeline-data"
        (data / "pending").mkdir(parents=True)
        env = {**os.environ, "POP_ROOT": str(root), "POP_DATA_DIR": str(data), "POP_MAX_RUNNING_JOBS": "2"}
        daemon = subprocess.Popen(
            [sys.executable, "-m", "pop_nb.cli", "orchestrate", "--poll", "0.5"],
            env=env,
            cwd=root,
            stdout=subprocess.DEVNULL,
        )
        proc = psutil.Process(daemon.pid)
        try:
            latencies = []
            for i in range(5):
                time.sleep(IDLE_S)  # idle: the daemon has had time to get ready for the next seed
                dropped = drop(data, f"lat-{i}")
                done = data / "complete" / f"lat-{i}"
                while not done.exists():
                    time.sleep(0.05)
                latencies.append(started_at(done) - dropped)

            started = time.monotonic()
            for i in range(n):
                drop(data, f"bulk-{i:04d}")
            peak = 0
            complete = data / "complete"
            while sum(1 for p in complete.iterdir() if p.name.startswith("bulk-")) < n:
                peak = max(peak, proc.memory_info().rss)
                time.sleep(0.25)
            pop_s = time.monotonic() - started
        finally:
            daemon.terminate()
            daemon.wait(30)

        notebook = next((root / "pipelines" / "trivial" / "tasks").glob("*.ipynb"))
        copies = []
        for i in range(n):
            copy = root / "plain" / f"{i}.ipynb"
            copy.parent.mkdir(exist_ok=True)
            copy.write_bytes(notebook.read_bytes())
            copies.append(str(copy))
        started = time.monotonic()
        with Pool(2) as pool:
            pool.map(plain_papermill, copies)
        plain_s = time.monotonic() - started

    print(
        f"drop -> running, idle daemon: median {statistics.median(latencies):.2f} s (of 5: "
        + ", ".join(f"{x:.2f}" for x in latencies)
        + ")"
    )
    print(f"{n} trivial jobs, 2 at a time: pop-nb daemon {pop_s:.1f} s ({n / pop_s * 60:.0f} jobs/min)")
    print(f"same notebook, plain papermill, 2 processes: {plain_s:.1f} s ({n / plain_s * 60:.0f} runs/min)")
    print(f"ratio pop-nb / papermill wall time: {pop_s / plain_s:.2f}")
    print(f"daemon peak RSS while working: {peak / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
