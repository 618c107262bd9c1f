"""``chat()``: one LLM call through litellm, attributed, priced, retried by error class, and logged."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pop_nb.errors import TRANSIENT_ERRORS, LLMError, MockScriptError, TransientLLMError
from pop_nb.llm.pricing import cost_of
from pop_nb.llm.secrets import redact
from pop_nb.models.pipeline import LLMSettings
from pop_nb.models.records import UsageRow
from pop_nb.store.atomic import append_jsonl

# Keys of LLMSettings that steer pop-nb itself and are never sent as completion parameters.
_OWN_KEYS = frozenset({"model", "max_retries", "retry_base_s"})
# Sent to the provider but not part of what the request *means* (excluded from the request hash).
_UNHASHED = frozenset({"mock_responses", "metadata", "timeout"})
_FENCE = re.compile(r"^```[a-zA-Z0-9_-]*\s*\n(.*?)\n```\s*$", re.DOTALL)


@dataclass
class Attribution:
    """Who made the call: written on its usage row and handed to the mock provider."""

    job: str | None = None
    pipeline: str | None = None
    task: str | None = None
    stage: str | None = None
    attempt: int = 1
    refinement: int = 0
    call_index: int = 0


@dataclass
class ChatResponse:
    """The answer of one call. ``str(response)`` is the text; ``raw`` is litellm's ``ModelResponse``."""

    content: str
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    cost_source: str
    latency_ms: int
    request_hash: str
    raw: Any = field(default=None, repr=False)

    def __str__(self) -> str:
        return self.content

    def json(self) -> Any:
        """The content parsed as JSON (a surrounding Markdown code fence is ignored)."""
        text = self.content.strip()
        match = _FENCE.match(text)
        return json.loads(match.group(1) if match else text)


def _ensure_litellm() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_LOG", "ERROR")
    import litellm

    from pop_nb.llm import mock

    litellm.suppress_debug_info = True
    mock.register(litellm)
    return litellm


def normalize_messages(messages: str | list[dict[str, Any]], system: str | None) -> list[dict[str, Any]]:
    msgs = [{"role": "user", "content": messages}] if isinstance(messages, str) else list(messages)
    if system and not any(m.get("role") == "system" for m in msgs):
        msgs.insert(0, {"role": "system", "content": system})
    return msgs


def request_hash(model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> str:
    meaningful = {k: v for k, v in params.items() if k not in _UNHASHED}
    blob = json.dumps(
        {"model": model, "messages": messages, "params": meaningful}, sort_keys=True, default=str
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def chat(
    messages: str | list[dict[str, Any]],
    *,
    model: str | None = None,
    settings: LLMSettings | None = None,
    default_model: str = "openai/gpt-4o-mini",
    system: str | None = None,
    attribution: Attribution | None = None,
    usage_file: Path | None = None,
    price_overrides: dict[str, dict[str, float]] | None = None,
    **params: Any,
) -> ChatResponse:
    """Send ``messages`` to the resolved model and log the call to ``usage_file``.

    Model: ``model`` argument > ``settings.model`` (task > seed > pipeline, merged by the caller) >
    ``default_model``. Any litellm completion keyword may come from ``settings`` or ``params``.
    """
    settings = settings or LLMSettings()
    extra = settings.model_dump(exclude_none=True)
    chosen = model or extra.get("model") or default_model
    send = {k: v for k, v in extra.items() if k not in _OWN_KEYS}
    send.update(params)
    msgs = normalize_messages(messages, system)
    who = attribution or Attribution()
    digest = request_hash(chosen, msgs, send)
    max_attempts = int(extra.get("max_retries", 3)) + 1
    base_s = float(extra.get("retry_base_s", 1.0))
    litellm = _ensure_litellm()
    provider = chosen.split("/", 1)[0] if "/" in chosen else "openai"

    for attempt in range(1, max_attempts + 1):
        started = time.monotonic()
        try:
            raw = litellm.completion(model=chosen, messages=msgs, metadata={"pop": who.__dict__}, **send)
        except Exception as exc:
            script_error = _cause(exc, MockScriptError)
            if script_error is not None:  # litellm wraps provider errors; a script gap is not transient
                raise script_error from None
            latency = int((time.monotonic() - started) * 1000)
            transient = type(exc).__name__ in TRANSIENT_ERRORS
            message = redact(f"{type(exc).__name__}: {exc}")[:2000]
            _log(usage_file, who, provider, chosen, digest, latency, ok=False, error=message)
            if not transient:
                raise LLMError(type(exc).__name__, f"{chosen}: {message}") from None
            if attempt == max_attempts:
                raise TransientLLMError(type(exc).__name__, f"{chosen}: {message}") from None
            time.sleep(_backoff(exc, attempt, base_s))
            continue
        latency = int((time.monotonic() - started) * 1000)
        usage = getattr(raw, "usage", None)
        input_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        output_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        details = getattr(usage, "prompt_tokens_details", None)
        cached = int(getattr(details, "cached_tokens", 0) or 0) if details else 0
        cost, source = cost_of(chosen, input_tokens, output_tokens, cached, price_overrides)
        content = raw.choices[0].message.content or ""
        _log(
            usage_file,
            who,
            provider,
            chosen,
            digest,
            latency,
            ok=True,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cached_tokens=cached,
            cost_usd=cost,
            cost_source=source,
        )
        return ChatResponse(
            content=content,
            model=chosen,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_usd=cost,
            cost_source=source,
            latency_ms=latency,
            request_hash=digest,
            raw=raw,
        )
    raise AssertionError("unreachable")


def _cause(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return None
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _backoff(exc: Exception, attempt: int, base_s: float) -> float:
    """Exponential backoff with full jitter; a provider's Retry-After wins when it is longer."""
    delay = random.uniform(0, min(base_s * 2 ** (attempt - 1), 30.0))
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    retry_after = headers.get("retry-after") if hasattr(headers, "get") else None
    if retry_after:
        try:
            delay = max(delay, float(retry_after))
        except ValueError:
            pass
    return delay


def _log(
    usage_file: Path | None,
    who: Attribution,
    provider: str,
    model: str,
    digest: str,
    latency: int,
    **fields: Any,
) -> None:
    if usage_file is None:
        return
    append_jsonl(
        usage_file,
        UsageRow(
            job=who.job,
            pipeline=who.pipeline,
            task=who.task,
            stage=who.stage,
            attempt=who.attempt,
            refinement=who.refinement,
            provider=provider,
            model=model,
            latency_ms=latency,
            request_hash=digest,
            **fields,
        ),
    )
