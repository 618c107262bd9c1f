"""``pop experiment run | compare``: variants of a pipeline over a labelled dataset, each an ordinary
batch with the response cache on, scored by the built-in scorers and the stages' own metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Project, pop

TICKETS = [
    ("printer", "The printer jams.", "hardware"),
    ("laptop", "My laptop will not boot.", "hardware"),
    ("monitor", "The monitor flickers.", "hardware"),
    ("invoice", "The invoice is wrong.", "billing"),
]
EXPERIMENT = """
pipeline: ticket-triage
dataset: tickets.jsonl
baseline: mini
variants:
  mini: {}
  billing-minded: {llm: {mock_responses: billing-mock.yaml}}
scorers:
  - {name: category, kind: exact, path: classify.category}
  - {name: technician, kind: contains, path: reply.text, value: technician}
"""


def setup(project: Project, experiment: str = EXPERIMENT) -> Path:
    folder = project.copy_example("ticket-triage")
    experiments = project.root / "experiments"
    experiments.mkdir(exist_ok=True)
    script = (folder / "mock-responses.yaml").read_text()
    (experiments / "billing-mock.yaml").write_text(
        script.replace('"category": "hardware"', '"category": "billing"')
    )
    lines = [
        {"id": i, "data": {"ticket": t, "customer": "ACME"}, "expected": {"category": c}}
        for i, t, c in TICKETS
    ]
    (experiments / "tickets.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    (experiments / "triage.yaml").write_text(experiment)
    return experiments


def compare(project: Project) -> dict:
    done = pop("experiment", "compare", "triage", "--json")
    assert done.returncode == 0, done.stderr
    return {v["name"]: v for v in json.loads(done.stdout)["variants"]}


def test_two_variants_scored_and_compared_and_a_rerun_pays_nothing(project: Project) -> None:
    setup(project)
    ran = pop("experiment", "run", "triage", timeout=300)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "variant mini: 4 done, 0 failed" in ran.stderr and "category" in ran.stdout
    variants = compare(project)
    mini, billing = variants["mini"], variants["billing-minded"]
    assert mini["done"] == billing["done"] == 4 and mini["failed"] == 0
    assert mini["metrics"]["category"]["mean"] == 0.75 and billing["metrics"]["category"]["mean"] == 0.25
    low, high = billing["metrics"]["category"]["low"], billing["metrics"]["category"]["high"]
    assert 0.0 <= low <= 0.25 <= high <= 1.0
    category = billing["metrics"]["category"]
    assert (category["win"], category["tie"], category["loss"]) == (1, 0, 3)
    assert [r["item"] for r in billing["regressed"]] == ["laptop", "monitor", "printer"]
    assert mini["metrics"]["technician"]["mean"] == 1.0  # the reply is the same script in both
    jobs = [json.loads(p.read_text()) for p in project.data.glob("complete/exp-triage-*/tasks-status.json")]
    assert len(jobs) == 8 and mini["cost_usd"] == pytest.approx(
        sum(j["totals"]["cost_usd"] for j in jobs if j["job_id"].startswith("exp-triage-mini-")), abs=1e-12
    )
    assert mini["cost_usd"] > 0 and mini["cost_per_item_usd"] == pytest.approx(mini["cost_usd"] / 4)

    again = pop("experiment", "run", "triage", timeout=300)  # nothing missing: no job runs again
    assert again.returncode == 0 and "$0.000000 this run" in again.stderr, again.stderr
    assert len(list(project.data.glob("complete/exp-triage-*"))) == 8

    # a scorer changed: compare scores anew, without one job run again
    experiment = project.root / "experiments" / "triage.yaml"
    experiment.write_text(EXPERIMENT.replace("value: technician", "value: roller"))
    assert compare(project)["mini"]["metrics"]["technician"]["mean"] == 1.0
    experiment.write_text(EXPERIMENT.replace("value: technician", "value: refund"))
    assert compare(project)["mini"]["metrics"]["technician"]["mean"] == 0.0


def test_a_variant_differing_only_in_a_later_task_pays_only_for_it(project: Project) -> None:
    tone = EXPERIMENT.replace(
        "billing-minded: {llm: {mock_responses: billing-mock.yaml}}", "warm: {config: {reply: {tone: warm}}}"
    )
    setup(project, tone)
    assert pop("experiment", "run", "triage", "--only", "mini", timeout=300).returncode == 0
    assert pop("experiment", "run", "triage", "--only", "warm", timeout=300).returncode == 0
    warm = compare(project)["warm"]
    assert warm["cache_hits"] == 12 and warm["cost_usd"] == 0  # the config reached no prompt: all answered
    assert warm["saved_usd"] == pytest.approx(compare(project)["mini"]["cost_usd"], abs=1e-12)


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (("baseline: mini", "baseline: mni"), "Did you mean 'mini'?"),
        (
            ("path: classify.category", "path: clasify.category"),
            "no task 'clasify'. Did you mean 'classify'?",
        ),
        (("mini: {}", "mini: {config: {replyy: {}}}"), "configures task 'replyy'"),
        (("dataset: tickets.jsonl", "dataset: missing.jsonl"), "missing.jsonl does not exist"),
        (("dataset: tickets.jsonl", "dataset: billing-mock.yaml"), "billing-mock.yaml:1: not an item"),
        (("dataset: tickets.jsonl", "dataset: ."), "cannot be read"),
        (("mini: {}", "mini: {model: mock/gpt-4o-mni}"), "Did you mean 'mock/gpt-4o-mini'?"),
        (("mini: {}", "mini: {tasks: {clasify: {}}}"), "Did you mean 'classify'?"),
        (
            ("mini: {}", "mini: {tasks: {reply: {llm: {model: mock/gpt-4o-mni}}}}"),
            "tasks.reply.llm.model: model 'mock/gpt-4o-mni' has no price",
        ),
        (
            ("mini: {}", "mini: {tasks: {classify: {notebook: nope.ipynb}}}"),
            "tasks.classify.notebook 'experiments/nope.ipynb' is not a notebook file",
        ),
        (
            ("mini: {}", "mini: {tasks: {classify: {notebook: ../../../../etc/passwd}}}"),
            "is not a notebook file in the project",
        ),
        (("mini: {}", "mini: {tasks: {reply: {personality: nobody}}}"), "tasks.reply.personality"),
    ],
)
def test_a_bad_experiment_is_refused_before_anything_runs(
    project: Project, change: tuple[str, str], said: str
) -> None:
    setup(project, EXPERIMENT.replace(*change))
    done = pop("experiment", "run", "triage")
    assert done.returncode == 2 and said in done.stderr, done.stderr
    assert not (project.data / "batches").exists()


def test_an_experiment_name_is_a_name_not_a_path(project: Project) -> None:
    setup(project)
    for name in ("../pipelines/ticket-triage/pipeline", "a/b", "x" * 60):
        done = pop("experiment", "compare", name)
        assert done.returncode == 2 and "a name is 1-48 of" in done.stderr, done.stderr


def test_from_python_the_same_run_and_comparison_with_jobs_named_by_what_they_are(project: Project) -> None:
    import pop_nb
    from pop_nb.orchestrator.experiment_compare import rows

    setup(project)
    result = pop_nb.experiment("triage", root=project.root, only=["mini"])
    [mini] = [v for v in result.variants if v.name == "mini"]
    assert mini.done == 4 and mini.metrics["category"].mean == 0.75
    table = rows(result)
    assert {(r["variant"], r["metric"]) for r in table} >= {("mini", "category"), ("billing-minded", None)}
    names = sorted(project.job(f"exp-triage-mini-{n}").status.name or "" for n in range(1, 5))
    assert names == [
        "triage/mini/invoice#0",
        "triage/mini/laptop#0",
        "triage/mini/monitor#0",
        "triage/mini/printer#0",
    ]
    from pop_nb.analytics import connect

    analytics = connect(project.data)
    analytics.refresh()
    found = analytics.query(
        "SELECT variant, item, repeat, state, cost_usd > 0 AS paid FROM experiments ORDER BY item"
    )
    assert [(r["variant"], r["item"], r["repeat"], r["state"], r["paid"]) for r in found] == [
        ("mini", item, 0, "done", True) for item in ("invoice", "laptop", "monitor", "printer")
    ]
    again = pop_nb.experiment("triage", root=project.root, run=False)
    assert [v.name for v in again.variants] == ["mini", "billing-minded"] and again.variants[1].done == 0

    # the dashboard's Experiments tab: the jobs from DuckDB, the scores, cost against quality
    from pop_nb.widgets.dashboard import EXPERIMENTS_TAB, Dashboard

    board = Dashboard(project.data, refresh_s=3600, root=project.root)
    try:
        assert board.experiments.pick.options == ()  # nothing is read before the tab is looked at
        board.tabs.selected_index = EXPERIMENTS_TAB
        tab = board.experiments
        assert tab.pick.options == ("triage",) and board.tabs.get_title(EXPERIMENTS_TAB) == "Experiments"
        assert "<td>mini</td><td>4</td><td>4</td><td>0</td><td>0</td><td>$0.000" in tab.jobs.value
        assert "<td>billing-minded</td><td colspan=7><i>not run yet</i>" in tab.jobs.value
        assert "<b>0.75</b> [" in tab.scores.value and "(baseline)" in tab.scores.value
        assert tab.comparison is not None and tab.comparison.pareto("category") == ["mini"]
        [points] = tab.figure.data  # cost per item against the category score, mini on the front
        assert list(points.text) == ["mini"] and list(points.y) == [0.75] and points.x[0] > 0
    finally:
        board.stop()


def test_a_seed_runs_another_notebook_for_a_task_and_a_resume_keeps_it(project: Project) -> None:
    """A seed's ``tasks.<task>.notebook`` (what an experiment's variant sets) is the job's snapshot of the
    task: the job runs it, and ``pop resume --from`` it again, while the pipeline keeps its own."""
    folder = project.copy_example("ticket-triage")
    swapped = "pipelines/ticket-triage/experiments/classify-reworded.ipynb"
    seed = {
        "pipeline": "ticket-triage",
        "data": {"ticket": "Nobody can connect to the VPN.", "customer": "Northwind"},
        "llm": {"mock_responses": "pipelines/ticket-triage/experiments/mini.yaml"},
        "tasks": {"classify": {"notebook": swapped}},
    }
    (project.root / "seed.json").write_text(json.dumps(seed))
    done = pop("run", "ticket-triage", "--seed", "seed.json", "--id", "swap", timeout=300)
    assert done.returncode == 0, done.stderr
    job = project.job("swap")
    assert job.outputs()["classify"] == {"category": "network", "severity": "high"}  # the reworded prompt's
    ran = (job.path / "tasks" / "classify").glob("*inference.ipynb")
    assert "one of: hardware, billing, access, network" in next(ran).read_text()
    snapshot = job.path / "pipeline" / "notebooks" / "classify.ipynb"
    assert snapshot.read_bytes() == (project.root / swapped).read_bytes()
    assert (folder / "tasks" / "classify.ipynb").read_bytes() != snapshot.read_bytes()
    assert pop("resume", "swap", "--from-task", "classify", timeout=300).returncode == 0
    assert snapshot.read_bytes() == (project.root / swapped).read_bytes()

    for name, why in [
        ("/etc/passwd", "is absolute"),
        ("a\x00b.ipynb", "contains a control character"),  # a crash (ValueError) before
        ("x" * 300 + ".ipynb", "longer than 255 bytes"),  # OSError ENAMETOOLONG before
        ("../" * 6 + "etc/x.ipynb", "goes up with '..'"),
    ]:
        seed["tasks"] = {"classify": {"notebook": name}}
        (project.root / "bad.json").write_text(json.dumps(seed))
        refused = pop("run", "ticket-triage", "--seed", "bad.json")
        assert refused.returncode == 2, refused.stderr
        assert "tasks.classify.notebook " in refused.stderr and why in refused.stderr, refused.stderr
        assert "is not a notebook file in the project" in refused.stderr


SCORER = """
text = outputs["reply"]["text"]
pop.metric("words", len(text.split()))
pop.metric("short", len(text.split()) < 40)
if item == "invoice":
    raise ValueError("this scorer cannot score invoices")
verdict = pop.chat(f"Is this reply polite? Answer yes or no.\\n{text}")
pop.metric("polite", verdict.content.strip() == "yes")
"""


def test_a_notebook_scorer_runs_per_job_once_and_a_raise_is_an_error_not_a_zero(project: Project) -> None:
    from tests.conftest import write_notebook

    experiments = setup(
        project,
        EXPERIMENT.replace(
            "  - {name: technician, kind: contains, path: reply.text, value: technician}",
            "  - {name: brevity, kind: notebook, notebook: scorers/brevity.ipynb,\n"
            "     model: mock/gpt-4o-mini, llm: {mock_responses: polite.yaml}}",
        ),
    )
    write_notebook(
        experiments / "scorers" / "brevity.ipynb",
        [(None, SCORER)],
        params='job_dir = None\nitem = "printer"\nvariant = ""\noutputs = {"reply": {"text": "Hi"}}'
        "\nexpected = {}",
    )
    (experiments / "polite.yaml").write_text("brevity:\n  score: 'yes'\n")
    assert pop("experiment", "run", "triage", "--only", "mini", timeout=300).returncode == 0
    mini = compare(project)["mini"]
    words = mini["metrics"]["words"]
    assert words["items"] == 3 and words["errors"] == 1  # the invoice's scorer raised: unscored
    import yaml

    reply = yaml.safe_load((project.root / "pipelines/ticket-triage/mock-responses.yaml").read_text())[
        "reply"
    ]
    assert words["mean"] == len(reply["inference"].split()) and mini["metrics"]["short"]["mean"] == 1.0
    assert mini["metrics"]["polite"]["mean"] == 1.0 and mini["metrics"]["category"]["mean"] == 0.75
    assert mini["judge_cost_usd"] > 0
    kept = project.data / "experiments" / "triage" / "scores"
    ran = sorted(p.name for p in (kept / "brevity").glob("*.ipynb"))
    assert ran == [f"exp-triage-mini-{n}.ipynb" for n in (1, 2, 3, 4)]
    rows = [json.loads(line) for line in (kept / "brevity.jsonl").read_text().splitlines()]
    [failed] = [r for r in rows if r["error"]]
    assert "ValueError: this scorer cannot score invoices" in failed["error"] and failed["values"] == {
        "words": None,
        "short": None,
    }
    calls = [json.loads(line) for line in (kept.parent / "usage.jsonl").read_text().splitlines()]
    assert {(c["task"], c["stage"]) for c in calls} == {("brevity", "score")} and len(calls) == 3
    assert compare(project)["mini"]["metrics"]["words"]["mean"] == words["mean"]
    assert len((kept / "brevity.jsonl").read_text().splitlines()) == 4  # compared again: nothing ran


def test_an_item_the_seed_schema_refuses_is_named_and_the_rest_run(project: Project) -> None:
    experiments = setup(project)
    folder = project.root / "pipelines" / "ticket-triage"
    (folder / "seed.schema.json").write_text(
        json.dumps({"type": "object", "required": ["ticket"], "properties": {"ticket": {"type": "string"}}})
    )
    spec = folder / "pipeline.yaml"
    spec.write_text(spec.read_text().replace("llm:\n", "seed_schema: seed.schema.json\nllm:\n", 1))
    with (experiments / "tickets.jsonl").open("a") as fh:
        fh.write(json.dumps({"id": "no-ticket", "data": {"customer": "ACME"}, "expected": {}}) + "\n")
    ran = pop("experiment", "run", "triage", "--only", "mini", timeout=300)
    assert ran.returncode == 0, ran.stderr
    assert "not run: no-ticket: " in ran.stdout and "'ticket' is a required property" in ran.stdout
    mini = compare(project)["mini"]
    assert mini["done"] == 4 and mini["failed"] == 0
    [refused] = mini["rejected"]
    assert refused["item"] == "no-ticket" and "seed_schema" in refused["error"]


def test_a_variant_s_seeds_are_made_one_at_a_time_from_the_dataset(project: Project) -> None:
    """A batch asks for each seed when it needs it: the dataset is read a line at a time, and only each
    item's place in the file is held (a dataset of 100,000 lines is never in memory whole)."""
    from pop_nb.config import load_settings
    from pop_nb.orchestrator import experiments

    folder = setup(project, EXPERIMENT + "repeat: 2\n")
    lines = [
        json.dumps({"id": f"t{n}", "data": {"ticket": f"ticket {n}", "customer": "ACME"}}) if n % 7 else ""
        for n in range(1, 301)
    ]  # blank lines between, as a hand-edited file has them
    lines[9] = json.dumps({"data": {"ticket": "no id", "customer": "ACME"}})  # line 10: id item-10
    (folder / "tickets.jsonl").write_text("\n".join(lines) + "\n")
    settings = load_settings(project.root)
    found = experiments.find(settings, "triage")
    places: list[tuple[int, int]] = []
    listed = list(experiments.items(found, places))
    variant = found.spec.all_variants()["billing-minded"]
    seeds = experiments.VariantSeeds(settings, found, "billing-minded", variant, places)
    assert len(places) == len(listed) == 258 and len(seeds) == 516
    for index in (0, 1, 17, 515, -1):
        source, seed = seeds[index]
        ident, item = listed[(index % 516) // 2]
        assert source == f"{ident}#{index % 2}"
        assert isinstance(seed, dict) and seed["data"] == item.data and seed["llm"]["sample"] == index % 2
        assert seed["name"] == f"triage/billing-minded/{ident}#{index % 2}"
        assert seed["llm"]["mock_responses"].endswith("experiments/billing-mock.yaml")
    assert seeds[16][0] == "item-10#0"  # the line without an id is named by its line number
    assert [s for s, _ in seeds[:4]] == ["t1#0", "t1#1", "t2#0", "t2#1"]
    assert [s for s, _ in seeds] == [f"{i}#{r}" for i, _ in listed for r in (0, 1)]
    with pytest.raises(IndexError):
        seeds[516]
    # the file changes under a run: a line that is no longer an item is named, not a crash
    (folder / "tickets.jsonl").write_text("not json\n" * 300)
    with pytest.raises(Exception, match=r"tickets.jsonl:\d+: not an item"):
        seeds[0]
