"""What a call cost: litellm's bundled price map (pinned with litellm), overridable per model in pop.toml.

Cached input tokens are priced at the model's cache-read rate, cache writes at its cache-creation rate,
and a prompt past a long-context threshold (``..._above_200k_tokens``) at that tier's rates.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any, Literal

from pop_nb.llm.providers import load_litellm
from pop_nb.llm.registry import own_provider

CostSource = Literal["provider", "price_map", "local", "unpriced"]
_TIER = re.compile(r"^input_cost_per_token_above_(\d+)k_tokens$")


def pricing_name(model: str) -> str:
    """The model whose prices apply: a model of an imitating provider of ours costs what the model it
    imitates costs (``mock/openai/gpt-4o-mini`` -> ``gpt-4o-mini``)."""
    provider = own_provider(model)
    if provider is None or provider.pricing != "imitated":
        return model
    return model.split("/", 1)[1].rsplit("/", 1)[-1]


def is_local(model: str) -> bool:
    """A model that runs on this machine: it costs nothing and needs no price."""
    provider = own_provider(model)
    return provider is not None and provider.pricing == "local"


def needs_price(model: str) -> bool:
    """Whether ``model`` is priced from the price map (a provider that reports its cost, or a local
    one, needs no entry there)."""
    provider = own_provider(model)
    return provider is None or provider.pricing == "imitated"


def price_map() -> dict[str, Any]:
    """litellm's price map: its own (the one its cost code uses) once litellm is imported, else the same
    pinned file read directly, so that ``pop compile`` and the CLI get prices without litellm's
    seconds-long import."""
    if "litellm" in sys.modules:
        prices: dict[str, Any] = load_litellm().model_cost
        return prices
    return _bundled_price_map()


@functools.cache
def _bundled_price_map() -> dict[str, Any]:
    spec = importlib.util.find_spec("litellm")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return dict(load_litellm().model_cost)
    path = Path(next(iter(spec.submodule_search_locations))) / "model_prices_and_context_window_backup.json"
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):  # a litellm without the bundled file: ask litellm itself
        return dict(load_litellm().model_cost)


def price_entry(model: str, overrides: dict[str, dict[str, float]] | None = None) -> dict[str, Any] | None:
    """The per-token prices for ``model`` (a pop.toml override wins), or ``None`` if unpriced."""
    if overrides and model in overrides:
        return dict(overrides[model])
    if is_local(model):
        return {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0}
    prices = price_map()
    name = pricing_name(model)
    for candidate in (name, name.split("/", 1)[-1]):
        entry = prices.get(candidate)
        if entry and ("input_cost_per_token" in entry or "output_cost_per_token" in entry):
            return dict(entry)
    return None


def _rates(entry: dict[str, Any], prompt_tokens: int) -> dict[str, float]:
    """The entry's base rates, or the highest long-context tier the prompt reaches."""
    thresholds = sorted(int(m.group(1)) for key in entry if (m := _TIER.match(key)))
    reached = [t for t in thresholds if prompt_tokens > t * 1000]
    suffix = f"_above_{reached[-1]}k_tokens" if reached else ""

    def rate(name: str, fallback: float) -> float:
        value = entry.get(name + suffix, entry.get(name))
        return float(fallback if value is None else value)

    fresh = rate("input_cost_per_token", 0.0)
    return {
        "input": fresh,
        "output": rate("output_cost_per_token", 0.0),
        "cache_read": rate("cache_read_input_token_cost", fresh),
        "cache_write": rate("cache_creation_input_token_cost", fresh),
    }


def cost_of(
    model: str,
    input_tokens: int,
    output_tokens: int,
    cached_tokens: int = 0,
    cache_write_tokens: int = 0,
    overrides: dict[str, dict[str, float]] | None = None,
) -> tuple[float, CostSource]:
    """USD for one call. ``input_tokens`` counts every prompt token, cached and cache-written included."""
    if is_local(model) and not (overrides and model in overrides):
        return 0.0, "local"
    entry = price_entry(model, overrides)
    if entry is None:
        return 0.0, "unpriced"
    rates = _rates(entry, input_tokens)
    fresh = max(input_tokens - cached_tokens - cache_write_tokens, 0)
    cost = (
        fresh * rates["input"]
        + cached_tokens * rates["cache_read"]
        + cache_write_tokens * rates["cache_write"]
        + output_tokens * rates["output"]
    )
    return cost, "price_map"


def blended_price(model: str, overrides: dict[str, dict[str, float]] | None = None) -> float | None:
    """USD per token for a typical mix of three input tokens to one output token; ``None`` if unpriced."""
    entry = price_entry(model, overrides)
    if entry is None:
        return None
    rates = _rates(entry, 0)
    return (3 * rates["input"] + rates["output"]) / 4
