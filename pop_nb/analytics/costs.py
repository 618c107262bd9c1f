"""What users ask of the logs: cost, tokens, cache savings, durations, failure and refinement rates.

Each helper returns a pandas ``DataFrame`` (straight from DuckDB), so it shows as a table in a notebook;
money is rounded to 1e-9 USD, so sums of float prices do not show as ``0.0027134999999999998``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

from pop_nb.analytics.cost_query import costs_sql
from pop_nb.analytics.store import Analytics, connect


def _analytics(source: Analytics | Path | str) -> Analytics:
    return source if isinstance(source, Analytics) else connect(source)


def costs(source: Analytics | Path | str, by: str = "pipeline") -> pd.DataFrame:
    """One row per group, most expensive first: calls (answered), attempts (every request, failed ones
    too), tokens, cost, cache hits and savings, and how many calls were unpriced (their cost is unknown,
    not zero)."""
    return _analytics(source).frame(costs_sql(by))


def stage_durations(source: Analytics | Path | str) -> pd.DataFrame:
    """Per pipeline, task and stage: runs, median and 95th-percentile wall time, time in cells."""
    return _analytics(source).frame("""
        SELECT pipeline, task, stage, count(*) AS runs,
               median(duration_ms) AS median_ms, quantile_cont(duration_ms, 0.95) AS p95_ms,
               median(cells_ms) AS median_cells_ms
        FROM stages WHERE state = 'done' GROUP BY ALL ORDER BY pipeline, task, min(run)
    """)


def outcome_rates(source: Analytics | Path | str) -> pd.DataFrame:
    """Per pipeline: jobs, how many ended done / failed, failure rate, refinement rate of its tasks."""
    return _analytics(source).frame("""
        WITH j AS (
            SELECT pipeline, count(*) AS jobs,
                   count(*) FILTER (WHERE state = 'done') AS done,
                   count(*) FILTER (WHERE state IN ('failed', 'cancelled')) AS failed,
                   round(sum(cost_usd), 9) AS cost_usd
            FROM jobs GROUP BY pipeline),
        t AS (
            SELECT pipeline, avg((refinements > 0)::INTEGER) AS refinement_rate,
                   avg(refinements) AS mean_refinements
            FROM tasks WHERE state = 'done' GROUP BY pipeline)
        SELECT j.*, round(j.failed / j.jobs, 4) AS failure_rate,
               coalesce(t.refinement_rate, 0) AS refinement_rate,
               coalesce(t.mean_refinements, 0) AS mean_refinements
        FROM j LEFT JOIN t USING (pipeline) ORDER BY j.jobs DESC, j.pipeline
    """)
