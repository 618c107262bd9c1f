"""``pop compile``: static validation of a pipeline, reporting every problem with file, key and fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pop_nb.errors import ConditionError, PipelineError, Problem, SchedulesFileError
from pop_nb.llm.personalities import personality_dirs, resolve_personality
from pop_nb.models.pipeline import TASK_NAME_PATTERN
from pop_nb.pipeline.conditions import Condition
from pop_nb.pipeline.load import Pipeline, load_pipeline
from pop_nb.pipeline.task_notebook import load_task_notebook
from pop_nb.store.paths import inside, path_problem

if TYPE_CHECKING:
    from pop_nb.models.seed import TaskOverride


class _Add(Protocol):
    """Records one problem: key, what is wrong, how to fix it (and the file, if not pipeline.yaml)."""

    def __call__(self, key: str, message: str, fix: str, where: Path | None = None) -> None: ...


def compile_file(root: Path, slug: str) -> tuple[Pipeline | None, list[Problem]]:
    """Load and check ``slug``; returns the pipeline (if it parsed) and every problem found."""
    try:
        pipeline = load_pipeline(root, slug)
    except PipelineError as exc:
        return None, exc.problems
    return pipeline, check(pipeline, root)


def compile_pipeline(root: Path, slug: str) -> Pipeline:
    """The pipeline, or :class:`PipelineError` listing every problem."""
    pipeline, problems = compile_file(root, slug)
    if problems or pipeline is None:
        raise PipelineError(slug, problems)
    return pipeline


def check(pipeline: Pipeline, root: Path) -> list[Problem]:
    import re

    spec, file = pipeline.spec, pipeline.file
    problems: list[Problem] = []

    def add(key: str, message: str, fix: str, where: Path | None = None) -> None:
        problems.append(Problem(where or file, key, message, fix))

    if spec.name != pipeline.slug:
        add(
            "name",
            f"name {spec.name!r} differs from the slug {pipeline.slug!r} it is found under",
            f"set `name: {pipeline.slug}` or rename the folder / registry entry",
        )
    tasks = spec.tasks
    for name, task in tasks.items():
        key = f"tasks.{name}"
        if not re.fullmatch(TASK_NAME_PATTERN, name):
            add(
                key,
                "task names must start with a letter or _ and use letters, digits, _ and -",
                "rename the task",
            )
        for need in task.needs:
            if need not in tasks:
                add(f"{key}.needs", f"needs unknown task {need!r}", f"use one of {', '.join(tasks)}")
            elif need == name:
                add(f"{key}.needs", "a task cannot need itself", f"remove {name!r} from its needs")
        _check_notebook(pipeline, name, add)
        if task.output_schema:
            _check_schema(pipeline, name, task.output_schema, add)
            if task.output is not None:
                add(
                    f"{key}.output",
                    "declares the output twice: by output_schema and by output",
                    "keep one: output_schema (a JSON Schema file) or output (format and example)",
                )
        if task.condition is not None:
            try:
                Condition(task.condition)
            except ConditionError as exc:
                add(
                    f"{key}.condition",
                    f"refused: {exc}",
                    "write a plain comparison over inputs['task'][...], seed[...] or config[...]",
                )
        if task.on_failure not in ("fail", "continue"):
            fallback = task.on_failure
            if fallback not in tasks:
                add(
                    f"{key}.on_failure",
                    f"{fallback!r} is neither fail, continue nor a task",
                    f"use fail, continue or one of {', '.join(t for t in tasks if t != name)}",
                )
            elif fallback == name or fallback in pipeline.downstream(name):
                add(
                    f"{key}.on_failure",
                    f"fallback {fallback!r} depends on {name!r}",
                    "pick a fallback task that does not need the failing one",
                )
        routes = {"on_success": task.on_success, "on_false": task.on_false}
        for field, target in routes.items():
            if target is None or (field == "on_false" and target in ("skip", "fail")):
                continue
            allowed = "skip, fail or a task" if field == "on_false" else "a task"
            if target not in tasks:
                add(
                    f"{key}.{field}",
                    f"{target!r} is not {allowed}",
                    f"use one of {', '.join(t for t in tasks if t != name)}"
                    + (" (or skip, fail)" if field == "on_false" else ""),
                )
            elif target == name or name in pipeline.downstream(target):
                add(
                    f"{key}.{field}",
                    f"{target!r} comes before {name!r} (it is {name!r} or something it needs)",
                    "route to a task that may run after this one",
                )
        if task.on_false not in ("skip", "fail") and not task.condition:
            add(f"{key}.on_false", "there is no condition to be false", "add a condition, or remove on_false")
        if task.expert is not None and task.expert not in spec.experts:
            add(
                f"{key}.expert",
                f"unknown expert role {task.expert!r}",
                f"declare it under experts: (known: {', '.join(spec.experts) or 'none'})",
            )
        if task.personality is not None:
            _check_personality(pipeline, f"{key}.personality", task.personality, root, add)
    if spec.personality is not None:
        _check_personality(pipeline, "personality", spec.personality, root, add)
    for role, models in spec.experts.items():
        if not models:
            add(f"experts.{role}", "has no candidate models", "list at least one model string")
    cycle = _find_cycle(pipeline)
    if cycle:
        add("tasks", f"dependency cycle: {' -> '.join(cycle)}", "remove one of these needs edges")
    for i, product in enumerate(spec.products):
        if product.from_ not in tasks:
            add(f"products[{i}].from", f"unknown task {product.from_!r}", f"use one of {', '.join(tasks)}")
        problem = path_problem(product.path)
        if problem is not None:
            add(f"products[{i}].path", f"{product.path!r} {problem}", "use a relative path like 'report.md'")
        if product.kind == "zip" and product.key is not None:
            add(
                f"products[{i}].key",
                "a zip packs the task's files (files/artifacts/<task>/), not a key of its output",
                "remove key, or choose format text, json or csv",
            )
    if spec.seed_schema is not None:
        _check_seed_schema(pipeline, spec.seed_schema, add)
    mock = spec.llm.mock_responses
    if isinstance(mock, str) and not pipeline.resolve(mock).is_file():
        add("llm.mock_responses", f"file {mock!r} does not exist", f"create {pipeline.resolve(mock)}")
    return problems


def check_schedules(pipeline: Pipeline, root: Path) -> list[Problem]:
    """Its schedules (in pipeline.yaml, and those of schedules.yaml that name it): the cron expression,
    the time zone, and the seed, against the pipeline's seed_schema too. `pop compile` reports them; a
    job's start does not wait on them (a broken schedule never fires, and says why to the daemon)."""
    from pop_nb.pipeline.schedules import definitions
    from pop_nb.pipeline.schemas import schema_errors

    problems: list[Problem] = []

    def add(key: str, message: str, fix: str, where: Path | None = None) -> None:
        problems.append(Problem(where or pipeline.file, key, message, fix))

    try:
        found = [d for d in definitions(root) if d.pipeline == pipeline.slug]
    except SchedulesFileError as exc:  # schedules.yaml is no YAML mapping
        add("schedules", str(exc), "fix schedules.yaml", root / "schedules.yaml")
        return problems
    schema_file = pipeline.seed_schema_path()
    schema = read_schema(schema_file) if schema_file is not None and schema_file.is_file() else None
    for definition in found:
        key, where = f"schedules.{definition.name}", definition.source
        for problem in definition.problems:
            add(key, problem, "fix the schedule's entry", where)
        if schema is not None and definition.seed is not None:
            for problem in schema_errors(schema, definition.seed.get("data", {}), "seed.data"):
                add(
                    key, f"its seed does not fit the seed_schema: {problem}", "fix the schedule's seed", where
                )
    return problems


def read_schema(file: Path) -> dict[str, Any] | None:
    try:
        schema = json.loads(file.read_text(encoding="utf-8"))
    except ValueError:
        return None  # said by the seed_schema check
    return schema if isinstance(schema, dict) else None


def check_models(pipeline: Pipeline, prices: dict[str, dict[str, float]]) -> list[Problem]:
    """Models named in the pipeline that its calls could not use as intended: unpriced (their calls
    would be logged ``unpriced``), or refused by a provider of ours (an unknown or uninstalled
    ``local/`` model, a broken plug-in).

    Run by ``pop compile`` (it imports litellm, which takes seconds), not on every job start.
    """
    spec = pipeline.spec
    named: list[tuple[str, str]] = []
    if spec.llm.model:
        named.append(("llm.model", spec.llm.model))
    for name, task in spec.tasks.items():
        if task.llm and task.llm.model:
            named.append((f"tasks.{name}.llm.model", task.llm.model))
    for role, models in spec.experts.items():
        named += [(f"experts.{role}", model) for model in models]
    return model_problems(pipeline.file, named, prices)


def model_problems(
    file: Path, named: list[tuple[str, str]], prices: dict[str, dict[str, float]]
) -> list[Problem]:
    """``(key, model)`` pairs named in ``file`` whose calls could not be used as intended (see
    :func:`check_models`), with the closest priced model's name when one is near."""
    from pop_nb.errors import ProviderError, closest
    from pop_nb.llm.pricing import needs_price, price_entry, price_map, pricing_name
    from pop_nb.llm.registry import own_provider

    problems = []
    for key, model in named:
        try:
            provider = own_provider(model)
            refused = provider.check(model) if provider is not None and provider.check else None
        except ProviderError as exc:
            refused = str(exc)
        if refused:
            message, _, fix = refused.partition(" Fix: ")
            problems.append(Problem(file, key, message.rstrip("."), fix or "use another model"))
        elif needs_price(model) and price_entry(model, prices) is None:
            imitated = pricing_name(model)  # mock/gpt-4o-mni: the near name keeps its mock/
            near = closest(imitated, price_map())
            prefix = model[: len(model) - len(imitated)]
            close = f" Did you mean {prefix + near!r}?" if near else ""
            problems.append(
                Problem(
                    file,
                    key,
                    f"model {model!r} has no price in litellm's price map, so its cost would be logged as "
                    f"unpriced.{close}",
                    "check the spelling (provider/model), or give its prices in pop.toml: "
                    f'[prices."{model}"] input_cost_per_token = ..., output_cost_per_token = ... '
                    "(0 for a free local model)",
                )
            )
    return problems


def _check_notebook(pipeline: Pipeline, name: str, add: _Add) -> None:
    task = pipeline.task(name)
    key = f"tasks.{name}.notebook"
    path = pipeline.notebook_path(name)
    if not path.is_file():
        add(key, f"notebook {task.notebook!r} does not exist", f"create {path} or fix the path")
        return
    try:
        tn = load_task_notebook(path)
    except Exception as exc:
        add(key, f"notebook {task.notebook!r} cannot be read: {exc}", "open it in JupyterLab and re-save it")
        return
    for problem in tn.tag_problems:
        add(f"{key} ({path.name})", problem, "fix the cell tags (View > Cell Toolbar > Tags)", path)
    if not tn.stages:
        add(
            key,
            "no cell carries a stage tag, so the task would do nothing",
            "tag cells with stage names such as 'inference' and 'integration'",
            path,
        )
    if tn.parameters is None:
        add(
            key,
            "no cell is tagged 'parameters'",
            "add a first code cell tagged 'parameters' with sample values for interactive runs",
            path,
        )


def with_seed_tasks(pipeline: Pipeline, root: Path, tasks: dict[str, TaskOverride], seed: str) -> Pipeline:
    """``pipeline`` as a seed's ``tasks`` change it: a task it names must exist, and a notebook it swaps in
    (relative to the project ``root``, and inside it) is checked as ``pop compile`` checks a task
    notebook; raises :class:`SeedError` naming the task, the file and the fix."""
    from pop_nb.errors import SeedError, did_you_mean

    names = list(pipeline.spec.tasks)
    swaps: dict[str, Path] = {}
    for task, override in tasks.items():
        if task not in pipeline.spec.tasks:
            raise SeedError(
                "invalid_seed",
                f"{seed}: tasks names {task!r}, which pipeline {pipeline.slug!r} does not have."
                f"{did_you_mean(task, names)} Fix: one of {', '.join(names)}",
            )
        if override.notebook is None:
            continue
        try:  # the one rule for a relative path that must stay inside a folder (null bytes, .., symlinks)
            path, why = inside(root, override.notebook, "the notebook"), ""
        except ValueError as exc:
            path, why = None, f" ({exc})"
        if path is None or path.suffix != ".ipynb" or not path.is_file():
            raise SeedError(
                "invalid_seed",
                f"{seed}: tasks.{task}.notebook {override.notebook[:200]!r} is not a notebook file in the "
                f"project {root}{why}. Fix: the path of an .ipynb file, relative to the project's root",
            )
        swaps[task] = path
    swapped = pipeline.with_notebooks(swaps)
    problems: list[Problem] = []

    def add(key: str, message: str, fix: str, where: Path | None = None) -> None:
        problems.append(Problem(where or swapped.file, key, message, fix))

    for task in swaps:
        _check_notebook(swapped, task, add)
    for task, override in tasks.items():
        if override.personality is not None:
            _check_personality(swapped, f"tasks.{task}.personality", override.personality, root, add)
    if problems:
        raise SeedError(
            "invalid_seed",
            f"{seed}: what it changes of the tasks cannot run: " + "; ".join(str(p) for p in problems),
        )
    return swapped


def _check_schema(pipeline: Pipeline, name: str, rel: str, add: _Add) -> None:
    _load_schema(pipeline, f"tasks.{name}.output_schema", rel, add)


def _load_schema(pipeline: Pipeline, key: str, rel: str, add: _Add) -> dict[str, Any] | None:
    import jsonschema

    path = pipeline.resolve(rel)
    if not path.is_file():
        add(key, f"schema file {rel!r} does not exist", f"create {path} (a JSON Schema)")
        return None
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except json.JSONDecodeError as exc:
        add(key, f"{rel} is not JSON: {exc}", "fix the JSON", path)
    except jsonschema.SchemaError as exc:
        add(key, f"{rel} is not a valid JSON Schema: {exc.message}", "fix the schema", path)
    else:
        return schema if isinstance(schema, dict) else None
    return None


def _check_seed_schema(pipeline: Pipeline, rel: str, add: _Add) -> None:
    """The seed schema is a valid schema, and the pipeline's own example seeds (``seeds/*.json``) fit it."""
    from pop_nb.pipeline.schemas import schema_errors

    schema = _load_schema(pipeline, "seed_schema", rel, add)
    if schema is None:
        return
    for example in sorted((pipeline.dir / "seeds").glob("*.json")):
        try:
            data = json.loads(example.read_text(encoding="utf-8")).get("data", {})
        except (ValueError, AttributeError):
            add("seed_schema", f"example seed {example.name} is not a JSON object", "fix the file", example)
            continue
        for problem in schema_errors(schema, data, "data"):
            add(
                "seed_schema",
                f"example seed {example.name} does not fit it: {problem}",
                f"fix {example.name} or {rel}",
                example,
            )


def _check_personality(pipeline: Pipeline, key: str, value: str, root: Path, add: _Add) -> None:
    if resolve_personality(value, pipeline.dir.parent) is None:
        dirs = " or ".join(str(d) for d in personality_dirs(pipeline.dir.parent))
        add(
            key,
            f"personality {value!r} not found",
            f"create {value}.md in {dirs}, or write the prompt inline",
        )


def _find_cycle(pipeline: Pipeline) -> list[str] | None:
    tasks = pipeline.spec.tasks
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        stack.append(name)
        for need in tasks[name].needs:
            if need not in tasks:
                continue
            if state.get(need) == 1:
                return [*stack[stack.index(need) :], need]
            if need not in state and (found := visit(need)):
                return found
        stack.pop()
        state[name] = 2
        return None

    for name in tasks:
        if name not in state and (found := visit(name)):
            return found
    return None
