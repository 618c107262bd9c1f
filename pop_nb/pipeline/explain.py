"""``pop compile <slug> --explain``: what a pipeline is for, how it runs, and whether the second serves
the first.

- **Architecture**: the control flow as a numbered list, written from the compiled definition itself
  (order, needs, conditions, refine loops, retries, fallbacks, gates, models, products), so it is
  exact whatever model is asked.
- **Intention** (3-10 sentences of Markdown) and the **alignment** verdict with findings: written by
  the pipeline's model, from the description, the seed schema, the task notebooks' stage cells and
  the architecture. The call goes through :func:`pop_nb.llm.chat` like any stage's: priced, logged in
  ``<pipeline>/.explain/usage.jsonl``, replayable.

The result is saved as ``<pipeline>/explain.json``, keyed by the content hash of the definition and
every file it names (notebooks, schemas): explaining an unchanged pipeline again costs nothing.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from pop_nb.errors import PopError
from pop_nb.models.pipeline import LLMSettings, ProductSpec
from pop_nb.models.status import now_iso
from pop_nb.store.atomic import atomic_write_json, read_json

if TYPE_CHECKING:
    from pop_nb.pipeline.load import Pipeline

FILE = "explain.json"
LEDGER = ".explain"
SOURCE_CHARS = 1500  # of each task's stage cells, in the prompt
TASK = "_compile"  # what a mock script answers under: `_compile: {explain: ...}`

ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["intention", "aligned", "findings"],
    "properties": {
        "intention": {"type": "string", "minLength": 40, "maxLength": 2000},
        "aligned": {"type": "boolean"},
        "findings": {
            "type": "array",
            "maxItems": 10,
            "items": {
                "type": "object",
                "required": ["severity", "finding", "fix"],
                "properties": {
                    "severity": {"enum": ["error", "warning", "info"]},
                    "finding": {"type": "string", "minLength": 5, "maxLength": 500},
                    "fix": {"type": "string", "maxLength": 500},
                },
                "additionalProperties": False,
            },
        },
    },
    "additionalProperties": False,
}

SYSTEM = (
    "You review LLM pipelines. Write plainly, in the third person, with no greeting and no questions. "
    "Answer with JSON only."
)
PROMPT = """Pipeline {slug}: {description}

Seed schema (what each job starts from):
{seed_schema}

Architecture (exact, from the definition):
{architecture}

Each task's stage cells (what its notebook runs):
{sources}

1. "intention": 3 to 10 sentences of Markdown saying what this pipeline is for, what it takes and what
   it produces, as its notebooks show it (not only as the description says).
2. "aligned": whether the architecture serves that intention.
3. "findings": what does not serve it (severity error or warning) or could serve it better (info),
   each with a concrete "fix". An empty list when there is nothing to say."""


class ExplainError(PopError):
    """The model's explanation could not be had or does not have the shape asked for."""


def content_hash(pipeline: Pipeline) -> str:
    """sha256 of the definition and every file it names: what the explanation is of."""
    digest = hashlib.sha256(pipeline.text.encode())
    for name, path in sorted(pipeline.named_files().items()):
        digest.update(name.encode() + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"(missing)")
    return digest.hexdigest()


def first_candidate(pipeline: Pipeline) -> str | None:
    """A pipeline that names models only by role: its first role's first candidate."""
    for models in pipeline.spec.experts.values():
        if models:
            return models[0]
    return None


def architecture(pipeline: Pipeline) -> list[str]:
    """The control flow, one numbered step per task in the order they can run, then the products."""
    from pop_nb.pipeline.task_notebook import load_task_notebook

    spec = pipeline.spec
    routed: dict[str, list[str]] = {}
    for source, task in spec.tasks.items():
        for target in (task.on_success, task.on_false, task.on_failure):
            if target in spec.tasks:
                routed.setdefault(target, []).append(source)
    steps = []
    for number, name in enumerate(pipeline.topological_order(), 1):
        task = spec.tasks[name]
        book = load_task_notebook(pipeline.notebook_home(name))
        stages = list(book.stages)
        calls = any(".chat(" in book.stage_source(stage) for stage in stages)
        parts = [f"{number}. **{name}** ({task.notebook})"]
        parts.append(f"after {', '.join(task.needs)}" if task.needs else "first, from the seed")
        if task.condition:
            otherwise = {"fail": "fails the job", "skip": "is skipped"}.get(
                task.on_false, f"{task.on_false} runs instead"
            )
            parts.append(f"runs only if `{task.condition}`, else {otherwise}")
        parts.append("stages " + " -> ".join(stages) if stages else "no stage cells")
        model = (task.llm.model if task.llm and task.llm.model else None) or (
            f"expert {task.expert} ({spec.selection}: {', '.join(spec.experts.get(task.expert, []))})"
            if task.expert
            else spec.llm.model
        )
        if not calls:
            parts.append("no model calls")
        elif model:
            parts.append(f"model {model}")
        if task.output_schema:
            parts.append(f"output checked against {task.output_schema}")
        elif task.output is not None and task.output.format == "json":
            parts.append(f"output: JSON shaped like {json.dumps(task.output.example, ensure_ascii=False)}")
        elif task.output is not None:
            parts.append("output: plain text")
        if task.max_refinements:
            parts.append(
                f"critique/refine loop, at most {task.max_refinements} "
                f"pass{'' if task.max_refinements == 1 else 'es'}, when validation fails"
            )
        if task.retries:
            parts.append(f"{task.retries} retr{'y' if task.retries == 1 else 'ies'} on error")
        if name in routed:
            parts.append(f"runs only when routed to (by {', '.join(routed[name])})")
        if task.on_success:
            parts.append(f"on success: {task.on_success} runs")
        if task.on_failure != "fail":
            parts.append(f"on failure: {task.on_failure} instead")
        if task.gate:
            parts.append("then waits for approval (`pop approve` / `pop reject`)")
        if task.budget_usd is not None:
            parts.append(f"budget ${task.budget_usd:g}")
        steps.append("; ".join(parts))
    if spec.products:
        made = ", ".join(_product(p) for p in spec.products)
        steps.append(f"{len(steps) + 1}. Products: {made}")
    if spec.budget_usd is not None:
        steps.append(
            f"{len(steps) + 1}. The job stops before a call that could pass ${spec.budget_usd:g} in all"
        )
    return steps


def saved(pipeline: Pipeline) -> dict[str, Any] | None:
    """The saved explanation if it is of the pipeline as it is now, else None."""
    try:
        found = read_json(pipeline.dir / FILE)
    except (OSError, ValueError):
        return None
    if not isinstance(found, dict) or found.get("hash") != content_hash(pipeline):
        return None
    shape = {"intention": str, "architecture": list, "aligned": bool, "findings": list, "model": str}
    if not all(isinstance(found.get(key), kind) for key, kind in shape.items()):
        return None  # edited by hand into something else: explained again when asked
    return found


def explain(
    pipeline: Pipeline, default_model: str, model: str | None = None, refresh: bool = False
) -> tuple[dict[str, Any], bool]:
    """The explanation of ``pipeline`` (by ``model``, else the pipeline's, else its first expert's first
    candidate, else ``default_model``) and
    whether it was just written (False: the saved one, still of this pipeline and model: no call)."""
    found = None if refresh else saved(pipeline)
    if found is not None and (model is None or found.get("model") == model):
        return found, False
    from pop_nb.llm.client import Attribution, chat
    from pop_nb.llm.ledger import Ledger
    from pop_nb.llm.structured import apply_schema
    from pop_nb.pipeline.schemas import schema_errors

    steps = architecture(pipeline)
    llm = pipeline.spec.llm.anchored(pipeline.dir)  # as in its stages
    model = llm.model_for(model, first_candidate(pipeline) or default_model)
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": _prompt(pipeline, steps)},
    ]
    messages, params = apply_schema(model, ANSWER_SCHEMA, "explanation", messages, {})
    reply = chat(
        messages,
        model=model,
        settings=LLMSettings.model_validate({**llm.model_dump(exclude_none=True), "model": model}),
        attribution=Attribution(pipeline=pipeline.slug, task=TASK, stage="explain"),
        ledger=Ledger(pipeline.dir / LEDGER),
        cache="off",  # explain.json is the cache; asked again (a changed pipeline or model), ask anew
        **params,
    )
    try:
        answer = reply.json()
    except ValueError as exc:
        raise ExplainError(
            f"{model} did not answer with JSON ({exc}): {reply.content[:300]!r}. "
            "Fix: run it again with --model <a model that follows JSON instructions>"
        ) from None
    problems = schema_errors(ANSWER_SCHEMA, answer, "explanation")
    if problems:
        raise ExplainError(
            f"{model}'s explanation has the wrong shape: {'; '.join(problems[:5])}. "
            "Fix: run it again with --model <a model that follows JSON instructions>"
        )
    result = {
        "hash": content_hash(pipeline),
        "model": model,
        "explained_at": now_iso(),
        "cost_usd": reply.cost_usd,
        "intention": answer["intention"].strip(),
        "architecture": steps,
        "aligned": answer["aligned"],
        "findings": answer["findings"],
    }
    atomic_write_json(pipeline.dir / FILE, result)
    return result, True


def _prompt(pipeline: Pipeline, steps: list[str]) -> str:
    from pop_nb.pipeline.task_notebook import load_task_notebook

    sources = []
    for name in pipeline.topological_order():
        book = load_task_notebook(pipeline.notebook_home(name))
        text = "\n".join(f"# [{stage}]\n" + book.stage_source(stage) for stage in book.stages)
        sources.append(f"## {name}\n{text[:SOURCE_CHARS]}")
    schema_path = pipeline.seed_schema_path()
    seed_schema = schema_path.read_text(encoding="utf-8")[:SOURCE_CHARS] if schema_path else "(none)"
    return PROMPT.format(
        slug=pipeline.slug,
        description=pipeline.spec.description or "(no description)",
        seed_schema=seed_schema,
        architecture="\n".join(steps),
        sources="\n\n".join(sources),
    )


def as_markdown(result: dict[str, Any]) -> str:
    lines = ["## Intention", "", result["intention"], "", "## Architecture", "", *result["architecture"], ""]
    lines += ["## Alignment: " + ("aligned" if result["aligned"] else "MISALIGNED"), ""]
    for f in result["findings"]:
        lines.append(f"- [{f['severity']}] {f['finding']}" + (f" Fix: {f['fix']}" if f.get("fix") else ""))
    if not result["findings"]:
        lines.append("- nothing to report")
    return "\n".join(lines) + "\n"


__all__ = ["ANSWER_SCHEMA", "ExplainError", "architecture", "as_markdown", "content_hash", "explain", "saved"]


def _product(product: ProductSpec) -> str:
    if product.kind == "zip":
        return f"{product.path} (zip of the files {product.from_} wrote, with a manifest of sizes and sha256)"
    source = product.from_ + (f".{product.key}" if product.key else "")
    return f"{product.path} ({product.kind}, from {source})"
