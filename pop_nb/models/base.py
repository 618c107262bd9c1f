"""The base of every pydantic model of pop-nb."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """A pydantic model whose validator is built on its first use, not when its module is imported.

    A process uses a few of the forty models (``pop status`` reads a JobStatus and nothing else), and
    building them all took ~100 ms of every command's start. Subclasses add to ``model_config`` as usual.
    """

    # what is always written (a field with a default too) is required in the JSON Schema of what we
    # write: the OpenAPI document, and the TypeScript types generated from it, say so
    model_config = ConfigDict(defer_build=True, json_schema_serialization_defaults_required=True)


def build_models() -> None:
    """Build the validator of every model imported so far. A process that forks workers (the kernel
    server) calls this once, so that no worker builds them again: a job's runner used ~10 ms on it."""
    pending: list[type[BaseModel]] = [Model]
    while pending:
        for cls in pending.pop().__subclasses__():
            pending.append(cls)
            if not cls.__pydantic_complete__:
                cls.model_rebuild(raise_errors=False)
