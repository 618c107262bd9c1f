"""``pop experiment``: what an experiment costs on top of the jobs it runs, and how fast it compares.

1. The shipped experiment (``pipelines/ticket-triage/experiments/triage.yaml``: 3 variants, the mock
   models, a judge) over N items (its 20 tickets, repeated under new ids), ``--concurrency 2``, against
   the same seeds run as three plain ``pop batch`` runs in a fresh data folder.
2. Scoring: the first ``compare`` (it grades every job with the judge) against one with the built-in
   scorers only; the difference per job is what scoring costs.
3. Re-scoring with the cache warm: the kept grades removed, ``compare`` again: the requests sent to the
   provider (none: the response cache answers) and the time.
4. ``compare`` over many finished jobs (default 30,000: 10,000 a variant), written straight to disk.
5. A dataset of many lines (default 100,000): the peak memory of a variant's seeds as the batch reads
   them (made one at a time from the line's place in the file) against the same seeds held in a list
   (what ``run`` did before), by tracemalloc.

    python benchmarks/experiment.py [--items 100] [--jobs 30000] [--lines 100000] [--only-compare]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def project(root: Path, items: int) -> Path:
    """A project with ticket-triage and its experiment, whose dataset is ``items`` tickets."""
    (root / "pipelines").mkdir(parents=True)
    shutil.copytree(REPO / "pipelines" / "ticket-triage", root / "pipelines" / "ticket-triage")
    shutil.copytree(REPO / "pipelines" / "personalities", root / "pipelines" / "personalities")
    folder = root / "pipelines" / "ticket-triage" / "experiments"
    tickets = [json.loads(line) for line in (folder / "tickets.jsonl").read_text().splitlines()]
    lines = [
        {**tickets[n % len(tickets)], "id": f"{tickets[n % len(tickets)]['id']}-{n}"} for n in range(items)
    ]
    (folder / "tickets.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return folder / "triage.yaml"


def pop(root: Path, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    env = {**os.environ, "POP_ROOT": str(root), "POP_DATA_DIR": str(root / "pipeline-data")}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pop_nb.cli", *args], cwd=root, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"pop {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - started, done


def requests_sent(usage: Path) -> int:
    if not usage.exists():
        return 0
    return sum(1 for line in usage.read_text().splitlines() if not json.loads(line).get("cache_hit"))


def run_and_batches(tmp: Path, items: int) -> Path:
    from pop_nb.config import load_settings
    from pop_nb.orchestrator import experiments

    a, b = tmp / "experiment", tmp / "batches"
    project(a, items)
    took, _ = pop(a, "experiment", "run", "triage", "--concurrency", "2")
    jobs = 3 * items
    print(f"experiment run: {jobs} jobs in {took:.1f} s ({took / jobs * 1000:.0f} ms a job)")

    project(b, items)
    settings = load_settings(b)
    found = experiments.find(settings, "triage")
    listed = list(experiments.items(found))
    batches = 0.0
    for name, variant in found.spec.all_variants().items():
        seeds = b / f"{name}.jsonl"
        rows = [experiments._seed(settings, found, name, variant, item, 0) for _, item in listed]
        seeds.write_text("".join(json.dumps(r) + "\n" for r in rows))
        took_b, _ = pop(
            b, "batch", "ticket-triage", "--seeds", str(seeds), "--concurrency", "2", "--name", name
        )
        batches += took_b
    print(f"three plain batches: {jobs} jobs in {batches:.1f} s ({batches / jobs * 1000:.0f} ms a job)")
    print(f"  experiment / batches: {took / batches:.2f}x")
    return a


def scoring(a: Path, items: int) -> None:
    jobs = 3 * items
    usage = a / "pipeline-data" / "experiments" / "triage" / "usage.jsonl"
    scores = a / "pipeline-data" / "experiments" / "triage" / "scores"
    shutil.rmtree(scores, ignore_errors=True)  # `run` compared at its end: grade again, from nothing
    usage.unlink(missing_ok=True)
    cache = a / "pipeline-data" / ".cache" / "llm"
    aside = a / "cache-aside"
    shutil.move(str(cache), str(aside))  # the judge's answers out of the way: it asks anew
    cache.mkdir(parents=True)
    judged, _ = pop(a, "experiment", "compare", "triage")
    sent = requests_sent(usage)
    spec = a / "pipelines" / "ticket-triage" / "experiments" / "triage.yaml"
    text = spec.read_text()
    spec.write_text(text.split("  - name: helpful")[0])  # built-in scorers only
    built_in, _ = pop(a, "experiment", "compare", "triage")
    spec.write_text(text)
    print(
        f"compare, judge grading every job: {judged:.2f} s ({sent} requests); built-in scorers only: "
        f"{built_in:.2f} s; scoring a job with the judge: {(judged - built_in) / jobs * 1000:.1f} ms"
    )

    shutil.rmtree(scores)  # the grades gone, their answers still in the response cache
    before = requests_sent(usage)
    again, _ = pop(a, "experiment", "compare", "triage")
    print(f"re-scoring with the cache warm: {requests_sent(usage) - before} requests sent, {again:.2f} s")
    shutil.rmtree(aside)


def many_jobs(tmp: Path, jobs: int) -> None:
    """``compare`` over ``jobs`` finished jobs, copied from one real job's files."""
    from pop_nb.config import load_settings
    from pop_nb.orchestrator import experiment_compare, experiments

    root = tmp / "many"
    per = jobs // 3
    project(root, per)
    pop(
        root,
        "run",
        "ticket-triage",
        "--id",
        "model",
        "--data",
        json.dumps({"ticket": "printer", "customer": "x"}),
    )
    model = root / "pipeline-data" / "complete" / "model"
    status = json.loads((model / "tasks-status.json").read_text())
    finals = {t: model / "tasks" / t / "outputs" / "final.json" for t in status["tasks"]}
    outputs = {t: path.read_bytes() for t, path in finals.items() if path.exists()}
    spec = root / "pipelines" / "ticket-triage" / "experiments" / "triage.yaml"
    spec.write_text(spec.read_text().split("  - name: helpful")[0])  # compare's own time, not a judge's
    settings = load_settings(root)
    found = experiments.find(settings, "triage")
    listed = [ident for ident, _ in experiments.items(found)]
    started = time.perf_counter()
    for name in found.spec.all_variants():
        batch = found.batch_name(name)
        manifest = []
        for n, ident in enumerate(listed):
            job = f"{batch}-{n + 1}"
            folder = root / "pipeline-data" / "complete" / job
            for task, data in outputs.items():
                (folder / "tasks" / task / "outputs").mkdir(parents=True, exist_ok=True)
                (folder / "tasks" / task / "outputs" / "final.json").write_bytes(data)
            (folder / "tasks-status.json").write_text(json.dumps({**status, "job_id": job}))
            manifest.append({"n": n + 1, "source": f"{ident}#0", "job": job})
        (root / "pipeline-data" / "batches" / batch).mkdir(parents=True, exist_ok=True)
        (root / "pipeline-data" / "batches" / batch / "manifest.jsonl").write_text(
            "".join(json.dumps(line) + "\n" for line in manifest)
        )
    print(f"wrote {3 * len(listed)} finished jobs in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    comparison = experiment_compare.compare(settings, found)
    first = time.perf_counter() - started
    started = time.perf_counter()
    comparison = experiment_compare.compare(settings, found)  # what it read of each job is kept
    took = time.perf_counter() - started
    done = sum(v.done for v in comparison.variants)
    print(f"compare over {done} finished jobs, the first time (every job read): {first:.2f} s")
    print(f"compare again: {took:.2f} s (goal: under 1 s; {took / done * 1e6:.0f} µs a job)")


def streamed(tmp: Path, lines: int) -> None:
    """A variant's seeds over a dataset of ``lines`` lines: streamed, against listed."""
    import tracemalloc

    from pop_nb.config import load_settings
    from pop_nb.orchestrator import experiments

    root = tmp / "stream"
    project(root, lines)
    settings = load_settings(root)
    found = experiments.find(settings, "triage")
    name, variant = next(iter(found.spec.all_variants().items()))
    started = time.perf_counter()
    places: list[tuple[int, int]] = []
    for _ in experiments.items(found, places):  # what `run` does once: every line checked, places kept
        pass
    seeds = experiments.VariantSeeds(settings, found, name, variant, places)
    count = sum(1 for _ in seeds)  # what the batch's plan does: each seed once, in order
    took = time.perf_counter() - started
    tracemalloc.start()  # again, for memory (tracemalloc slows Python down several times)
    places = []
    for _ in experiments.items(found, places):
        pass
    seeds = experiments.VariantSeeds(settings, found, name, variant, places)
    for _ in seeds:
        pass
    _, streamed_peak = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    held = list(seeds)
    _, listed_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del held
    print(
        f"{count} seeds of one variant streamed: peak {streamed_peak / 1e6:.1f} MB in {took:.1f} s "
        f"({took / count * 1e6:.0f} µs a seed); held in a list: {listed_peak / 1e6:.1f} MB "
        f"({listed_peak / max(streamed_peak, 1):.0f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=30000)
    parser.add_argument("--lines", type=int, default=100000)
    parser.add_argument("--only-compare", action="store_true", help="only part 4")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if not args.only_compare:
            a = run_and_batches(Path(tmp), args.items)
            scoring(a, args.items)
        many_jobs(Path(tmp), args.jobs)
        streamed(Path(tmp), args.lines)


if __name__ == "__main__":
    main()
