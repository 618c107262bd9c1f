"""Seeds (what a job runs on) and job ids (which are never trusted as paths)."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from pydantic import ConfigDict, Field

from pop_nb.errors import SeedError, SeedTooLarge
from pop_nb.models.base import Model
from pop_nb.models.ids import JOB_ID_RE
from pop_nb.models.pipeline import SLUG_PATTERN, LLMSettings

MAX_SEED_DEPTH = 64  # arrays and objects inside each other; real seeds stay far below
MAX_SEED_BYTES = 1 << 20  # a seed's JSON as given (a file, a request body), or as compact JSON (a value)


class TaskOverride(Model):
    """A seed's changes to one task, over the pipeline's definition of it."""

    model_config = ConfigDict(extra="forbid")

    notebook: str | None = Field(
        default=None, description="A notebook in the project (relative to its root) run in its place"
    )
    llm: LLMSettings | None = Field(default=None, description="Over the task's own llm settings")
    personality: str | None = None


class Seed(Model):
    model_config = ConfigDict(extra="forbid")

    pipeline: str = Field(pattern=SLUG_PATTERN)
    name: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    llm: LLMSettings | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    tasks: dict[str, TaskOverride] = Field(
        default_factory=dict,
        description="What this job changes of a task: its notebook, its llm settings, its personality "
        "(an experiment's variant)",
    )
    budget_usd: float | None = Field(default=None, ge=0)


def check_job_id(job_id: str) -> str:
    """Return ``job_id`` if it is safe to use as a folder name, else raise :class:`SeedError`."""
    if not isinstance(job_id, str) or not JOB_ID_RE.fullmatch(job_id):
        shown = job_id if isinstance(job_id, str) and len(job_id) <= 80 else f"{str(job_id)[:80]}..."
        raise SeedError(
            "bad_id",
            f"job id {shown!r} is not allowed: use 1-128 characters from A-Z a-z 0-9 _ -, "
            "starting with a letter or digit",
        )
    return job_id


def new_job_id(slug: str) -> str:
    """A fresh, sortable id: ``<slug>-<yyyymmddThhmmss>-<6 hex>``."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    return check_job_id(f"{slug}-{stamp}-{secrets.token_hex(3)}")


def shown_name(name: str) -> str:
    """A file name as text that can be printed and written as UTF-8: bytes that are not UTF-8 (kept by
    Python as surrogate escapes) appear as ``\\xff``."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def json_depth(value: Any, limit: int = MAX_SEED_DEPTH) -> int:
    """How deeply arrays and objects nest in ``value``, counted without recursion; stops past ``limit``."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        node, depth = todo.pop()
        if not isinstance(node, dict | list):
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            break
        todo.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def check_seed_size(size: int, where: str) -> None:
    if size > MAX_SEED_BYTES:
        raise SeedTooLarge(where, size, MAX_SEED_BYTES)


def loads_seed(raw: bytes | str, where: str) -> Any:
    """Parse seed JSON from an untrusted source; every way it can be wrong is a :class:`SeedError`
    (``too_large``, ``not_utf8``, ``bad_json``, ``too_deep``), never a crash of the caller."""
    check_seed_size(len(raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else raw), where)
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise SeedError("not_utf8", f"{where} is not UTF-8 text (binary?); a seed is a JSON file") from None
    from pop_nb.safejson import nesting_over

    if nesting_over(text, MAX_SEED_DEPTH):  # never let the parser reach the recursion limit
        raise too_deep(where)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SeedError(
            "bad_json", f"{where} is not valid JSON: {exc}. Fix the JSON and submit it again"
        ) from None
    except RecursionError:
        raise too_deep(where) from None
    if json_depth(value) > MAX_SEED_DEPTH:
        raise too_deep(where)
    return value


def too_deep(where: str) -> SeedError:
    return SeedError(
        "too_deep",
        f"{where} nests arrays/objects more than {MAX_SEED_DEPTH} levels deep; flatten the data, or put it "
        "in a file the task reads and pass the file's path in the seed",
    )


def parse_seed(value: Any, where: str, pipeline: str | None = None) -> Seed:
    """The one rule for a seed, from any source (a dropped file, ``pop run``/``submit``/``batch``,
    ``pop_nb.run``, the API): an object, at most :data:`MAX_SEED_DEPTH` deep and :data:`MAX_SEED_BYTES`
    as compact JSON, of :class:`Seed`'s shape. ``pipeline``: the pipeline it is sent to; a seed that
    names another is refused (never quietly re-aimed), one that names none is for it. Raises
    :class:`SeedError` whose ``reason`` is what ``rejected/`` records."""
    from pydantic import ValidationError

    if not isinstance(value, dict):
        raise SeedError(
            "invalid_seed",
            f"{where} holds a JSON {type(value).__name__}, not an object. Fix: a seed looks like "
            '{"pipeline": "<slug>", "data": {...}}',
        )
    if json_depth(value) > MAX_SEED_DEPTH:
        raise too_deep(where)
    try:
        # allow_nan=False: NaN and 1e999 (infinity) are not JSON; Python reads them, and they would reach
        # the task as null
        size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode())
    except (TypeError, ValueError) as exc:
        raise SeedError("invalid_seed", f"{where} is not JSON data ({exc}). Fix: pass JSON values") from None
    check_seed_size(size, where)
    if pipeline is not None:
        named = value.get("pipeline", pipeline)
        if named != pipeline:
            raise SeedError(
                "invalid_seed",
                f"{where} names pipeline {named!r} but was sent to {pipeline!r}. "
                "Fix: drop the seed's pipeline key or send it to that pipeline",
            )
        value = {**value, "pipeline": pipeline}
    try:
        return Seed.model_validate(value)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors())
        raise SeedError(
            "invalid_seed",
            f'{where}: {problems}. Fix: a seed looks like {{"pipeline": "<slug>", "data": {{...}}}}',
        ) from None
