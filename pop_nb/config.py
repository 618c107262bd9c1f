"""Settings: ``POP_*`` environment variables over an optional ``pop.toml`` at the root, over defaults."""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError, model_validator

from pop_nb.errors import ConfigError
from pop_nb.models.base import Model
from pop_nb.models.pipeline import CacheMode

# The root being loaded, when given explicitly: where pop.toml is looked for (else $POP_ROOT or cwd).
_explicit_root: ContextVar[Path | None] = ContextVar("pop_explicit_root", default=None)


def find_root(start: Path | None = None) -> Path:
    """The project root for ``start`` (default: the working directory): the nearest folder, walking up,
    that holds ``pipelines/`` or ``pop.toml``, as git finds ``.git``; ``start`` itself if none does. So a
    notebook in ``<project>/notebooks/`` works on ``<project>``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pipelines").is_dir() or (folder / "pop.toml").is_file():
            return folder
    return here


def _toml_path() -> Path:
    return (_explicit_root.get() or Path(os.environ.get("POP_ROOT") or find_root())) / "pop.toml"


class OtelSettings(Model):
    """``[otel]`` in pop.toml: where a job's spans go besides its ``spans.jsonl``. The standard
    ``OTEL_EXPORTER_OTLP_*`` variables win over it; headers (which hold keys) come from them only."""

    model_config = ConfigDict(extra="forbid")

    endpoint: str | None = Field(
        default=None,
        description="OTLP over HTTP, as OTEL_EXPORTER_OTLP_ENDPOINT: http://host:4318 (/v1/traces is added).",
    )
    capture_content: bool = Field(
        default=False,
        description="Put prompts and answers, redacted, on LLM spans (also "
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true).",
    )
    timeout_s: float = Field(default=5.0, gt=0, description="One export's time limit; then it is dropped.")


class PopSettings(Model):
    """Every knob of pop-nb, typed and documented. Read once per process with :func:`load_settings`:
    a field ``x`` is set by ``POP_X`` in the environment, then in ``./.env``, then ``x`` in
    ``<root>/pop.toml``, then its default (lists and tables are JSON in a variable)."""

    model_config = ConfigDict(extra="ignore")

    root: Path = Field(
        default_factory=find_root,
        description="Project root: holds pipelines/ and pop.toml. Default: the nearest folder at or above "
        "the working directory that has either.",
    )
    data_dir: Path | None = Field(
        default=None, description="Job folders (pending/current/complete/...); default <root>/pipeline-data."
    )
    default_model: str = Field(
        default="openai/gpt-4o-mini", description="Model used when no call, task, seed or pipeline names one."
    )
    llm_cache: CacheMode | None = Field(
        default=None,
        description="The response cache's mode for every call, over pipeline, seed and task: auto | "
        "read-write | read-only | replay (send nothing; a miss fails) | off.",
    )
    max_running_jobs: int = Field(default=2, ge=1, description="Runner processes the daemon keeps at once.")
    max_recoveries: int = Field(
        default=3, ge=0, description="Times the daemon restarts a job whose runner died before failing it."
    )
    max_parallel_tasks: int = Field(default=4, ge=1, description="Independent tasks of one job run at once.")
    executor: str = Field(
        default="local",
        description="Where jobs run: local (child processes here), celery (workers started with "
        "`pop worker`), or any executor a package declares in the pop_nb.executors entry point group.",
    )
    broker_url: str = Field(
        default="redis://127.0.0.1:6379/0", description="The Celery broker (Redis) for the celery executor."
    )
    queue: str = Field(
        default="pop",
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Celery queue of jobs whose pipeline names none.",
    )
    spill_to: str | None = Field(
        default=None,
        description="Local first with spill-over: the daemon runs up to max_running_jobs here and hands the "
        "rest to this executor (e.g. celery).",
    )
    visibility_timeout_s: float = Field(
        default=3600,
        gt=0,
        description="Celery/Redis: a job taken by a worker that died goes to another worker after this long.",
    )
    dispatch_lease_s: float = Field(
        default=120,
        gt=0,
        description="A job sent to a queue that no worker has taken after this long is sent again (a broker "
        "that lost its queue); the lease doubles with each send. The job's lock keeps it run once.",
    )
    batch_stall_s: float = Field(
        default=600,
        gt=0,
        description="`pop batch` stops waiting (and says why, exit 1) when for this long no job of it moved "
        "and no runner holds any: nothing could make progress.",
    )
    kernel_startup_timeout_s: float = Field(default=60, gt=0, description="Wait for a stage kernel to start.")
    kernel_start: Literal["fork", "spawn"] = Field(
        default="fork",
        description="How each stage's fresh kernel starts: fork (from a kernel server that has the preloaded "
        "modules imported; Linux) or spawn (a new interpreter per stage; everywhere).",
    )
    kernel_preload: list[str] = Field(
        default_factory=lambda: ["litellm"],
        description="Modules the kernel fork server imports once, so that no stage pays for them "
        "(pop_nb.task, ipykernel and nbformat always are).",
    )
    kernel_server_idle_s: float = Field(
        default=300,
        gt=0,
        description="The kernel fork server (shared by this user's runners) ends after this long unused.",
    )
    notebook_autosave_s: float = Field(
        default=0,
        ge=0,
        description="While a stage runs, save its notebook at most this often (0: only at the end).",
    )
    model_scores: dict[str, float] = Field(
        default_factory=dict,
        description="How good each model is (any scale, higher is better); used by selection.",
    )
    prices: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="Price overrides per model: {input_cost_per_token, output_cost_per_token, ...}.",
    )
    otel: OtelSettings = Field(
        default_factory=OtelSettings, description="Trace export: the [otel] table (see OtelSettings)."
    )

    @model_validator(mode="after")
    def _resolve_paths(self) -> PopSettings:
        self.root = self.root.expanduser().resolve()
        if self.data_dir is None:
            self.data_dir = self.root / "pipeline-data"
        elif not self.data_dir.is_absolute():
            self.data_dir = self.root / self.data_dir
        return self

    @property
    def data(self) -> Path:
        assert self.data_dir is not None  # set by _resolve_paths
        return self.data_dir


# POP_* variables read outside the settings model (by the provider that needs them).
_OTHER_VARIABLES = frozenset(
    {
        "POP_CLAUDE_PATH",
        "POP_LOCAL_IDLE_S",
        "POP_RUNNER_JOB",
        "POP_WORKER",
        # read where they are used, by whichever process ends a job or draws a chart (pop_nb.notify,
        # pop_nb.widgets.theme): environment or .env only, since a URL may hold a key
        "POP_NOTIFY_URL",
        "POP_NOTIFY_ON",
        "POP_NOTIFY_RETRY_S",
        "POP_PLOTLY_TEMPLATE",
    }
)


def _from_toml() -> dict[str, Any]:
    """``pop.toml``'s settings; a key that is not one is refused (a typo would leave the default in
    force without a word)."""
    from pop_nb.errors import did_you_mean

    path = _toml_path()
    if not path.is_file():
        return {}
    import tomllib

    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}. Fix the file.") from None
    fields = set(PopSettings.model_fields)
    for key in values:
        if key not in fields:
            raise ConfigError(
                f"{path}: {key!r} is not a pop-nb setting.{did_you_mean(key, fields)} "
                f"Fix: remove it; the settings are {', '.join(sorted(fields))}"
            )
    return values


def _from_variables(variables: dict[str, str], where: str) -> dict[str, Any]:
    """The settings among ``POP_*`` variables (names case-insensitive; lists and tables as JSON)."""
    import json

    values: dict[str, Any] = {}
    upper = {name.upper(): value for name, value in variables.items() if value is not None}
    for name, field in PopSettings.model_fields.items():
        raw = upper.get(f"POP_{name.upper()}")
        if raw is None:
            continue
        origin = getattr(field.annotation, "__origin__", None)
        table = isinstance(field.annotation, type) and issubclass(field.annotation, Model)
        if origin in (list, dict) or table:
            try:
                values[name] = json.loads(raw)
            except ValueError as exc:
                raise ConfigError(
                    f"POP_{name.upper()} in {where} is not JSON ({exc}). Fix: write it as JSON, e.g. "
                    + ("'[\"litellm\"]'" if origin is list else "'{\"key\": 1}'")
                ) from None
        else:
            values[name] = raw
    return values


def _refuse_unknown_variables() -> None:
    """A ``POP_*`` variable that is no setting is refused, not ignored (a typo would do nothing)."""
    from pop_nb.errors import did_you_mean

    known = {f"POP_{name.upper()}" for name in PopSettings.model_fields} | _OTHER_VARIABLES
    for name in os.environ:
        if name.upper().startswith("POP_") and name.upper() not in known:
            raise ConfigError(
                f"environment variable {name} is not a pop-nb setting.{did_you_mean(name.upper(), known)} "
                f"Fix: unset it; the settings are {', '.join(sorted(known))}"
            )


def _from_dotenv() -> dict[str, Any]:
    path = Path(".env")
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return _from_variables({k: v for k, v in dotenv_values(path).items() if v is not None}, str(path))


def load_settings(root: str | Path | None = None, **overrides: Any) -> PopSettings:
    """Settings for ``root`` (default ``$POP_ROOT`` or the working directory): ``overrides``, then the
    ``POP_*`` environment, then ``./.env``, then ``<root>/pop.toml``, then the defaults."""
    if root is not None:
        overrides["root"] = Path(root).resolve()
    token = _explicit_root.set(overrides.get("root"))
    try:
        _refuse_unknown_variables()
        layers = (_from_toml(), _from_dotenv(), _from_variables(dict(os.environ), "the environment"))
        values: dict[str, Any] = {}
        for layer in (*layers, overrides):
            values.update(layer)
        return PopSettings(**values)
    except ValidationError as exc:
        raise ConfigError(f"invalid pop settings (POP_* environment or {_toml_path()}):\n{exc}") from None
    finally:
        _explicit_root.reset(token)
