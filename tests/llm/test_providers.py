"""litellm's real provider code paths against a local server speaking the providers' protocols."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pop_nb.errors import BudgetExceeded, LLMError, TransientLLMError
from pop_nb.llm import client
from pop_nb.llm.budget import Budget
from pop_nb.llm.client import Attribution, chat
from pop_nb.llm.ledger import Ledger
from pop_nb.models.pipeline import LLMSettings
from pop_nb.testing.provider_server import Fault, ProviderServer

PROMPT = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Name three solid-state electrolytes and one drawback of each."},
]


def rows(tmp_path: Path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "usage.jsonl").read_text().splitlines()]


def base_for(model: str, server: ProviderServer) -> str:
    return server.url if model.startswith("anthropic/") else server.openai_base


@pytest.mark.parametrize(
    ("model", "price_key"),
    [
        ("openai/gpt-4o-mini", "gpt-4o-mini"),
        ("deepseek/deepseek-chat", "deepseek/deepseek-chat"),
        ("anthropic/claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929"),
    ],
)
def test_cost_equals_the_price_map_including_cached_tokens(
    model: str, price_key: str, server: ProviderServer, keys: str, tmp_path: Path
) -> None:
    import litellm

    server.cached_tokens = 9
    reply = chat(PROMPT, model=model, api_base=base_for(model, server), ledger=Ledger(tmp_path))
    assert reply.content.startswith("echo: Name three")
    [row] = rows(tmp_path)
    assert row["cached_tokens"] == 9 and row["input_tokens"] > 9 and row["output_tokens"] > 0
    entry = litellm.model_cost[price_key]
    expected = (
        (row["input_tokens"] - 9) * entry["input_cost_per_token"]
        + 9 * entry["cache_read_input_token_cost"]
        + row["output_tokens"] * entry["output_cost_per_token"]
    )
    assert abs(row["cost_usd"] - expected) < 1e-9 and row["cost_usd"] > 0
    assert row["cost_source"] == "price_map" and row["provider"] == model.split("/")[0]
    # and litellm's own cost calculation agrees with ours
    assert abs(reply.raw._hidden_params["response_cost"] - row["cost_usd"]) < 1e-9


def test_rate_limit_waits_for_retry_after_then_succeeds(
    server: ProviderServer, keys: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []
    monkeypatch.setattr(client, "_sleep", waits.append)
    server.fail_next(Fault(status=429, retry_after=7), Fault(status=500))
    settings = LLMSettings(model="openai/gpt-4o-mini", api_base=server.openai_base, retry_base_s=0.01)
    reply = chat("hi", settings=settings, ledger=Ledger(tmp_path))
    assert reply.content == "echo: hi"
    assert len(server.requests) == 3
    assert waits[0] >= 7  # Retry-After honoured over a shorter backoff
    assert waits[1] <= 0.02  # 5xx: exponential backoff with jitter, base 0.01 s
    logged = rows(tmp_path)
    assert [r["ok"] for r in logged] == [False, False, True]
    assert "RateLimitError" in logged[0]["error"] and "InternalServerError" in logged[1]["error"]


def test_transient_errors_that_outlast_the_retries_are_marked_transient(
    server: ProviderServer, keys: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client, "_sleep", lambda s: None)
    server.fail_next(*[Fault(status=503)] * 3)
    settings = LLMSettings(model="openai/gpt-4o-mini", api_base=server.openai_base, max_retries=2)
    with pytest.raises(TransientLLMError, match="after 3 attempts"):
        chat("hi", settings=settings, ledger=Ledger(tmp_path))
    assert len(server.requests) == 3


def test_rate_limits_that_outlast_the_retries_are_transient_and_a_bad_request_is_not_retried(
    server: ProviderServer, keys: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pop_nb.errors import TRANSIENT_ERRORS

    monkeypatch.setattr(client, "_sleep", lambda s: None)
    server.fail_next(*[Fault(status=429)] * 3)
    settings = LLMSettings(model="openai/gpt-4o-mini", api_base=server.openai_base, max_retries=2)
    with pytest.raises(TransientLLMError) as info:
        chat("hi", settings=settings, ledger=Ledger(tmp_path))
    assert info.value.error_type == "RateLimitError" and len(server.requests) == 3
    assert type(info.value).__name__ in TRANSIENT_ERRORS  # a stage that raised it is retried by `retries:`
    assert [("RateLimitError" in r["error"], r["ok"]) for r in rows(tmp_path)] == [(True, False)] * 3
    server.fail_next(Fault(status=400, message="bad input"))
    with pytest.raises(LLMError) as permanent:
        chat("hi", settings=settings, ledger=Ledger(tmp_path))
    assert permanent.value.error_type == "BadRequestError"
    assert not isinstance(permanent.value, TransientLLMError) and len(server.requests) == 4  # sent once


def test_slow_answer_times_out_and_is_retried(server: ProviderServer, keys: str, tmp_path: Path) -> None:
    server.fail_next(Fault(delay_s=3))
    settings = LLMSettings(
        model="openai/gpt-4o-mini", api_base=server.openai_base, timeout=0.5, retry_base_s=0.01
    )
    assert chat("slow?", settings=settings, ledger=Ledger(tmp_path)).content == "echo: slow?"
    logged = rows(tmp_path)
    assert len(logged) == 2 and "Timeout" in logged[0]["error"] and logged[1]["ok"]


def test_auth_error_is_not_retried_and_never_leaks_the_key(
    server: ProviderServer, keys: str, tmp_path: Path
) -> None:
    server.fail_next(Fault(status=401, message="unauthorized", echo_key=True))
    with pytest.raises(LLMError) as info:
        chat("hi", model="openai/gpt-4o-mini", api_base=server.openai_base, ledger=Ledger(tmp_path))
    assert info.value.error_type == "AuthenticationError"
    assert len(server.requests) == 1
    assert server.requests[0].headers["authorization"] == f"Bearer {keys}"  # it was sent...
    assert keys not in str(info.value) and "[REDACTED]" in str(info.value)  # ...and is shown nowhere
    assert keys not in (tmp_path / "usage.jsonl").read_text()


def test_refusal_falls_back_to_the_next_candidate(server: ProviderServer, keys: str, tmp_path: Path) -> None:
    server.fail_next(Fault(status=401))
    reply = chat(
        "hi",
        model="openai/gpt-4o-mini",
        fallbacks=["deepseek/deepseek-chat"],
        api_base=server.openai_base,
        ledger=Ledger(tmp_path),
    )
    assert reply.model == "deepseek/deepseek-chat"
    assert [r["model"] for r in rows(tmp_path)] == ["openai/gpt-4o-mini", "deepseek/deepseek-chat"]


def test_a_rerun_stage_is_answered_from_the_ledger_at_zero_cost(
    server: ProviderServer, keys: str, tmp_path: Path
) -> None:
    answers = iter(f"sample {i}" for i in range(100))
    server.answer = lambda body: next(answers)
    base = {"model": "openai/gpt-4o-mini", "api_base": server.openai_base}
    who = Attribution(job="j", task="research", stage="inference")
    run1 = Ledger(tmp_path)  # one Ledger is one run of a stage
    first = [chat(PROMPT, ledger=run1, attribution=who, **base) for _ in range(2)]
    assert [r.content for r in first] == ["sample 0", "sample 1"]  # asking twice samples twice
    assert len(server.requests) == 2

    run2 = Ledger(tmp_path)  # the stage again (resume, retry): the same calls, in the same order
    again = [chat(PROMPT, ledger=run2, attribution=who, **base) for _ in range(2)]
    assert [r.content for r in again] == ["sample 0", "sample 1"] and len(server.requests) == 2
    assert all(r.cache_hit and r.cost_usd == 0 for r in again)
    assert again[0].raw.choices[0].message.content == "sample 0"  # a real ModelResponse again
    other = chat(PROMPT, ledger=run2, attribution=who, temperature=0.9, **base)  # a different request
    assert not other.cache_hit and len(server.requests) == 3
    later_pass = Attribution(job="j", task="research", stage="inference", refinement=1)
    assert not chat(PROMPT, ledger=Ledger(tmp_path), attribution=later_pass, **base).cache_hit

    logged = rows(tmp_path)
    paid, hit = logged[0], logged[2]
    assert hit["cache_hit"] and hit["cost_usd"] == 0 and hit["cost_source"] == "cache"
    assert hit["saved_usd"] == pytest.approx(paid["cost_usd"]) and hit["request_hash"] == paid["request_hash"]
    chat(PROMPT, ledger=Ledger(tmp_path), attribution=who, cache="off", **base)  # cache off pays again
    assert len(server.requests) == 5


def test_budget_refuses_before_sending(server: ProviderServer, keys: str, tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    who = Attribution(job="j1", task="research", stage="inference")
    kw = {"model": "openai/gpt-4o-mini", "api_base": server.openai_base, "ledger": ledger, "attribution": who}
    chat("first call", budget=Budget(job_usd=1.0), **kw)
    spent = ledger.spent()
    with pytest.raises(BudgetExceeded) as info:
        chat("x " * 4000, budget=Budget(job_usd=spent + 1e-5), **kw)
    assert len(server.requests) == 1  # the second call was never sent
    err = info.value
    assert (
        err.spent == pytest.approx(spent) and err.estimate > 1e-5 and err.limit == pytest.approx(spent + 1e-5)
    )
    assert "job 'j1'" in str(err) and "pop resume j1 --budget-usd" in str(err)
    with pytest.raises(BudgetExceeded, match=r"task 'research'.*tasks\.research\.budget_usd"):
        chat("another", budget=Budget(task_usd=spent), **kw)
    kw["ledger"] = Ledger(tmp_path)  # the stage again
    assert chat("first call", budget=Budget(job_usd=0.0), **kw).cache_hit  # replays cost nothing


def test_max_concurrent_calls_holds_across_threads(server: ProviderServer, keys: str, tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    server.fail_next(*[Fault(delay_s=0.3)] * 4)
    settings = LLMSettings(model="openai/gpt-4o-mini", api_base=server.openai_base, max_concurrent_calls=1)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: chat(f"q{i}", settings=settings, ledger=Ledger(tmp_path)), range(4)))
    assert len(server.requests) == 4 and server.max_in_flight == 1


def test_structured_output_is_sent_as_response_format(server: ProviderServer, keys: str) -> None:
    from pop_nb.llm.structured import apply_schema

    schema = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
    server.answer = lambda body: '{"x": 1}'
    msgs, params = apply_schema("openai/gpt-4o-mini", schema, "research", PROMPT, {})
    reply = chat(msgs, model="openai/gpt-4o-mini", api_base=server.openai_base, **params)
    sent = server.requests[-1].body["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["schema"] == schema
    assert reply.json() == {"x": 1}
    # a model without structured output gets the schema in its system prompt instead
    msgs, params = apply_schema("openai/gpt-3.5-turbo", schema, "research", PROMPT, {})
    chat(msgs, model="openai/gpt-3.5-turbo", api_base=server.openai_base, **params)
    body = server.requests[-1].body
    assert "response_format" not in body and '"required"' in body["messages"][0]["content"]
    assert body["messages"][0]["content"].startswith("You are terse.")


def test_a_warm_up_that_cannot_make_an_http_transport_still_ends_without_a_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SSL_CERT_FILE naming no file makes every HTTP transport fail: the kernel server still starts (its
    warm-up skips the OpenAI path; a stage's real call reports the error) and forks with no thread."""
    import threading

    from pop_nb.llm.providers import load_litellm, warm_up

    monkeypatch.setenv("SSL_CERT_FILE", "/nonexistent/ca-bundle.pem")
    before = set(threading.enumerate())  # other tests' threads may end meanwhile: only new ones count
    warm_up(load_litellm())
    assert [t.name for t in threading.enumerate() if t not in before] == []
