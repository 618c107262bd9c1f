"""pop-nb: notebook-native prompt orchestration pipelines.

``pop_nb.run("content-generation", data={...})`` runs a pipeline from a notebook cell and returns a
:class:`Job`; ``pop_nb.batch("content-generation", data=[{...}, ...])`` runs it
over many seeds. Task notebooks use ``from pop_nb import task as pop``. Heavy modules load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pop_nb import _lean

_lean.defer_grammar()  # a process that imports pop-nb never builds jsonschema's IRI grammar unasked

__version__ = "0.1.0"
__all__ = [
    "Job",
    "PopError",
    "__version__",
    "batch",
    "dashboard",
    "experiment",
    "load_ipython_extension",
    "run",
]

if TYPE_CHECKING:
    from pop_nb.errors import PopError
    from pop_nb.jobs import Job, batch, experiment, run
    from pop_nb.widgets.dashboard import dashboard


def __getattr__(name: str) -> Any:
    if name in ("Job", "run", "batch", "experiment"):
        from pop_nb import jobs

        return getattr(jobs, name)
    if name == "dashboard":
        from pop_nb.widgets.dashboard import dashboard

        return dashboard
    if name == "PopError":
        from pop_nb.errors import PopError

        return PopError
    raise AttributeError(f"module 'pop_nb' has no attribute {name!r}")


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """The Jupyter server extension (``/pop/api``), enabled by ``jupyter_server_config.d/pop_nb.json``."""
    from pop_nb.server.app import PopExtension

    return [{"module": "pop_nb.server.app", "app": PopExtension}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """The prebuilt JupyterLab extension (built from ``extension/`` into ``pop_nb/labextension``)."""
    return [{"src": "labextension", "dest": "pop-nb"}]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext pop_nb``: registers the ``%pop`` magic."""
    from pop_nb.magics import load_ipython_extension as load

    load(ipython)
