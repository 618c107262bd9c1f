"""The drop-folder daemon: ``pop orchestrate``. Seeds dropped in ``pending/`` become jobs in ``current/``
(or land in ``rejected/`` with the reason); each job gets one runner process; file moves tell how it ended."""

from pop_nb.orchestrator.daemon import Orchestrator
from pop_nb.orchestrator.intake import Intake, submit_seed

__all__ = ["Intake", "Orchestrator", "submit_seed"]
