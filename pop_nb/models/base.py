"""The base of every pydantic model of pop-nb."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """A pydantic model whose validator is built on its first use, not when its module is imported.

    A process uses a few of the forty models (``pop status`` reads a JobStatus and nothing else), and
    building them all took ~100 ms of every command's start. Subclasses add to ``model_config`` as usual.
    """

    model_config = ConfigDict(defer_build=True)
