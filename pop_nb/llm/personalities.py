"""Personalities: system prompts named by file (``pipelines/personalities/<name>.md``,
``~/.pop/personalities/<name>.md``) or given inline."""

from __future__ import annotations

import re
from pathlib import Path

DEFAULT_PERSONALITY = "standard"
_BUILTIN = {
    "standard": "You are a careful, precise assistant. Follow the instructions exactly and answer concisely.",
}
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def personality_dirs(pipelines_root: Path) -> list[Path]:
    return [pipelines_root / "personalities", Path.home() / ".pop" / "personalities"]


def is_name(value: str) -> bool:
    """A bare word is a personality name; anything else (spaces, newlines) is inline text."""
    return bool(_NAME_RE.fullmatch(value))


def resolve_personality(value: str | None, pipelines_root: Path) -> str | None:
    """The system prompt for ``value``; ``None`` if it names a personality that does not exist."""
    value = value or DEFAULT_PERSONALITY
    if not is_name(value):
        return value
    for folder in personality_dirs(pipelines_root):
        file = folder / f"{value}.md"
        if file.is_file():
            return file.read_text(encoding="utf-8").strip()
    return _BUILTIN.get(value)
