"""What comparing returns: an experiment's variants side by side (``pop experiment compare``), one item
under every variant (``pop experiment show``), and what differs between two jobs or two refine passes
(``pop diff``). The CLI prints them, the report notebook charts them, and ``/pop/api/experiments`` serves
them as they are (``model_dump(mode="json")``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_serializer

from pop_nb.models.base import Model

NOTHING: Any = type("Nothing", (), {"__repr__": lambda _: "NOTHING"})()  # no value there (not null)


class MetricSummary(Model):
    mean: float | None
    low: float | None = Field(description="The 95 % bootstrap interval of the mean over items: low end.")
    high: float | None
    items: int = Field(description="Items scored.")
    errors: int = Field(default=0, description="Items the scorer could not score (an error, not a zero).")
    win: int | None = Field(
        default=None, description="Items above the baseline's (None: it is the baseline)."
    )
    tie: int | None = None
    loss: int | None = None


class Regression(Model):
    item: str
    metric: str
    baseline: float
    variant: float


class Rejected(Model):
    item: str
    error: str


class VariantSummary(Model):
    name: str
    jobs: int
    done: int
    failed: int
    cost_usd: float = Field(description="What its jobs paid.")
    cost_per_item_usd: float = Field(description="An item's cost under it; cache hits at their price.")
    input_tokens: int
    output_tokens: int
    saved_usd: float
    cache_hits: int
    latency_p50_s: float | None
    latency_p95_s: float | None
    judge_cost_usd: float = Field(default=0.0, description="What grading it cost (logged apart).")
    pending: int = Field(default=0, description="Grades not asked for yet (a judge's, a notebook's).")
    metrics: dict[str, MetricSummary] = Field(default_factory=dict)
    regressed: list[Regression] = Field(default_factory=list, description="Its worst items vs the baseline.")
    rejected: list[Rejected] = Field(default_factory=list, description="Items whose seed was refused.")


class Comparison(Model):
    experiment: str
    pipeline: str
    baseline: str
    items: int
    repeat: int
    variants: list[VariantSummary]
    # variant -> metric -> item -> score (the mean over its repeats); not dumped, which stays small
    scores: dict[str, dict[str, dict[str, float | None]]] = Field(
        default_factory=dict, exclude=True, repr=False
    )

    def primary(self) -> str | None:
        """The metric a comparison leads with: the first scorer's (else the first any variant has)."""
        return next((m for v in self.variants for m in v.metrics), None)

    def pareto(self, metric: str) -> list[str]:
        """The variants no other beats on both cost per item (lower) and ``metric`` (higher)."""
        points = [
            (v.name, v.cost_per_item_usd, m.mean)
            for v in self.variants
            if (m := v.metrics.get(metric)) is not None and m.mean is not None and v.done
        ]
        return [
            name
            for name, cost, score in points
            if not any(c <= cost and s >= score and (c < cost or s > score) for _, c, s in points)
        ]


# -- pop diff ----------------------------------------------------------------------------------------


class Change(Model):
    path: str = Field(description='Where in the output: "category", "findings[1].source"; "": all.')
    kind: str = Field(description="changed | added | removed")
    before: Any = None
    after: Any = None


class Side(Model):
    """One side of a task's comparison: a job's task, or one refine pass of it."""

    label: str
    prompts: str = Field(description="Every call's messages, in order.")
    output: Any
    errors: list[str]
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    calls: int = 0
    models: list[str] = Field(default_factory=list, description="The models its calls went to, in order.")
    cache_hits: int = 0
    saved_usd: float = 0.0
    notebooks: list[str] = Field(default_factory=list, description="Stage notebooks, from the data folder.")

    @field_serializer("output")
    def _output(self, value: Any) -> Any:
        return None if value is NOTHING else value  # as JSON, no output is null


class TaskDiff(Model):
    task: str
    a: Side
    b: Side
    prompt_diff: list[str] = Field(description="Unified diff lines of the prompts; empty: the same.")
    changes: list[Change] = Field(description="Of the output, key by key.")
    fixed: list[str] = Field(description="Validation errors in a, not in b.")
    new: list[str] = Field(description="In b, not in a.")

    @property
    def same(self) -> bool:
        return not (self.prompt_diff or self.changes or self.fixed or self.new or self.models_differ)

    @property
    def models_differ(self) -> bool:
        """Both sides called a model, not the same one (a side without calls shows as added output)."""
        return bool(self.a.models and self.b.models) and self.a.models != self.b.models


class JobDiff(Model):
    a: str
    b: str
    title: str
    tasks: list[TaskDiff]


# -- pop experiment show -----------------------------------------------------------------------------


class ItemRun(Model):
    variant: str
    job: str | None = Field(description="None: the variant has not run this item.")
    state: str | None = None
    outputs: dict[str, Any] = Field(default_factory=dict)
    scores: dict[str, float | None] = Field(default_factory=dict)
    cost_usd: float = 0.0
    notebooks: list[str] = Field(default_factory=list, description="Stage notebooks, from the data folder.")
    diff: JobDiff | None = Field(default=None, description="Against the baseline's job for this item.")


class ItemView(Model):
    experiment: str
    item: str
    repeat: int
    data: dict[str, Any]
    expected: dict[str, Any]
    baseline: str
    runs: list[ItemRun]
    data_dir: str = Field(description="Where the notebooks' paths start.")
