"""The response cache shared by jobs: chat() against the local protocol server, two ledgers standing for
two jobs that share one data folder's cache."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path
from typing import Any

import pydantic
import pytest

from pop_nb.errors import LLMError, ReplayMiss
from pop_nb.llm.cache import Store, cache_key, key_fields
from pop_nb.llm.client import Attribution, chat
from pop_nb.llm.ledger import Ledger
from pop_nb.testing.provider_server import Fault, ProviderServer

PROMPT = [{"role": "user", "content": "Name one solid-state electrolyte."}]


class Jobs:
    """Jobs of one data folder: each a ledger in its own folder, all sharing ``<data>/.cache/llm``."""

    def __init__(self, data: Path, server: ProviderServer) -> None:
        self.data, self.server = data, server
        self.shared = data / ".cache" / "llm"

    def ledger(self, job: str) -> Ledger:
        return Ledger(self.data / "current" / job, self.shared)

    def ask(self, job: str, ledger: Ledger | None = None, *, task: str = "t", **params: Any) -> Any:
        who = Attribution(job=job, pipeline="p", task=task, stage="inference")
        base = {"model": "openai/gpt-4o-mini", "api_base": self.server.openai_base, "max_retries": 0}
        return chat(PROMPT, ledger=ledger or self.ledger(job), attribution=who, **{**base, **params})

    def rows(self, job: str) -> list[dict[str, Any]]:
        lines = (self.data / "current" / job / "usage.jsonl").read_text().splitlines()
        return [json.loads(line) for line in lines]

    def entries(self) -> list[Path]:
        return sorted(self.shared.rglob("*.json"))


@pytest.fixture
def jobs(tmp_path: Path, server: ProviderServer, keys: str) -> Jobs:
    answers = iter(f"answer {i}" for i in range(1000))
    server.answer = lambda body: next(answers)
    return Jobs(tmp_path / "data", server)


def test_a_deterministic_request_paid_by_one_job_is_free_for_the_next(jobs: Jobs) -> None:
    paid = jobs.ask("job-1", temperature=0)
    again = jobs.ask("job-2", temperature=0)
    assert len(jobs.server.requests) == 1 and again.content == paid.content == "answer 0"
    assert again.cache_hit and again.cost_usd == 0 and paid.cost_usd > 0
    assert again.saved_usd == pytest.approx(paid.cost_usd, abs=1e-12)
    assert again.raw.choices[0].message.content == "answer 0"  # a real ModelResponse again
    [row] = jobs.rows("job-2")
    assert row["cost_source"] == "cache" and row["cache_hit"] and row["paid_by"] == "job-1"
    assert row["saved_usd"] == pytest.approx(jobs.rows("job-1")[0]["cost_usd"], abs=1e-12)
    assert row["cache_key"] == jobs.rows("job-1")[0]["cache_key"] and len(jobs.entries()) == 1
    # the second job keeps its own copy: its record holds even when the shared cache is cleared
    assert (jobs.data / "current" / "job-2" / "llm" / "responses" / f"{row['cache_key']}.json").is_file()


def test_sampling_samples_in_auto_mode_and_is_kept_by_position_in_read_write(jobs: Jobs) -> None:
    first = jobs.ledger("job-1")
    assert [jobs.ask("job-1", first, temperature=0.7).content for _ in range(3)] == [
        "answer 0",
        "answer 1",
        "answer 2",
    ]
    assert not jobs.entries()  # auto: a sample is the job's own
    again = jobs.ledger("job-1")  # the same stage run again (resume): the same three, free
    assert [jobs.ask("job-1", again, temperature=0.7).cache_hit for _ in range(3)] == [True] * 3
    other = jobs.ledger("job-2")  # another job at 0.7 samples anew
    assert [jobs.ask("job-2", other, temperature=0.7).content for _ in range(3)] == [
        "answer 3",
        "answer 4",
        "answer 5",
    ]
    assert len(jobs.server.requests) == 6

    recorded = jobs.ledger("job-3")
    answers = [jobs.ask("job-3", recorded, temperature=0.7, cache="read-write").content for _ in range(3)]
    assert answers == ["answer 6", "answer 7", "answer 8"] and len(jobs.entries()) == 3  # three, not one
    replayed = jobs.ledger("job-4")
    got = [jobs.ask("job-4", replayed, temperature=0.7, cache="read-write") for _ in range(3)]
    assert [r.content for r in got] == answers and all(r.cache_hit for r in got)
    assert len(jobs.server.requests) == 9  # the fourth run sent nothing
    # a repeat of the same seed (sample 1) asks anew; a fourth question in the stage too
    assert not jobs.ask("job-5", temperature=0.7, cache="read-write", sample=1).cache_hit
    assert not jobs.ask("job-4", replayed, temperature=0.7, cache="read-write").cache_hit
    assert len(jobs.server.requests) == 11


@pytest.mark.parametrize(
    "change",
    [
        {"max_tokens": 50},
        {"top_p": 0.5},
        {"stop": ["\n"]},
        {"seed": 7},
        {"n": 2},
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]},
        {"tool_choice": "none"},
        {"response_format": {"type": "json_object"}},
        {"model": "openai/gpt-4o"},
        {"mock_response": "litellm's own canned answer"},
        {"reasoning_effort": "high"},  # any field not known to be transport is in the key
    ],
)
def test_every_field_that_decides_the_answer_is_in_the_key(change: dict[str, Any]) -> None:
    def key(**params: Any) -> str:
        model = params.pop("model", "openai/gpt-4o-mini")
        return cache_key(key_fields("openai", model, PROMPT, {"temperature": 0, **params}, None))

    assert key(**change) != key()


def test_what_only_reaches_the_provider_is_not_in_the_key_or_the_entry(jobs: Jobs) -> None:
    def fields(**params: Any) -> dict[str, Any]:
        return key_fields("openai", "openai/gpt-4o-mini", PROMPT, {"temperature": 0, **params}, None)

    plain = cache_key(fields())
    for transport in ({"api_base": "http://elsewhere"}, {"timeout": 3}, {"extra_headers": {"x": "1"}}):
        assert cache_key(fields(**transport)) == plain
    assert cache_key(fields(api_key="sk-x", aws_secret_access_key="s")) == plain

    class Old(pydantic.BaseModel):
        title: str

    class New(pydantic.BaseModel):
        title: str
        year: int

    New.__name__ = "Old"  # same name, another schema: another key
    assert cache_key(fields(response_format=Old)) != cache_key(fields(response_format=New))


def test_no_key_reaches_any_cache_file(jobs: Jobs, keys: str) -> None:
    message = [{"role": "user", "content": f"my key is {keys}, keep it"}]
    who = Attribution(job="job-1", pipeline="p", task="t", stage="inference")
    ledger = jobs.ledger("job-1")
    base = {"model": "openai/gpt-4o-mini", "api_base": jobs.server.openai_base}
    chat(message, ledger=ledger, attribution=who, api_key=keys, temperature=0, **base)
    written = [p for p in jobs.data.rglob("*") if p.is_file()]
    assert jobs.entries() and any("responses" in str(p) for p in written)
    assert not [p for p in written if keys.encode() in p.read_bytes()]
    entry = json.loads(jobs.entries()[0].read_text())
    assert "api_key" not in json.dumps(entry) and "api_base" not in json.dumps(entry["request"])


def test_errors_refusals_and_cut_off_structured_answers_are_never_kept(jobs: Jobs) -> None:
    jobs.server.fail_next(Fault(status=429, retry_after=0))
    with pytest.raises(LLMError, match="RateLimit"):
        jobs.ask("job-1", temperature=0)
    assert not jobs.ask("job-1", temperature=0).cache_hit and len(jobs.server.requests) == 2  # sent again
    jobs.server.fail_next(Fault(finish_reason="content_filter"))
    jobs.ask("job-1", temperature=0, max_tokens=5)
    assert not jobs.ask("job-2", temperature=0, max_tokens=5).cache_hit  # a refusal is asked again
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    jobs.server.fail_next(Fault(finish_reason="length"))
    jobs.ask("job-1", temperature=0, response_format=schema)
    assert not jobs.ask("job-2", temperature=0, response_format=schema).cache_hit
    jobs.server.fail_next(Fault(finish_reason="length"))  # cut off, but no structure was asked for: kept
    jobs.ask("job-1", temperature=0, max_tokens=6)
    assert jobs.ask("job-2", temperature=0, max_tokens=6).cache_hit
    assert len(jobs.server.requests) == 7


def test_a_fallbacks_answer_is_kept_under_its_own_model_not_the_refusers(jobs: Jobs) -> None:
    jobs.server.fail_next(Fault(status=401, message="no access"))
    got = jobs.ask("job-1", temperature=0, fallbacks=["deepseek/deepseek-chat"])
    assert got.model == "deepseek/deepseek-chat" and len(jobs.entries()) == 1
    assert json.loads(jobs.entries()[0].read_text())["request"]["model"] == "deepseek/deepseek-chat"
    assert not jobs.ask("job-2", temperature=0).cache_hit  # the first model was never answered


def test_replay_sends_nothing_and_names_the_missing_call(jobs: Jobs) -> None:
    jobs.ask("job-1", temperature=0, cache="read-write")
    assert jobs.ask("job-2", temperature=0, cache="replay").cache_hit
    with pytest.raises(ReplayMiss, match=r"task 't', stage 'inference'.*gpt-4o-mini.*--record"):
        jobs.ask("job-2", task="t", temperature=0, cache="replay", max_tokens=9)
    assert len(jobs.server.requests) == 1
    missed = jobs.rows("job-2")[-1]
    assert not missed["ok"] and "ReplayMiss" in missed["error"] and missed["cache_key"]


def test_read_only_serves_but_keeps_nothing_new_and_off_touches_nothing(jobs: Jobs) -> None:
    jobs.ask("job-1", temperature=0)
    assert jobs.ask("job-2", temperature=0, cache="read-only").cache_hit
    jobs.ask("job-2", temperature=0, cache="read-only", max_tokens=3)
    assert len(jobs.entries()) == 1 and len(jobs.server.requests) == 2
    assert not jobs.ask("job-3", temperature=0, cache="off").cache_hit
    assert not (jobs.data / "current" / "job-3" / "llm").exists() and len(jobs.server.requests) == 3


def _race(root: str, n: int, go: Any) -> None:
    store = Store(Path(root), sharded=True)
    go.wait()
    store.put({"key": "ab" + "0" * 62, "writer": n, "pad": "x" * 200_000}, first_wins=True)


def test_racing_writers_leave_one_whole_entry(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    go = context.Event()
    racers = [context.Process(target=_race, args=(str(tmp_path), n, go)) for n in range(6)]
    for racer in racers:
        racer.start()
    go.set()
    for racer in racers:
        racer.join(60)
        assert racer.exitcode == 0
    [entry] = list(tmp_path.rglob("*"))[1:]  # the shard folder, then one file: no temp file left over
    assert json.loads(entry.read_text())["writer"] in range(6)
    assert Store(tmp_path, sharded=True).get("ab" + "0" * 62) is not None
