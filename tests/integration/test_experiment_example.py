"""The shipped experiment (``pipelines/ticket-triage/experiments/triage.yaml``) run as a user runs it:
three variants (a small model, the same with a reworded classify notebook, a large model) over 20
labelled tickets, scored by exact category and a judge, whose numbers differ for reasons the diffs show."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.conftest import Project, pop


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """The example run once for the module (60 jobs): the tests read it, and put back what they change."""
    root = tmp_path_factory.mktemp("experiment") / "proj"
    (root / "pipelines").mkdir(parents=True)
    project = Project(root)
    project.copy_example("ticket-triage")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("POP_ROOT", str(root))
        env.setenv("POP_DATA_DIR", str(project.data))
        env.chdir(root)
        done = pop("experiment", "run", "triage", "--concurrency", "2", timeout=900)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        yield project


def compared(project: Project) -> dict:
    done = pop("experiment", "compare", "triage", "--json")
    assert done.returncode == 0, done.stderr
    return {v["name"]: v for v in json.loads(done.stdout)["variants"]}


def test_the_variants_differ_for_the_reasons_their_scripts_and_notebooks_give(ran: Project) -> None:
    v = compared(ran)
    mini, reworded, big = v["mini"], v["mini-reworded"], v["big"]
    assert [x["done"] for x in (mini, reworded, big)] == [20, 20, 20]
    # the small model knows no network or access words: 9 of 20; naming the categories fixes it; the
    # large model takes "my laptop cannot connect to the Wi-Fi" for hardware
    assert mini["metrics"]["category"]["mean"] == pytest.approx(0.45)
    assert reworded["metrics"]["category"]["mean"] == 1.0
    assert big["metrics"]["category"]["mean"] == pytest.approx(0.95)
    assert (reworded["metrics"]["category"]["win"], reworded["metrics"]["category"]["loss"]) == (11, 0)
    # the judge: the small model's generic reply gets 2 of 5 (0.25), the large model's 5 of 5
    assert mini["metrics"]["helpful"]["mean"] == 0.25 and big["metrics"]["helpful"]["mean"] == 1.0
    assert big["cost_per_item_usd"] > 10 * mini["cost_per_item_usd"]  # gpt-4o's price against mini's
    # the reworded variant differs from mini only in classify: reply, tags, escalate come from the cache
    assert reworded["cache_hits"] >= 40 and reworded["cost_usd"] < mini["cost_usd"]
    judged = ran.data / "experiments" / "triage" / "usage.jsonl"
    rows = [json.loads(line) for line in judged.read_text().splitlines()]
    assert len(rows) == 60 and {r["task"] for r in rows} == {"helpful"}
    assert sum(x["judge_cost_usd"] for x in v.values()) == pytest.approx(sum(r["cost_usd"] for r in rows))
    jobs = list(ran.data.glob("complete/exp-triage-*/usage.jsonl"))
    assert len(jobs) == 60 and not any('"stage":"judge"' in p.read_text() for p in jobs)


def test_comparing_again_asks_no_judge_and_a_changed_rubric_asks_again(ran: Project) -> None:
    judged = ran.data / "experiments" / "triage" / "usage.jsonl"
    before = len(judged.read_text().splitlines())
    compared(ran)
    assert len(judged.read_text().splitlines()) == before  # kept grades: nothing asked
    experiment = ran.root / "pipelines" / "ticket-triage" / "experiments" / "triage.yaml"
    text = experiment.read_text()
    try:
        experiment.write_text(text.replace("in words they can act on", "in plain words"))
        assert compared(ran)["big"]["metrics"]["helpful"]["mean"] == 1.0
        asked = [json.loads(line) for line in judged.read_text().splitlines()[before:]]
        # a new prompt each, but mini-reworded's replies are mini's: their grades come from the cache
        assert len(asked) == 60 and sum(r["cache_hit"] for r in asked) == 20
        experiment.write_text(text)
        compared(ran)  # the old rubric's grades are still kept
        assert len(judged.read_text().splitlines()) == before + 60
    finally:
        experiment.write_text(text)


def test_a_judge_that_answers_nonsense_is_an_error_not_a_zero(ran: Project) -> None:
    folder = ran.root / "pipelines" / "ticket-triage" / "experiments"
    judge = folder / "judge.yaml"
    text = judge.read_text()
    try:
        judge.write_text("helpful:\n  judge: I would rather not say.\n")
        helpful = compared(ran)["mini"]["metrics"]["helpful"]
        assert helpful["mean"] is None and helpful["errors"] == 20 and helpful["items"] == 0
        grades = (ran.data / "experiments" / "triage" / "scores" / "helpful.jsonl").read_text()
        assert "the judge's answer is not {score: 1..5, reason}: 'I would rather not say.'" in grades
    finally:
        judge.write_text(text)
