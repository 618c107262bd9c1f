"""What the commands share: settings read late (pydantic is half of ``pop --help``), seeds from the
command line."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pop_nb.errors import PopError

if TYPE_CHECKING:
    from pop_nb.config import PopSettings


def load_settings() -> PopSettings:
    """The settings, read when a command needs them (pydantic's import is half of ``pop --help``)."""
    from pop_nb.config import load_settings as load

    return load()


def parse_data(text: str | None) -> Any:
    from pop_nb.models.seed import loads_seed

    if not text:
        return {}
    try:
        return loads_seed(text, "--data")
    except PopError as exc:
        raise PopError(f'{exc}. Quote it for the shell, e.g. --data \'{{"topic": "x"}}\'') from None


def read_json(path: Path) -> dict[str, Any]:
    from pop_nb.models.seed import loads_seed

    try:
        value = loads_seed(path.read_bytes(), str(path))
    except FileNotFoundError:
        raise PopError(f"seed file {path} does not exist") from None
    if not isinstance(value, dict):
        raise PopError(f'{path} must hold a JSON object: {{"pipeline": "<slug>", "data": {{...}}}}')
    return value
