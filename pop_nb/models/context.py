"""``tasks/<task>/context/<stage>[.r<k>].json``: what a stage's kernel is told, written by the runner
before the stage runs and kept, so any executed stage notebook can be replayed against the job folder.

Paths are relative to the job folder. No secrets: keys stay in the environment.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from pop_nb.models.base import Model
from pop_nb.models.pipeline import LLMSettings
from pop_nb.models.trace import StageTrace


class StageContext(Model):
    job: str
    pipeline: str
    task: str
    config: dict[str, Any] = Field(default_factory=dict)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    default_model: str = "openai/gpt-4o-mini"
    personality: str | None = None
    inputs: dict[str, str] = Field(default_factory=dict, description="upstream task -> its final output file")
    prev: str | None = Field(default=None, description="output file of the previous stage run")
    stages: dict[str, str] = Field(default_factory=dict, description="stage -> its latest output file")
    validation_errors: list[str] = Field(default_factory=list)
    max_refinements: int = 0
    output_schema: dict[str, Any] | None = None
    output_example: Any = Field(default=None, description="the task's output.example, shown to the model")
    price_overrides: dict[str, dict[str, float]] = Field(default_factory=dict)
    fallback_models: list[str] = Field(
        default_factory=list, description="the expert's other candidates, tried in order if the model refuses"
    )
    budget_usd: float | None = Field(default=None, description="the job's budget (seed, else pipeline)")
    task_budget_usd: float | None = None
    cache_dir: str | None = Field(
        default=None,
        description="The shared response cache (absolute; the job's own store is in its folder).",
    )
    trace: StageTrace | None = Field(
        default=None, description="The stage span: parent of its LLM and user spans."
    )
