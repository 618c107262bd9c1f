"""What keeping schedules costs the daemon: a wake with 1,000 schedules (goal: under 10 ms).

Figures, each beside its anchor, from one run:
1. a wake when no slot is due (the daemon's every poll), median of 500, with 1,000 schedules in a
   project's schedules.yaml; anchor: the naive way, each schedule's next slot asked of the cron library
   at every wake;
2. a wake when many are due at once (100 at 06:00; their seeds dropped into pending/);
3. reading the 1,000 definitions (at the daemon's start, and when a file changes).

    python benchmarks/schedules.py [--schedules 1000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--schedules", type=int, default=1000)
    n = parser.parse_args().schedules
    from croniter import croniter

    from pop_nb.config import load_settings
    from pop_nb.orchestrator.scheduler import Scheduler
    from pop_nb.pipeline.schedules import definitions

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = root / "pipelines" / "p"
        (folder / "tasks").mkdir(parents=True)
        (folder / "pipeline.yaml").write_text(
            yaml.safe_dump({"name": "p", "tasks": {"t": {"notebook": "tasks/t.ipynb"}}})
        )
        entries = {}
        for i in range(n):
            # 100 of them at 06:00 (due together); the rest spread over the day
            cron = "0 6 * * *" if i < 100 else f"{i % 60} {i % 24} * * *"
            entries[f"s{i:04d}"] = {
                "pipeline": "p",
                "cron": cron,
                "timezone": "Europe/London",
                "seed": {"data": {"i": i}},
            }
        (root / "schedules.yaml").write_text(yaml.safe_dump(entries))
        settings = load_settings(root)
        started = time.perf_counter()
        found = definitions(root)
        read_s = time.perf_counter() - started
        assert len(found) == n and not any(d.problems for d in found)

        scheduler = Scheduler(settings, by="bench", say=lambda _: None)
        base = datetime(2026, 12, 5, 5, 0, tzinfo=UTC)
        scheduler.wake(base)  # first sight: state files, the next slot of each
        quiet = []
        for k in range(500):
            now = base + timedelta(seconds=1 + k * 0.1)
            began = time.perf_counter()
            scheduler.wake(now)
            quiet.append(time.perf_counter() - began)
        naive = []
        crons = [(d.spec.cron, d.zone) for d in found]
        for k in range(20):
            now = base + timedelta(seconds=60 + k)
            began = time.perf_counter()
            for cron, zone in crons:
                croniter(cron, now.astimezone(zone)).get_next(datetime)
            naive.append(time.perf_counter() - began)
        looks = []
        for _ in range(20):
            began = time.perf_counter()
            scheduler._definition_stamps()
            looks.append(time.perf_counter() - began)
        began = time.perf_counter()
        decided = scheduler.wake(datetime(2026, 12, 5, 6, 0, 1, tzinfo=UTC))
        due_s = time.perf_counter() - began
        dropped = len(list((settings.data / "pending").glob("*-seed.json")))

    quiet_ms, naive_ms = statistics.median(quiet) * 1000, statistics.median(naive) * 1000
    print(f"schedules: {n} (Python {sys.version.split()[0]})")
    print(f"1. a wake with nothing due, median of 500: {quiet_ms:.3f} ms (goal under 10 ms)")
    print(
        f"   anchor, every schedule's next slot asked at each wake: {naive_ms:.1f} ms "
        f"-> ratio {quiet_ms / naive_ms:.4f}"
    )
    look_ms = statistics.median(looks) * 1000
    print(f"   a wake that looks whether a definition file changed (every {5:g} s): +{look_ms:.3f} ms")
    print(
        f"2. a wake when {len(decided)} slots came at once (100 at 06:00, the rest since 05:00): "
        f"{due_s * 1000:.1f} ms, {dropped} seeds dropped"
    )
    print(f"3. reading the {n} definitions: {read_s * 1000:.0f} ms")


if __name__ == "__main__":
    main()
