"""Keys live in the environment only; anything we write passes through :func:`redact` first.

A secret is the value of an environment variable whose name ends in KEY, TOKEN, SECRET or PASSWORD
(``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``, ``HF_TOKEN``, ...), at least 8 characters long.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, TextIO

_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)$", re.IGNORECASE)
_MIN_LENGTH = 8
MASK = "[REDACTED]"


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def secret_values() -> list[str]:
    """Values of environment variables whose names say they are secrets, longest first."""
    values = {v for k, v in os.environ.items() if is_secret_name(k) and len(v) >= _MIN_LENGTH}
    return sorted(values, key=len, reverse=True)


def mask(text: str, values: list[str]) -> str:
    """``text`` with each of ``values`` (longest first) replaced by ``[REDACTED]``."""
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    return text


def redact(text: str) -> str:
    """``text`` with every configured secret value replaced by ``[REDACTED]``."""
    return mask(text, secret_values())


def redact_tree(node: Any, values: list[str] | None = None) -> Any:
    """Redact every string inside a JSON-like tree (a notebook), in place where it can; returns it."""
    values = secret_values() if values is None else values
    if not values:
        return node
    if isinstance(node, str):
        return mask(node, values)
    if isinstance(node, dict):
        for key in list(node):
            node[key] = redact_tree(node[key], values)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            node[i] = redact_tree(item, values)
    return node


class RedactingWriter:
    """A text stream that redacts what is written to it (a stage's log file)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._values = secret_values()

    def write(self, text: str) -> int:
        return self._stream.write(mask(text, self._values))

    def flush(self) -> None:
        self._stream.flush()


def load_dotenv_file(root: Path) -> None:
    """Load ``<root>/.env`` into the environment (never overriding what is already set), so the
    runner's kernels and litellm find keys kept there."""
    path = root / ".env"
    if path.is_file():
        from dotenv import load_dotenv

        load_dotenv(path, override=False)
