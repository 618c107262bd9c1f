"""A real Jupyter server (pytest-jupyter) with the pop_nb extension, serving a throwaway project.

pytest-jupyter's fixtures and hooks are imported here rather than loaded as a plugin for the whole run:
its autouse fixtures (an event loop and a server clean-up per test) belong to these tests only.
"""

from __future__ import annotations

import pytest
from pytest_jupyter.jupyter_core import *  # noqa: F403  (fixtures and the async test hooks)
from pytest_jupyter.jupyter_server import *  # noqa: F403


@pytest.fixture
def jp_server_config() -> dict[str, object]:
    return {"ServerApp": {"jpserver_extensions": {"pop_nb": True}}, "PopExtension": {"heartbeat_s": 0.5}}
