"""The one way pop-nb imports litellm, with our own providers (:mod:`pop_nb.llm.registry`) added to it."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def load_litellm() -> Any:
    """litellm, imported lazily (it takes seconds) and offline: its bundled price map, never the network."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_LOG", "ERROR")
    import litellm

    if not getattr(litellm, "_pop_ready", False):
        from pop_nb.compat.litellm import check

        check(litellm)  # what pop-nb touches inside it is there, or a named error now
        litellm.suppress_debug_info = True
        register_all(litellm)
        litellm._pop_ready = True
    return litellm


def warm_up(litellm: Any) -> None:
    """Do once, offline, what the first call in every process would do on its critical path: load the
    two OpenAI tokenizers (o200k, cl100k), the modules litellm imports at its first completion, and
    its cost code (litellm's own ``mock_response``: no provider, no network, no usage row); then the
    path of every OpenAI-protocol provider (OpenAI's SDK, its response types, an HTTP transport).

    For a kernel fork server, which must not fork with threads running: litellm's first call starts
    its logging thread pool, so the pool is stopped afterwards and set back to its unstarted state
    (it starts a thread again at the next call, in whichever process makes it).
    """
    messages = [{"role": "user", "content": "warm-up"}]
    for model in ("gpt-4o-mini", "gpt-3.5-turbo"):
        litellm.token_counter(model=model, messages=messages)
    response = litellm.completion(model="openai/gpt-4o-mini", messages=messages, mock_response="ok")
    litellm.completion_cost(response)
    # a warm-up must never keep the kernel server from starting (SSL_CERT_FILE naming no file makes every
    # HTTP transport fail): then a stage's first call goes down that path, and says what is wrong
    with contextlib.suppress(Exception):
        _warm_openai_protocol(litellm, messages)
    from pop_nb.compat.litellm import reset_logging_pool

    reset_logging_pool()


# An OpenAI chat completion, as a provider answers one.
_WARM_UP_ANSWER = {
    "id": "warm-up",
    "object": "chat.completion",
    "created": 0,
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


def _warm_openai_protocol(litellm: Any, messages: list[dict[str, str]]) -> None:
    """One chat through litellm's OpenAI path, answered in memory (httpx's MockTransport: no socket, no
    name lookup). A stage's first call to OpenAI or any OpenAI-compatible server otherwise imports the
    SDK's resources and types, httpcore and HTTP/2 (580 modules) and builds the answer's types: 0.5 s
    of every such stage, 0.37 s once here."""
    import httpx
    import openai

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=_WARM_UP_ANSWER)

    transport = httpx.MockTransport(answer)
    with openai.OpenAI(
        api_key="warm-up", base_url="http://warm-up.invalid/v1", max_retries=0,
        http_client=httpx.Client(transport=transport, trust_env=False),
    ) as client:  # fmt: skip
        answered = litellm.completion(model="openai/gpt-4o-mini", messages=messages, client=client)
    litellm.completion_cost(answered)
    httpx.HTTPTransport().close()  # what litellm's own clients are made with: imports httpcore


@dataclass
class Answer:
    """What one of our providers answered, and what it cost when the provider says so itself."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float | None = None  # set: logged as cost_source "provider", not from the price map


@dataclass
class Request:
    """One call as a provider of ours sees it."""

    model: str  # without the provider prefix
    messages: list[dict[str, Any]]
    params: dict[str, Any]  # litellm's optional_params: the call's extra keywords
    pop: dict[str, Any]  # the Attribution (job, task, stage, refinement, call_index)
    timeout: float | None


def custom_handler(provider: str, answer: Callable[[Request], Answer]) -> Any:
    """A litellm ``CustomLLM`` for ``<provider>/<model>`` that answers with ``answer``."""
    from litellm.llms.custom_llm import CustomLLM
    from litellm.types.utils import ModelResponse, Usage

    class Handler(CustomLLM):
        def completion(  # type: ignore[override]  # litellm calls it with these keywords
            self,
            model: str,
            messages: list[dict[str, Any]],
            api_base: Any,
            custom_prompt_dict: Any,
            model_response: ModelResponse,
            print_verbose: Any,
            encoding: Any,
            api_key: Any,
            logging_obj: Any,
            optional_params: dict[str, Any],
            litellm_params: dict[str, Any] | None = None,
            timeout: Any = None,
            **kwargs: Any,
        ) -> ModelResponse:
            meta = ((litellm_params or {}).get("metadata") or {}).get("pop") or {}
            limit = float(timeout) if isinstance(timeout, (int, float)) else None
            got = answer(Request(model, messages, optional_params, meta, limit))
            model_response.choices[0].message.content = got.text
            model_response.model = f"{provider}/{model}"
            details = {"cached_tokens": got.cached_tokens, "cache_creation_tokens": got.cache_write_tokens}
            model_response.usage = Usage(  # type: ignore[attr-defined]
                prompt_tokens=got.prompt_tokens,
                completion_tokens=got.completion_tokens,
                total_tokens=got.prompt_tokens + got.completion_tokens,
                prompt_tokens_details=details,
            )
            if got.cost_usd is not None:
                model_response._hidden_params["pop_provider_cost_usd"] = got.cost_usd
            return model_response

    return Handler()


def add_custom_provider(litellm_module: Any, name: str, make_handler: Callable[[], Any]) -> None:
    """Add a provider to litellm's custom provider map, once per process."""
    providers = litellm_module.custom_provider_map or []
    if not any(p.get("provider") == name for p in providers):
        litellm_module.custom_provider_map = [
            *providers,
            {"provider": name, "custom_handler": make_handler()},
        ]
        from litellm.utils import custom_llm_setup

        custom_llm_setup()


def register_all(litellm_module: Any) -> None:
    """Add every provider of ours (:func:`pop_nb.llm.registry.own_providers`) to litellm."""
    from pop_nb.llm.registry import own_providers

    for provider in own_providers().values():
        if provider.answer is None:
            continue  # routed: litellm reaches it as the OpenAI-compatible server it names
        add_custom_provider(
            litellm_module, provider.name, functools.partial(custom_handler, provider.name, provider.answer)
        )
