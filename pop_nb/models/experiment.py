"""``experiments/<name>.yaml`` (or ``pipelines/<slug>/experiments/<name>.yaml``): a pipeline run over a
dataset once per variant, scored, and compared against a baseline.

::

    pipeline: ticket-triage
    dataset: tickets.jsonl          # one line an item: {"id"?, "data": {...}, "expected"?: {...}}
    baseline: mini
    repeat: 1
    variants:
      mini: {model: mock/gpt-4o-mini}
      big:  {model: mock/gpt-4o, llm: {temperature: 0}}
    grid:                            # or: every combination of these dimensions, named a+b
      model: {mini: {model: mock/gpt-4o-mini}, big: {model: mock/gpt-4o}}
      tone: {plain: {config: {reply: {tone: plain}}}, warm: {config: {reply: {tone: warm}}}}
    scorers:
      - {name: category, kind: exact, path: classify.category}          # expected.category
      - {name: apology, kind: contains, path: reply.text, value: sorry}
      - {name: severity, kind: tolerance, path: classify.score, tolerance: 0.1}
      - {name: shape, kind: schema, path: classify, schema: schemas/classify.json}

A variant sets what a seed may: the model of every call (``model``), ``llm`` settings, task
``config``, and per task (``tasks:``) a notebook run in its place, its own llm settings and personality::

    variants:
      reworded: {tasks: {classify: {notebook: classify-reworded.ipynb, llm: {model: mock/gpt-4o}}}}
 Its jobs are the items x repeats, each an ordinary job with cache mode ``read-write`` and the
repeat as ``llm.sample``, so running again pays for nothing already answered.
"""

from __future__ import annotations

import itertools
from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from pop_nb.models.base import Model
from pop_nb.models.pipeline import SLUG_PATTERN, LLMSettings
from pop_nb.models.seed import TaskOverride

VARIANT_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$"


class _Strict(Model):
    model_config = ConfigDict(extra="forbid")


class Variant(_Strict):
    model: str | None = Field(default=None, description="The model of every call (a seed's llm.model).")
    llm: LLMSettings | None = None
    config: dict[str, Any] = Field(default_factory=dict, description="Task config, keyed by task.")
    tasks: dict[str, TaskOverride] = Field(
        default_factory=dict,
        description="Per task: a notebook run in its place (relative to the experiment's file), its "
        "llm settings (its model), its personality",
    )

    def merged(self, other: Variant) -> Variant:
        """``other`` over this one (a grid's dimensions, left to right)."""
        llm = (self.llm or LLMSettings()).merged(other.llm) if other.llm else self.llm
        config = {k: {**self.config.get(k, {}), **v} for k, v in other.config.items()}
        tasks = dict(self.tasks)
        for name, change in other.tasks.items():
            mine = tasks.get(name) or TaskOverride()
            both = (mine.llm or LLMSettings()).merged(change.llm) if change.llm else mine.llm
            tasks[name] = TaskOverride(
                notebook=change.notebook or mine.notebook,
                llm=both,
                personality=change.personality or mine.personality,
            )
        return Variant(
            model=other.model or self.model, llm=llm, config={**self.config, **config}, tasks=tasks
        )

    def models(self) -> list[tuple[str, str]]:
        """``(key, model)`` of each model it names."""
        named = [("model", self.model)] if self.model else []
        named += [("llm.model", self.llm.model)] if self.llm and self.llm.model else []
        for task, change in self.tasks.items():
            if change.llm and change.llm.model:
                named.append((f"tasks.{task}.llm.model", change.llm.model))
        return named

    def seed_llm(self) -> dict[str, Any]:
        llm = self.llm.model_dump(exclude_none=True) if self.llm else {}
        return {**llm, **({"model": self.model} if self.model else {})}


ScorerKind = Literal["exact", "contains", "tolerance", "schema", "judge", "notebook"]


class Scorer(_Strict):
    """A built-in scorer: 1.0 when the item's output passes, 0.0 when not (None: it could not score).

    ``judge`` asks a model to grade the output against a ``rubric`` on a 1..``scale`` scale (the score is
    ``(grade - 1) / (scale - 1)``); its calls are priced and logged under the experiment, and its grades
    kept, so comparing again asks nothing until the scorer, its files or the output change.

    ``notebook`` runs a notebook per job (papermill, a fresh kernel), given ``job_dir``, ``item``,
    ``variant``, ``outputs`` and ``expected`` as parameters; what it records with ``pop.metric`` are its
    scores (kept like a judge's grades; a notebook that raises leaves the item unscored).
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    kind: ScorerKind
    path: str = Field(default="", description="<task>[.<key>...] into the job's outputs (not: notebook)")
    expected: str | None = Field(
        default=None, description="A dotted key into the item's expected values (default: the name)."
    )
    value: Any = Field(default=None, description="contains: what the output must hold (else expected)")
    tolerance: float = Field(default=0.0, ge=0, description="tolerance: how far from expected may be")
    schema_: dict[str, Any] | str | None = Field(default=None, alias="schema")
    rubric: str | None = Field(default=None, description="judge: what a good output is, for the model")
    model: str | None = Field(default=None, description="judge: the grading model (else the pipeline's)")
    llm: LLMSettings | None = Field(default=None, description="judge: settings of its calls")
    scale: int = Field(default=5, ge=2, le=100, description="judge: grades run from 1 to this")
    notebook: str | None = Field(default=None, description="notebook: its file, relative to the experiment")

    @model_validator(mode="after")
    def _needs(self) -> Scorer:
        if self.kind == "schema" and self.schema_ is None:
            raise ValueError(f"scorer {self.name}: kind schema needs a schema (inline, or a file)")
        if self.kind == "judge" and not (self.rubric or "").strip():
            raise ValueError(f"scorer {self.name}: kind judge needs a rubric (what a good output is)")
        if (self.kind == "notebook") != (self.notebook is not None):
            raise ValueError(f"scorer {self.name}: notebook: is for kind notebook, which needs it")
        if self.kind != "notebook" and not self.path:
            raise ValueError(f"scorer {self.name}: kind {self.kind} needs a path (<task>[.<key>...])")
        return self


class ExperimentSpec(_Strict):
    pipeline: str = Field(pattern=SLUG_PATTERN)
    dataset: str = Field(description="JSON Lines, relative to this file: {id?, data, expected?} a line")
    variants: dict[str, Variant] = Field(default_factory=dict)
    grid: dict[str, dict[str, Variant]] = Field(default_factory=dict)
    baseline: str | None = None
    repeat: int = Field(default=1, ge=1, le=100)
    scorers: list[Scorer] = Field(default_factory=list)

    @model_validator(mode="after")
    def _variants_named(self) -> ExperimentSpec:
        import re

        names = list(self.all_variants())
        if not names:
            raise ValueError("an experiment needs variants: (or a grid:) to compare")
        bad = [n for n in names if not re.fullmatch(VARIANT_NAME, n)]
        if bad:
            raise ValueError(f"variant names {bad} may use letters, digits and _ . + - (64 at most)")
        if self.baseline is not None and self.baseline not in names:
            from pop_nb.errors import did_you_mean

            raise ValueError(
                f"baseline {self.baseline!r} is not a variant{did_you_mean(self.baseline, names)}"
            )
        seen = [s.name for s in self.scorers]
        if len(seen) != len(set(seen)):
            raise ValueError("two scorers have the same name")
        return self

    def all_variants(self) -> dict[str, Variant]:
        """``variants`` and every combination of the ``grid``'s dimensions (``a+b``), in order."""
        found = dict(self.variants)
        if self.grid:
            dimensions = [list(values.items()) for values in self.grid.values()]
            for combination in itertools.product(*dimensions):
                variant = Variant()
                for _, part in combination:
                    variant = variant.merged(part)
                found["+".join(name for name, _ in combination)] = variant
        return found

    @property
    def baseline_name(self) -> str:
        return self.baseline or next(iter(self.all_variants()))


class Item(_Strict):
    """One line of the dataset."""

    id: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    expected: dict[str, Any] = Field(default_factory=dict)
