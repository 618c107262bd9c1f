"""Keys live in the environment only; anything we write passes through :func:`redact` first."""

from __future__ import annotations

import os
import re

_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)$", re.IGNORECASE)
_MIN_LENGTH = 8


def secret_values() -> list[str]:
    """Values of environment variables whose names say they are secrets, longest first."""
    values = {v for k, v in os.environ.items() if _SECRET_NAME.search(k) and len(v) >= _MIN_LENGTH}
    return sorted(values, key=len, reverse=True)


def redact(text: str) -> str:
    """``text`` with every configured secret value replaced by ``[REDACTED]``."""
    for value in secret_values():
        if value in text:
            text = text.replace(value, "[REDACTED]")
    return text
