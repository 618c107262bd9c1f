"""Choosing among an expert's candidate models: ``selection: cost | performance | balanced``.

- ``cost``: the cheapest candidate (a blend of three input tokens to one output token, from the price map).
- ``performance``: the highest score (``model_scores`` in the pipeline or pop.toml); unscored candidates
  come after scored ones, in the order listed.
- ``balanced``: the cheapest candidate scoring within 10% of the best score; with no scores at all, the
  first candidate listed (the author's order is the only judgement there is).

Candidates the task cannot use are filtered out first, each with its reason: no key in the environment,
no structured output when the task's settings ask for ``response_format``, no tool calling when they
pass ``tools``, no price when selecting by cost. The ranked remainder is also the fallback chain.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal

from pop_nb.errors import NoSuitableModel
from pop_nb.llm.pricing import blended_price, pricing_name
from pop_nb.llm.providers import load_litellm
from pop_nb.llm.structured import supports_schema

Selection = Literal["cost", "performance", "balanced"]
BALANCED_MARGIN = 0.9


@dataclass
class Choice:
    model: str
    ranked: list[str]
    reason: str
    rejected: dict[str, str] = field(default_factory=dict)


def unsuitable_because(
    model: str, needs: dict[str, Any], selection: Selection, price: float | None
) -> str | None:
    from pop_nb.llm.registry import own_provider

    litellm = load_litellm()
    own = own_provider(model)
    if own is not None and (missing_env := [k for k in own.key_env if not os.environ.get(k)]):
        return f"no key in the environment ({', '.join(missing_env)})"
    if own is None and not needs.get("api_base"):
        env = litellm.validate_environment(model=model)
        if not env.get("keys_in_environment", True):
            missing = ", ".join(env.get("missing_keys") or []) or "its API key"
            return f"no key in the environment ({missing})"
    name = pricing_name(model)
    if needs.get("response_format") and not supports_schema(model):
        return "no structured output (response_format)"
    if needs.get("tools") and not _supports(litellm.supports_function_calling, name):
        return "no tool calling (tools)"
    if selection == "cost" and price is None:
        return "no price in the price map or pop.toml, so it cannot be ranked by cost"
    return None


def _supports(check: Any, model: str) -> bool:
    try:
        return bool(check(model=model))
    except Exception:
        return False


def select_model(
    role: str,
    candidates: list[str],
    selection: Selection,
    scores: dict[str, float],
    needs: dict[str, Any],
    prices: dict[str, dict[str, float]] | None = None,
) -> Choice:
    """Rank ``candidates`` for a task; raise :class:`NoSuitableModel` if none is usable."""
    price = {m: blended_price(m, prices) for m in candidates}
    rejected: dict[str, str] = {}
    usable: list[str] = []
    for model in candidates:
        why = unsuitable_because(model, needs, selection, price[model])
        if why:
            rejected[model] = why
        else:
            usable.append(model)
    if not usable:
        raise NoSuitableModel(role, rejected)

    order = {m: i for i, m in enumerate(candidates)}
    inf = float("inf")

    def by_cost(m: str) -> tuple[float, int]:
        cost = price[m]
        return (inf if cost is None else cost, order[m])

    def by_score(m: str) -> tuple[float, int]:
        return (-scores[m] if m in scores else inf, order[m])

    scored = [m for m in usable if m in scores]
    if selection == "cost":
        ranked = sorted(usable, key=by_cost)
        reason = f"cost: cheapest usable candidate (${_per_million(price[ranked[0]])}/M tokens blended)"
    elif selection == "performance":
        ranked = sorted(usable, key=by_score)
        reason = (
            f"performance: highest score ({scores[ranked[0]]:g})"
            if ranked[0] in scores
            else "performance: no candidate has a score (model_scores); first usable candidate listed"
        )
    elif scored:
        best = max(scores[m] for m in scored)
        good = sorted((m for m in scored if scores[m] >= BALANCED_MARGIN * best), key=by_cost)
        rest = sorted((m for m in usable if m not in good), key=by_score)
        ranked = good + rest
        reason = (
            f"balanced: cheapest candidate scoring within 10% of the best ({scores[ranked[0]]:g} vs "
            f"{best:g}; ${_per_million(price[ranked[0]])}/M tokens blended)"
        )
    else:
        ranked = usable
        reason = "balanced: no candidate has a score (model_scores); first usable candidate listed"
    return Choice(model=ranked[0], ranked=ranked, reason=reason, rejected=rejected)


def _per_million(price: float | None) -> str:
    return "?" if price is None else f"{price * 1_000_000:.4g}"
