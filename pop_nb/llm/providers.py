"""The one way pop-nb imports litellm, with our own providers (``mock/``, ``claude-code/``) registered."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any


def load_litellm() -> Any:
    """litellm, imported lazily (it takes seconds) and offline: its bundled price map, never the network."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_LOG", "ERROR")
    import litellm

    if not getattr(litellm, "_pop_ready", False):
        litellm.suppress_debug_info = True
        register_all(litellm)
        litellm._pop_ready = True
    return litellm


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
