"""``pop costs`` and ``pop_nb.analytics.costs`` against hand sums over the same usage.jsonl files."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path

import pytest

from pop_nb.analytics import costs
from pop_nb.models.records import UsageRow
from pop_nb.store.atomic import append_jsonl

MODELS = ["openai/gpt-4o-mini", "deepseek/deepseek-chat", "local/unpriced"]


def make_ledgers(data: Path, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    written = []
    for i, place in enumerate(["current", "complete", "complete", "failed"]):
        job = f"job-{i}"
        for n in range(40):
            model = rng.choice(MODELS)
            hit = rng.random() < 0.2
            ok = hit or rng.random() < 0.9
            row = UsageRow(
                ts=f"2026-11-{20 + n % 3:02d}T10:00:00.000+00:00",
                job=job,
                pipeline=rng.choice(["alpha", "beta"]),
                task=rng.choice(["research", "write"]),
                stage=rng.choice(["inference", "refine"]),
                provider=model.split("/")[0],
                model=model,
                input_tokens=0 if hit or not ok else rng.randint(10, 5000),
                output_tokens=0 if hit or not ok else rng.randint(1, 900),
                cost_usd=0.0 if hit or not ok or model == "local/unpriced" else rng.random() / 100,
                cost_source="cache" if hit else ("unpriced" if model == "local/unpriced" else "price_map"),
                request_hash=f"h{n}",
                cache_hit=hit,
                saved_usd=rng.random() / 100 if hit else 0.0,
                ok=ok,
                error=None if ok else "RateLimitError: slow down",
            )
            append_jsonl(data / place / job / "usage.jsonl", row)
            written.append(json.loads(row.model_dump_json()))
        with (data / place / job / "usage.jsonl").open("a") as fh:
            fh.write('{"ts": "2026-11-2')  # a torn last line from a crash mid-append: skipped
    return written


@pytest.mark.parametrize("by", ["pipeline", "model", "stage", "day"])
def test_costs_equal_hand_sums(tmp_path: Path, by: str) -> None:
    rows = make_ledgers(tmp_path)
    key = {
        "pipeline": lambda r: r["pipeline"],
        "model": lambda r: r["model"],
        "stage": lambda r: f"{r['pipeline']}/{r['task']}/{r['stage']}",
        "day": lambda r: r["ts"][:10],
    }[by]
    want: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for r in rows:
        w = want[key(r)]
        w["calls"] += r["ok"]
        w["attempts"] += 1
        w["input_tokens"] += r["input_tokens"]
        w["cost_usd"] += r["cost_usd"]
        w["cache_hits"] += r["cache_hit"]
        w["saved_usd"] += r["saved_usd"]
        w["unpriced_calls"] += r["ok"] and r["cost_source"] == "unpriced"
    got = {r["key"]: r for r in costs(tmp_path, by=by).to_dict("records")}
    assert set(got) == set(want)
    for k, w in want.items():
        for field, value in w.items():
            assert got[k][field] == pytest.approx(value, abs=1e-9), (k, field)
    assert [r["cost_usd"] for r in got.values()] == sorted(
        (r["cost_usd"] for r in got.values()), reverse=True
    )


def test_cli_costs_json_and_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from pop_nb.cli import main

    monkeypatch.setenv("POP_DATA_DIR", str(tmp_path))
    assert main(["costs", "--json"]) == 0 and json.loads(capsys.readouterr().out) == []
    rows = make_ledgers(tmp_path)
    assert main(["costs", "--by", "model", "--json"]) == 0
    by_model = {r["key"]: r for r in json.loads(capsys.readouterr().out)}
    unpriced = sum(r["ok"] and r["cost_source"] == "unpriced" for r in rows)
    assert by_model["local/unpriced"]["unpriced_calls"] == unpriced
    assert all(len(repr(r["cost_usd"])) <= 14 for r in by_model.values())  # no 0.0027134999999999998
    assert main(["costs", "--by", "model"]) == 0
    table = capsys.readouterr().out
    assert "unpriced: cost unknown" in table
    total = sum(r["cost_usd"] for r in rows)
    assert f"{total:.6f}" in table.splitlines()[-1]


def test_cli_costs_shows_the_costliest_rows_and_says_what_it_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """``--by job`` over a year of jobs is a row per job: the table shows the costliest (``--limit``,
    50 by default) and one line for the others, what they cost and how to see them; the total is
    every row's."""
    from pop_nb.cli import main

    monkeypatch.setenv("POP_DATA_DIR", str(tmp_path))
    make_ledgers(tmp_path)
    assert main(["costs", "--by", "job", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 4
    assert main(["costs", "--by", "job", "--limit", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[0] == rows[0]["key"] and len(lines) == 4
    rest = sum(r["cost_usd"] for r in rows[1:])
    assert lines[2] == (
        f"... and 3 more job rows, {rest:.6f} USD in all (pop costs --by job --all, or --limit N)"
    )
    assert f"{sum(r['cost_usd'] for r in rows):.6f}" in lines[3]
    for argv in (["--all"], [], ["--limit", "4"]):  # nothing left out: no such line
        assert main(["costs", "--by", "job", *argv]) == 0
        out = capsys.readouterr().out
        assert "more job rows" not in out and len(out.splitlines()) == 6
    assert main(["costs", "--limit", "0"]) != 0
    assert "--limit 0: show at least one row" in capsys.readouterr().err


def test_calls_and_attempts_mean_the_same_in_status_totals_and_pop_costs(tmp_path: Path) -> None:
    from pop_nb.store.usage import UsageTally

    make_ledgers(tmp_path)
    by_job = {r["key"]: r for r in costs(tmp_path, by="job").to_dict("records")}
    for usage in tmp_path.glob("*/*/usage.jsonl"):
        tally = UsageTally(usage, usage.parent.name)
        tally.refresh()
        got = by_job[usage.parent.name]
        assert (tally.total.calls, tally.total.attempts) == (got["calls"], got["attempts"])
        assert tally.total.attempts > tally.total.calls  # the ledgers have failed attempts
        assert tally.total.unpriced_calls == got["unpriced_calls"]
        assert tally.total.cost_usd == pytest.approx(got["cost_usd"], abs=1e-9)


def test_unpriced_costs_read_as_unknown() -> None:
    from pop_nb.models.status import Totals

    assert Totals(calls=2, cost_usd=0.5).cost_text(2) == "$0.50"
    assert Totals(calls=2, unpriced_calls=2).cost_text(2) == "unknown (2 unpriced calls)"
    assert Totals(calls=3, unpriced_calls=1, cost_usd=0.5).cost_text(2) == "$0.50 + unknown (1 unpriced call)"
