from __future__ import annotations

from collections.abc import Iterator

import pytest

from pop_nb.testing.provider_server import ProviderServer

CANARY = "sk-canary-0f9e8d7c6b5a49382716"


@pytest.fixture
def server() -> Iterator[ProviderServer]:
    with ProviderServer() as srv:
        yield srv


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> str:
    """Every provider key set to the canary; it must never be written anywhere."""
    for name in ("OPENAI_API_KEY", "DEEPSEEK_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.setenv(name, CANARY)
    return CANARY
