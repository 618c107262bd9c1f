"""The shared response cache at scale: lookup cost per call, and disk per entry.

For each size (10,000 and 1,000,000 entries by default) a cache folder is filled with entries shaped
like real ones (a request of two messages, the answer with litellm's raw response), then timed:

- ``key``: computing a call's key (canonical JSON of the request, SHA-256), as every call does;
- ``hit``: ``Store.get`` of an entry that is there (open, read, parse), at random keys;
- ``miss``: ``Store.get`` of a key that is not there (what every new request pays);
- ``sqlite``: the anchor, what a user might pick instead: a primary-key lookup of the same JSON text in
  one SQLite table of the same entries (measured in the same run, so the ratio holds across machines);
- ``count``: ``pop cache stats``'s exact count (a listing with a stat per entry, no entry read);
  ``status``: ``pop status``'s estimate (16 of the 256 shard folders listed, scaled), and how far off;
- disk per entry, as allocated (a file takes whole blocks) and as JSON.

Goal: a lookup under 1 ms, flat from 10,000 to 1,000,000 entries.

    python benchmarks/cache.py [--sizes 10000,1000000] [--lookups 2000] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from pop_nb.llm.cache import Store, cache_key, key_fields, new_entry

PROMPT = "Summarise the following support ticket in two sentences and name its category. " * 6


def request(n: int) -> dict:
    messages = [
        {"role": "system", "content": "You are a precise support analyst."},
        {"role": "user", "content": f"{PROMPT} Ticket #{n}: the printer on floor {n % 9} jams."},
    ]
    return key_fields("openai", "openai/gpt-4o-mini", messages, {"temperature": 0, "max_tokens": 300}, None)


def answer(n: int) -> dict:
    text = f"The printer on floor {n % 9} jams on every second page; category: hardware. " * 3
    raw = {
        "id": f"chatcmpl-{n}",
        "object": "chat.completion",
        "created": 1764800000,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 180, "completion_tokens": 60, "total_tokens": 240},
    }
    return {"content": text, "model": "openai/gpt-4o-mini", "input_tokens": 180, "output_tokens": 60,
            "cost_usd": 0.000063, "cost_source": "price_map", "latency_ms": 900, "cached_tokens": 0,
            "raw": raw}  # fmt: skip


def fill(root: Path, count: int) -> tuple[list[str], sqlite3.Connection, float]:
    """Write ``count`` entries straight to their files (the benchmark's set-up, not what it measures),
    and the same entries into SQLite. Returns some keys, the database and the seconds filling took."""
    store = Store(root, sharded=True)
    started = time.perf_counter()
    template = new_entry("0" * 64, request(0), answer(0), {"job": "bench-1", "pipeline": "bench"})
    db = sqlite3.connect(root.parent / "anchor.sqlite")
    db.execute("CREATE TABLE entries (key TEXT PRIMARY KEY, entry TEXT) WITHOUT ROWID")
    keys, batch, made = [], [], set()
    for n in range(count):
        key = f"{random.getrandbits(256):064x}"  # the key's shape; hashing 1M requests is set-up cost
        template["key"] = key
        blob = json.dumps(template, separators=(",", ":"))
        folder = root / key[:2]
        if key[:2] not in made:
            folder.mkdir(parents=True, exist_ok=True)
            made.add(key[:2])
        fd = os.open(folder / f"{key}.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, blob.encode())
        os.close(fd)
        batch.append((key, blob))
        if len(batch) == 10_000:
            db.executemany("INSERT INTO entries VALUES (?, ?)", batch)
            batch.clear()
        if n % max(count // 2000, 1) == 0:
            keys.append(key)
    db.executemany("INSERT INTO entries VALUES (?, ?)", batch)
    db.commit()
    assert store.get(keys[0]) is not None
    return keys, db, time.perf_counter() - started


def timed_us(fn, args: list) -> float:
    """Median microseconds of ``fn(arg)`` over ``args``."""
    times = []
    for arg in args:
        started = time.perf_counter_ns()
        fn(arg)
        times.append((time.perf_counter_ns() - started) / 1000)
    return statistics.median(times)


def p99(fn, args: list) -> float:
    times = []
    for arg in args:
        started = time.perf_counter_ns()
        fn(arg)
        times.append((time.perf_counter_ns() - started) / 1000)
    return sorted(times)[int(len(times) * 0.99) - 1]


def disk_bytes(root: Path) -> tuple[int, int]:
    """(bytes on disk, bytes of content) of every entry file."""
    used = content = 0
    for shard in root.iterdir():
        for entry in os.scandir(shard):
            info = entry.stat()
            used += info.st_blocks * 512
            content += info.st_size
    return used, content


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,1000000")
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--dir", default=None, help="where to build the caches (default: a temp folder)")
    args = parser.parse_args()
    from pop_nb.llm.cache_admin import estimate, size

    key_us = timed_us(lambda n: cache_key(request(n)), list(range(args.lookups)))
    print(f"key of one call (its fields as plain JSON, canonical text, SHA-256): {key_us:.1f} us median")
    rows = []
    for count in (int(s) for s in args.sizes.split(",")):
        work = Path(tempfile.mkdtemp(prefix="pop-cache-bench-", dir=args.dir))
        try:
            root = work / "llm"
            keys, db, fill_s = fill(root, count)
            print(f"{count:,} entries written in {fill_s:.1f} s (set-up)", flush=True)
            store = Store(root, sharded=True)
            sample = [random.choice(keys) for _ in range(args.lookups)]
            missing = [f"{random.getrandbits(256):064x}" for _ in range(args.lookups)]
            store.get(sample[0])
            hit = timed_us(store.get, sample)
            hit99 = p99(store.get, sample)
            miss = timed_us(store.get, missing)

            def anchor(key: str, db: sqlite3.Connection = db) -> object:
                row = db.execute("SELECT entry FROM entries WHERE key = ?", (key,)).fetchone()
                return json.loads(row[0]) if row else None

            sql = timed_us(anchor, sample)
            started = time.perf_counter()
            listed = size(store)
            list_s = time.perf_counter() - started
            started = time.perf_counter()
            guess, _ = estimate(store)
            guess_s = time.perf_counter() - started
            used, content = disk_bytes(root)
            db.close()
            off = abs(guess.entries - count) / count * 100
            rows.append((count, hit, hit99, miss, sql, list_s, guess_s, off, used / count, content / count))
            assert listed.entries == count
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print(
        f"{'entries':>9} {'hit us':>8} {'hit p99':>8} {'miss us':>8} {'sqlite us':>9} {'hit/sqlite':>10} "
        f"{'count s':>8} {'status s':>8} {'off %':>6} {'disk B/entry':>12} {'JSON B/entry':>12}"
    )
    for count, hit, hit99, miss, sql, list_s, guess_s, off, used, content in rows:
        print(
            f"{count:>9} {hit:>8.1f} {hit99:>8.1f} {miss:>8.1f} {sql:>9.1f} {hit / sql:>10.2f} "
            f"{list_s:>8.2f} {guess_s:>8.3f} {off:>6.1f} {used:>12.0f} {content:>12.0f}"
        )
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        print(
            f"hit at {last[0]:,} entries / at {first[0]:,}: {last[1] / first[1]:.2f}x "
            f"(goal: flat, under 1000 us); miss: {last[3] / first[3]:.2f}x"
        )


if __name__ == "__main__":
    main()
