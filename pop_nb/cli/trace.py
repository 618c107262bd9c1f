"""``pop trace <id>``: a job's span tree with durations, tokens and cost."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from pop_nb.cli.common import load_settings

if TYPE_CHECKING:
    from pop_nb.models.trace import JobTrace, TraceNode


def cmd_trace(args: argparse.Namespace) -> int:
    from pop_nb.service.traces import job_trace

    trace = job_trace(load_settings(), args.job_id)
    if args.json:
        print(trace.model_dump_json(indent=2))
        return 0
    print(render(trace, attributes=args.attributes))
    return 0


def render(trace: JobTrace, attributes: bool = False) -> str:
    if not trace.runs:
        return (
            f"{trace.job_id}: no spans yet ({trace.state}). A job's spans are written as it runs, "
            f"in its spans.jsonl."
        )
    trees: list[list[tuple[str, TraceNode]]] = []
    for run in trace.runs:
        rows: list[tuple[str, TraceNode]] = []
        for root in run.roots:
            _rows(root, "", "", rows)
        trees.append(rows)
    width = max(len(label) for rows in trees for label, _ in rows)
    out = []
    for run, rows in zip(trace.runs, trees, strict=True):
        out.append(f"trace {run.trace_id}  run {run.run or '?'}  job {trace.job_id} ({trace.state})")
        for label, node in rows:
            out.append(f"{label:<{width}}  {_line(node)}".rstrip())
            if attributes:
                pad = " " * (len(label) - len(node.name) + 3)
                out += [f"{pad}{k} = {v}" for k, v in sorted(node.attributes.items())]
        out.append("")
    return "\n".join(out).rstrip()


def _rows(node: TraceNode, lead: str, child_lead: str, out: list[tuple[str, TraceNode]]) -> None:
    out.append((lead + node.name, node))
    for i, child in enumerate(node.children):
        last = i == len(node.children) - 1
        _rows(child, child_lead + ("└─ " if last else "├─ "), child_lead + ("   " if last else "│  "), out)


def _line(node: TraceNode) -> str:
    a = node.attributes
    if node.end_ns is None:
        state = "running"
    elif node.kind == "llm":
        state = "error" if node.status == "error" else "cached" if a.get("pop.cache_hit") else "ok"
    else:
        state = str(a.get("pop.state") or node.status)
    took = "" if node.duration_ms is None else _duration(node.duration_ms)
    parts = [f"{state:<9}", f"{took:>8}"]
    if node.kind == "llm":
        parts.append(f"{node.input_tokens}+{node.output_tokens} tokens")
        source = a.get("pop.cost_source")
        if node.status == "error":
            parts.append(str(a.get("error.type") or node.status_message or "failed"))
        elif source == "unpriced":
            parts.append("unpriced")
        else:
            parts.append(f"${node.cost_usd:.6f} ({source})")
        if a.get("pop.cache_hit"):
            parts.append(f"saved ${float(a.get('pop.saved_usd') or 0):.6f}")
        if a.get("pop.retry"):
            parts.append(f"try {a.get('pop.try')}")
    elif node.attempts:
        calls = f"{node.calls} call{'s' if node.calls != 1 else ''}"
        if node.attempts != node.calls:
            calls += f" ({node.attempts} attempts)"
        cost = f"${node.cost_usd:.6f}"
        if node.unpriced_calls:
            cost = f"{cost} + unknown ({node.unpriced_calls} unpriced)"
        parts += [calls, f"{node.input_tokens}+{node.output_tokens} tokens", cost]
    if node.kind != "llm" and node.status == "error" and node.status_message:
        parts.append(node.status_message[:120])
    return "  ".join(parts)


def _duration(ms: float) -> str:
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 120_000:
        return f"{ms / 1000:.2f} s"
    return f"{ms / 60_000:.1f} min"
