import pytest

from pop_nb.errors import MockScriptError
from pop_nb.llm import Attribution, chat
from pop_nb.llm.ledger import Ledger
from pop_nb.llm.mock import scripted_answer
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
    # OpenAI's published price of gpt-4o-mini ($0.15 / $0.60 per million tokens), not our own lookup
    expected = reply.input_tokens * 0.15e-6 + reply.output_tokens * 0.60e-6
    assert reply.cost_usd == pytest.approx(expected, abs=1e-12) and reply.cost_usd > 0
    import json

    [row] = [json.loads(line) for line in usage.read_text().splitlines()]
    assert row["job"] == "j1" and row["task"] == "t" and row["stage"] == "inference"
    assert row["cost_source"] == "price_map" and row["ok"] is True
    assert row["input_tokens"] == reply.input_tokens and row["cost_usd"] == pytest.approx(reply.cost_usd)


RULES = {
    "classify": {
        "inference": {
            "match": [
                {"if": "(?i)printer|laptop", "answer": {"category": "hardware"}},
                {"if": "invoice", "answer": "billing"},
                {"answer": {"category": "other"}},
            ]
        }
    },
    "strict": {"inference": {"match": [{"if": "vpn", "answer": "network"}]}},
    "broken": {"inference": {"match": [{"if": "(unclosed", "answer": "x"}]}},
}


def test_match_rules_answer_by_what_the_prompt_says() -> None:
    def ask(task: str, prompt: str) -> str:
        return scripted_answer(RULES, task, "inference", 0, 0, "rules.yaml", prompt)

    assert '"hardware"' in ask("classify", "My LAPTOP will not boot")
    assert ask("classify", "The invoice is wrong") == "billing"
    assert '"other"' in ask("classify", "Hello")  # the rule without `if`
    with pytest.raises(MockScriptError, match=r"rules.yaml \(strict: inference\).*no `match` rule fits"):
        ask("strict", "printer")
    with pytest.raises(MockScriptError, match=r"not a regular expression"):
        ask("broken", "anything")


def test_match_rules_see_the_last_user_message_through_litellm(tmp_path) -> None:
    settings = LLMSettings(model="mock/gpt-4o-mini", mock_responses=RULES)
    messages = [
        {"role": "system", "content": "You classify tickets; printer tickets are common."},
        {"role": "user", "content": [{"type": "text", "text": "Our invoice lists twelve seats"}]},
    ]
    reply = chat(
        messages,
        settings=settings,
        ledger=Ledger(tmp_path),
        attribution=Attribution(job="j1", pipeline="p", task="classify", stage="inference"),
    )
    assert reply.content == "billing"  # the system message's "printer" is not the prompt
