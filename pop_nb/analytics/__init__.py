"""DuckDB over the job folders' logs. ``connect()`` gives a connection with the views defined;
``costs()`` answers "what did it cost, by pipeline / task / stage / model / day / job"."""

from pop_nb.analytics.costs import GROUPINGS, costs
from pop_nb.analytics.views import connect

__all__ = ["GROUPINGS", "connect", "costs"]
