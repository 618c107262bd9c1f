"""What the LLM calls cost, grouped the way whoever pays the bill asks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pop_nb.analytics.views import connect

GROUPINGS: dict[str, str] = {
    "pipeline": "pipeline",
    "task": "pipeline || '/' || task",
    "stage": "pipeline || '/' || task || '/' || stage",
    "model": "model",
    "day": "strftime(ts, '%Y-%m-%d')",
    "job": "job",
}


def costs(data_dir: Path | str, by: str = "pipeline") -> list[dict[str, Any]]:
    """One row per group, most expensive first: calls, attempts, tokens, cost, cache hits and savings,
    and how many calls were unpriced (their cost is unknown, not zero)."""
    if by not in GROUPINGS:
        raise ValueError(f"cannot group costs by {by!r}; use one of {', '.join(GROUPINGS)}")
    con = connect(data_dir)
    query = f"""
        SELECT coalesce({GROUPINGS[by]}, '(none)') AS key,
               count(*) FILTER (WHERE ok) AS calls,
               count(*) AS attempts,
               coalesce(sum(input_tokens), 0) AS input_tokens,
               coalesce(sum(output_tokens), 0) AS output_tokens,
               coalesce(sum(cached_tokens), 0) AS cached_tokens,
               coalesce(sum(cost_usd), 0) AS cost_usd,
               count(*) FILTER (WHERE cache_hit) AS cache_hits,
               coalesce(sum(saved_usd), 0) AS saved_usd,
               count(*) FILTER (WHERE cost_source = 'unpriced') AS unpriced_calls
        FROM llm_calls GROUP BY 1 ORDER BY cost_usd DESC, key
    """
    cursor = con.execute(query)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
