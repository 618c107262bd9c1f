"""Colours that follow JupyterLab's theme: HTML takes Lab's CSS variables (with the light value as the
fallback outside Lab), and plotly, which cannot read CSS, a template chosen from the theme the user
picked in Lab's settings (``POP_PLOTLY_TEMPLATE`` overrides it), on a transparent background."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

# the colours of a job's states: strong enough to read on a light or a dark page
STATE = {
    "done": "#2e7d32",
    "running": "#1565c0",
    "failed": "#c62828",
    "skipped": "#9e9e9e",
    "pending": "#bdbdbd",
    "waiting": "#ef6c00",
    "cancelled": "#8d6e63",
}

# Lab's CSS variables, each with what it is in the light theme
TRACK = "var(--jp-layout-color3, #eee)"  # a progress bar's empty part
EMPTY = "var(--jp-layout-color1, #fafafa)"  # a square with nothing in it
GAP = "var(--jp-layout-color0, #fff)"  # the lines between squares: the page's own colour
MUTED = "var(--jp-ui-font-color2, #666)"  # secondary text
ERROR_BG = "var(--jp-rendermime-error-background, #fdd)"  # the failing cell's code


def state_fill(state: str) -> str:
    """A state's square: pending (or a state it does not know) is Lab's grey of the theme."""
    return "var(--jp-layout-color3, #e0e0e0)" if state == "pending" or state not in STATE else STATE[state]


_THEME = re.compile(r'"theme"\s*:\s*"([^"]+)"')


def lab_theme() -> str | None:
    """The theme picked in JupyterLab's settings (None: never changed, so Lab's default, light)."""
    folder = os.environ.get("JUPYTERLAB_SETTINGS_DIR")
    if not folder:
        from jupyter_core.paths import jupyter_config_dir

        folder = str(Path(jupyter_config_dir()) / "lab" / "user-settings")
    file = Path(folder) / "@jupyterlab" / "apputils-extension" / "themes.jupyterlab-settings"
    try:
        text = file.read_text(encoding="utf-8")[:100_000]
    except (OSError, UnicodeDecodeError):
        return None
    # the file is JSON5 (comments allowed): the one key is found without parsing the rest
    found = _THEME.search("\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//")))
    return found.group(1) if found else None


def plotly_template() -> str:
    """``POP_PLOTLY_TEMPLATE``, else ``plotly_dark`` under a dark Lab theme, else ``plotly_white``."""
    chosen = os.environ.get("POP_PLOTLY_TEMPLATE")
    if chosen:
        return chosen
    theme = lab_theme() or ""
    return "plotly_dark" if "dark" in theme.lower() else "plotly_white"


def themed(figure: Any, **layout: Any) -> Any:
    """``figure`` in the theme's template, its background the page's (transparent), plus ``layout``."""
    figure.update_layout(
        template=plotly_template(), paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)", **layout
    )
    return figure
