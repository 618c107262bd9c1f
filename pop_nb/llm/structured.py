"""Structured output: a task's ``output_schema`` goes to the model as ``response_format`` where the model
supports JSON-schema output, and is otherwise described in the system prompt. The answer is validated
locally either way (by the task's validateStructure stage and the runner), so failures feed the refine loop.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pop_nb.llm.pricing import pricing_name
from pop_nb.llm.providers import load_litellm

# The stages whose answers are the task's output, and so get the schema by default.
OUTPUT_STAGES = frozenset({"inference", "refine"})


def supports_schema(model: str) -> bool:
    from pop_nb.llm.registry import own_provider

    own = own_provider(model)
    if own is not None and own.response_schema is not None:
        return own.response_schema
    litellm = load_litellm()
    try:
        return bool(litellm.supports_response_schema(model=pricing_name(model)))
    except Exception:  # a model litellm does not know
        return False


def _add_to_system(messages: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    msgs = [dict(m) for m in messages]
    system = next((m for m in msgs if m.get("role") == "system"), None)
    if system is None:
        msgs.insert(0, {"role": "system", "content": text})
    else:
        system["content"] = f"{system['content']}\n\n{text}"
    return msgs


def show_example(messages: list[dict[str, Any]], example: Any) -> list[dict[str, Any]]:
    """``messages`` with the task's ``output.example`` shown in the system prompt."""
    if isinstance(example, str):
        return _add_to_system(messages, f"An example of the kind of answer wanted:\n{example}")
    shape = json.dumps(example, indent=2, ensure_ascii=False)
    return _add_to_system(
        messages, f"Answer with JSON shaped like this example (its values are illustrative):\n{shape}"
    )


def apply_schema(
    model: str,
    schema: dict[str, Any],
    name: str,
    messages: list[dict[str, Any]],
    params: dict[str, Any],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``messages`` and ``params`` asking ``model`` for JSON that matches ``schema``."""
    if supports_schema(model):
        schema_name = re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64] or "output"
        response_format = {
            "type": "json_schema",
            "json_schema": {"name": schema_name, "schema": schema, "strict": False},
        }
        return messages, {**params, "response_format": response_format}
    instruction = (
        "Answer with one JSON value only, no prose and no code fence, matching this JSON Schema:\n"
        + json.dumps(schema, indent=2)
    )
    return _add_to_system(messages, instruction), params
