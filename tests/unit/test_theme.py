"""Charts follow the theme picked in JupyterLab's settings: a JSON5 file the kernel reads from the same
place Lab writes it; the environment overrides it; nothing picked is Lab's default, light."""

from __future__ import annotations

from pathlib import Path

import pytest

from pop_nb.widgets.theme import lab_theme, plotly_template, state_fill, themed

FILE = "@jupyterlab/apputils-extension/themes.jupyterlab-settings"


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("JUPYTERLAB_SETTINGS_DIR", str(tmp_path))
    monkeypatch.delenv("POP_PLOTLY_TEMPLATE", raising=False)
    (tmp_path / FILE).parent.mkdir(parents=True)
    return tmp_path / FILE


def test_the_template_follows_the_theme_picked_in_lab(
    settings: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert lab_theme() is None and plotly_template() == "plotly_white"  # never changed: light
    # what Lab writes: JSON5, with comments, one of them naming another theme
    settings.write_text('{\n    // "theme": "JupyterLab Light",\n    "theme": "JupyterLab Dark"\n}\n')
    assert lab_theme() == "JupyterLab Dark" and plotly_template() == "plotly_dark"
    settings.write_text('{"theme": "JupyterLab Light", "theme-scrollbars": false}')
    assert plotly_template() == "plotly_white"
    settings.write_bytes(b"\xff\xfe not text")  # unreadable: the default, never an error in a dashboard
    assert lab_theme() is None
    monkeypatch.setenv("POP_PLOTLY_TEMPLATE", "ggplot2")
    assert plotly_template() == "ggplot2"


def test_a_themed_figure_is_transparent_on_the_page(settings: Path) -> None:
    import plotly.graph_objects as go
    import plotly.io as pio

    settings.write_text('{"theme": "JupyterLab Dark"}')
    figure = themed(go.Figure(go.Bar(x=[1], y=[2])), height=200)
    assert figure.layout.paper_bgcolor == "rgba(0,0,0,0)" and figure.layout.height == 200
    assert figure.layout.template.layout.font.color == pio.templates["plotly_dark"].layout.font.color


def test_a_pending_square_takes_labs_grey_and_the_others_their_state() -> None:
    assert state_fill("pending").startswith("var(--jp-layout-color3")
    assert state_fill("done") == "#2e7d32" and state_fill("nonsense") == state_fill("pending")
