"""A job's trace as trees: its ``spans.jsonl``, plus the spans still open (a running job, task or stage
has its id in the status file before its line is written), one tree per run."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from pop_nb.config import PopSettings
from pop_nb.models.lifecycle import FINAL_STATES
from pop_nb.models.status import JobStatus
from pop_nb.models.trace import JobTrace, SpanRecord, TraceNode, TraceRun
from pop_nb.store import layout
from pop_nb.store.atomic import read_jsonl
from pop_nb.store.jobs import JobStore
from pop_nb.tracing.spans import iso_ns


def job_trace(settings: PopSettings, job_id: str) -> JobTrace:
    folder = JobStore(settings.data).get(job_id)
    status = folder.read_status()
    records: dict[str, SpanRecord] = {}
    for row in read_jsonl(folder.path / layout.SPANS):
        try:
            record = SpanRecord.model_validate(row)
        except ValidationError:
            continue  # a line a user's code got wrong: the rest still make a tree
        records.setdefault(record.span_id, record)
    nodes = [_node(r) for r in records.values()]
    nodes += _open_spans(status, set(records))
    return JobTrace(
        job_id=status.job_id,
        pipeline=status.pipeline,
        state=status.state,
        spans=len(records),
        runs=_runs(nodes, status),
    )


def _node(record: SpanRecord) -> TraceNode:
    return TraceNode(
        trace_id=record.trace_id,
        span_id=record.span_id,
        parent_id=record.parent_id,
        name=record.name,
        kind=record.kind,
        status=record.status,
        status_message=record.status_message,
        start_ns=record.start_ns,
        end_ns=record.end_ns,
        task=record.task,
        stage=record.stage,
        attributes=record.attributes,
    )


def _open_spans(status: JobStatus, written: set[str]) -> list[TraceNode]:
    """The job's, its tasks' and stages' spans that have begun and not ended (no line yet)."""
    ref = status.trace
    if ref is None:
        return []
    found: list[TraceNode] = []

    def add(
        span_id: str | None, parent: str | None, name: str, kind: Any, started: str | None, **kw: Any
    ) -> None:
        if span_id and span_id not in written and started:
            found.append(
                TraceNode(
                    trace_id=ref.trace_id,
                    span_id=span_id,
                    parent_id=parent,
                    name=name,
                    kind=kind,
                    status="unset",
                    start_ns=iso_ns(started),
                    **kw,
                )
            )

    if status.state not in FINAL_STATES:
        add(ref.span_id, None, f"job {status.pipeline}", "job", ref.started_at)
    for name, task in status.tasks.items():
        if task.state != "running":
            continue
        add(task.span_id, ref.span_id, f"task {name}", "task", task.started_at, task=name)
        for run in task.stages.values():
            if run.state == "running":
                suffix = f".r{run.refinement}" if run.refinement else ""
                add(
                    run.span_id,
                    task.span_id,
                    f"stage {run.stage}{suffix}",
                    "stage",
                    run.started_at,
                    task=name,
                    stage=run.stage,
                )
    return found


def _runs(nodes: list[TraceNode], status: JobStatus) -> list[TraceRun]:
    by_id = {n.span_id: n for n in nodes}
    roots: dict[str, list[TraceNode]] = {}
    for node in sorted(nodes, key=lambda n: n.start_ns):
        parent = by_id.get(node.parent_id) if node.parent_id else None
        if parent is not None and parent is not node:
            parent.children.append(node)
        else:
            roots.setdefault(node.trace_id, []).append(node)
    reached = {n.span_id for tree in roots.values() for root in tree for n in _walk(root, set())}
    for node in nodes:  # in a cycle (a bad file): no root leads to it; it becomes one
        if node.span_id not in reached:
            by_id[node.parent_id or ""].children.remove(node)
            roots.setdefault(node.trace_id, []).append(node)
            reached |= {n.span_id for n in _walk(node, set())}
    for tree in roots.values():
        for root in tree:
            _add_up(root, set())
    runs = []
    for trace_id, tree in roots.items():
        job = next((n for n in tree if n.kind == "job"), None)
        run = job.attributes.get("pop.run") if job is not None else None
        if run is None and status.trace is not None and status.trace.trace_id == trace_id:
            run = status.trace.run + 1
        runs.append(TraceRun(trace_id=trace_id, run=run if isinstance(run, int) else None, roots=tree))
    return sorted(runs, key=lambda r: min(n.start_ns for n in r.roots))


def _walk(node: TraceNode, seen: set[str]) -> list[TraceNode]:
    if node.span_id in seen:
        return []
    seen.add(node.span_id)
    return [node, *(n for child in node.children for n in _walk(child, seen))]


def _add_up(node: TraceNode, seen: set[str]) -> None:
    """Sum the LLM calls at and under ``node`` into it (``seen`` guards a cycle a bad file could make)."""
    seen.add(node.span_id)
    if node.kind == "llm":
        a = node.attributes
        node.attempts = 1
        node.calls = int(node.status != "error")
        node.input_tokens = int(a.get("gen_ai.usage.input_tokens") or 0)
        node.output_tokens = int(a.get("gen_ai.usage.output_tokens") or 0)
        node.cost_usd = float(a.get("pop.cost_usd") or 0.0)
        node.unpriced_calls = int(node.calls == 1 and a.get("pop.cost_source") == "unpriced")
    for child in node.children:
        if child.span_id in seen:
            continue
        _add_up(child, seen)
        node.calls += child.calls
        node.attempts += child.attempts
        node.input_tokens += child.input_tokens
        node.output_tokens += child.output_tokens
        node.cost_usd += child.cost_usd
        node.unpriced_calls += child.unpriced_calls


__all__ = ["job_trace"]
