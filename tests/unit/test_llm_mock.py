import pytest

from pop_nb.errors import MockScriptError
from pop_nb.llm import Attribution, chat
from pop_nb.llm.ledger import Ledger
from pop_nb.llm.mock import scripted_answer
from pop_nb.llm.pricing import price_entry
from pop_nb.models.pipeline import LLMSettings

SCRIPT = {
    "research": {"inference": ["first", "second"], "refine": "any pass", "refine.r2": "pass two"},
    "*": {"critique": {"verdict": "ok"}},
}


def test_script_lookup_order() -> None:
    assert scripted_answer(SCRIPT, "research", "inference", 0, 0, "s") == "first"
    assert scripted_answer(SCRIPT, "research", "inference", 0, 5, "s") == "second"
    assert scripted_answer(SCRIPT, "research", "refine", 1, 0, "s") == "any pass"
    assert scripted_answer(SCRIPT, "research", "refine", 2, 0, "s") == "pass two"
    assert '"verdict": "ok"' in scripted_answer(SCRIPT, "other", "critique", 0, 0, "s")


def test_missing_answer_names_task_stage_and_fix() -> None:
    with pytest.raises(MockScriptError, match=r"task 'research', stage 'parsing'.*Fix: add"):
        scripted_answer(SCRIPT, "research", "parsing", 0, 0, "mock.yaml")


def test_mock_call_goes_through_litellm_and_is_priced_like_the_imitated_model(tmp_path) -> None:
    usage = tmp_path / "usage.jsonl"
    settings = LLMSettings(
        model="mock/gpt-4o-mini", mock_responses={"t": {"inference": "Paris is the capital."}}
    )
    reply = chat(
        "What is the capital of France?",
        settings=settings,
        ledger=Ledger(tmp_path),
        attribution=Attribution(job="j1", pipeline="p", task="t", stage="inference"),
    )
    assert reply.content == "Paris is the capital."
    assert reply.input_tokens > 5 and reply.output_tokens > 3
    entry = price_entry("gpt-4o-mini")
    assert entry is not None
    expected = (
        reply.input_tokens * entry["input_cost_per_token"]
        + reply.output_tokens * entry["output_cost_per_token"]
    )
    assert reply.cost_usd == pytest.approx(expected, abs=1e-12) and reply.cost_usd > 0
    import json

    [row] = [json.loads(line) for line in usage.read_text().splitlines()]
    assert row["job"] == "j1" and row["task"] == "t" and row["stage"] == "inference"
    assert row["cost_source"] == "price_map" and row["ok"] is True
    assert row["input_tokens"] == reply.input_tokens and row["cost_usd"] == pytest.approx(reply.cost_usd)


def test_rate_limits_are_retried_then_surface_as_transient_for_stage_retries(tmp_path) -> None:
    from pop_nb.errors import TRANSIENT_ERRORS, LLMError, TransientLLMError

    usage = tmp_path / "usage.jsonl"
    settings = LLMSettings(model="openai/gpt-4o-mini", max_retries=2, retry_base_s=0)
    with pytest.raises(TransientLLMError) as info:
        chat("hi", settings=settings, ledger=Ledger(tmp_path), mock_response="litellm.RateLimitError")
    assert info.value.error_type == "RateLimitError"
    # a stage that raised it is retried by `retries:` (papermill reports the class name)
    assert type(info.value).__name__ in TRANSIENT_ERRORS
    import json

    rows = [json.loads(line) for line in usage.read_text().splitlines()]
    assert len(rows) == 3 and not any(r["ok"] for r in rows)
    assert all("RateLimitError" in r["error"] for r in rows)

    from pop_nb.llm.providers import load_litellm

    litellm = load_litellm()
    bad = litellm.BadRequestError(message="bad input", model="gpt-4o-mini", llm_provider="openai")
    with pytest.raises(LLMError) as permanent:  # a bad request is not retried
        chat("hi", settings=settings, ledger=Ledger(tmp_path), mock_response=bad)
    assert permanent.value.error_type == "BadRequestError"
    assert not isinstance(permanent.value, TransientLLMError)
    assert len(usage.read_text().splitlines()) == 4  # one attempt only
