"""Choosing among an expert's candidates by cost, score, and what the task needs."""

from __future__ import annotations

import pytest

from pop_nb.errors import NoSuitableModel
from pop_nb.llm.pricing import blended_price
from pop_nb.llm.selection import select_model

SONNET = "anthropic/claude-sonnet-4-5-20250929"
MINI = "openai/gpt-4o-mini"
DEEPSEEK = "deepseek/deepseek-chat"
CANDIDATES = [SONNET, MINI, DEEPSEEK]
SCORES = {SONNET: 0.95, MINI: 0.70, DEEPSEEK: 0.88}


@pytest.fixture(autouse=True)
def all_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "DEEPSEEK_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.setenv(name, "sk-test-key-123456")


def test_cost_picks_the_cheapest_and_ranks_the_rest_as_fallbacks() -> None:
    choice = select_model("writer", CANDIDATES, "cost", {}, {})
    prices = {m: blended_price(m) for m in CANDIDATES}
    assert choice.ranked == sorted(CANDIDATES, key=lambda m: prices[m])
    assert choice.model == MINI and "cheapest" in choice.reason


def test_performance_picks_the_best_score() -> None:
    assert select_model("writer", CANDIDATES, "performance", SCORES, {}).model == SONNET
    unscored = select_model("writer", CANDIDATES, "performance", {DEEPSEEK: 0.5}, {})
    assert unscored.ranked == [DEEPSEEK, SONNET, MINI]  # scored first, then as listed


def test_balanced_picks_the_cheapest_nearly_best() -> None:
    choice = select_model("writer", CANDIDATES, "balanced", SCORES, {})
    assert choice.model == DEEPSEEK  # 0.88 >= 0.9 * 0.95 and far cheaper than sonnet
    assert choice.ranked == [DEEPSEEK, SONNET, MINI]
    assert select_model("writer", CANDIDATES, "balanced", {}, {}).model == SONNET  # no scores: as listed


def test_candidates_without_a_key_or_a_needed_capability_are_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    choice = select_model("writer", [SONNET, "openai/gpt-3.5-turbo", MINI], "performance", {}, {"tools": []})
    assert choice.model == "openai/gpt-3.5-turbo" and SONNET in choice.rejected
    needs_schema = {"response_format": {"type": "json_object"}}
    choice = select_model("writer", ["openai/gpt-3.5-turbo", MINI], "performance", {}, needs_schema)
    assert choice.model == MINI and "structured output" in choice.rejected["openai/gpt-3.5-turbo"]


def test_no_suitable_model_names_each_candidate_and_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(NoSuitableModel) as info:
        select_model("writer", [SONNET, "mock/unpriced-model-x"], "cost", {}, {})
    message = str(info.value)
    assert "expert 'writer'" in message and "ANTHROPIC_API_KEY" in message
    assert "mock/unpriced-model-x: no price" in message and "Fix:" in message
