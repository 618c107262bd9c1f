"""ipywidgets views: the live job widget (what ``pop_nb.run`` shows in a cell) and the dashboard."""

from pop_nb.widgets.job import JobWidget, render_job

__all__ = ["JobWidget", "render_job"]
