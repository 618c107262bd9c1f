"""``pop status``, ``logs``, ``costs``: what the jobs did, rendered from the service's models."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pop_nb.cli.common import load_settings
from pop_nb.cli.follow import error_lines
from pop_nb.errors import PopError, did_you_mean


def cmd_status(args: argparse.Namespace) -> int:
    from pop_nb.store.jobs import JobStore

    settings = load_settings()
    store = JobStore(settings.data)
    if args.job_id:
        folder = store.get(args.job_id)
        st = folder.read_status()
        if args.json:
            print(st.model_dump_json(indent=2))
            return 0
        print(
            f"{st.job_id}  {st.pipeline}  {st.state}  {st.progress}%  in {folder.place}/  "
            f"{st.totals.calls} calls ({st.totals.attempts} attempts)  {st.totals.cost_text()}"
            + (f"  {st.totals.saved_text()}" if st.totals.cache_hits else "")
        )
        if st.host:
            print(f"  ran on {st.host} ({st.executor}" + (f", worker {st.worker})" if st.worker else ")"))
        for name, task in st.tasks.items():
            extra = f" ({task.skip_reason})" if task.skip_reason else ""
            extra += f" refinements={task.refinements}" if task.refinements else ""
            print(f"  {name:<20} {task.state:<8} calls={task.usage.calls} {task.usage.cost_text()}{extra}")
            for key, run in task.stages.items():
                took = f"{run.duration_ms / 1000:.1f}s" if run.duration_ms is not None else ""
                print(f"      {key:<24} {run.state:<7} {took:>7}  {run.notebook or ''}")
        if st.error:
            print("\n".join(error_lines(st.error, folder.path)))
        return 0
    from pop_nb import service

    if args.json:
        if args.limit < 1:
            raise PopError(
                f"--limit {args.limit}: list at least one job (at most 500 a page; --all for every job)"
            )
        if args.offset < 0:
            raise PopError(f"--offset {args.offset}: skip 0 or more of the newest jobs")
        _print_jobs_json(settings, args.offset, args.limit, args.all)
        return 0
    view = service.overview(settings, args.recent)
    if not (view.running or view.queued or view.waiting or view.failed_count or view.done):
        print(f"no jobs in {settings.data}")
    _print_overview(view, args.recent)
    _print_cache_size(settings.data)
    return 0


def _print_jobs_json(settings: Any, offset: int, limit: int, everything: bool) -> None:
    """A page of job summaries as one JSON list on stdout; what was left out, and the command for the
    next page, on stderr (so a truncated list is never taken for all of them)."""
    import sys

    from pop_nb import service

    listed: list[Any] = []
    total = 0
    while True:
        page = service.list_jobs(settings, offset=offset + len(listed), limit=min(limit, service.MAX_PAGE))
        listed += page.jobs
        total = page.total
        if not everything or not page.jobs or offset + len(listed) >= total:
            break
    print(json.dumps([job.model_dump(mode="json") for job in listed], indent=2))
    shown_to = offset + len(listed)
    if shown_to < total or offset:
        more = f"; the next page: pop status --json --offset {shown_to}" if shown_to < total else ""
        print(
            f"pop status: jobs {offset + 1 if listed else offset}-{shown_to} of {total}, newest first{more} "
            "(or --all)",
            file=sys.stderr,
        )


def _print_cache_size(data: Path) -> None:
    from pop_nb.llm.cache import shared_store
    from pop_nb.llm.cache_admin import estimate

    store = shared_store(data)
    found, exact = estimate(store)
    if found.entries:
        about = "" if exact else "about "
        print(f"cache    {about}{found.text()} in {store.root} (`pop cache stats`, `pop cache prune`)")


def _print_overview(view: Any, recent: int) -> None:
    """Running, queued, waiting at a gate, recent failures, how many are done, and what is not a seed."""
    for job in view.running:
        where = f"{job.current_task}/{job.current_stage}" if job.current_task else "starting"
        line = f"running  {job.id:<44} {job.pipeline:<20} {job.progress:3d}%  {where:<28} {job.cost}"
        print(f"{line}  {job.where}")
    for job in view.queued:
        note = f"  (runner died; recoveries {job.recoveries})" if job.state == "running" else ""
        print(f"queued   {job.id:<44} {job.pipeline:<20} since {job.created_at[:19]}{note}")
    for job in view.waiting:
        gates = ", ".join(job.waiting_gates)
        print(f"waiting  {job.id:<44} {job.pipeline:<20} gate after {gates}: pop approve|reject {job.id}")
    for job in view.failed[:recent]:
        why = f"{job.error.type}: {job.error.message}" if job.error else job.state
        print(
            f"{job.state:<8} {job.id:<44} {job.pipeline:<20} {why[:90]}"
            + (f"  [{job.where}]" if job.where else "")
        )
    if view.failed_count > len(view.failed[:recent]):
        older = view.failed_count - len(view.failed[:recent])
        print(f"         ... and {older} older failures (pop status --recent N)")
    if view.done:
        print(f"done     {view.done} job(s), latest {view.latest_done}; total {view.done_totals.cost_text()}")
    if view.strays:
        names = ", ".join(repr(n) for n in view.strays[:10]) + (", ..." if len(view.strays) > 10 else "")
        print(
            f"note     pending/ holds {len(view.strays)} file(s) that are not seeds, left alone: {names}. "
            "A seed is named <id>-seed.json"
        )


def cmd_logs(args: argparse.Namespace) -> int:
    from pop_nb.store.jobs import JobStore

    folder = JobStore(load_settings().data).get(args.job_id)
    st = folder.read_status()
    if args.task and args.task not in st.tasks:
        raise PopError(
            f"job {args.job_id} has no task {args.task!r}.{did_you_mean(args.task, st.tasks)} "
            f"Fix: use one of {', '.join(st.tasks)}."
        )
    chosen = [t for name, t in st.tasks.items() if args.task in (None, name)]
    ran = sorted({run.stage for task in chosen for run in task.stages.values()})
    if args.stage and args.stage not in ran:
        scope = f"task {args.task!r} of job {args.job_id}" if args.task else f"job {args.job_id}"
        raise PopError(
            f"{scope} ran no stage {args.stage!r}.{did_you_mean(args.stage, ran or _stages())} "
            f"Stages that ran: {', '.join(ran) or 'none yet'}."
        )
    for name, task in st.tasks.items():
        if args.task and name != args.task:
            continue
        for key, run in task.stages.items():
            if args.stage and run.stage != args.stage:
                continue
            log = folder.stage_log(name, run.stage, run.refinement)
            text = log.read_text(encoding="utf-8") if log.exists() else ""
            print(f"==> {name}/{key} ({run.state}) {folder.rel(log)}")
            if text:
                print(text.rstrip())
    return 0


def cmd_costs(args: argparse.Namespace) -> int:
    from pop_nb.analytics.rollup import cost_table

    settings = load_settings()
    table = cost_table(settings.data, args.by)
    if args.json:
        print(json.dumps(table.dicts(), indent=2))
        return 0
    if not len(table):
        print(f"no LLM calls logged under {settings.data}")
        return 0
    if args.limit < 1:
        raise PopError(f"--limit {args.limit}: show at least one row (or --all for every row)")
    shown = table.dicts() if args.all else table.dicts(0, args.limit)
    width = max(len(args.by), *(len(str(r["key"])) for r in shown))
    print(
        f"{args.by:<{width}}  {'calls':>6} {'attempts':>8} {'in tok':>10} {'out tok':>10} {'cost USD':>12} "
        f"{'cache hits':>10} {'saved USD':>11}"
    )
    for r in shown:
        note = f"  (+ {r['unpriced_calls']} unpriced: cost unknown)" if r["unpriced_calls"] else ""
        print(
            f"{r['key']:<{width}}  {r['calls']:>6} {r['attempts']:>8} {r['input_tokens']:>10} "
            f"{r['output_tokens']:>10} {r['cost_usd']:>12.6f} {r['cache_hits']:>10} "
            f"{r['saved_usd']:>11.6f}{note}"
        )
    if len(shown) < len(table):
        print(
            f"... and {len(table) - len(shown)} more {args.by} rows, "
            f"{table.sum('cost_usd', start=len(shown)):.6f} USD in all "
            f"(pop costs --by {args.by} --all, or --limit N)"
        )
    unpriced = table.sum("unpriced_calls")
    note = f"  (+ {unpriced} unpriced: cost unknown)" if unpriced else ""
    print(
        f"{'total':<{width}}  {table.sum('calls'):>6} {table.sum('attempts'):>8} "
        f"{'':>21} {table.sum('cost_usd'):>12.6f} {'':>10} {table.sum('saved_usd'):>11.6f}{note}"
    )
    return 0


def _stages() -> tuple[str, ...]:
    from pop_nb.models.pipeline import STAGES

    return STAGES
