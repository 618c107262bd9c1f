"""The CLI cold: each command's wall time in a new process, against the 300 ms goal and the interpreter's
own start (``python -c pass``), over a data folder of N finished jobs.

Bytecode is cached as on an installed machine (``PYTHONDONTWRITEBYTECODE`` is dropped for the commands:
with it, every start compiles the modules whose cache is missing or stale, ~40 ms more).

``pop costs`` is timed twice: with every job finished and in the snapshot (answered from the snapshot's
cost rollup, no DuckDB), and with one job open (DuckDB over the snapshot plus that job's files).

    python benchmarks/cli.py [--jobs 10000] [--calls 10] [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from analytics import generate

REPO = Path(__file__).resolve().parents[1]
GOAL_S = 0.300


def wall(argv: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    """(median, best) wall time of ``argv`` in a new process, after one unmeasured run."""
    subprocess.run(argv, env=env, capture_output=True, check=True)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times), min(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="pop-cli-bench-"))
    try:
        shutil.copytree(REPO / "pipelines", root / "pipelines")
        data = root / "pipeline-data"
        generate(data, args.jobs, args.calls)
        open_jobs = sorted((data / "current").iterdir())
        parked = root / "parked"
        parked.mkdir()
        for job in open_jobs:  # first: every job finished
            job.rename(parked / job.name)
        env = {**os.environ, "POP_ROOT": str(root), "POP_DATA_DIR": str(data)}
        # as installed: the modules' bytecode is cached (the unmeasured first run writes it), so no
        # command compiles Python source at every start
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        pop = [sys.executable, "-m", "pop_nb.cli"]
        subprocess.run([*pop, "costs"], env=env, capture_output=True, check=True)  # writes the snapshot
        some_job = next((data / "complete").iterdir()).name
        rows = [
            ("python -c pass (the interpreter)", [sys.executable, "-c", "pass"]),
            ("pop --help", [*pop, "--help"]),
            ("pop pipelines", [*pop, "pipelines"]),
            ("pop compile content-generation", [*pop, "compile", "content-generation"]),
            (f"pop status <id> ({args.jobs} jobs)", [*pop, "status", some_job]),
            ("pop logs <id>", [*pop, "logs", some_job]),
            ("pop costs (snapshot rollup)", [*pop, "costs"]),
            ("pop costs --by job (rollup)", [*pop, "costs", "--by", "job"]),
        ]
        print(f"{args.jobs} jobs x {args.calls} calls; median and best of {args.runs} runs, new process each")
        print(f"{'command':<44} {'median':>8} {'best':>8}  vs {GOAL_S * 1000:.0f} ms")
        for label, argv in rows:
            median, best = wall(argv, env, args.runs)
            print(f"{label:<44} {median * 1000:>6.0f}ms {best * 1000:>6.0f}ms  {median / GOAL_S:.2f}x")
        if open_jobs:  # then: one job open
            (parked / open_jobs[0].name).rename(data / "current" / open_jobs[0].name)
        median, best = wall([*pop, "costs"], env, args.runs)
        label = "pop costs (one open job: DuckDB)"
        print(f"{label:<44} {median * 1000:>6.0f}ms {best * 1000:>6.0f}ms  {median / GOAL_S:.2f}x")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
