"""A year of jobs: what `pop status`, `pop costs` and the jobs list cost over N finished jobs, against the
same commands over an empty data folder (the anchor: the interpreter, the imports, the settings).

Generates N jobs (default 100,000; 4 tasks x 5 stages each, 1 in 23 failed, 1 in 500 still in
current/), then times, each in a new process (median of --runs after one unmeasured run):

- `pop status`, `pop status --json` (first page), `pop costs`, `pop costs --by job`;
- the first `pop status` and the first `pop costs` ever on the folder (the job index and the analytics
  snapshot built from the JSON files);
- the jobs list the Lab panel asks for (`list_jobs(limit=200)`, a search), each cold (the first call of a
  new process, the index on disk) and warm (the same process again), without HTTP.

    python benchmarks/scale.py [--jobs 100000] [--calls 2] [--runs 5] [--keep DIR]
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

sys.path.insert(0, str(Path(__file__).parent))
from analytics import generate
from cli import wall  # median and best of a command's runs, each in a new process

REPO = Path(__file__).resolve().parents[1]

LIST = """
import json, sys, time
t0 = time.perf_counter()
from pop_nb import service
from pop_nb.config import load_settings
settings = load_settings()
t1 = time.perf_counter()
first_search = sys.argv[1] == "search"  # the first call of the process a search, not the first page
page = service.list_jobs(settings, limit=200, search="job-00420" if first_search else None)
t2 = time.perf_counter()
warm = []
for _ in range(5):
    s = time.perf_counter()
    service.list_jobs(settings, limit=200)
    warm.append(time.perf_counter() - s)
search = []
for needle in ("job-0001", "job-00420", "nothing-like-it", "job-09", "job-1"):
    s = time.perf_counter()
    service.list_jobs(settings, limit=200, search=needle)
    search.append(time.perf_counter() - s)
print(json.dumps({"total": page.total, "imports": t1 - t0, "cold": t2 - t1, "warm": sorted(warm)[2],
                  "search": sorted(search)[2]}))
"""


def once(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, capture_output=True, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="generate into (or reuse) this folder")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="pop-scale-"))
    try:
        shutil.copytree(REPO / "pipelines", root / "pipelines")
        empty = root / "empty-data"
        empty.mkdir()
        data = args.keep or root / "pipeline-data"
        if not (data / "complete").exists():
            started = time.perf_counter()
            generate(data, args.jobs, args.calls)
            print(f"generated {args.jobs} jobs x {args.calls} calls in {time.perf_counter() - started:.0f} s")
        for cache in (".index", ".analytics"):
            shutil.rmtree(data / cache, ignore_errors=True)
        pop = [sys.executable, "-m", "pop_nb.cli"]
        env = {**os.environ, "POP_ROOT": str(root)}
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: bytecode cached
        full = {**env, "POP_DATA_DIR": str(data)}
        none = {**env, "POP_DATA_DIR": str(empty)}
        first_status = once([*pop, "status"], full)
        first_costs = once([*pop, "costs"], full)
        print(f"{args.jobs} jobs; {os.cpu_count()} cores; median of {args.runs} runs, a new process each")
        print(f"first `pop status` ever (job index built from the status files): {first_status:.2f} s")
        print(f"first `pop costs` ever (analytics snapshot built from the JSON files): {first_costs:.2f} s")
        print(f"{'command':<34} {'empty':>8} {f'{args.jobs} jobs':>12} {'ratio':>7}")
        anchors = {}
        for label, argv in (
            ("pop status", ["status"]),
            ("pop status --json (first page)", ["status", "--json"]),
            ("pop costs", ["costs"]),
            ("pop costs --by job", ["costs", "--by", "job"]),
        ):
            anchor = anchors[label] = wall([*pop, *argv], none, args.runs)[0]
            measured = wall([*pop, *argv], full, args.runs)[0]
            print(
                f"{label:<34} {anchor * 1000:>6.0f}ms {measured * 1000:>10.0f}ms {measured / anchor:>6.2f}x"
            )

        def listed(first: str) -> dict[str, float]:
            runs = []
            for _ in range(3):
                out = subprocess.run(
                    [sys.executable, "-c", LIST, first], env=full, capture_output=True, text=True, check=True
                )
                runs.append(json.loads(out.stdout.splitlines()[-1]))
            return min(runs, key=lambda r: r["cold"])

        best, searched = listed("page"), listed("search")
        print(
            f"list_jobs(limit=200) of {best['total']}, no HTTP: cold {best['cold'] * 1000:.0f} ms "
            f"(a new process, index on disk; imports {best['imports'] * 1000:.0f} ms more), "
            f"warm {best['warm'] * 1000:.1f} ms; a search cold {searched['cold'] * 1000:.0f} ms, "
            f"warm {best['search'] * 1000:.1f} ms"
        )
        print("\n".join(jobs_changed(data, pop, full, anchors["pop costs"])))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def jobs_changed(data: Path, pop: list[str], env: dict[str, str], anchor: float) -> list[str]:
    """`pop costs` as jobs end and go, each case undone after: the first call after the change, the next
    one, and one 0.2 s later (the finished places' listing kept), each against ``anchor`` (`pop costs`
    over an empty data folder)."""

    def three() -> str:
        first, next_ = once([*pop, "costs"], env), once([*pop, "costs"], env)
        time.sleep(0.2)
        later = once([*pop, "costs"], env)
        return (
            f"{first:.2f} s ({first / anchor:.2f}x), the next call {next_:.2f} s ({next_ / anchor:.2f}x), "
            f"0.2 s later {later:.2f} s ({later / anchor:.2f}x)"
        )

    runs = data / "complete" / "runs.jsonl"
    size = runs.stat().st_size
    ended = data / "complete" / "job-ended-now"
    shutil.copytree(data / "complete" / "job-000001", ended)
    try:
        for file in ended.iterdir():
            file.write_text(file.read_text().replace("job-000001", "job-ended-now"))
        with open(runs, "a") as fh:
            fh.write(json.dumps({"job": "job-ended-now", "state": "done"}) + "\n")
        after_end = three()
    finally:
        shutil.rmtree(ended, ignore_errors=True)
        with open(runs, "r+b") as fh:
            fh.truncate(size)
    # a log cut short never happens to a real runs.jsonl (it only grows): it makes the next `pop costs`
    # check everything, so that one is made here, before the next case
    once([*pop, "costs"], env)
    held, aside = data / "complete" / "job-000002", data / "job-000002-aside"
    held.rename(aside)
    try:
        after_delete = three()
    finally:
        aside.rename(held)
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from pop_nb.analytics import connect; connect(sys.argv[1])",
                data,
            ],
            env=env,
            check=True,
        )  # the snapshot holds it again, as before
    return [
        f"`pop costs` right after a job ended (read from its files beside the kept rows): {after_end}",
        f"`pop costs` right after a finished job was deleted (its rows taken off): {after_delete}",
    ]


if __name__ == "__main__":
    main()
