"""Our own litellm providers (``mock/``, ``claude-code/``), registered in litellm's custom provider map."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def add_custom_provider(litellm_module: Any, name: str, make_handler: Callable[[], Any]) -> None:
    """Add a provider to litellm's custom provider map, once per process."""
    providers = litellm_module.custom_provider_map or []
    if not any(p.get("provider") == name for p in providers):
        litellm_module.custom_provider_map = [
            *providers,
            {"provider": name, "custom_handler": make_handler()},
        ]
        from litellm.utils import custom_llm_setup

        custom_llm_setup()


def register_all(litellm_module: Any) -> None:
    from pop_nb.llm import claude_code, mock

    mock.register(litellm_module)
    claude_code.register(litellm_module)
