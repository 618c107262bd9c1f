"""Where jobs come from and where they run. The drop-folder daemon (``pop orchestrate``): seeds dropped in
``pending/`` become jobs in ``current/`` (or land in ``rejected/`` with the reason); file moves tell how
each ended. ``batch``: one pipeline over many seeds. ``executors``: local runner processes, or Celery
workers (``celery_app``, ``worker``: ``pop worker``) on machines sharing the data folder."""

from pop_nb.orchestrator.daemon import Orchestrator
from pop_nb.orchestrator.intake import Intake
from pop_nb.store.pending import submit_seed

__all__ = ["Intake", "Orchestrator", "submit_seed"]
