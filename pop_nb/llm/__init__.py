"""The LLM layer: every provider through litellm, priced and logged. litellm is imported on first call."""

from pop_nb.llm.client import Attribution, ChatResponse, chat

__all__ = ["Attribution", "ChatResponse", "chat"]
