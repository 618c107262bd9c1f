"""``pop diff``: between the refine passes of one task, and between two jobs whose outputs hold what a
page must never run or show (markup, a key)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Project, pop

KEY = "sk-canary-diff-5f1c2e9a7b3d"


def test_the_passes_of_a_refined_task_show_the_errors_fixed_and_the_output_added(project: Project) -> None:
    folder = project.copy_example("content-generation")
    seed = folder / "seeds" / "solid-state-batteries.json"
    assert pop("run", "content-generation", "--seed", str(seed), "--id", "cg", timeout=300).returncode == 0
    done = pop("diff", "cg", "--task", "research", "--html", "passes.html")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("diff cg research: pass 0 -> 1")
    assert "validation error fixed: no finding covers the 'policy' focus area" in out
    assert "findings[1].source: added" in out and "confidence: 0.65 -> 0.72" in out
    assert "+## critique.r1" in out and "+## refine.r1" in out
    html = (project.root / "passes.html").read_text()
    assert (
        '<li class="fixed">fixed: <code>no finding covers the &#x27;policy&#x27; focus area</code></li>'
        in html
    )
    for bad, said in [
        (("cg", "--task", "researc"), "no task 'researc'. Did you mean 'research'?"),
        (("cg", "--task", "research", "--passes", "0", "3"), "no refine pass 3; it has 0, 1"),
        (("cg",), "add --task T"),
        (("nope", "cg"), "nope"),
        (("../cg", "cg"), "not allowed"),
    ]:
        refused = pop("diff", *bad)
        assert refused.returncode == 2 and said in refused.stderr, (bad, refused.stderr)


def test_markup_in_an_output_is_shown_not_run_and_a_key_never_written(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    evil = f"<script>alert(1)</script><img src=x onerror=alert(2)> {KEY}"
    project.pipeline("p", {"t": {"cells": [("inference", "pop.output({'text': pop.seed['text']})")]}})
    for job, text in (("a", "plain"), ("b", evil)):
        assert pop("run", "p", "--data", json.dumps({"text": text}), "--id", job).returncode == 0
    monkeypatch.setenv("OPENAI_API_KEY", KEY)  # set after the jobs wrote it: the diff's writers mask it
    done = pop("diff", "a", "b", "--html", "ab.html")
    assert done.returncode == 0, done.stderr
    html = (project.root / "ab.html").read_text()
    assert "<script>" not in html and "<img" not in html and "&lt;script&gt;alert(1)" in html
    assert KEY not in html and KEY not in done.stdout and "[REDACTED]" in html


def test_a_usage_row_a_cell_forged_reads_nothing_outside_the_job(project: Project) -> None:
    """``pop diff`` reads each call's prompt by the row's ``cache_key``: a key that is not a SHA-256 (a
    path, a null byte) is no entry at all, not a file read from elsewhere, and not a crash."""
    project.pipeline("p", {"t": {"cells": [("inference", "pop.output({'ok': True})")]}})
    for job in ("a", "b"):
        assert pop("run", "p", "--data", "{}", "--id", job).returncode == 0
    usage = project.data / "complete" / "b" / "usage.jsonl"
    (usage.parent / "llm" / "responses").mkdir(parents=True, exist_ok=True)  # as after a call
    outside = project.root / "x.json"
    outside.write_text(
        json.dumps({"key": "../../../../../x", "request": {"messages": [{"content": "LEAK"}]}})
    )
    rows = [{"task": "t", "stage": "inference", "cache_key": k} for k in ("../../../../../x", "a\u0000b")]
    usage.write_text("".join(json.dumps(r) + "\n" for r in rows))
    done = pop("diff", "a", "b")
    assert done.returncode == 0, done.stderr
    assert "LEAK" not in done.stdout and "== t: the same" in done.stdout
