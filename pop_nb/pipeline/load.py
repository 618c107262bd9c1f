"""Find pipelines (``pipelines/*/pipeline.yaml`` plus ``pipelines/registry.yaml``) and load them."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pop_nb.errors import PipelineError, PipelineNotFound, Problem
from pop_nb.models.pipeline import PipelineSpec, TaskSpec


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate keys (YAML silently keeps the last one otherwise)."""


def _construct_mapping(
    loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False
) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {seen[key] + 1})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)


def yaml_problem(path: Path, exc: yaml.YAMLError) -> Problem:
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    what = getattr(exc, "problem", None) or str(exc)
    return Problem(path, where, f"YAML does not parse: {what}", "correct the YAML syntax at that position")


@dataclass
class Pipeline:
    """A loaded pipeline: where it lives, its text, and its validated spec."""

    slug: str
    file: Path
    text: str
    spec: PipelineSpec
    files: dict[str, Path] = field(default_factory=dict)
    """A job's snapshot of the files the definition names (see :mod:`pop_nb.pipeline.snapshot`)."""

    @property
    def dir(self) -> Path:
        return self.file.parent

    @cached_property
    def content_hash(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]

    @property
    def intention(self) -> str | None:
        """What the pipeline is for, as ``pop compile --explain`` last wrote it; None if it was never
        explained, or was changed since (notebooks and schemas included)."""
        from pop_nb.pipeline.explain import saved

        found = saved(self)
        return str(found["intention"]) if found else None

    @property
    def architecture(self) -> list[str]:
        """Its control flow as numbered steps, from the definition (see :mod:`pop_nb.pipeline.explain`)."""
        from pop_nb.pipeline.explain import architecture

        return architecture(self)

    def task(self, name: str) -> TaskSpec:
        return self.spec.tasks[name]

    def named_files(self) -> dict[str, Path]:
        """Every file the definition names, by the name a job's snapshot keeps it under
        (``notebooks/<task>.ipynb``, ``schemas/<task>.json``, ``seed_schema.json``)."""
        files = {}
        for name, task in self.spec.tasks.items():
            files[f"notebooks/{name}.ipynb"] = self.notebook_path(name)
            if task.output_schema:
                files[f"schemas/{name}.json"] = self.resolve(task.output_schema)
        if self.spec.seed_schema:
            files["seed_schema.json"] = self.resolve(self.spec.seed_schema)
        return files

    def with_notebooks(self, swaps: dict[str, Path]) -> Pipeline:
        """This pipeline with some tasks' notebooks swapped for others (a seed's ``notebooks``); their
        kernels still start in the task's own folder, so what the notebook reads by path stays found."""
        files = {**self.files, **{f"notebooks/{task}.ipynb": path for task, path in swaps.items()}}
        return Pipeline(slug=self.slug, file=self.file, text=self.text, spec=self.spec, files=files)

    def resolve(self, relative: str) -> Path:
        """A path named in the YAML, relative to the pipeline's folder."""
        return (self.dir / relative).resolve()

    def notebook_path(self, task: str) -> Path:
        """The task notebook to run: the job's snapshot of it, else the live file."""
        return self.files.get(f"notebooks/{task}.ipynb") or self.notebook_home(task)

    def notebook_home(self, task: str) -> Path:
        """Where the task notebook lives in the project: its folder is where a stage's kernel starts."""
        return self.resolve(self.spec.tasks[task].notebook)

    def output_schema(self, task: str) -> dict[str, Any] | None:
        """The JSON Schema the task's output is checked against: its ``output_schema`` file (the job's
        snapshot of it, in a job), or the shape of its ``output`` declaration."""
        spec = self.spec.tasks[task]
        if spec.output_schema is not None:
            file = self.files.get(f"schemas/{task}.json") or self.resolve(spec.output_schema)
            return json.loads(file.read_text(encoding="utf-8"))  # type: ignore[no-any-return]
        if spec.output is None:
            return None
        if spec.output.format == "string":
            return {"type": "string"}
        from pop_nb.pipeline.schemas import schema_from_example

        return schema_from_example(spec.output.example)

    def seed_schema_path(self) -> Path | None:
        if self.spec.seed_schema is None:
            return None
        return self.files.get("seed_schema.json") or self.resolve(self.spec.seed_schema)

    def topological_order(self) -> list[str]:
        """Tasks ordered so each comes after what it needs (ties kept in YAML order)."""
        order: list[str] = []
        placed: set[str] = set()
        pending = list(self.spec.tasks)
        while pending:
            ready = [t for t in pending if set(self.spec.tasks[t].needs) <= placed]
            if not ready:  # a cycle; compile reports it, here we keep what we have
                return order + pending
            for t in ready:
                order.append(t)
                placed.add(t)
                pending.remove(t)
        return order

    def downstream(self, task: str) -> set[str]:
        """``task`` and every task that needs it, directly or not."""
        found = {task}
        changed = True
        while changed:
            changed = False
            for name, spec in self.spec.tasks.items():
                if name not in found and found & set(spec.needs):
                    found.add(name)
                    changed = True
        return found


def pipelines_dir(root: Path) -> Path:
    return root / "pipelines"


def discover(root: Path) -> dict[str, Path]:
    """``slug -> pipeline.yaml`` for every pipeline under ``root``; registry entries win over the scan."""
    found: dict[str, Path] = {}
    base = pipelines_dir(root)
    for file in sorted(base.glob("*/pipeline.yaml")):
        found[file.parent.name] = file
    registry = base / "registry.yaml"
    if registry.is_file():
        entries = load_yaml(registry) or {}
        if not isinstance(entries, dict):
            raise PipelineError(
                "registry",
                [
                    Problem(
                        registry,
                        "",
                        "must be a mapping of slug: path",
                        "write lines like `my-slug: path/to/dir`",
                    )
                ],
            )
        for slug, target in entries.items():
            path = (registry.parent / str(target)).expanduser()
            found[str(slug)] = path / "pipeline.yaml" if path.is_dir() or path.suffix == "" else path
    return found


def parse_spec(file: Path, text: str) -> tuple[PipelineSpec | None, list[Problem]]:
    """Parse and validate the YAML; every schema problem names its key and the fix."""
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        return None, [yaml_problem(file, exc)]
    if not isinstance(raw, dict):
        return None, [Problem(file, "", "must be a YAML mapping", "start from `pop init`'s example")]
    try:
        return PipelineSpec.model_validate(raw), []
    except ValidationError as exc:
        return None, [_problem_from_pydantic(file, err) for err in exc.errors()]


def _problem_from_pydantic(file: Path, err: Any) -> Problem:
    import difflib

    loc = [str(p) for p in err["loc"]]
    key = ".".join(loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        close = difflib.get_close_matches(loc[-1], allowed, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return Problem(file, key, "unknown key", f"{hint}remove it; allowed here: {', '.join(allowed)}")
    if kind == "missing":
        return Problem(file, key, "required key is missing", f"add `{loc[-1]}:`")
    if kind == "string_pattern_mismatch" and loc[-1] == "name":
        return Problem(
            file, key, f"{err['input']!r} is not a slug", "use lowercase letters, digits and dashes"
        )
    return Problem(file, key, err["msg"], "see the pipeline.yaml reference in DESIGN.md / README.md")


def _allowed_keys(parent: list[str]) -> list[str]:
    from pop_nb.models.pipeline import ProductSpec

    if not parent:
        model: type[Any] = PipelineSpec
    elif parent[0] == "tasks":
        model = TaskSpec
    elif parent[0] == "products":
        model = ProductSpec
    else:
        return []
    return sorted(f.alias or name for name, f in model.model_fields.items())


def load_pipeline(root: Path, slug: str) -> Pipeline:
    """Load ``slug`` from ``root``; raises :class:`PipelineError` on any schema problem."""
    known = discover(root)
    file = known.get(slug)
    if file is None or not file.is_file():
        raise PipelineNotFound(slug, [pipelines_dir(root)], sorted(known))
    return load_pipeline_file(file, slug)


def load_pipeline_file(file: Path, slug: str | None = None) -> Pipeline:
    text = file.read_text(encoding="utf-8")
    spec, problems = parse_spec(file, text)
    if spec is None:
        raise PipelineError(slug or file.parent.name, problems)
    return Pipeline(slug=slug or spec.name, file=file.resolve(), text=text, spec=spec)
