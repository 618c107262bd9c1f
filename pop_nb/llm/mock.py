"""``mock/<model>``: a litellm custom provider that answers from a script, for tests and the offline demo.

The part after ``mock/`` names the model being imitated: token counts use its tokenizer and the cost
comes from its entry in litellm's price map, so an offline run shows realistic usage and spend.

A script is YAML (or a mapping) keyed by task, then stage::

    research:
      inference: '{"findings": []}'        # every call of this stage
      refine: ["first call", "second"]     # successive calls within one stage run (the last repeats)
      refine.r2: "..."                      # only in refinement pass 2
    "*":                                    # any task
      critique: "Tighten the summary."
    classify:
      inference:                            # or: answer by what the prompt says
        match:
          - {if: "(?i)printer|laptop", answer: {category: hardware}}   # a regex searched in the prompt
          - {answer: {category: other}}     # no ``if``: the answer when nothing above matched

A value that is a mapping or list of mappings is sent as JSON text (except a mapping whose one key is
``match``: those are rules, tried in order against the text of the call's last user message).
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import yaml

from pop_nb.errors import MockScriptError
from pop_nb.llm.providers import Answer, Request
from pop_nb.llm.registry import Provider

_scripts: dict[str, dict[str, Any]] = {}
_lock = threading.Lock()


def load_script(source: str | dict[str, Any] | None) -> dict[str, Any]:
    if source is None:
        return {}
    if isinstance(source, dict):
        return source
    with _lock:
        if source not in _scripts:
            try:
                data = yaml.safe_load(Path(source).read_text(encoding="utf-8")) or {}
            except FileNotFoundError:
                raise MockScriptError(
                    f"the mock script {source} does not exist. Fix: write it, or correct mock_responses (it "
                    "is relative to the file naming it: pipeline.yaml, the seed's project, the experiment)"
                ) from None
            if not isinstance(data, dict):
                raise MockScriptError(f"mock script {source} must map task names to stages")
            _scripts[source] = data
        return _scripts[source]


def scripted_answer(
    script: dict[str, Any],
    task: str,
    stage: str,
    refinement: int,
    call_index: int,
    where: str,
    prompt: str = "",
) -> str:
    """The scripted answer for the ``call_index``-th call of this stage run.

    Run by hand (stage ``interactive``), a notebook's calls are answered in stage order: the first call
    gets the first stage's answer, and so on, as they come when the cells run top to bottom.
    """
    if stage == "interactive":
        from pop_nb.models.pipeline import STAGES

        entries = script.get(task) or {}
        answers = [a for name in STAGES if name in entries for a in _answers(entries[name])]
        if answers:
            return _chosen(answers[min(call_index, len(answers) - 1)], prompt, f"{where} ({task})")
    for task_key in (task, "*"):
        entries = script.get(task_key) or {}
        for stage_key in (f"{stage}.r{refinement}", stage):
            if stage_key in entries:
                answers = _answers(entries[stage_key])
                chosen = answers[min(call_index, len(answers) - 1)]
                return _chosen(chosen, prompt, f"{where} ({task_key}: {stage_key})")
    raise MockScriptError(
        f"the mock script {where} has no answer for task {task!r}, stage {stage!r}. "
        f"Fix: add `{task}: {{{stage}: <answer>}}` to it (or a '*' entry for every task)."
    )


def _chosen(value: Any, prompt: str, where: str) -> str:
    """A scripted answer as text; a ``match`` rule set answers with its first rule whose ``if`` (a regular
    expression) is found in ``prompt``."""
    if not (isinstance(value, dict) and set(value) == {"match"}):
        return _as_text(value)
    rules = value["match"]
    if not isinstance(rules, list) or not all(isinstance(r, dict) and "answer" in r for r in rules):
        raise MockScriptError(
            f"the mock script {where}: `match` must be a list of {{if: <regex>, answer: ...}} rules "
            "(the last may leave out `if`: the answer when none matched)"
        )
    for rule in rules:
        pattern = rule.get("if")
        try:
            if pattern is None or re.search(str(pattern), prompt):
                return _as_text(rule["answer"])
        except re.error as exc:
            raise MockScriptError(
                f"the mock script {where}: `if: {pattern}` is not a regular expression ({exc})"
            ) from None
    raise MockScriptError(
        f"the mock script {where}: no `match` rule fits the prompt {prompt[:80]!r}. Fix: add a last rule "
        "without `if` (the answer when none matched)"
    )


def _answers(value: Any) -> list[Any]:
    """A script value as its successive answers: a list of answers, or one answer (a mapping, or a list
    of mappings, is one JSON answer)."""
    if isinstance(value, list) and value and not all(isinstance(v, dict) for v in value):
        return value
    return [value]


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)


def answer(request: Request) -> Answer:
    """The scripted answer, with tokens counted by the imitated model's tokenizer."""
    from pop_nb.llm.pricing import pricing_name
    from pop_nb.llm.providers import load_litellm

    litellm = load_litellm()
    meta, source = request.pop, request.params.get("mock_responses")
    text = scripted_answer(
        load_script(source),
        task=meta.get("task") or "",
        stage=meta.get("stage") or "",
        refinement=int(meta.get("refinement") or 0),
        call_index=int(meta.get("call_index") or 0),
        where=str(source) if isinstance(source, str) else "(inline mock_responses)",
        prompt=_last_user_text(request.messages),
    )
    imitated = pricing_name(f"mock/{request.model}")
    return Answer(
        text=text,
        prompt_tokens=litellm.token_counter(model=imitated, messages=request.messages),
        completion_tokens=litellm.token_counter(model=imitated, text=text, count_response_tokens=True),
    )


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):  # parts: [{"type": "text", "text": ...}, ...]
                return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            return str(content or "")
    return ""


def script_digest(params: dict[str, Any]) -> str:
    """What of a call's fields decides a mock answer: its script's content (wherever the file is)."""
    import hashlib

    script = load_script(params.get("mock_responses"))
    return hashlib.sha256(json.dumps(script, sort_keys=True, default=str).encode()).hexdigest()[:16]


PROVIDER = Provider(
    "mock",
    answer,
    pricing="imitated",
    own_params=frozenset({"mock_responses"}),
    positional=True,
    key_of=script_digest,
)
