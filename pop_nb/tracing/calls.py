"""The span of one request to a model, built from its ``usage.jsonl`` row, so that the two always agree.

Attributes follow OpenTelemetry's GenAI semantic conventions (``gen_ai.*``), with pop-nb's exact cost
beside them (``pop.*``), and the names the backends read a cost from (``gen_ai.usage.cost``,
OpenInference's ``llm.*`` for Arize Phoenix, ``langfuse.observation.cost_details``), so that a backend
shows pop-nb's figure instead of pricing the call itself (and getting cached tokens or an unmapped
model wrong). Prompts and answers are added only when the
user opts in (``[otel] capture_content``); they are masked like everything written.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from pop_nb.models.records import UsageRow
from pop_nb.models.trace import SpanRecord
from pop_nb.tracing.spans import new_span_id, parse_traceparent

# litellm's provider names -> the GenAI conventions' gen_ai.provider.name (others are passed as they are)
_PROVIDERS = {
    "azure": "azure.ai.openai",
    "azure_ai": "azure.ai.inference",
    "bedrock": "aws.bedrock",
    "gemini": "gcp.gemini",
    "vertex_ai": "gcp.vertex_ai",
    "mistral": "mistral_ai",
    "xai": "x_ai",
    "watsonx": "ibm.watsonx.ai",
}
_REQUEST_PARAMS = {
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "max_tokens": "gen_ai.request.max_tokens",
    "seed": "gen_ai.request.seed",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
}
MAX_CONTENT_CHARS = 32_000  # per attribute: a span is a record, not an archive of the prompt


@dataclass
class CallDetail:
    """What a span says of a call beyond its usage row."""

    tries: int = 1  # which request of the call this is (2 and more: a retry)
    response_model: str | None = None
    response_id: str | None = None
    finish_reasons: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    messages: list[dict[str, Any]] | None = None  # set only when content is captured
    answer: str | None = None

    @classmethod
    def of_response(cls, raw: Any, tries: int) -> CallDetail:
        choices = getattr(raw, "choices", None) or []
        reasons = [str(c.finish_reason) for c in choices if getattr(c, "finish_reason", None)]
        return cls(
            tries=tries,
            response_model=getattr(raw, "model", None),
            response_id=getattr(raw, "id", None),
            finish_reasons=reasons,
        )


def call_span(
    row: UsageRow, parent: str, detail: CallDetail, started_ns: int | None = None
) -> SpanRecord | None:
    """The span of the request ``row`` records, under the stage span ``parent`` (a traceparent)."""
    ids = parse_traceparent(parent)
    if ids is None:
        return None
    end_ns = time.time_ns()
    start_ns = started_ns if started_ns is not None else end_ns - row.latency_ms * 1_000_000
    provider_name = _PROVIDERS.get(row.provider, row.provider)
    short = row.model.split("/", 1)[1] if row.model.startswith(f"{row.provider}/") else row.model
    total = row.input_tokens + row.output_tokens
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider_name,
        "gen_ai.request.model": short,
        "gen_ai.usage.input_tokens": row.input_tokens,
        "gen_ai.usage.output_tokens": row.output_tokens,
        "gen_ai.usage.cache_read.input_tokens": row.cached_tokens,
        "pop.model": row.model,
        "pop.cost_usd": row.cost_usd,
        "pop.cost_source": row.cost_source,
        "pop.cache_hit": row.cache_hit,
        "pop.saved_usd": row.saved_usd,
        "pop.request_hash": row.request_hash,
        "pop.attempt": row.attempt,
        "pop.refinement": row.refinement,
        "pop.try": detail.tries,
        "pop.retry": detail.tries > 1,
        "openinference.span.kind": "LLM",
        "llm.model_name": short,
        "llm.provider": provider_name,
        "llm.token_count.prompt": row.input_tokens,
        "llm.token_count.completion": row.output_tokens,
        "llm.token_count.total": total,
        "llm.token_count.prompt_details.cache_read": row.cached_tokens,
    }
    if row.cost_source != "unpriced":  # an unknown cost is left out, never sent as $0
        attributes["gen_ai.usage.cost"] = row.cost_usd  # what Langfuse and others read as the cost
        attributes["llm.cost.total"] = row.cost_usd  # OpenInference's (Phoenix)
        attributes["langfuse.observation.cost_details"] = json.dumps({"total": row.cost_usd})
    optional = {
        "gen_ai.response.model": detail.response_model,
        "gen_ai.response.id": detail.response_id,
        "gen_ai.response.finish_reasons": detail.finish_reasons or None,
        "pop.paid_by": row.paid_by,
        "pop.cache_key": row.cache_key,
        "error.type": row.error.split(":", 1)[0] if row.error else None,
    }
    attributes.update({k: v for k, v in optional.items() if v is not None})
    for param, name in _REQUEST_PARAMS.items():
        value = detail.params.get(param)
        if isinstance(value, int | float) and not isinstance(value, bool):
            attributes[name] = value
    if detail.messages is not None:
        attributes.update(_content(detail.messages, detail.answer, detail.finish_reasons))
    return SpanRecord(
        trace_id=ids[0],
        span_id=new_span_id(),
        parent_id=ids[1],
        name=f"chat {short}",
        kind="llm",
        start_ns=start_ns,
        end_ns=end_ns,
        status="ok" if row.ok else "error",
        status_message=row.error,
        job=row.job,
        task=row.task,
        stage=row.stage,
        attributes=attributes,
    )


def _content(messages: list[dict[str, Any]], answer: str | None, reasons: list[str]) -> dict[str, Any]:
    """The prompt and the answer, as the GenAI conventions (JSON of role and parts) and OpenInference
    (``input.value``, ``output.value``) write them."""
    asked = [
        {"role": str(m.get("role")), "parts": [{"type": "text", "content": _text(m.get("content"))}]}
        for m in messages
    ]
    out: dict[str, Any] = {
        "gen_ai.input.messages": _clip(json.dumps(asked, ensure_ascii=False)),
        "input.value": _clip(json.dumps(messages, ensure_ascii=False, default=str)),
        "input.mime_type": "application/json",
    }
    if answer is not None:
        said = [
            {
                "role": "assistant",
                "parts": [{"type": "text", "content": answer}],
                "finish_reason": reasons[0] if reasons else "stop",
            }
        ]
        out["gen_ai.output.messages"] = _clip(json.dumps(said, ensure_ascii=False))
        out["output.value"] = _clip(answer)
        out["output.mime_type"] = "text/plain"
    return out


def _text(content: Any) -> str:
    return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False, default=str)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_CONTENT_CHARS else text[:MAX_CONTENT_CHARS] + "...[clipped]"


__all__ = ["CallDetail", "call_span"]
