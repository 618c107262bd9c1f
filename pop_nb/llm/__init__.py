"""The LLM layer: every provider through litellm, priced, budgeted, replayable and logged.

litellm itself is imported on the first call (it takes seconds), never by ``import pop_nb.llm``.
"""

from pop_nb.llm.budget import Budget
from pop_nb.llm.client import Attribution, ChatResponse, chat
from pop_nb.llm.ledger import Ledger
from pop_nb.llm.selection import select_model

__all__ = ["Attribution", "Budget", "ChatResponse", "Ledger", "chat", "select_model"]
