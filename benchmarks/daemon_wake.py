"""What one wake of `pop orchestrate` costs with N queued jobs in current/, every slot taken (the state
a deep queue is in for hours), and with N jobs sent to a remote executor's queue (Celery) that no worker
has taken yet: against the same wake over an empty current/ (the anchor), and the full look the daemon
takes every FULL_LOOK_S seconds.

The queued jobs are copies of one real queued job (made by create_job, as the daemon makes them); the
remote ones are the same with a dispatch record naming celery, sent a moment ago.

    python benchmarks/daemon_wake.py [--jobs 10000]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def wake_ms(root: Path, full: bool, runs: int = 9) -> float:
    from pop_nb.config import load_settings
    from pop_nb.orchestrator import Orchestrator

    os.chdir(root)
    daemon = Orchestrator(load_settings(), watch=False, once=True, out=io.StringIO())
    daemon._where = lambda here: None  # type: ignore[method-assign]  # every slot taken
    daemon._schedule()  # the first wake looks at every job
    times = []
    for _ in range(runs):
        if full:
            daemon._full_look_at = 0.0
        began = time.perf_counter()
        daemon._schedule()
        times.append(time.perf_counter() - began)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10000)
    n = parser.parse_args().jobs
    from pop_nb.models.seed import parse_seed
    from pop_nb.service import create_job
    from tests.conftest import Project

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        Project(root).pipeline("trivial", {"a": {"cells": [("inference", "pop.output(1)")]}})
        os.environ.update(POP_ROOT=str(root), POP_DATA_DIR=str(root / "pipeline-data"))
        from pop_nb.config import load_settings

        empty = wake_ms(root, full=False)
        create_job(
            load_settings(), parse_seed({"pipeline": "trivial", "data": {}}, "bench"), "q-0", where="bench"
        )
        current = root / "pipeline-data" / "current"
        for i in range(1, n):
            copy = current / f"q-{i}"
            shutil.copytree(current / "q-0", copy)
            status = json.loads((copy / "tasks-status.json").read_text())
            status["job_id"] = f"q-{i}"
            (copy / "tasks-status.json").write_text(json.dumps(status))
        time.sleep(2.1)  # current/ settled (see pop_nb.store.listing)
        deep = wake_ms(root, full=False)
        full = wake_ms(root, full=True, runs=3)
        from pop_nb.models.records import Dispatch
        from pop_nb.store.atomic import atomic_write_json

        for i in range(n):
            atomic_write_json(current / f"q-{i}" / "dispatch.json", Dispatch(executor="celery", by="bench"))
        remote = wake_ms(root, full=False)
    machine = f"Python {sys.version.split()[0]}, {os.cpu_count()} cores"
    print(f"a wake of `pop orchestrate`, every slot taken ({machine})")
    print(f"  empty current/            : {empty:8.2f} ms  (anchor)")
    print(f"  {n:6d} queued jobs        : {deep:8.2f} ms  ratio {deep / empty:.1f}x the anchor")
    print(f"  {n:6d} at Celery's queue  : {remote:8.2f} ms  ratio {remote / empty:.1f}x the anchor")
    print(f"  the full look, every 15 s : {full:8.2f} ms  ({full / n * 1000:.1f} us a job)")


if __name__ == "__main__":
    main()
