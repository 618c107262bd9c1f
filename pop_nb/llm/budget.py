"""Budgets: a call that could push the job (or its task) past ``budget_usd`` is refused before it is sent.

The estimate is the prompt's token count at the model's input price plus, at its output price,
``max_tokens`` if the call sets it, else as many output tokens as the prompt has (at least 256, at most
the model's output limit). Spent is what ``usage.jsonl`` says so far.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pop_nb.errors import BudgetExceeded
from pop_nb.llm.ledger import Ledger
from pop_nb.llm.pricing import price_entry, pricing_name
from pop_nb.llm.providers import load_litellm

MIN_OUTPUT_ESTIMATE = 256


@dataclass(frozen=True)
class Budget:
    job_usd: float | None = None
    task_usd: float | None = None

    @property
    def active(self) -> bool:
        return self.job_usd is not None or self.task_usd is not None


def estimate_cost(
    model: str,
    messages: list[dict[str, Any]],
    params: dict[str, Any],
    overrides: dict[str, dict[str, float]] | None = None,
) -> float:
    """Upper-end USD estimate of one call before it is sent (0.0 for an unpriced model)."""
    entry = price_entry(model, overrides)
    if entry is None:
        return 0.0
    litellm = load_litellm()

    name = pricing_name(model)
    try:
        prompt = int(litellm.token_counter(model=name, messages=messages))
    except Exception:  # an unknown tokenizer: about four characters a token
        prompt = sum(len(str(m.get("content", ""))) for m in messages) // 4 + 1
    limit = params.get("max_tokens") or params.get("max_completion_tokens")
    if limit:
        output = int(limit)
    else:
        output = max(prompt, MIN_OUTPUT_ESTIMATE)
        ceiling = entry.get("max_output_tokens")
        if isinstance(ceiling, int) and ceiling > 0:
            output = min(output, ceiling)
    return prompt * float(entry.get("input_cost_per_token") or 0.0) + output * float(
        entry.get("output_cost_per_token") or 0.0
    )


def check_budget(budget: Budget, ledger: Ledger, job: str, task: str | None, estimate: float) -> None:
    """Raise :class:`BudgetExceeded` if spending ``estimate`` more would pass a limit."""
    if budget.job_usd is not None:
        spent = ledger.spent()
        if spent + estimate > budget.job_usd:
            raise BudgetExceeded("job", job, task, spent, estimate, budget.job_usd)
    if budget.task_usd is not None and task is not None:
        spent = ledger.spent(task)
        if spent + estimate > budget.task_usd:
            raise BudgetExceeded("task", job, task, spent, estimate, budget.task_usd)
