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
    # the small model knows no network or access words: 9 of 20; naming the categories fixes them, but
    # sends "the invoice for our VPN licences" to network; the large model takes "my laptop cannot
    # connect to the Wi-Fi" for hardware
    assert mini["metrics"]["category"]["mean"] == pytest.approx(0.45)
    assert reworded["metrics"]["category"]["mean"] == pytest.approx(0.95)
    assert big["metrics"]["category"]["mean"] == pytest.approx(0.95)
    category = reworded["metrics"]["category"]
    assert (category["win"], category["tie"], category["loss"]) == (11, 8, 1)
    assert reworded["regressed"] == [
        {"item": "vpn-invoice", "metric": "category", "baseline": 1.0, "variant": 0.0}
    ]
    assert big["regressed"] == []
    # the judge: the small model's generic reply gets 2 of 5 (0.25), the large model's 5 of 5
    assert mini["metrics"]["helpful"]["mean"] == 0.25 and big["metrics"]["helpful"]["mean"] == 1.0
    assert big["cost_per_item_usd"] > 10 * mini["cost_per_item_usd"]  # gpt-4o's price against mini's
    # the reworded variant differs from mini only in classify: reply, tags, escalate come from the cache
    assert reworded["cache_hits"] >= 40 and reworded["cost_usd"] < mini["cost_usd"]
    # per item, a call the cache answered counts at its price: what the variant costs on its own
    paid = reworded["cost_usd"] + reworded["saved_usd"]
    assert reworded["cost_per_item_usd"] == pytest.approx(paid / 20)
    assert reworded["cost_per_item_usd"] > mini["cost_per_item_usd"]  # a longer prompt, and escalations
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


def test_show_puts_one_item_side_by_side_with_what_differs_from_the_baseline(ran: Project) -> None:
    page = ran.root / "laptop-wifi.html"
    done = pop("experiment", "show", "triage", "--item", "laptop-wifi", "--html", str(page))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    mini, reworded, big = out.split("\nmini: ")[1], out.split("\nmini-reworded: ")[1], out.split("\nbig: ")[1]
    assert "scores: category 0.000  helpful 0.250" in mini
    assert 'classify: prompt changed; category: "hardware" -> "network"' in reworded
    assert "scores: category 1.000  helpful 0.250" in reworded
    assert "classify: model mock/gpt-4o-mini -> mock/gpt-4o\n" in big and "scores: category 0.000" in big
    assert "tasks/classify/04-inference.ipynb" in big
    html = page.read_text()
    assert "<script" not in html and "default-src 'none'" in html
    assert html.count("<h1>pop diff exp-triage-mini-") == 2  # each variant against the baseline
    assert "+[user] Classify this support ticket. Its category is one of: hardware" in html
    wrong = pop("experiment", "show", "triage", "--item", "laptop-wfi")
    assert wrong.returncode == 2 and "Did you mean 'laptop-wifi'?" in wrong.stderr


def test_pop_diff_between_two_variants_jobs_names_the_prompt_and_output_change(ran: Project) -> None:
    jobs = {}
    for variant in ("mini", "mini-reworded"):
        manifest = ran.data / "batches" / f"exp-triage-{variant}" / "manifest.jsonl"
        lines = map(json.loads, manifest.read_text().splitlines())
        [jobs[variant]] = [r["job"] for r in lines if r["source"] == "vpn-leeds#0"]
    done = pop("diff", jobs["mini"], jobs["mini-reworded"], "--task", "classify", "--json")
    assert done.returncode == 0, done.stderr
    [task] = json.loads(done.stdout)["tasks"]
    assert [(c["path"], c["before"], c["after"]) for c in task["changes"]] == [
        ("category", "other", "network"),
        ("severity", "low", "high"),
    ]
    ticket = "Nobody in the Leeds office can connect to the VPN since this morning."
    assert f"+Ticket: {ticket}" in task["prompt_diff"]
    whole = pop("diff", jobs["mini"], jobs["mini-reworded"])
    assert "== reply: the same; tokens 53+19 -> 0+0" in whole.stdout, whole.stdout
    assert "(1 from the cache, saved $" in whole.stdout
    assert "== escalate: differs" in whole.stdout and 'added {"note": "Escalation note' in whole.stdout
