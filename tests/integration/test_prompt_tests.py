"""``pop test``: prompt regression tests recorded once from a provider (the local protocol server, which
counts what reaches it) and replayed for $0, judged per check, reported for people, CI and pytest."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import nbformat
import pytest
import yaml

from pop_nb.testing.provider_server import Fault, ProviderServer
from tests.conftest import REPO, Project, pop, write_notebook

CANARY = "sk-canary-0c4e8b1d7a2f9e6c3b5d"
EXAMPLES = sorted(p.parent.name for p in (REPO / "pipelines").glob("*/tests.jsonl"))
CLASSIFY = "pop.output(pop.chat(f\"Classify: {pop.seed['ticket']}\").content)"
CHECK_RAISES = "if outputs['classify'] != 'billing':\n    raise AssertionError('billing, please')"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ProviderServer]:
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    with ProviderServer(answer=lambda body: "billing" if "invoice" in str(body) else "hardware") as srv:
        yield srv


def triage(project: Project, server: ProviderServer, prompt: str = CLASSIFY) -> Path:
    folder = project.pipeline(
        "triage",
        {"classify": {"cells": [("inference", prompt)]}},
        llm={"model": "openai/gpt-4o-mini", "api_base": server.openai_base, "max_retries": 0},
    )
    checks = folder / "checks"
    checks.mkdir(exist_ok=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "job_dir = None\noutputs = {}\ndata = {}", metadata={"tags": ["parameters"]}
        ),
        nbformat.v4.new_code_cell(CHECK_RAISES),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, checks / "billing.ipynb")
    tests = [
        {"id": "invoice", "data": {"ticket": "The invoice is wrong"}, "expect": [
            {"path": "classify", "equals": "billing"}, {"notebook": "checks/billing.ipynb"}]},
        {"id": "printer", "data": {"ticket": "The printer jams"}, "expect": [
            {"path": "classify", "regex": "^hard"}, {"path": "classify", "contains": "ware"}]},
    ]  # fmt: skip
    (folder / "tests.jsonl").write_text("".join(json.dumps(t) + "\n" for t in tests))
    return folder


def run(*args: str) -> tuple[int, str]:
    done = pop("test", *args, timeout=300)
    return done.returncode, done.stdout + done.stderr


def test_recorded_once_then_replayed_for_nothing_and_a_changed_prompt_is_caught(
    project: Project, server: ProviderServer
) -> None:
    folder = triage(project, server)
    code, out = run("triage", "--record")
    assert code == 0, out
    assert len(server.requests) == 2 and "recorded 2 answers" in out
    recording = folder / "tests.cache.jsonl"
    assert len(recording.read_text().splitlines()) == 2 and CANARY not in recording.read_text()

    shutil.rmtree(project.data / ".cache")  # a fresh machine: only the committed recording
    code, out = run("triage", "--junit-xml", str(project.root / "report.xml"))
    assert code == 0, out
    assert len(server.requests) == 2 and "2 passed, 0 failed" in out and "spent $0.000000" in out
    suite = ElementTree.parse(project.root / "report.xml").getroot()
    assert suite.get("tests") == "2" and suite.get("failures") == "0"
    assert [c.get("name") for c in suite.iter("testcase")] == ["invoice", "printer"]

    write_notebook(
        folder / "tasks" / "classify.ipynb", [("inference", CLASSIFY.replace("Classify", "Label"))]
    )
    code, out = run("triage", "--junit-xml", str(project.root / "report.xml"))
    assert code == 1 and len(server.requests) == 2, out  # replay: nothing was sent
    assert "ReplayMiss" in out and "pop test triage --record" in out and "open:" in out
    assert "tasks/classify/04-inference.ipynb" in out
    suite = ElementTree.parse(project.root / "report.xml").getroot()
    assert suite.get("failures") == "2"


def test_each_failed_check_names_the_test_task_expected_actual_and_notebook(
    project: Project, server: ProviderServer
) -> None:
    triage(project, server)
    server.answer = lambda body: "hardware"  # the model regressed: invoices come back as hardware
    code, out = run("triage", "--cache", "read-write", "--json")
    assert code == 1, out
    report = json.loads(out)
    invoice = next(o for o in report["outcomes"] if o["id"] == "invoice")
    printer = next(o for o in report["outcomes"] if o["id"] == "printer")
    assert invoice["result"] == "failed" and printer["result"] == "passed"
    equals, notebook = invoice["failures"]
    assert equals["check"] == "classify equals 'billing'" and equals["expected"] == "billing"
    assert equals["actual"] == "hardware" and equals["task"] == "classify"
    assert (
        equals["notebook"].endswith("tasks/classify/04-inference.ipynb")
        and Path(equals["notebook"]).is_file()
    )
    assert "AssertionError: billing, please" in notebook["actual"]
    kept = Path(
        invoice["job"] and next(project.data.glob(f"*/{invoice['job']}")) / "checks" / "billing.ipynb"
    )
    assert kept.is_file() and "billing, please" in kept.read_text()  # the executed check, to open


def test_a_provider_failure_is_an_infrastructure_error_not_a_regression(
    project: Project, server: ProviderServer
) -> None:
    triage(project, server)
    server.fail_next(*[Fault(status=429, retry_after=0)] * 4)
    code, out = run("triage", "--cache", "read-write", "--only", "printer")
    assert code == 4, out
    assert "ERROR printer" in out and "infrastructure, not a regression" in out and "RateLimit" in out
    assert "0 passed, 0 failed, 1 infrastructure errors" in out


def test_a_bad_tests_file_names_the_line_and_the_fix(project: Project, server: ProviderServer) -> None:
    folder = triage(project, server)
    (folder / "tests.jsonl").write_text(
        '{"id": "a", "data": {}, "expect": [{"path": "x", "equals": 1, "regex": "y"}]}\n'
    )
    code, out = run("triage")
    assert code == 2 and "tests.jsonl:1" in out and "one check" in out, out
    (folder / "tests.jsonl").write_text('{"id": "a"}\n{"id": "a"}\n')
    code, out = run("triage")
    assert code == 2 and "tests.jsonl:2" in out and "used twice" in out, out
    (folder / "tests.jsonl").write_text('{"id": "a", "expect": [{"path": "classify", "regex": "(("}]}\n')
    code, out = run("triage")
    assert code == 2 and "tests.jsonl:1" in out and "not a regular expression" in out, out
    for schema in ('"nope.json"', '{"type": 12}'):
        (folder / "tests.jsonl").write_text(
            f'{{"id": "a", "expect": [{{"path": "c", "schema": {schema}}}]}}\n'
        )
        code, out = run("triage")
        assert code == 2 and "test 'a': its schema" in out and "cannot be used" in out, out
    (folder / "tests.jsonl").write_bytes(b'{"id": "a"}\n\xff\xfe\n')
    code, out = run("triage")
    assert code == 2 and "tests.jsonl:2: not UTF-8 text" in out, out
    code, out = run("triage", "--dataset", str(folder))
    assert code == 2 and "cannot be read" in out and "Traceback" not in out, out
    assert len(server.requests) == 0 and not (project.data / "batches").exists()  # nothing ran


def test_a_seed_the_pipeline_refuses_fails_its_test_and_says_why(
    project: Project, server: ProviderServer
) -> None:
    folder = triage(project, server)
    schema = {"type": "object", "required": ["ticket"]}
    (folder / "seed.schema.json").write_text(json.dumps(schema))
    spec = yaml.safe_load((folder / "pipeline.yaml").read_text())
    (folder / "pipeline.yaml").write_text(yaml.safe_dump({**spec, "seed_schema": "seed.schema.json"}))
    (folder / "tests.jsonl").write_text('{"id": "no-ticket", "data": {"subject": "x"}}\n')
    code, out = run("triage")
    assert code == 1 and "FAIL  no-ticket" in out and "'ticket' is a required property" in out, out


@pytest.mark.parametrize("slug", EXAMPLES)
def test_every_example_pipeline_passes_its_tests_offline_from_its_recording(
    project: Project, slug: str
) -> None:
    project.copy_example(slug)
    code, out = run(slug)
    assert code == 0, out
    assert "failed" in out and " 0 failed" in out and "spent $0.000000" in out
    sent = [
        json.loads(line) for f in project.data.glob("*/*/usage.jsonl") for line in f.read_text().splitlines()
    ]
    assert sent and all(row["cache_hit"] for row in sent)  # every answer came from the recording


def test_pytest_collects_the_tests_of_every_pipeline(project: Project) -> None:
    for slug in ("ticket-triage", "expert-panel"):
        project.copy_example(slug)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "pipelines", "-k", "not vpn"],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed, 1 deselected" in done.stdout, done.stdout
