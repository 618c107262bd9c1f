"""``pipelines/<slug>/tests.jsonl``: prompt regression tests, one seed a line with what its job must give.

A line is a seed (``data``, and optionally ``name``, ``llm``, ``config``, ``budget_usd``) plus ``id`` and
``expect``, a list of checks, each one of:

- ``{"state": "done"}``: the job's state (without one, ``done`` is expected);
- ``{"path": "classify.category", "equals": "hardware"}``: the value at a dotted path into the job's
  outputs (the first part names the task, the rest a key in its output; an index for a list);
- ``{"path": ..., "contains": "jam"}``: a text holds it, or a list has it as an item;
- ``{"path": ..., "regex": "^(low|high)$"}``: a text matches (``re.search``);
- ``{"path": ..., "min": 1, "max": 5}``: a number within bounds (either may be left out);
- ``{"path": ..., "schema": {...}}``: the value is valid against a JSON Schema (inline, or a file
  relative to the pipeline's folder); without ``path``, the whole outputs object;
- ``{"notebook": "checks/reply.ipynb"}``: a parameterized notebook papermill runs on the finished job
  (parameters ``job_dir``, ``outputs``, ``data``) in a fresh kernel; an exception in it fails the test.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ConfigDict, Field, model_validator

from pop_nb.models.base import Model
from pop_nb.models.pipeline import LLMSettings

VALUE_CHECKS = ("equals", "contains", "regex", "bounds", "schema")


class Expect(Model):
    model_config = ConfigDict(extra="forbid")

    path: str | None = Field(default=None, description="<task>[.<key>...] into the job's outputs")
    equals: Any = None
    contains: Any = None
    regex: str | None = None
    min: float | None = None
    max: float | None = None
    schema_: dict[str, Any] | str | None = Field(default=None, alias="schema")
    state: str | None = None
    notebook: str | None = None

    @property
    def kind(self) -> str:
        given = self.model_fields_set - {"path"}
        if given & {"min", "max"}:
            return "bounds"
        return "schema" if "schema_" in given else next(iter(given))

    @model_validator(mode="after")
    def _one_check(self) -> Expect:
        given = {"bounds" if k in ("min", "max") else k for k in self.model_fields_set - {"path"}}
        given = {"schema" if k == "schema_" else k for k in given}
        if len(given) != 1:
            shown = ", ".join(sorted(given)) or "none"
            raise ValueError(
                "each expect entry makes one check: equals, contains, regex, min/max, schema, state or "
                f"notebook (this one has {shown})"
            )
        if given & {"equals", "contains", "regex", "bounds"} and not self.path:
            raise ValueError(f'a {given.pop()} check needs a path, e.g. "path": "classify.category"')
        if given & {"state", "notebook"} and self.path:
            raise ValueError(f"a {given.pop()} check takes no path")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"regex {self.regex!r} is not a regular expression: {exc}") from None
        return self

    def describe(self) -> str:
        """The check as a reader writes it: ``classify.category equals 'hardware'``."""
        kind = self.kind
        if kind == "state":
            return f"state is {self.state!r}"
        if kind == "notebook":
            return f"check notebook {self.notebook}"
        where = self.path or "outputs"
        if kind == "bounds":
            low = "-inf" if self.min is None else f"{self.min:g}"
            high = "inf" if self.max is None else f"{self.max:g}"
            return f"{where} within [{low}, {high}]"
        if kind == "schema":
            return f"{where} matches its schema" + (
                f" {self.schema_}" if isinstance(self.schema_, str) else ""
            )
        return f"{where} {kind} {getattr(self, kind)!r}"


class PromptTest(Model):
    """One line of ``tests.jsonl``."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, description="Names the test in reports (default: name, else line n)")
    name: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    llm: LLMSettings | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    budget_usd: float | None = Field(default=None, ge=0)
    expect: list[Expect] = Field(default_factory=list)

    def seed(self, slug: str, cache: str) -> dict[str, Any]:
        """The seed its job runs on, its calls in cache mode ``cache``."""
        seed = self.model_dump(exclude={"id", "expect"}, exclude_none=True, by_alias=True)
        return {"pipeline": slug, **seed, "llm": {**seed.get("llm", {}), "cache": cache}}

    @property
    def checks(self) -> list[Expect]:
        """Its checks; ``state: done`` first unless it says which state it expects."""
        if any(e.kind == "state" for e in self.expect):
            return list(self.expect)
        return [Expect(state="done"), *self.expect]
