"""The API a stage notebook imports: ``from pop_nb import task as pop``.

Two modes, no change to the notebook (the dagstermill way):

- **under the runner**, papermill injects ``pop_job_dir``, ``pop_task``, ``pop_stage``, ``pop_refinement``
  and ``pop_attempt``; everything else is read from files in the job folder;
- **by hand in JupyterLab**, ``pop_job_dir`` is ``None`` (its value in the ``parameters`` cell) and the
  world comes from the ``pop_sample`` dict of that cell: ``{"seed": ..., "inputs": ..., "config": ...,
  "llm": ...}``. Outputs then stay in memory, so running the notebook top to bottom passes each stage's
  output on to the next. Set ``pop_job_dir`` to a real job folder to replay a stage against its data.

World: ``seed``, ``inputs``, ``prev``, ``stages``, ``flags``, ``config``, ``validation_errors``,
``attempt``, ``refinement`` (plus ``job_id``, ``task_name``, ``stage``).
Actions: ``output``, ``flag``, ``invalid``, ``chat``, ``render``, ``write_artifact``, ``read_artifact``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pop_nb.models.context import StageContext
from pop_nb.models.pipeline import LLMSettings
from pop_nb.store import layout

__all__ = [
    "chat",
    "flag",
    "invalid",
    "metric",
    "output",
    "read_artifact",
    "render",
    "write_artifact",
]


def _namespace() -> dict[str, Any]:
    """The notebook's globals: where papermill's injected parameters and ``pop_sample`` live."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:  # pragma: no cover - ipykernel always brings IPython
        shell = None
    if shell is not None:
        return shell.user_ns  # type: ignore[no-any-return]
    import __main__

    return vars(__main__)


def _locate_job(job_dir: Path) -> Path:
    """The job folder, wherever the job is now: an executed notebook names ``current/<id>``, and the job
    may since have moved to ``complete/`` or ``failed/``."""
    if job_dir.is_dir():
        return job_dir
    data = job_dir.parent.parent
    for place in ("current", "complete", "failed"):
        if (data / place / job_dir.name).is_dir():
            return data / place / job_dir.name
    raise FileNotFoundError(
        f"job {job_dir.name} is in none of current/, complete/, failed/ under {data}; set pop_job_dir in "
        "the parameters cell to its folder"
    )


def _scratch_copy(job_dir: Path, task: str, stage: str) -> Path:
    """A stage re-run by hand works on a copy of its job (``.pop-interactive/replay/<id>`` at the project
    root), so the job's ledger, status and outputs stay what its run made them."""
    import shutil
    import sys

    from pop_nb.config import find_root

    scratch = find_root(job_dir) / ".pop-interactive" / "replay" / job_dir.name
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(
        job_dir,
        scratch,
        ignore=shutil.ignore_patterns("*.ipynb", "runner.lock", "runner.json", "history", "logs"),
    )
    print(
        f"pop: replaying {task}/{stage} of job {job_dir.name} on a scratch copy in {scratch}; "
        "the job's own files (ledger, status, outputs) are not changed",
        file=sys.stderr,
    )
    return scratch


class _World:
    """Lazily loaded state of the current stage; one per kernel."""

    def __init__(self) -> None:
        ns = _namespace()
        job_dir = ns.get("pop_job_dir")
        self.job_dir = Path(job_dir) if job_dir else None
        self.task = str(ns.get("pop_task") or "interactive")
        self.stage = str(ns.get("pop_stage") or "interactive")
        self.refinement = int(ns.get("pop_refinement") or 0)
        self.attempt = int(ns.get("pop_attempt") or 1)
        self.calls = 0
        self._ledger: Any = None
        self._memory: dict[str, Any] = {"flags": {}, "stages": {}, "prev": None}
        # an experiment's scorer notebook: its metrics and calls are the experiment's, for the job it scores
        self.scorer: dict[str, Any] | None = ns.get("pop_scorer") or None
        if self.scorer is not None:
            self.job_dir = None
            self.task, self.stage = str(self.scorer["name"]), "score"
            self.ctx = StageContext(
                job=str(self.scorer["job"]),
                pipeline=str(self.scorer["pipeline"]),
                task=self.task,
                llm=LLMSettings.model_validate(self.scorer.get("llm") or {}),
                default_model=str(self.scorer.get("default_model") or "openai/gpt-4o-mini"),
            )
            self._sample: dict[str, Any] = {}
        elif self.job_dir is None:
            sample = ns.get("pop_sample") or {}
            self.ctx = StageContext(
                job="interactive",
                pipeline="interactive",
                task=self.task,
                config=sample.get("config") or {},
                llm=LLMSettings.model_validate(sample.get("llm") or {}),
                personality=sample.get("personality"),
            )
            self._sample = sample
        else:
            from pop_nb.store.jobs import JobFolder

            self.job_dir = _locate_job(self.job_dir)
            if os.environ.get("POP_RUNNER_JOB") != self.job_dir.name:  # by hand, not by its runner
                self.job_dir = _scratch_copy(self.job_dir, self.task, self.stage)
            file = JobFolder(self.job_dir).stage_context(self.task, self.stage, self.refinement)
            self.ctx = StageContext.model_validate_json(file.read_text(encoding="utf-8"))
            self._sample = {}

    def ledger(self) -> Any:
        """The job's LLM ledger, one per kernel so its running totals are read incrementally. By hand, the
        project's ``.pop-interactive/``: calls are logged there and the shared cache answers what it may
        (a deterministic request already paid for); nothing is kept as "this job's", since by hand there
        is no job to resume, and a mock script edited between two runs must be read again."""
        if self._ledger is None:
            from pop_nb.llm.ledger import Ledger

            if self.scorer is not None:
                self._ledger = Ledger(Path(self.scorer["ledger"]), Path(self.scorer["cache"]), own=False)
            elif self.job_dir is None:
                from pop_nb.config import find_root, load_settings
                from pop_nb.errors import ConfigError
                from pop_nb.llm.cache import shared_store

                try:
                    shared: Path | None = shared_store(load_settings().data).root
                except ConfigError:  # a broken pop.toml: the call still goes, uncached
                    shared = None
                self._ledger = Ledger(find_root(Path.cwd()) / ".pop-interactive", shared, own=False)
            else:
                shared = Path(self.ctx.cache_dir) if self.ctx.cache_dir else None
                self._ledger = Ledger(self.job_dir, shared)
        return self._ledger

    @property
    def _task_dir(self) -> Path:
        assert self.job_dir is not None
        return self.job_dir / "tasks" / self.task

    def read(self, rel: str | None) -> Any:
        if rel is None or self.job_dir is None:
            return None
        path = self.job_dir / rel
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    # -- world ------------------------------------------------------------------------------
    def seed(self) -> Any:
        if self.job_dir is None:
            return self._sample.get("seed", {})
        return json.loads((self.job_dir / layout.SEED).read_text(encoding="utf-8")).get("data", {})

    def inputs(self) -> dict[str, Any]:
        if self.job_dir is None:
            return dict(self._sample.get("inputs", {}))
        return {name: self.read(rel) for name, rel in self.ctx.inputs.items()}

    def prev(self) -> Any:
        return self._memory["prev"] if self.job_dir is None else self.read(self.ctx.prev)

    def stages(self) -> dict[str, Any]:
        if self.job_dir is None:
            return dict(self._memory["stages"])
        return {stage: self.read(rel) for stage, rel in self.ctx.stages.items()}

    def flags(self) -> dict[str, Any]:
        if self.job_dir is None:
            flags: dict[str, Any] = self._memory["flags"]
            return flags
        return dict(self.read(f"tasks/{self.task}/flags.json") or {})

    # -- actions ----------------------------------------------------------------------------
    def output(self, value: Any) -> Any:
        data = _jsonable(value)
        if self.job_dir is None:
            self._memory["prev"] = data
            self._memory["stages"][self.stage] = data
            return value
        from pop_nb.store.atomic import atomic_write_json
        from pop_nb.store.jobs import JobFolder

        atomic_write_json(JobFolder(self.job_dir).stage_output(self.task, self.stage, self.refinement), data)
        return value

    def set_flag(self, name: str, value: Any) -> None:
        flags = self.flags()
        flags[name] = _jsonable(value)
        if self.job_dir is not None:
            from pop_nb.store.atomic import atomic_write_json

            atomic_write_json(self._task_dir / "flags.json", flags)


_world: _World | None = None


def _w() -> _World:
    global _world
    if _world is None:
        _world = _World()
    return _world


def _jsonable(value: Any) -> Any:
    """Pydantic models are dumped; anything else must already be JSON-serialisable."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    try:
        json.dumps(value)
    except TypeError as exc:
        raise TypeError(
            f"pop.output() takes JSON values or pydantic models ({exc}); "
            "put large or binary things in pop.write_artifact() instead"
        ) from None
    return value


def __getattr__(name: str) -> Any:
    w = _w()
    match name:
        case "seed":
            return w.seed()
        case "inputs":
            return w.inputs()
        case "prev":
            return w.prev()
        case "stages":
            return w.stages()
        case "flags":
            return dict(w.flags())
        case "config":
            return dict(w.ctx.config)
        case "validation_errors":
            return list(w.ctx.validation_errors)
        case "attempt":
            return w.attempt
        case "refinement":
            return w.refinement
        case "job_id":
            return w.ctx.job
        case "task_name":
            return w.task
        case "stage":
            return w.stage
        case "output_schema":
            return w.ctx.output_schema
    raise AttributeError(
        f"module 'pop_nb.task' has no attribute {name!r}; a stage reads pop.seed (the seed's data), "
        "pop.inputs, pop.prev, pop.stages, pop.flags, pop.config, pop.validation_errors, pop.attempt, "
        "pop.refinement, pop.job_id, pop.task_name, pop.stage, pop.output_schema"
    )


def output(value: Any) -> Any:
    """Set this stage's output (a JSON value or a pydantic model); the next stage sees it as ``pop.prev``."""
    return _w().output(value)


def flag(name: str, value: Any = True) -> None:
    """Set a task flag. ``needsRefinement`` (and ``validationErrors``) steer the refine loop."""
    _w().set_flag(name, value)


def invalid(*errors: str) -> None:
    """Report validation errors from a validation stage; critique and refine see ``validation_errors``."""
    existing = list(_w().flags().get("validationErrors") or [])
    _w().set_flag("validationErrors", existing + [str(e) for e in errors])


def chat(messages: str | list[dict[str, Any]], **kwargs: Any) -> Any:
    """Call the task's LLM (litellm) and return a :class:`~pop_nb.llm.ChatResponse`.

    The call is attributed to this job, task and stage and logged to ``usage.jsonl`` with tokens and cost.
    Keyword arguments (``model=``, ``temperature=``, ``response_format=``, ...) override the task's settings.

    - A request identical to one this job already paid for is answered from its ledger at $0
      (unless the task sets ``cache: false``).
    - A call that could pass the job's or task's ``budget_usd`` is refused before it is sent.
    - In the ``inference`` and ``refine`` stages of a task with an ``output_schema`` (or ``output: {format:
      json}``), the schema is sent as ``response_format`` (or described in the system prompt, for models
      without structured output), and ``output.example`` is shown in the system prompt; pass
      ``response_format=None`` to ask for free text.
    - With an ``expert`` and no ``model=``, the expert's other candidates are the fallbacks.
    """
    from pop_nb.llm.budget import Budget
    from pop_nb.llm.client import Attribution, normalize_messages
    from pop_nb.llm.client import chat as llm_chat
    from pop_nb.llm.structured import OUTPUT_STAGES, apply_schema, show_example

    w = _w()
    who = Attribution(
        job=w.ctx.job if w.job_dir or w.scorer else None,
        pipeline=w.ctx.pipeline,
        task=w.task,
        stage=w.stage,
        attempt=w.attempt,
        refinement=w.refinement,
        call_index=w.calls,
        trace=w.ctx.trace.traceparent if w.ctx.trace is not None and w.job_dir is not None else None,
        capture_content=w.ctx.trace is not None and w.ctx.trace.capture_content,
    )
    w.calls += 1
    ctx = w.ctx
    by_hand = w.job_dir is None and w.scorer is None
    settings = ctx.llm.anchored(Path.cwd()) if by_hand else ctx.llm  # by hand: from the notebook's folder
    msgs = normalize_messages(messages, kwargs.pop("system", None) or ctx.personality)
    model = settings.model_for(kwargs.get("model"), ctx.default_model)
    wants_schema = "response_format" not in kwargs and "response_format" not in (settings.model_extra or {})
    if w.stage in OUTPUT_STAGES and wants_schema:
        if ctx.output_example is not None:
            msgs = show_example(msgs, ctx.output_example)
        if ctx.output_schema and ctx.output_schema.get("type") != "string":  # plain text needs no format
            msgs, kwargs = apply_schema(model, ctx.output_schema, w.task, msgs, kwargs)
    elif kwargs.get("response_format", "") is None:
        kwargs.pop("response_format")
    return llm_chat(
        msgs,
        settings=settings,
        default_model=ctx.default_model,
        attribution=who,
        ledger=w.ledger(),
        price_overrides=ctx.price_overrides,
        budget=Budget(ctx.budget_usd, ctx.task_budget_usd),
        fallbacks=() if "model" in kwargs else ctx.fallback_models,
        **kwargs,
    )


def metric(name: str, value: float | int | bool) -> float:
    """Record a measurement of this stage (a score, a count, a pass/fail as 1/0) in the job's
    ``metrics.jsonl``, which analytics reads as the ``metrics`` table and experiments compare (in an
    experiment's scorer notebook: that scorer's score of the job it is given). Run by
    hand, it goes to ``.pop-interactive/metrics.jsonl``. Returns the value recorded."""
    import math

    from pop_nb.models.records import MetricRow
    from pop_nb.store.atomic import append_jsonl

    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise ValueError(
            f"pop.metric: the name must be a non-empty text of at most 200 characters, not {name!r}"
        )
    if isinstance(value, bool):
        value = float(value)
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(
            f"pop.metric({name!r}, {value!r}): the value must be a finite number (or True/False for 1/0)"
        )
    w = _w()
    folder = w.job_dir if w.job_dir is not None else w.ledger().job_dir  # by hand: .pop-interactive/
    row = MetricRow(
        job=w.ctx.job if w.job_dir or w.scorer else None,
        pipeline=w.ctx.pipeline,
        task=w.task,
        stage=w.stage,
        refinement=w.refinement,
        name=name,
        value=float(value),
        scorer=w.scorer["name"] if w.scorer else None,
    )
    append_jsonl(Path(w.scorer["metrics"]) if w.scorer else folder / layout.METRICS, row)
    return float(value)


def render(template: str, **variables: Any) -> str:
    """Render a Jinja2 template (text, or a ``.j2``/``.jinja``/``.md`` file next to the notebook).

    Undefined variables are errors, so a typo in a prompt fails loudly instead of sending a blank.
    """
    import jinja2

    source = template
    if "\n" not in template and template.endswith((".j2", ".jinja", ".jinja2", ".md", ".txt")):
        path = Path(template)
        if path.is_file():
            source = path.read_text(encoding="utf-8")
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    env.filters["tojson"] = lambda v, indent=None: json.dumps(v, indent=indent, ensure_ascii=False)
    return env.from_string(source).render(**variables)


def _artifact_path(task: str, name: str) -> Path:
    w = _w()
    if w.job_dir is None:
        base = Path.cwd() / ".pop-interactive" / "artifacts" / task
    else:
        base = w.job_dir / "files" / "artifacts" / task
    from pop_nb.store.paths import inside

    return inside(base, name, f"artifact of task {task!r}")


def write_artifact(name: str, data: Any) -> Path:
    """Store ``data`` (str, bytes, or a JSON value) as ``files/artifacts/<task>/<name>``; returns its path."""
    from pop_nb.store.atomic import atomic_write_bytes

    path = _artifact_path(_w().task, name)
    if isinstance(data, bytes):
        blob = data
    elif isinstance(data, str):
        blob = data.encode("utf-8")
    else:
        blob = (json.dumps(_jsonable(data), indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    atomic_write_bytes(path, blob)
    return path


def read_artifact(task: str, name: str) -> Any:
    """Read an artifact of ``task``: parsed JSON for ``.json``, text if it decodes, else bytes."""
    blob = _artifact_path(task, name).read_bytes()
    if name.endswith(".json"):
        return json.loads(blob)
    try:
        return blob.decode("utf-8")
    except UnicodeDecodeError:
        return blob
