"""``pipeline.yaml`` as pydantic models. Unknown keys are errors (``extra="forbid"``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import ConfigDict, Field, field_validator, model_validator

from pop_nb.models.base import Model
from pop_nb.models.schedule import ScheduleSpec

STAGES: tuple[str, ...] = (
    "ingestion",
    "preProcessing",
    "promptTemplating",
    "inference",
    "parsing",
    "validateStructure",
    "validateQuality",
    "critique",
    "refine",
    "finalValidation",
    "integration",
)
"""The eleven stages, in the order the runner moves through them."""

VALIDATION_STAGES = ("validateStructure", "validateQuality")
LOOP_STAGES = ("critique", "refine")
SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]*$"
TASK_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]*$"


CacheMode = Literal["auto", "read-write", "read-only", "replay", "off"]
"""How a call uses the response cache (:mod:`pop_nb.llm.cache` says what each mode does)."""
CACHE_MODES: tuple[str, ...] = get_args(CacheMode)


def stage_number(stage: str) -> int:
    """1-based position of ``stage``: the ``NN`` of ``NN-<stage>.ipynb``."""
    return STAGES.index(stage) + 1


class _Strict(Model):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class LLMSettings(Model):
    """Model and litellm completion keywords (temperature, max_tokens, api_base, ...).

    Any litellm keyword is accepted; ``mock_responses`` scripts the offline ``mock/`` models.
    """

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    mock_responses: str | dict[str, Any] | None = Field(
        default=None, description="Scripted answers for mock/ models: a YAML file (relative) or a mapping."
    )
    cache: CacheMode | None = Field(
        default=None,
        description="The response cache: auto (default) | read-write | read-only | replay | off; "
        "POP_LLM_CACHE wins over every file.",
    )
    sample: int | None = Field(
        default=None,
        ge=0,
        description="Which repeat of the same seed this job is: jobs that differ only here sample anew.",
    )

    @model_validator(mode="after")
    def _no_keys(self) -> LLMSettings:
        from pop_nb.redaction import is_secret_name

        for name in self.model_extra or {}:
            if is_secret_name(name):
                raise ValueError(
                    f"llm.{name}: keys are read from the environment only, never from pipeline, seed or "
                    f"notebook files. Remove {name} here and export the provider's variable instead "
                    "(OPENAI_API_KEY, ANTHROPIC_API_KEY, ...), or put it in the project's .env"
                )
        return self

    def merged(self, other: LLMSettings | dict[str, Any] | None) -> LLMSettings:
        """``other``'s set values over ours."""
        if other is None:
            return self
        theirs = other if isinstance(other, dict) else other.model_dump(exclude_none=True)
        return LLMSettings(**{**self.model_dump(exclude_none=True), **theirs})

    def anchored(self, base: Path) -> LLMSettings:
        """These settings with the files they name (``mock_responses``) made absolute from ``base``: the
        folder of the file they were written in (a pipeline's, the project's for a seed)."""
        if isinstance(self.mock_responses, str):
            return self.model_copy(update={"mock_responses": str((base / self.mock_responses).resolve())})
        return self

    def model_for(self, asked: str | None, default: str) -> str:
        """The model a call goes to: the one it asked for, else ours, else ``default``."""
        return asked or self.model or default

    @classmethod
    def layered(cls, *layers: tuple[LLMSettings | None, Path]) -> LLMSettings:
        """The settings of a call, from ``(settings, the folder they were written in)`` layers, later ones
        winning key by key: pipeline, then seed, then task (the runner's order)."""
        found = cls()
        for settings, base in layers:
            if settings is not None:
                found = found.merged(settings.anchored(base))
        return found


class OutputSpec(_Strict):
    """A task's output declared by example (the PRD's structured variables), instead of a schema file.

    ``format: json`` asks the model for JSON shaped like ``example`` (shown to it) and checks the answer
    against the shape the example implies; ``format: string`` (the default) stores plain text.
    """

    format: Literal["string", "json"] = "string"
    example: Any = None

    @model_validator(mode="after")
    def _example_fits(self) -> OutputSpec:
        if self.format == "json" and not isinstance(self.example, (dict, list)):
            raise ValueError("format json needs an example object or list, e.g. example: {category: billing}")
        if self.format == "string" and self.example is not None and not isinstance(self.example, str):
            raise ValueError("format string takes a text example; for an object use format: json")
        return self


class TaskSpec(_Strict):
    notebook: str
    needs: list[str] = Field(default_factory=list)
    output_schema: str | None = None
    output: OutputSpec | None = None
    max_refinements: int = Field(default=0, ge=0, le=20)
    expert: str | None = None
    llm: LLMSettings | None = None
    personality: str | None = None
    condition: str | None = None
    on_false: str = "skip"  # skip | fail | a task to run instead (it runs only when routed to)
    on_success: str | None = None  # a task to run after this one succeeds (it runs only when routed to)
    on_failure: str = "fail"
    retries: int = Field(default=0, ge=0, le=10)
    timeout_s: float | None = Field(default=None, gt=0)
    config: dict[str, Any] = Field(default_factory=dict)
    budget_usd: float | None = Field(default=None, ge=0)
    gate: bool = False

    @model_validator(mode="before")
    @classmethod
    def _cache_moved(cls, data: Any) -> Any:
        if isinstance(data, dict) and "cache" in data:
            mode = "off" if data["cache"] is False else data["cache"]
            raise ValueError(f"a task's cache is set under llm now: write `llm: {{cache: {mode}}}` instead")
        return data


ProductFormat = Literal["text", "json", "csv", "zip"]


class ProductSpec(_Strict):
    """A file written into the job's ``products/`` when it ends well."""

    path: str
    from_: str = Field(alias="from")
    key: str | None = Field(
        default=None, description="A dotted key into the task's output (text, json, csv)."
    )
    format: ProductFormat | None = Field(
        default=None,
        description="text | json | csv | zip (the task's files, with a manifest); default: from the suffix.",
    )

    @property
    def kind(self) -> ProductFormat:
        """The format, given or read from the path's suffix (.json, .csv, .zip; anything else is text)."""
        if self.format is not None:
            return self.format
        suffix = self.path.rsplit(".", 1)[-1].lower() if "." in self.path else ""
        return {"json": "json", "csv": "csv", "zip": "zip"}.get(suffix, "text")  # type: ignore[return-value]


NoticeKind = Literal["failed", "cancelled", "waiting", "done"]
DEFAULT_NOTICES: tuple[NoticeKind, ...] = ("failed", "cancelled", "waiting")  # "done" when asked


class NotifySpec(_Strict):
    """Where a job's ending (or its stop at a gate) is posted: a webhook. The URL may name environment
    variables (``${SLACK_WEBHOOK_URL}``) so a secret in it stays in the environment."""

    url: str = Field(description="http(s) URL, ${VAR} expanded from the environment when sent.")
    on: list[NoticeKind] = Field(
        default_factory=lambda: list(DEFAULT_NOTICES),
        description="Which of failed, cancelled, waiting, done are posted.",
    )

    @field_validator("url")
    @classmethod
    def _http(cls, url: str) -> str:
        if not url.startswith(("http://", "https://", "${")):
            raise ValueError("must be an http:// or https:// URL (or ${VAR} naming one in the environment)")
        return url


def notify_entries(value: Any) -> list[Any]:
    """``notify: URL``, ``notify: {url, on}``, or a list of either, as a list of entries."""
    items = value if isinstance(value, list) else [value]
    return [{"url": item} if isinstance(item, str) else item for item in items if item is not None]


class PipelineSpec(_Strict):
    name: str = Field(pattern=SLUG_PATTERN)
    version: int | str = 1
    description: str = ""
    llm: LLMSettings = Field(default_factory=LLMSettings)
    selection: Literal["cost", "performance", "balanced"] = "balanced"
    experts: dict[str, list[str]] = Field(default_factory=dict)
    model_scores: dict[str, float] = Field(default_factory=dict)
    personality: str | None = None
    budget_usd: float | None = Field(default=None, ge=0)
    seed_schema: str | None = Field(
        default=None, description="JSON Schema (a file) of the seed's data, checked before a job starts."
    )
    queue: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="The Celery queue its jobs go to when they run on workers (default: POP_QUEUE).",
    )
    tasks: dict[str, TaskSpec]
    products: list[ProductSpec] = Field(default_factory=list)
    notify: list[NotifySpec] = Field(
        default_factory=list, description="Webhooks told when a job fails, is cancelled, waits or is done."
    )
    schedules: dict[str, ScheduleSpec] = Field(
        default_factory=dict, description="Runs of this pipeline the daemon starts on a cron schedule."
    )

    @field_validator("notify", mode="before")
    @classmethod
    def _notify_forms(cls, value: Any) -> Any:
        return notify_entries(value)

    @field_validator("tasks")
    @classmethod
    def _tasks_not_empty(cls, tasks: dict[str, TaskSpec]) -> dict[str, TaskSpec]:
        if not tasks:
            raise ValueError("a pipeline needs at least one task")
        return tasks
