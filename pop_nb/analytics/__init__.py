"""DuckDB over the job folders' logs: tables ``jobs``, ``tasks``, ``stages``, ``llm_calls``, ``events``,
``runs`` (see :mod:`pop_nb.analytics.store`), and the questions users ask of them."""

from pop_nb.analytics.cost_query import GROUPINGS
from pop_nb.analytics.costs import costs, outcome_rates, stage_durations
from pop_nb.analytics.store import Analytics, connect

__all__ = ["GROUPINGS", "Analytics", "connect", "costs", "outcome_rates", "stage_durations"]
