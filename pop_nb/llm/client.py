"""``chat()``: one LLM call through litellm, attributed, answered from the ledger when it was already
paid for, held to the budget, retried by error class, falling back along an expert's candidates, priced
and logged.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from pop_nb.errors import (
    REFUSAL_ERRORS,
    TRANSIENT_ERRORS,
    LLMError,
    MockScriptError,
    ProviderError,
    ReplayMiss,
    TransientLLMError,
)
from pop_nb.llm.budget import Budget, check_budget, estimate_cost
from pop_nb.llm.cache import DEFAULT_MODE, Policy, cache_key, cacheable, deterministic, key_fields, new_entry
from pop_nb.llm.ledger import Ledger
from pop_nb.llm.limits import call_slot
from pop_nb.llm.pricing import cost_of
from pop_nb.llm.providers import load_litellm
from pop_nb.models.pipeline import CacheMode, LLMSettings
from pop_nb.models.records import UsageRow
from pop_nb.redaction import redact
from pop_nb.tracing.calls import CallDetail, call_span
from pop_nb.tracing.spans import write_span

# Keys of LLMSettings that steer pop-nb itself and are never sent as completion parameters.
OWN_KEYS = frozenset({"model", "max_retries", "retry_base_s", "max_concurrent_calls", "cache", "sample"})
_FENCE = re.compile(r"^```[a-zA-Z0-9_-]*\s*\n(.*?)\n```\s*$", re.DOTALL)
MAX_BACKOFF_S = 30.0
_sleep = time.sleep  # the one place retries wait; tests record it


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
    trace: str | None = None  # the stage span's traceparent: each request's span goes under it
    capture_content: bool = False  # put the prompt and the answer on the span


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
    cached_tokens: int = 0
    cache_hit: bool = False
    saved_usd: float = 0.0
    raw: Any = field(default=None, repr=False)

    def __str__(self) -> str:
        return self.content

    def json(self) -> Any:
        """The content parsed as JSON (a surrounding Markdown code fence is ignored, and so are raw line
        breaks and tabs inside strings, which models write where JSON wants escapes)."""
        text = self.content.strip()
        match = _FENCE.match(text)
        return json.loads(match.group(1) if match else text, strict=False)


def normalize_messages(messages: str | list[dict[str, Any]], system: str | None) -> list[dict[str, Any]]:
    msgs = [{"role": "user", "content": messages}] if isinstance(messages, str) else list(messages)
    if system and not any(m.get("role") == "system" for m in msgs):
        msgs.insert(0, {"role": "system", "content": system})
    return msgs


def request_hash(model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> str:
    """What the call asks, hashed without where it was asked: the cache key of a deterministic request."""
    return cache_key(key_fields(provider_of(model), model, messages, _asked(model, params), None))


def _asked(model: str, params: dict[str, Any]) -> dict[str, Any]:
    """What decides the answer among the request's fields: not our providers' own fields (how to reach
    them), but what the model's provider of ours says of them (``key_of``: the mock's script content)."""
    from pop_nb.llm.registry import own_params, own_provider

    hidden = own_params()
    asked = {k: v for k, v in params.items() if k not in hidden}
    try:
        own = own_provider(model)
    except ProviderError:  # declared but broken: a call says so (``_call_model``); a hash need not
        own = None
    if own is not None and own.key_of is not None:
        asked["pop_provider_state"] = own.key_of(params)
    return asked


def provider_of(model: str) -> str:
    return model.split("/", 1)[0] if "/" in model else "openai"


@dataclass
class _Call:
    """One ``chat()`` invocation's fixed parts, shared by each model it tries."""

    messages: list[dict[str, Any]]
    params: dict[str, Any]
    who: Attribution
    ledger: Ledger | None
    prices: dict[str, dict[str, float]] | None
    budget: Budget
    cache: CacheMode
    repeat: int
    max_attempts: int
    base_s: float
    concurrency: int | dict[str, int] | None


def chat(
    messages: str | list[dict[str, Any]],
    *,
    model: str | None = None,
    settings: LLMSettings | None = None,
    default_model: str = "openai/gpt-4o-mini",
    system: str | None = None,
    attribution: Attribution | None = None,
    ledger: Ledger | None = None,
    price_overrides: dict[str, dict[str, float]] | None = None,
    budget: Budget | None = None,
    fallbacks: list[str] | tuple[str, ...] = (),
    cache: CacheMode | None = None,
    **params: Any,
) -> ChatResponse:
    """Send ``messages`` to the resolved model and log the call in ``ledger``.

    Model: ``model`` argument > ``settings.model`` (already resolved by the runner: task > seed > expert >
    pipeline) > ``default_model``. Any litellm completion keyword may come from ``settings`` or ``params``.
    If the model refuses for good (auth, content policy, unknown model, context window, retries used
    up), each of ``fallbacks`` is tried in turn. ``cache``: the response cache's mode (default: the
    settings', else ``auto``; see :mod:`pop_nb.llm.cache`).
    """
    settings = settings or LLMSettings()
    extra = {**settings.model_dump(exclude_none=True), **params}
    chosen = settings.model_for(model or params.get("model"), default_model)
    send = {k: v for k, v in extra.items() if k not in OWN_KEYS}
    call = _Call(
        messages=normalize_messages(messages, system),
        params=send,
        who=attribution or Attribution(),
        ledger=ledger,
        prices=price_overrides,
        budget=budget or Budget(),
        cache=cache or settings.cache or DEFAULT_MODE,
        repeat=int(extra.get("sample") or 0),
        max_attempts=int(extra.get("max_retries", 3)) + 1,
        base_s=float(extra.get("retry_base_s", 1.0)),
        concurrency=extra.get("max_concurrent_calls"),
    )
    chain = [chosen, *(m for m in fallbacks if m != chosen)]
    for position, candidate in enumerate(chain):
        try:
            return _call_model(call, candidate)
        except LLMError as exc:
            if exc.error_type not in REFUSAL_ERRORS or position == len(chain) - 1:
                raise
    raise AssertionError("unreachable")


def _call_model(call: _Call, model: str) -> ChatResponse:
    from pop_nb.llm.registry import own_params, own_provider

    own = own_provider(model)  # a provider of ours that is declared but broken says so, with the fix
    foreign = own_params() - (own.own_params if own is not None else frozenset())  # e.g. mock_responses
    provider = provider_of(model)
    asked = _asked(model, call.params)
    digest = cache_key(key_fields(provider, model, call.messages, asked, None))
    held = _Held.of(call, model, provider, asked, digest, positional=own is not None and own.positional)
    if held is not None:
        assert call.ledger is not None
        entry = call.ledger.find(held.key, held.policy)
        if entry is not None:
            return _replay(call, model, provider, digest, held.key, entry)
        if not held.policy.sends:
            error = ReplayMiss(model, call.who.pipeline, call.who.task, call.who.stage, held.key)
            _log(
                call,
                provider,
                model,
                digest,
                time.monotonic(),
                CallDetail(),
                ok=False,
                error=f"{type(error).__name__}: {error}",  # the ledger names what refused it
                cache_key=held.key,
            )
            raise error
    if call.budget.active and call.ledger is not None:
        estimate = estimate_cost(model, call.messages, call.params, call.prices)
        check_budget(call.budget, call.ledger, call.who.job or "interactive", call.who.task, estimate)
    litellm = load_litellm()
    limit = call.concurrency.get(provider) if isinstance(call.concurrency, dict) else call.concurrency
    slots = call.ledger.job_dir / "llm" / "slots" if call.ledger is not None else None
    for attempt in range(1, call.max_attempts + 1):
        started = time.monotonic()
        try:
            # a routed provider of ours names the OpenAI-compatible server to send it to (started now)
            target = own.route(model) if own is not None and own.route is not None else {"model": model}
            with call_slot(slots, provider, limit):
                raw = litellm.completion(
                    messages=call.messages,
                    metadata={"pop": asdict(call.who)},
                    max_retries=0,  # the provider SDK's own retries would hide attempts from the ledger
                    **{**{k: v for k, v in call.params.items() if k not in foreign}, **target},
                )
        except Exception as exc:
            script_error = _cause(exc, MockScriptError)
            if script_error is not None:  # litellm wraps provider errors; a script gap is not transient
                raise script_error from None
            ours = _cause(exc, ProviderError)
            if isinstance(ours, ProviderError):
                name, transient, message = ours.error_type, ours.transient, f"{ours.error_type}: {ours}"
            else:
                name = type(exc).__name__
                transient, message = name in TRANSIENT_ERRORS, f"{name}: {exc}"
            message = redact(message)[:2000]
            _log(call, provider, model, digest, started, CallDetail(tries=attempt), ok=False, error=message)
            if not transient:
                raise LLMError(name, f"{model}: {message}") from None
            if attempt == call.max_attempts:
                raise TransientLLMError(name, f"{model}: {message} (after {attempt} attempts)") from None
            _sleep(backoff_s(exc, attempt, call.base_s))
            continue
        return _settle(call, model, provider, digest, started, raw, held, attempt)
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class _Held:
    """Where one call's answer is looked for and kept: its cache key and what its mode allows."""

    key: str
    fields: dict[str, Any]
    policy: Policy

    @classmethod
    def of(
        cls, call: _Call, model: str, provider: str, asked: dict[str, Any], digest: str, positional: bool
    ) -> _Held | None:
        if call.ledger is None or call.cache == "off":
            return None
        fixed = deterministic(asked) and not positional  # a positional provider answers by place
        who = call.who
        sample = (
            None if fixed else call.ledger.sample(digest, who.task, who.stage, who.refinement, call.repeat)
        )
        fields = key_fields(provider, model, call.messages, asked, sample)
        return cls(cache_key(fields), fields, Policy(call.cache, deterministic=fixed))


def _settle(
    call: _Call,
    model: str,
    provider: str,
    digest: str,
    started: float,
    raw: Any,
    held: _Held | None,
    tries: int,
) -> ChatResponse:
    """Price a successful answer, keep it in the cache (unless it must not be), log it."""
    latency = int((time.monotonic() - started) * 1000)
    usage = getattr(raw, "usage", None)
    input_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
    output_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
    details = getattr(usage, "prompt_tokens_details", None)
    cached = int(getattr(details, "cached_tokens", 0) or 0) if details else 0
    written = int(getattr(details, "cache_creation_tokens", 0) or 0) if details else 0
    reported = (getattr(raw, "_hidden_params", None) or {}).get("pop_provider_cost_usd")
    if reported is not None:  # the provider said what it charged (claude-code): that is the truth
        cost, source = float(reported), "provider"
    else:
        cost, source = cost_of(model, input_tokens, output_tokens, cached, written, call.prices)
    content = raw.choices[0].message.content or ""
    response = ChatResponse(
        content=content,
        model=model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=cost,
        cost_source=source,
        latency_ms=latency,
        request_hash=digest,
        cached_tokens=cached,
        raw=raw,
    )
    kept = held is not None and cacheable(raw, call.params) is None
    if kept:
        assert held is not None and call.ledger is not None
        answer = {k: v for k, v in asdict(response).items() if k not in ("raw", "cache_hit", "saved_usd")}
        answer["raw"] = raw.model_dump() if hasattr(raw, "model_dump") else None
        who = call.who
        paid_by = {"job": who.job, "pipeline": who.pipeline, "task": who.task, "stage": who.stage}
        call.ledger.keep(new_entry(held.key, held.fields, answer, paid_by), held.policy)
    detail = CallDetail.of_response(raw, tries)
    detail.answer = content
    _log(
        call,
        provider,
        model,
        digest,
        started,
        detail,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cached_tokens=cached,
        cost_usd=cost,
        cost_source=source,
        cache_key=held.key if kept and held is not None else None,
    )
    return response


def _replay(
    call: _Call, model: str, provider: str, digest: str, key: str, entry: dict[str, Any]
) -> ChatResponse:
    """Answer from the cache: the same request was paid for before (by this job or, as the mode allows,
    another one). Logged at $0 with what it saved and who paid."""
    started = time.monotonic()
    stored = entry.get("response") or {}
    raw: Any = stored.get("raw")
    if raw is not None:
        # a stored shape this litellm cannot rebuild stays a dict, which still carries it all
        with contextlib.suppress(Exception):
            raw = load_litellm().ModelResponse(**raw)
    saved = float(stored.get("cost_usd") or 0.0)
    payer = (entry.get("paid_by") or {}).get("job")
    replayed = CallDetail.of_response(raw, 1)
    replayed.answer = str(stored.get("content") or "")
    _log(
        call,
        provider,
        model,
        digest,
        started,
        replayed,
        cost_source="cache",
        cache_hit=True,
        saved_usd=saved,
        paid_by=payer,
        cache_key=key,
    )
    return ChatResponse(
        content=str(stored.get("content") or ""),
        model=model,
        input_tokens=int(stored.get("input_tokens") or 0),
        output_tokens=int(stored.get("output_tokens") or 0),
        cost_usd=0.0,
        cost_source="cache",
        latency_ms=0,
        request_hash=digest,
        cached_tokens=int(stored.get("cached_tokens") or 0),
        cache_hit=True,
        saved_usd=saved,
        raw=raw,
    )


def _cause(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return None
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def backoff_s(exc: Exception, attempt: int, base_s: float) -> float:
    """Exponential backoff with full jitter; a provider's Retry-After wins when it is longer."""
    delay = random.uniform(0, min(base_s * 2 ** (attempt - 1), MAX_BACKOFF_S))
    retry_after = _retry_after(exc)
    return delay if retry_after is None else max(delay, min(retry_after, 10 * MAX_BACKOFF_S))


def _retry_after(exc: Exception) -> float | None:
    """Seconds from a Retry-After header: litellm keeps the provider's headers in one of two places."""
    response = getattr(exc, "response", None)
    for headers in (getattr(exc, "litellm_response_headers", None), getattr(response, "headers", None)):
        value = headers.get("retry-after") if headers is not None and hasattr(headers, "get") else None
        if value:
            try:
                return float(value)
            except ValueError:  # an HTTP date: rare from LLM providers; fall back to our backoff
                return None
    return None


def _log(
    call: _Call, provider: str, model: str, digest: str, started: float, detail: CallDetail, **fields: Any
) -> None:
    """Write the request's ``usage.jsonl`` row and, in a job's stage, its span, built from that row."""
    if call.ledger is None:
        return
    who = call.who
    elapsed = time.monotonic() - started
    row = UsageRow(
        job=who.job,
        pipeline=who.pipeline,
        task=who.task,
        stage=who.stage,
        attempt=who.attempt,
        refinement=who.refinement,
        provider=provider,
        model=model,
        latency_ms=int(elapsed * 1000),
        request_hash=digest,
        **fields,
    )
    call.ledger.record(row)
    if who.trace is not None:
        detail.params = call.params
        if not who.capture_content:
            detail.messages, detail.answer = None, None
        else:
            detail.messages = call.messages
        span = call_span(row, who.trace, detail, started_ns=time.time_ns() - int(elapsed * 1e9))
        if span is not None:
            write_span(call.ledger.job_dir, span)
