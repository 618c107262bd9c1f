"""What a call cost: litellm's bundled price map (pinned with litellm), overridable per model in pop.toml."""

from __future__ import annotations

from typing import Any, Literal

from pop_nb.llm.mock import imitated_model

CostSource = Literal["provider", "price_map", "unpriced"]


def price_entry(model: str, overrides: dict[str, dict[str, float]] | None = None) -> dict[str, Any] | None:
    """The per-token prices for ``model`` (a pop.toml override wins), or ``None`` if unpriced."""
    import litellm

    if overrides and model in overrides:
        return dict(overrides[model])
    name = imitated_model(model) if model.startswith("mock/") else model
    for candidate in (name, name.split("/", 1)[-1]):
        entry = litellm.model_cost.get(candidate)
        if entry and ("input_cost_per_token" in entry or "output_cost_per_token" in entry):
            return dict(entry)
    return None


def cost_of(
    model: str,
    input_tokens: int,
    output_tokens: int,
    cached_tokens: int = 0,
    overrides: dict[str, dict[str, float]] | None = None,
) -> tuple[float, CostSource]:
    """USD for one call; cached input tokens are priced at the cached rate when the model has one."""
    entry = price_entry(model, overrides)
    if entry is None:
        return 0.0, "unpriced"
    in_rate = float(entry.get("input_cost_per_token") or 0.0)
    out_rate = float(entry.get("output_cost_per_token") or 0.0)
    cached_rate = entry.get("cache_read_input_token_cost")
    cached_rate = in_rate if cached_rate is None else float(cached_rate)
    fresh = max(input_tokens - cached_tokens, 0)
    return fresh * in_rate + cached_tokens * cached_rate + output_tokens * out_rate, "price_map"
