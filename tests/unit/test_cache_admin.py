"""``pop cache stats | prune | clear | export | import`` on a data folder's shared response cache."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from pop_nb.llm.cache import Store, cache_key, key_fields, new_entry, shared_store
from pop_nb.models.records import UsageRow
from pop_nb.store.atomic import append_jsonl
from tests.conftest import Project, pop


def put(store: Store, prompt: str, pipeline: str, job: str, model: str = "openai/gpt-4o-mini") -> str:
    fields = key_fields("openai", model, [{"role": "user", "content": prompt}], {"temperature": 0}, None)
    key = cache_key(fields)
    answer = {"content": f"answer to {prompt}", "cost_usd": 0.001}
    store.put(new_entry(key, fields, answer, {"job": job, "pipeline": pipeline}), first_wins=True)
    return key


def log_use(project: Project, job: str, key: str) -> None:
    folder = project.data / "complete" / job
    (folder / "tasks").mkdir(parents=True, exist_ok=True)
    (folder / "tasks-status.json").write_text(json.dumps({"job_id": job, "pipeline": "p", "state": "done"}))
    row = UsageRow(job=job, pipeline="p", task="t", stage="inference", provider="openai", model="m",
                   request_hash="h", cache_key=key)  # fmt: skip
    append_jsonl(folder / "usage.jsonl", row)


@pytest.fixture
def store(project: Project) -> Store:
    return shared_store(project.data)


def test_stats_prune_by_age_and_pipeline_and_clear(project: Project, store: Store) -> None:
    old = put(store, "old question", "triage", "job-1")
    put(store, "new question", "triage", "job-2")
    put(store, "other question", "summaries", "job-3", model="openai/gpt-4o")
    month_ago = time.time() - 31 * 86400
    os.utime(store.path(old), (month_ago, month_ago))

    out = pop("cache", "stats", "--by", "pipeline").stdout
    assert "3 entries" in out and "triage" in out and "summaries" in out
    stats = json.loads(pop("cache", "stats", "--json", "--by", "model").stdout)
    assert stats["total"]["entries"] == 3 and stats["by"]["openai/gpt-4o"]["entries"] == 1

    assert "would remove 1 entry" in pop("cache", "prune", "--older-than", "30d", "--dry-run").stdout
    assert store.path(old).exists()
    assert "removed 1 entry" in pop("cache", "prune", "--older-than", "30d").stdout
    assert not store.path(old).exists()
    assert "removed 1 entry" in pop("cache", "prune", "--pipeline", "summaries").stdout
    done = pop("cache", "prune", "--older-than", "a while")
    assert done.returncode == 2 and "30d" in done.stderr + done.stdout
    assert "removed 1 entry" in pop("cache", "clear").stdout
    assert "0 entries" in pop("cache", "stats").stdout


def test_a_hit_marks_the_entry_used_so_prune_keeps_what_is_in_use(project: Project, store: Store) -> None:
    key = put(store, "question", "triage", "job-1")
    month_ago = time.time() - 31 * 86400
    os.utime(store.path(key), (month_ago, month_ago))
    store.touch(key)
    assert "removed 0 entries" in pop("cache", "prune", "--older-than", "30d").stdout


def test_export_what_jobs_used_then_import_elsewhere_refusing_forged_lines(
    project: Project, store: Store, tmp_path: Path
) -> None:
    used = put(store, "used by the test set", "triage", "job-1")
    put(store, "not used", "triage", "job-2")
    log_use(project, "job-1", used)
    file = tmp_path / "recording.jsonl"
    done = pop("cache", "export", str(file), "--jobs", "job-1")
    assert done.returncode == 0 and "wrote 1 entry" in done.stdout, done.stderr
    [line] = file.read_text().splitlines()
    assert json.loads(line)["key"] == used

    forged = json.loads(line)
    forged["response"]["content"] = "something else"  # an answer for a request it does not belong to
    forged["request"]["messages"][0]["content"] = "another question"
    file.write_text(line + "\n" + json.dumps(forged) + "\nnot json\n" + "[" * 100_000 + "\n")
    pop("cache", "clear")
    done = pop("cache", "import", str(file))
    assert done.returncode == 1 and "added 1 entry" in done.stdout
    assert "recording.jsonl:2: its key is not the hash of its request" in done.stdout
    assert "recording.jsonl:3: not JSON" in done.stdout
    assert "recording.jsonl:4: not JSON (JSON nested too deep" in done.stdout
    assert store.get(used) is not None and len(list(store.files())) == 1


def test_export_needs_to_be_told_what(project: Project) -> None:
    done = pop("cache", "export", "x.jsonl")
    assert done.returncode == 2 and "--jobs" in done.stderr
    done = pop("cache", "export", "x.jsonl", "--batch", "nope")
    assert done.returncode == 2 and "no batch 'nope'" in done.stderr


def test_pop_status_estimates_a_large_cache_from_a_few_shards(project: Project, store: Store) -> None:
    import random

    from pop_nb.llm.cache_admin import estimate, size

    rng = random.Random(7)
    for _ in range(3000):  # entries of one size, at keys spread as SHA-256 spreads them
        key = f"{rng.getrandbits(256):064x}"
        store.put({"key": key, "pad": "x" * 100}, first_wins=True)
    exact = size(store)
    guess, is_exact = estimate(store, shards=16, exact_below=100)
    assert not is_exact and abs(guess.entries - 3000) < 3000 * 0.25, guess
    assert abs(guess.bytes - exact.bytes) < exact.bytes * 0.25
    assert estimate(store)[1] and estimate(store)[0].entries == 3000  # small: counted exactly
    assert "cache    3000 entries, " in pop("status").stdout


def test_a_hostile_or_torn_entry_is_a_miss_never_a_crash(store: Store) -> None:
    key = put(store, "question", "triage", "job-1")
    for bad in (b"[" * 100_000, b'{"key": "', b"[1, 2]", json.dumps({"key": "another"}).encode()):
        store.path(key).write_bytes(bad)
        assert store.get(key) is None
