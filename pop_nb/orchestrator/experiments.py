"""``pop experiment run``: a pipeline over a dataset, once per variant.

Each variant is a batch named ``exp-<name>-<variant>`` (through the executor seam, so it runs here or
on Celery workers) whose jobs are the dataset's items x repeats, with cache mode ``read-write`` and the
repeat as ``llm.sample``; running it again keeps what is done, resumes what failed, and every call
already answered comes from the response cache. Comparing is :mod:`pop_nb.orchestrator.experiment_compare`.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from pop_nb.config import PopSettings
from pop_nb.errors import DatasetError, ExperimentNotFound, PopError, did_you_mean
from pop_nb.models.batch import BatchSummary
from pop_nb.models.experiment import ExperimentSpec, Item, Variant
from pop_nb.models.seed import TaskOverride

if TYPE_CHECKING:
    from pop_nb.orchestrator.batch import Progress


@dataclass
class Experiment:
    name: str
    file: Path
    spec: ExperimentSpec

    @property
    def dataset(self) -> Path:
        return (self.file.parent / self.spec.dataset).resolve()

    def batch_name(self, variant: str) -> str:
        safe = re.sub(r"[^A-Za-z0-9_-]", "-", variant)
        return f"exp-{self.name}-{safe}"


NAME = r"[A-Za-z0-9][A-Za-z0-9_-]{0,47}"


def files(settings: PopSettings) -> dict[str, Path]:
    """Every experiment's file by name: ``experiments/<name>.yaml`` in the project, else
    ``pipelines/<slug>/experiments/<name>.yaml`` (the first one a name has)."""
    places = [settings.root / "experiments", *sorted((settings.root / "pipelines").glob("*/experiments"))]
    found: dict[str, Path] = {}
    for place in places:
        for file in sorted(place.glob("*.yaml")):
            if re.fullmatch(NAME, file.stem) and file.is_file():
                found.setdefault(file.stem, file)
    return found


def find(settings: PopSettings, name: str) -> Experiment:
    """The experiment ``name`` (:func:`files`), its file read and checked."""
    if not re.fullmatch(NAME, name):
        raise PopError(
            f"experiment {name[:60]!r}: a name is 1-48 of A-Z a-z 0-9 _ - (the file experiments/<name>.yaml)"
        )
    known = files(settings)
    if name not in known:
        raise ExperimentNotFound(
            f"no experiment {name!r} in {settings.root / 'experiments'} or pipelines/*/experiments/"
            f"{did_you_mean(name, list(known))} (known: {', '.join(sorted(known)) or 'none'})"
        )
    return load(name, known[name])


def load(name: str, file: Path) -> Experiment:
    import yaml
    from pydantic import ValidationError

    try:
        spec = ExperimentSpec.model_validate(yaml.safe_load(file.read_text(encoding="utf-8")) or {})
    except (ValidationError, yaml.YAMLError) as exc:
        raise DatasetError(f"{file} is not an experiment: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{file} cannot be read ({exc}). Fix: a UTF-8 YAML file") from None
    return Experiment(name, file, spec)


def items(experiment: Experiment, where: list[tuple[int, int]] | None = None) -> Iterator[tuple[str, Item]]:
    """The dataset's items with their ids, read a line at a time (a dataset of any length streams);
    ``where`` gets each one's place in the file (``datasets.read_lines``)."""
    from pop_nb.orchestrator.datasets import read_lines

    fix = f'write it (the dataset of {experiment.file}): one {{"id", "data", "expected"}} a line'
    yield from read_lines(experiment.dataset, Item, "an item", _ident, fix, where=where)


def _ident(item: Item, number: int) -> str:
    return item.id or f"item-{number}"


class VariantSeeds(Sequence[tuple[str, "dict[str, Any] | str"]]):
    """A variant's seeds, an item x repeat each, made when the batch asks for one: only each item's place
    in the dataset is held (two numbers), so a dataset of 100,000 lines is never in memory whole.

    A seed is ``{pipeline, name: <experiment>/<variant>/<item>#<repeat>, data, llm: {...the variant's,
    cache: read-write, sample: <repeat>}, config, tasks}``; files the variant names (a mock script, a
    task's notebook) are relative to the experiment's file."""

    def __init__(
        self,
        settings: PopSettings,
        experiment: Experiment,
        name: str,
        variant: Variant,
        places: list[tuple[int, int]],
    ) -> None:
        self.experiment, self.name, self.places = experiment, name, places
        self.repeat, self.dataset = experiment.spec.repeat, experiment.dataset
        llm = variant.llm.anchored(experiment.file.parent) if variant.llm else None
        same = {  # what every seed of the variant has, worked out once
            "pipeline": experiment.spec.pipeline,
            "llm": {**variant.model_copy(update={"llm": llm}).seed_llm(), "cache": "read-write"},
            "config": {task: dict(values) for task, values in variant.config.items()},
            "tasks": {
                task: change.model_dump(mode="json", exclude_none=True)
                for task, change in seed_tasks(settings, experiment, variant).items()
            },
        }
        self._same = json.dumps(same)  # each seed parses its own copy: whoever reads one may change it

    def __len__(self) -> int:
        return len(self.places) * self.repeat

    @overload
    def __getitem__(self, index: int) -> tuple[str, dict[str, Any] | str]: ...
    @overload
    def __getitem__(self, index: slice) -> list[tuple[str, dict[str, Any] | str]]: ...
    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        from pop_nb.orchestrator.datasets import read_line

        line, repeat = divmod(index % len(self), self.repeat)
        offset, number = self.places[line]
        item = read_line(self.dataset, offset, number, Item, "an item")
        source = f"{_ident(item, number)}#{repeat}"
        seed = json.loads(self._same)
        seed["llm"]["sample"] = repeat
        seed.update(name=f"{self.experiment.name}/{self.name}/{source}", data=item.data)
        return source, seed


def check(settings: PopSettings, experiment: Experiment) -> None:
    """What can be refused before anything runs: the pipeline, the tasks a variant configures."""
    import jsonschema

    from pop_nb.pipeline.compile import compile_pipeline
    from pop_nb.safejson import loads

    pipeline = compile_pipeline(settings.root, experiment.spec.pipeline)
    tasks = list(pipeline.spec.tasks)
    for scorer in experiment.spec.scorers:
        if scorer.notebook is not None:
            notebook = experiment.file.parent / scorer.notebook
            if notebook.suffix != ".ipynb" or not notebook.is_file():
                raise DatasetError(
                    f"{experiment.file}: scorer {scorer.name!r}: its notebook {scorer.notebook} is not a "
                    "notebook file. Fix: the path of an .ipynb, relative to the experiment"
                )
            continue
        task = scorer.path.split(".", 1)[0]
        if task not in tasks:
            raise DatasetError(
                f"{experiment.file}: scorer {scorer.name!r} reads {scorer.path}, but "
                f"{experiment.spec.pipeline} has no task {task!r}.{did_you_mean(task, tasks)}"
            )
        if isinstance(scorer.schema_, str):
            try:
                loaded = loads((experiment.file.parent / scorer.schema_).read_bytes())
                jsonschema.Draft202012Validator.check_schema(loaded)
            except (OSError, ValueError, jsonschema.SchemaError) as exc:
                raise DatasetError(
                    f"{experiment.file}: scorer {scorer.name!r}: its schema {scorer.schema_} cannot be used "
                    f"({getattr(exc, 'message', exc)}). Fix: a JSON Schema file, relative to the experiment"
                ) from None
    from pop_nb.pipeline.compile import model_problems, with_seed_tasks

    for name, variant in experiment.spec.all_variants().items():
        for task in variant.config:
            if task not in tasks:
                raise DatasetError(
                    f"{experiment.file}: variant {name!r} configures task {task!r}, which "
                    f"{experiment.spec.pipeline} does not have.{did_you_mean(task, tasks)}"
                )
        where = f"{experiment.file}: variant {name!r}"
        try:
            with_seed_tasks(pipeline, settings.root, seed_tasks(settings, experiment, variant), where)
        except PopError as exc:
            raise DatasetError(str(exc)) from None
        problems = model_problems(experiment.file, variant.models(), settings.prices)
        if problems:
            raise DatasetError(f"{where}: " + "; ".join(str(p) for p in problems))


def run(
    settings: PopSettings,
    experiment: Experiment,
    *,
    only: set[str] | None = None,
    concurrency: int | None = None,
    executor: str | None = None,
    on_variant: Callable[[str, BatchSummary], None] | None = None,
    on_progress: Callable[[str, Progress], None] | None = None,
) -> dict[str, BatchSummary]:
    """Run each variant (those in ``only``, if given) as a batch; returns each one's summary."""
    from pop_nb.orchestrator.batch import BatchRun

    check(settings, experiment)
    variants = experiment.spec.all_variants()
    unknown = sorted((only or set()) - set(variants))
    if unknown:
        raise PopError(f"--only {', '.join(unknown)}: no such variant{did_you_mean(unknown[0], variants)}")
    places: list[tuple[int, int]] = []
    for _ in items(experiment, places):  # every line checked before anything runs; only places kept
        pass
    summaries = {}
    for name, variant in variants.items():
        if only and name not in only:
            continue
        batch = BatchRun(
            settings,
            experiment.spec.pipeline,
            experiment.batch_name(name),
            VariantSeeds(settings, experiment, name, variant, places),
            concurrency=concurrency,
            executor=executor,
            on_progress=None if on_progress is None else functools.partial(on_progress, name),
        )
        summaries[name] = batch.run()
        if on_variant is not None:
            on_variant(name, summaries[name])
    return summaries


def seed_tasks(settings: PopSettings, experiment: Experiment, variant: Variant) -> dict[str, TaskOverride]:
    """A variant's ``tasks`` as a seed names them: a notebook relative to the project's root (the
    variant names it relative to the experiment's file), llm files anchored at the experiment."""
    import os

    found = {}
    here = experiment.file.parent
    for task, change in variant.tasks.items():
        notebook = change.notebook
        if notebook is not None:
            notebook = os.path.relpath((here / notebook).resolve(), settings.root.resolve())
        llm = change.llm.anchored(here) if change.llm else None
        found[task] = change.model_copy(update={"notebook": notebook, "llm": llm})
    return found
