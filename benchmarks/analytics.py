"""The dashboard's queries over a large data folder: pop_nb.analytics (DuckDB, incremental) vs pandas.

Generates N jobs with C calls each (default 10,000 x 100 = 1,000,000 calls; 4 tasks x 5 stages each),
then times, cold (a new process's first look: from the Parquet snapshot of finished jobs, and from the
JSON files alone) and warm (a dashboard's next refresh):
the ingest and the queries a dashboard runs (cost by model / day / pipeline, outcome rates, stage
durations, the 50 latest jobs). pandas does the same work from the same files.

    python benchmarks/analytics.py [--jobs 10000] [--calls 100] [--keep DIR]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODELS = ["openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5", "deepseek/deepseek-chat", "mock/gpt-4o-mini"]
PIPELINES = ["content-generation", "ticket-triage", "research", "summaries"]
TASKS = ["research", "analysis", "synthesis", "formatting"]
STAGES = ["ingestion", "promptTemplating", "inference", "validateStructure", "integration"]


def generate(data: Path, jobs: int, calls: int) -> None:
    rng = random.Random(1)
    for i in range(jobs):
        place = "current" if i % 500 == 0 else ("failed" if i % 23 == 0 else "complete")
        job = f"job-{i:06d}"
        folder = data / place / job
        folder.mkdir(parents=True)
        pipeline = PIPELINES[i % len(PIPELINES)]
        day = f"2026-10-{1 + i % 28:02d}"  # in the past: finished jobs are settled
        with open(folder / "usage.jsonl", "w") as fh:
            for n in range(calls):
                hit = rng.random() < 0.1
                fh.write(
                    json.dumps(
                        {
                            "ts": f"{day}T{n % 24:02d}:00:00.000+00:00",
                            "job": job,
                            "pipeline": pipeline,
                            "task": TASKS[n % 4],
                            "stage": "inference",
                            "attempt": 1,
                            "refinement": 0,
                            "provider": "openai",
                            "model": MODELS[n % 4],
                            "input_tokens": 0 if hit else rng.randint(100, 4000),
                            "output_tokens": 0 if hit else rng.randint(10, 800),
                            "cached_tokens": 0,
                            "cost_usd": 0.0 if hit else rng.random() / 1000,
                            "cost_source": "cache" if hit else "price_map",
                            "latency_ms": rng.randint(100, 5000),
                            "request_hash": f"{i}-{n}",
                            "cache_hit": hit,
                            "saved_usd": rng.random() / 1000 if hit else 0.0,
                            "ok": True,
                            "error": None,
                        }
                    )
                    + "\n"
                )
        tasks = {}
        for t in TASKS:
            stages = {
                s: {
                    "stage": s,
                    "state": "done",
                    "refinement": 0,
                    "attempt": 1,
                    "started_at": f"{day}T10:00:00.000+00:00",
                    "ended_at": f"{day}T10:00:02.000+00:00",
                    "duration_ms": rng.randint(600, 4000),
                    "cells_ms": rng.randint(10, 3000),
                    "notebook": f"tasks/{t}/{s}.ipynb",
                }
                for s in STAGES
            }
            tasks[t] = {
                "state": "done",
                "stages": stages,
                "attempts": 1,
                "refinements": int(rng.random() < 0.2),
                "usage": {"calls": calls // 4, "cost_usd": 0.01},
            }
        state = {"current": "running", "failed": "failed", "complete": "done"}[place]
        status = {
            "schema_version": 1,
            "job_id": job,
            "pipeline": pipeline,
            "state": state,
            "progress": 100,
            "created_at": f"{day}T09:59:00.000+00:00",
            "started_at": f"{day}T10:00:00.000+00:00",
            "ended_at": f"{day}T10:01:00.000+00:00",
            "tasks": tasks,
            "error": {"type": "Boom", "message": "x"} if state == "failed" else None,
            "totals": {"calls": calls, "cost_usd": 0.04},
            "resumes": 0,
            "recoveries": 0,
        }
        (folder / "tasks-status.json").write_text(json.dumps(status))
        if place != "current":
            run = {"ts": status["ended_at"], "job": job, "pipeline": pipeline, "state": state, "calls": calls}
            with open(data / "complete" / "runs.jsonl", "a") as fh:
                fh.write(json.dumps(run) + "\n")
        with open(folder / "events.jsonl", "w") as fh:
            for s in STAGES * 4:
                fh.write(
                    json.dumps(
                        {
                            "ts": f"{day}T10:00:00.000+00:00",
                            "job": job,
                            "kind": "stage",
                            "status": "done",
                            "stage": s,
                        }
                    )
                    + "\n"
                )


def dashboard_queries(a) -> None:
    from pop_nb.analytics import costs, outcome_rates, stage_durations

    for by in ("model", "day", "pipeline"):
        costs(a, by)
    outcome_rates(a)
    stage_durations(a)
    a.query("SELECT job, pipeline, state, cost_usd, created_at FROM jobs ORDER BY created_at DESC LIMIT 50")


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def pandas_dashboard(data: Path) -> tuple[float, float]:
    import pandas as pd

    started = time.perf_counter()
    files = sorted(glob.glob(str(data / "*" / "*" / "usage.jsonl")))
    calls = pd.concat([pd.read_json(f, lines=True) for f in files], ignore_index=True)
    statuses = [
        json.loads(Path(f).read_text()) for f in glob.glob(str(data / "*" / "*" / "tasks-status.json"))
    ]
    load = time.perf_counter() - started

    def queries() -> None:
        calls["day"] = calls["ts"].astype(str).str[:10]
        for key in ("model", "day", "pipeline"):
            calls.groupby(key).agg(cost=("cost_usd", "sum"), calls=("ok", "sum"), saved=("saved_usd", "sum"))
        jobs = pd.DataFrame(
            [{k: s[k] for k in ("job_id", "pipeline", "state", "created_at")} for s in statuses]
        )
        jobs.groupby("pipeline")["state"].value_counts()
        stages = pd.DataFrame(
            [
                {"pipeline": s["pipeline"], "task": t, "stage": r["stage"], "ms": r["duration_ms"]}
                for s in statuses
                for t, task in s["tasks"].items()
                for r in task["stages"].values()
            ]
        )
        stages.groupby(["pipeline", "task", "stage"])["ms"].agg(["median", lambda x: x.quantile(0.95)])
        jobs.sort_values("created_at").tail(50)

    return load + timed(queries), timed(queries)


COLD = """
import json, sys, time
started = time.perf_counter()
from pop_nb.analytics import Analytics
sys.path.insert(0, {bench!r})
from analytics import dashboard_queries
imported = time.perf_counter()
a = Analytics({data!r}, snapshot={snapshot})
read = a.refresh()
refreshed = time.perf_counter()
dashboard_queries(a)
done = time.perf_counter()
times = {{"imports": imported - started, "refresh": refreshed - imported, "queries": done - refreshed}}
print(json.dumps({{**times, "total": done - started, "read": read}}))
"""


def cold(data: Path, snapshot: bool) -> dict[str, float]:
    """A new process's first look: imports, refresh, every dashboard query."""
    code = COLD.format(bench=str(Path(__file__).parent), data=str(data), snapshot=snapshot)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return json.loads(out.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--keep", type=Path, help="generate into (or reuse) this folder")
    args = parser.parse_args()
    tmp = None if args.keep else tempfile.TemporaryDirectory()
    data = args.keep or Path(tmp.name)
    if not (data / "complete").exists():
        print(f"generating {args.jobs} jobs x {args.calls} calls in {data} ...", flush=True)
        print(f"  took {timed(lambda: generate(data, args.jobs, args.calls)):.1f} s")
    shutil.rmtree(data / ".analytics", ignore_errors=True)

    from pop_nb.analytics import Analytics

    json_only = cold(data, snapshot=False)  # what every new process paid before the snapshot
    first = timed(lambda: Analytics(data).refresh())  # reads every file, writes the snapshot
    snap = min((cold(data, snapshot=True) for _ in range(3)), key=lambda r: r["total"])

    a = Analytics(data)
    a.refresh()
    rows = a.query("SELECT count(*) AS n FROM llm_calls")[0]["n"]
    warm = min(timed(lambda: (a.refresh(), dashboard_queries(a))) for _ in range(5))
    running = sorted(glob.glob(str(data / "current" / "*" / "usage.jsonl")))
    for path in running:  # the running jobs log one more call each
        with open(path, "a") as fh:
            fh.write(Path(path).read_text().splitlines()[-1] + "\n")
    after_change = timed(lambda: (a.refresh(), dashboard_queries(a)))

    pandas_cold, pandas_warm = pandas_dashboard(data)
    print(f"{args.jobs} jobs, {rows} calls; {os.cpu_count()} cores")
    print("cold: a new process's imports + refresh + every dashboard query")
    for label, r in (("  from the JSON files only", json_only), ("  from the Parquet snapshot", snap)):
        print(
            f"{label}: {r['total']:.2f} s (imports {r['imports']:.2f}, refresh {r['refresh']:.2f} "
            f"reading {r['read']} jobs' files, queries {r['queries']:.3f})"
        )
    print(f"  first look ever (every file read, snapshot written): {first:.2f} s")
    print(f"  pandas (read every file, then the same queries, imports not counted): {pandas_cold:.2f} s")
    print(f"warm: refresh + every dashboard query: {warm:.3f} s")
    print(f"  ... after {len(running)} running jobs logged a call: {after_change:.3f} s")
    print(f"  pandas (queries on frames already in memory): {pandas_warm:.3f} s")
    print(
        f"ratios: cold snapshot/JSON {snap['total'] / json_only['total']:.3f}, "
        f"cold snapshot/pandas {snap['total'] / pandas_cold:.3f}, warm pop/pandas {warm / pandas_warm:.3f}"
    )
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
