"""The job functions: the one layer that decides job state and returns :mod:`pop_nb.models.api` models.

Every front end (the CLI, ``%pop``, ``pop_nb.run`` and ``Job``, the widgets, the Jupyter server, the
batch, the daemon and the Celery worker) calls these and only renders what they return. Reads live in
:mod:`.queries`, changes in :mod:`.actions`; the rules they apply in :mod:`pop_nb.models.lifecycle`.
Errors are :class:`~pop_nb.errors.PopError` subclasses; :func:`pop_nb.errors.http_status` and
:func:`pop_nb.errors.exit_code` map them in one table.
"""

from pop_nb.service.actions import (
    approve,
    archive,
    cancel,
    check_seed,
    create_job,
    delete,
    drop_seed,
    recover,
    reject,
    reset_for_resume,
    restore,
    resume_job,
    start_job,
    validate_seed,
)
from pop_nb.service.queries import (
    MAX_PAGE,
    activity,
    costs,
    get_job,
    index_of,
    list_jobs,
    overview,
    pipelines,
    summary,
)

__all__ = [
    "MAX_PAGE",
    "activity",
    "approve",
    "archive",
    "cancel",
    "check_seed",
    "costs",
    "create_job",
    "delete",
    "drop_seed",
    "get_job",
    "index_of",
    "list_jobs",
    "overview",
    "pipelines",
    "recover",
    "reject",
    "reset_for_resume",
    "restore",
    "resume_job",
    "start_job",
    "summary",
    "validate_seed",
]
