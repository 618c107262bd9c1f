"""The LLM layer: every provider through litellm, priced, budgeted, replayable and logged.

litellm itself is imported on the first call (it takes seconds), never by ``import pop_nb.llm``; the
names below load on first use, so a module that needs only one of them pays for nothing else.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pop_nb.llm.budget import Budget
    from pop_nb.llm.client import Attribution, ChatResponse, chat
    from pop_nb.llm.ledger import Ledger
    from pop_nb.llm.selection import select_model

__all__ = ["Attribution", "Budget", "ChatResponse", "Ledger", "chat", "select_model"]

_HOME = {
    "Attribution": "client",
    "Budget": "budget",
    "ChatResponse": "client",
    "Ledger": "ledger",
    "chat": "client",
    "select_model": "selection",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'pop_nb.llm' has no attribute {name!r}")
    return getattr(importlib.import_module(f"pop_nb.llm.{_HOME[name]}"), name)
