"""``pop diff``: what changed between two jobs, task by task, or between the refine passes of one task.

For each task: the prompts sent (every call's messages, from the job's stored answers), the output
(compared as JSON: each changed, added or removed key by its path), the validation errors fixed and
new, and tokens and cost before and after. Rendered as text (:func:`text`) and as one self-contained
HTML file without script (:mod:`pop_nb.service.diff_html`).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from typing import Any

from pop_nb.config import PopSettings
from pop_nb.errors import PopError, did_you_mean
from pop_nb.models.compare import NOTHING as _NOTHING
from pop_nb.models.compare import Change, JobDiff, Side, TaskDiff
from pop_nb.store.jobs import JobFolder, JobStore


def diff_jobs(settings: PopSettings, job_a: str, job_b: str, task: str | None = None) -> JobDiff:
    """Task by task (or only ``task``), what differs between the final work of two jobs."""
    store = JobStore(settings.data)
    a, b = store.get(job_a), store.get(job_b)
    names = _task_names(a, b)
    if task is not None:
        _check_task(task, names, f"jobs {job_a} and {job_b}")
        names = [task]
    tasks = [_compare(name, _side(a, name, None, job_a), _side(b, name, None, job_b)) for name in names]
    return JobDiff(a=job_a, b=job_b, title=f"{job_a} -> {job_b}", tasks=tasks)


def diff_passes(
    settings: PopSettings, job: str, task: str, before: int | None = None, after: int | None = None
) -> JobDiff:
    """Between two refine passes of one task (default: its first answer and its last pass)."""
    folder = JobStore(settings.data).get(job)
    _check_task(task, _task_names(folder, folder), f"job {job}")
    passes = _passes(folder, task)
    first = passes[0] if before is None else before
    last = passes[-1] if after is None else after
    for n in (first, last):
        if n not in passes:
            raise PopError(
                f"job {job}, task {task}: no refine pass {n}; it has {', '.join(map(str, passes))} "
                "(0 is the first answer). Fix: --passes with two of them"
            )
    a, b = _side(folder, task, first, f"pass {first}"), _side(folder, task, last, f"pass {last}")
    title = f"{job} {task}: pass {first} -> {last}"
    return JobDiff(a=f"{job} pass {first}", b=f"{job} pass {last}", title=title, tasks=[_compare(task, a, b)])


def _task_names(a: JobFolder, b: JobFolder) -> list[str]:
    names = list(a.read_status().tasks)
    return names + [n for n in b.read_status().tasks if n not in names]


def _check_task(task: str, names: list[str], where: str) -> None:
    if task not in names:
        raise PopError(
            f"{where}: no task {task!r}.{did_you_mean(task, names)} Fix: one of {', '.join(names)}"
        )


def _passes(folder: JobFolder, task: str) -> list[int]:
    """The task's passes that left a validation: 0 (the first answer), then each refinement."""
    outputs = folder.task_dir(task) / "outputs"
    found = {0} if (outputs / "validation.json").exists() or not outputs.is_dir() else set()
    for file in outputs.glob("validation.r*.json"):
        suffix = file.name.removeprefix("validation.r").removesuffix(".json")
        if suffix.isdigit():
            found.add(int(suffix))
    return sorted(found) or [0]


def _read(path: Any) -> Any:
    from pop_nb.safejson import loads

    try:
        return loads(path.read_bytes())
    except (OSError, ValueError):
        return _NOTHING


def _output(folder: JobFolder, task: str, refinement: int | None) -> Any:
    """The task's final output (``refinement`` None), or what pass ``refinement`` produced."""
    from pop_nb.models.pipeline import STAGES

    if refinement is None:
        return _read(folder.final_output(task))
    if refinement > 0:
        return _read(folder.stage_output(task, "refine", refinement))
    for stage in reversed(STAGES[: STAGES.index("validateStructure")]):
        found = _read(folder.stage_output(task, stage))
        if found is not _NOTHING:
            return found
    return _NOTHING


def _errors(folder: JobFolder, task: str, refinement: int | None) -> list[str]:
    if refinement is None:
        refinement = _passes(folder, task)[-1]
    suffix = f".r{refinement}" if refinement else ""
    found = _read(folder.task_dir(task) / "outputs" / f"validation{suffix}.json")
    errors = found.get("errors") if isinstance(found, dict) else None
    return [str(e) for e in errors] if isinstance(errors, list) else []


def _side(folder: JobFolder, task: str, refinement: int | None, label: str) -> Side:
    """A task's side: its calls (all of them, or those of pass ``refinement``), output and errors."""
    from pop_nb.llm.cache import job_store
    from pop_nb.store import layout
    from pop_nb.store.atomic import read_jsonl

    side = Side(
        label=label,
        prompts="",
        output=_output(folder, task, refinement),
        errors=_errors(folder, task, refinement),
    )
    answers = job_store(folder.path)
    parts = []
    for row in read_jsonl(folder.path / layout.USAGE):
        if row.get("task") != task or (refinement is not None and row.get("refinement") != refinement):
            continue
        if row.get("ok") is not False:
            side.calls += 1
        side.cache_hits += 1 if row.get("cache_hit") else 0
        model = str(row.get("model"))
        if model not in side.models:
            side.models.append(model)
        side.saved_usd += float(row.get("saved_usd") or 0.0)
        side.input_tokens += int(row.get("input_tokens") or 0)
        side.output_tokens += int(row.get("output_tokens") or 0)
        side.cost_usd += float(row.get("cost_usd") or 0.0)
        entry = answers.get(str(row.get("cache_key"))) if row.get("cache_key") else None
        messages = (entry or {}).get("request", {}).get("messages")
        if isinstance(messages, list):
            stage = str(row.get("stage")) + (f".r{row['refinement']}" if row.get("refinement") else "")
            parts.append(f"## {stage}\n" + "\n".join(_message_text(m) for m in messages))
    side.prompts = "\n".join(parts)
    data = folder.path.parent.parent
    side.notebooks = [
        str(p.relative_to(data)) for p in sorted(folder.task_dir(task).glob("*.ipynb"))
        if refinement is None or _pass_of(p.stem) == refinement
    ]  # fmt: skip
    return side


def _pass_of(stem: str) -> int:
    """``03-refine.r2`` -> 2; ``01-inference`` -> 0."""
    tail = stem.rsplit(".r", 1)
    return int(tail[1]) if len(tail) == 2 and tail[1].isdigit() else 0


def _message_text(message: Any) -> str:
    if not isinstance(message, dict):
        return str(message)
    content = message.get("content")
    if isinstance(content, list):
        content = "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return f"[{message.get('role', '?')}] {content}"


def _compare(task: str, a: Side, b: Side) -> TaskDiff:
    prompt_diff = list(
        difflib.unified_diff(
            a.prompts.splitlines(), b.prompts.splitlines(), a.label, b.label, n=2, lineterm=""
        )
    )
    return TaskDiff(
        task=task,
        a=a,
        b=b,
        prompt_diff=prompt_diff,
        changes=json_changes(a.output, b.output),
        fixed=[e for e in a.errors if e not in b.errors],
        new=[e for e in b.errors if e not in a.errors],
    )


def json_changes(a: Any, b: Any, path: str = "") -> list[Change]:
    """What differs between two JSON values, key by key (a missing value is ``_NOTHING``)."""
    if a is _NOTHING and b is _NOTHING:
        return []
    if a is _NOTHING:
        return [Change(path=path, kind="added", after=b)]
    if b is _NOTHING:
        return [Change(path=path, kind="removed", before=a)]
    if isinstance(a, dict) and isinstance(b, dict):
        found = []
        for key in [*a, *(k for k in b if k not in a)]:
            where = f"{path}.{key}" if path else str(key)
            found += json_changes(a.get(key, _NOTHING), b.get(key, _NOTHING), where)
        return found
    if isinstance(a, list) and isinstance(b, list):
        found = []
        for n in range(max(len(a), len(b))):
            found += json_changes(
                a[n] if n < len(a) else _NOTHING, b[n] if n < len(b) else _NOTHING, f"{path}[{n}]"
            )
        return found
    if a == b and type(a) is type(b):
        return []
    return [Change(path=path, kind="changed", before=a, after=b)]


def change_text(change: Change) -> str:
    """``path: before -> after`` (``path: added value``), a long value on its own lines."""
    where = change.path or "(the output)"
    if change.kind == "changed":
        return f"{where}: {shown(change.before)} -> {shown(change.after)}"
    return f"{where}: {change.kind} {shown(change.after if change.kind == 'added' else change.before)}"


def shown(value: Any) -> str:
    """A value as the diff shows it: JSON, on one line when short."""
    if value is _NOTHING:
        return "(none)"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 100 else json.dumps(value, ensure_ascii=False, indent=2)


def text_diff(before: Any, after: Any) -> list[str]:
    """Two long texts as a unified diff of their lines (else nothing)."""
    if isinstance(before, str) and isinstance(after, str) and ("\n" in before or "\n" in after):
        return list(difflib.unified_diff(before.splitlines(), after.splitlines(), n=1, lineterm=""))[2:]
    return []


def money(a: Side, b: Side, arrow: str = "->", usd: Callable[[float], str] = "${:.6f}".format) -> str:
    """Tokens and cost before and after (a side answered from the cache says so); ``usd`` writes an
    amount."""

    def hits(side: Side) -> str:
        return f" ({side.cache_hits} from the cache, saved {usd(side.saved_usd)})" if side.cache_hits else ""

    return (
        f"tokens {a.input_tokens}+{a.output_tokens} {arrow} {b.input_tokens}+{b.output_tokens}, "
        f"cost {usd(a.cost_usd)}{hits(a)} {arrow} {usd(b.cost_usd)}{hits(b)}"
    )


def text(diff: JobDiff) -> str:
    """The diff for a terminal."""
    lines = [f"diff {diff.title}"]
    for t in diff.tasks:
        lines.append(f"\n== {t.task}: {'the same' if t.same else 'differs'}; {money(t.a, t.b)}")
        if t.models_differ:
            lines.append(
                f"-- model: {', '.join(t.a.models) or '(none)'} -> {', '.join(t.b.models) or '(none)'}"
            )
        if t.prompt_diff:
            lines.append("-- prompt")
            lines += [f"   {line}" for line in t.prompt_diff[2:]]
        if t.changes:
            lines.append("-- output")
            for c in t.changes:
                long = text_diff(c.before, c.after) if c.kind == "changed" else []
                if long:
                    lines.append(f"   {c.path or '(the output)'}:")
                    lines += [f"     {line}" for line in long]
                else:
                    lines.append("   " + change_text(c).replace("\n", "\n     "))
        for label, errors in (("fixed", t.fixed), ("new", t.new)):
            lines += [f"   validation error {label}: {e}" for e in errors]
    return "\n".join(lines)
