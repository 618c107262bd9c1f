"""What a task is given before its stages run: the :class:`StageContext` (LLM settings resolved, an
expert's model chosen, inputs found), its config, and the values its ``condition`` reads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pop_nb.config import PopSettings
from pop_nb.execution.routes import Routes
from pop_nb.llm.cache import shared_store
from pop_nb.llm.personalities import resolve_personality
from pop_nb.models.context import StageContext
from pop_nb.models.pipeline import LLMSettings
from pop_nb.models.seed import Seed
from pop_nb.pipeline.load import Pipeline
from pop_nb.store.atomic import read_json
from pop_nb.store.jobs import JobFolder


def stage_context(
    settings: PopSettings,
    pipeline: Pipeline,
    seed: Seed,
    job: JobFolder,
    routes: Routes,
    name: str,
    selected: Callable[[str, str, Any], None],
) -> StageContext:
    """What every stage of task ``name`` is given (:class:`StageContext`): its LLM settings (pipeline,
    seed, task; an expert's best usable model, ``selected`` told which and why), its inputs (the final
    outputs of the tasks it needs, or their fallbacks'), config, personality, schema and budgets."""
    spec, pipe = pipeline.task(name), pipeline.spec
    mine = seed.tasks.get(name)  # what the seed changes of this task
    layers = [(pipe.llm, pipeline.dir), (seed.llm, settings.root), (spec.llm, pipeline.dir)]
    layers.append((mine.llm if mine else None, settings.root))
    llm = LLMSettings.layered(*layers)
    if settings.llm_cache is not None:  # the operator's word (CI's replay) wins over every file
        llm = llm.merged({"cache": settings.llm_cache})
    elif any(layer is not None and layer.cache == "replay" for layer, _ in layers):
        llm = llm.merged({"cache": "replay"})  # a promise that nothing is sent: no other layer breaks it
    fallbacks: list[str] = []
    explicit = any(layer is not None and layer.model for layer, _ in layers[1:])
    if spec.expert and not explicit:
        ranked = _select(settings, pipeline, name, spec.expert, llm, selected)
        llm, fallbacks = llm.merged({"model": ranked[0]}), ranked[1:]
    schema = pipeline.output_schema(name)
    inputs = {}
    for up in sorted(routes.ancestors(name)):
        source = routes.provider_of(up)
        if source is not None:
            inputs[up] = job.rel(job.final_output(source))
    return StageContext(
        job=job.job_id,
        pipeline=pipe.name,
        task=name,
        config=task_config(pipeline, seed, name),
        llm=llm,
        default_model=settings.default_model,
        personality=resolve_personality(
            (mine and mine.personality) or spec.personality or pipe.personality, pipeline.dir.parent
        ),
        inputs=inputs,
        max_refinements=spec.max_refinements,
        output_schema=schema,
        output_example=spec.output.example if spec.output else None,
        price_overrides=settings.prices,
        fallback_models=fallbacks,
        budget_usd=seed.budget_usd if seed.budget_usd is not None else pipe.budget_usd,
        task_budget_usd=spec.budget_usd,
        cache_dir=str(shared_store(settings.data).root),
    )


def _select(
    settings: PopSettings,
    pipeline: Pipeline,
    task: str,
    role: str,
    llm: LLMSettings,
    selected: Callable[[str, str, Any], None],
) -> list[str]:
    """The expert's usable candidates, best first; ``selected`` is told the choice and why."""
    from pop_nb.llm.selection import select_model

    pipe = pipeline.spec
    choice = select_model(
        role,
        pipe.experts[role],
        pipe.selection,
        {**settings.model_scores, **pipe.model_scores},
        llm.model_dump(exclude_none=True),
        settings.prices,
    )
    selected(task, role, choice)
    return choice.ranked


def task_config(pipeline: Pipeline, seed: Seed, name: str) -> dict[str, Any]:
    """The task's ``config``, the seed's ``config.<task>`` over the pipeline's."""
    override = seed.config.get(name)
    return {**pipeline.task(name).config, **(override if isinstance(override, dict) else {})}


def input_values(job: JobFolder, routes: Routes, name: str) -> dict[str, Any]:
    """The final outputs of every task ``name`` depends on (what its ``condition`` reads)."""
    values = {}
    for up in routes.ancestors(name):
        source = routes.provider_of(up)
        path = job.final_output(source) if source else None
        values[up] = read_json(path) if path and path.exists() else None
    return values
