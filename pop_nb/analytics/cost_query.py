"""The query behind ``pop costs``: LLM use summed per grouping (pipeline, task, stage, model, day, job)
over the ``call_totals`` view. Plain SQL text, so the CLI, the snapshot's rollup and the notebooks'
:func:`~pop_nb.analytics.costs.costs` ask the same question."""

from __future__ import annotations

GROUPINGS: dict[str, str] = {
    "pipeline": "pipeline",
    "task": "pipeline || '/' || task",
    "stage": "pipeline || '/' || task || '/' || stage",
    "model": "model",
    "day": "day",
    "job": "job",
}


# The columns of `pop costs` after ``key``, in order: sums over call_totals (money rounded to 1e-9 USD).
COLUMNS = (
    "calls",
    "attempts",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cost_usd",
    "cache_hits",
    "saved_usd",
    "unpriced_calls",
)
MONEY = ("cost_usd", "saved_usd")


def costs_sql(by: str, where: str = "") -> str:
    """The query itself (``Analytics.query`` runs it without pandas, for the CLI); ``where`` narrows
    the calls it sums (the snapshot's rollup: its own jobs)."""
    if by not in GROUPINGS:
        raise ValueError(f"cannot group costs by {by!r}; use one of {', '.join(GROUPINGS)}")
    sums = ", ".join(
        f"round(sum({c}), 9) AS {c}" if c in MONEY else f"sum({c})::BIGINT AS {c}" for c in COLUMNS
    )
    return f"""
        SELECT coalesce({GROUPINGS[by]}, '(none)') AS key, {sums}
        FROM call_totals {where} GROUP BY 1 ORDER BY cost_usd DESC, key
    """
