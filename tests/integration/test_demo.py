"""The content-generation example, end to end, and resume from a task."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import nbformat

from tests.conftest import Project, kernels_of

SEED = Path(__file__).resolve().parents[2] / "pipelines/content-generation/seeds/solid-state-batteries.json"


def digest(path: Path) -> tuple[int, str]:
    return path.stat().st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest()


def test_demo_runs_to_complete_then_resumes_from_analysis(project: Project) -> None:
    project.copy_example("content-generation")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pop_nb.cli",
            "run",
            "content-generation",
            "--seed",
            str(SEED),
            "--id",
            "demo",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    job = project.job("demo")
    assert job.folder.place == "complete"
    st = job.status
    assert st.state == "done" and st.progress == 100
    assert st.tasks["research"].refinements == 1

    # one executed notebook per task and stage with cells, the refine pass visible as .r1
    tasks_dir = job.path / "tasks"
    research = sorted(p.name for p in (tasks_dir / "research").glob("*.ipynb"))
    assert research == [
        "01-ingestion.ipynb",
        "03-promptTemplating.ipynb",
        "04-inference.ipynb",
        "05-parsing.ipynb",
        "07-validateQuality.ipynb",
        "07-validateQuality.r1.ipynb",
        "08-critique.r1.ipynb",
        "09-refine.r1.ipynb",
        "11-integration.ipynb",
    ]
    assert sorted(p.name for p in (tasks_dir / "formatting").glob("*.ipynb")) == ["11-integration.ipynb"]

    # the executed notebook shows what ran: injected parameters and the model's answer
    nb = nbformat.read(tasks_dir / "research" / "04-inference.ipynb", as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and 'pop_stage = "inference"' in injected[0].source
    text = json.dumps([c.get("outputs") for c in nb.cells])
    assert "Pilot lines for sulfide-electrolyte cells" in text

    # critique saw the schema errors of the first answer
    critique = nbformat.read(tasks_dir / "research" / "08-critique.r1.ipynb", as_version=4)
    assert "output_schema: $.findings[1]: 'source' is a required property" in json.dumps(
        critique.cells[-1].outputs
    )

    # one usage line per call, with tokens and cost; totals agree with the status
    usage = job.usage()
    assert len(usage) == st.totals.calls == 5
    assert all(r["input_tokens"] > 0 and r["output_tokens"] > 0 and r["cost_usd"] > 0 for r in usage)
    assert abs(sum(r["cost_usd"] for r in usage) - st.totals.cost_usd) < 1e-12
    assert (job.path / "products" / "report.md").read_text().startswith("# Solid-state batteries")
    runs = [json.loads(line) for line in (project.data / "complete" / "runs.jsonl").read_text().splitlines()]
    assert runs[-1]["job"] == "demo" and runs[-1]["state"] == "done" and runs[-1]["calls"] == 5

    # resume from analysis: research untouched, analysis and downstream executed again
    before = {p.name: digest(p) for p in (job.path / "tasks" / "research").glob("*.ipynb")}
    old_analysis = digest(job.path / "tasks" / "analysis" / "04-inference.ipynb")
    proc = subprocess.run(
        [sys.executable, "-m", "pop_nb.cli", "resume", "demo", "--from-task", "analysis", "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert {p.name: digest(p) for p in (job.path / "tasks" / "research").glob("*.ipynb")} == before
    assert digest(job.path / "tasks" / "analysis" / "04-inference.ipynb")[0] > old_analysis[0]
    assert (job.path / "history" / "1" / "analysis" / "04-inference.ipynb").exists()
    started = [e["task"] for e in project.events(job) if e["kind"] == "task" and e["status"] == "started"]
    assert started == [
        "research",
        "analysis",
        "synthesis",
        "formatting",
        "analysis",
        "synthesis",
        "formatting",
    ]
    assert job.status.state == "done" and job.status.resumes == 1
    assert kernels_of(project.data) == []
