"""``pop orchestrate``, ``batch``, ``worker``: the long-running front ends."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pop_nb.cli.common import ProgressLine, load_settings, say_if_the_kernel_server_starts
from pop_nb.errors import EXIT_DONE, EXIT_FAILED

if TYPE_CHECKING:
    from pop_nb.models.batch import BatchSummary, ManifestLine


def cmd_orchestrate(args: argparse.Namespace) -> int:
    from pop_nb.orchestrator import Orchestrator

    daemon = Orchestrator(
        load_settings(), poll_s=args.poll, watch=not args.no_watch, once=args.once, drain=args.drain
    )
    return daemon.run()


def cmd_batch(args: argparse.Namespace) -> int:
    from pop_nb.orchestrator.batch import BatchRun
    from pop_nb.orchestrator.batch_plan import default_name, read_manifest, read_seeds

    settings = load_settings()
    name = args.name or default_name(args.slug, args.seeds, args.glob)
    seeds = list(read_seeds(args.seeds, args.glob, Path.cwd()))
    shown = ProgressLine(live=sys.stderr.isatty() and not args.json)
    batch = BatchRun(
        settings,
        args.slug,
        name,
        seeds,
        concurrency=args.concurrency,
        executor=args.executor,
        on_progress=lambda progress: shown.show(progress.line()),
    )
    print(f"batch {name}: {len(seeds)} seed(s) -> {batch.folder}", file=sys.stderr)
    say_if_the_kernel_server_starts(settings, args.executor)
    summary = batch.run()
    shown.end()
    if args.json:
        print(summary.model_dump_json(indent=2))
    else:
        print(summary_text(summary, read_manifest(batch.manifest_file)))
    return EXIT_DONE if summary.failed == 0 and summary.rejected == 0 else EXIT_FAILED


def cmd_worker(args: argparse.Namespace) -> int:
    from pop_nb.orchestrator.worker import run_worker

    queues = [q.strip() for q in args.queues.split(",") if q.strip()] if args.queues else None
    return run_worker(load_settings(), queues, args.concurrency, args.name)


def summary_text(summary: BatchSummary, manifest: list[ManifestLine]) -> str:
    """The summary as the CLI prints it."""
    out = [
        f"batch {summary.name}: {summary.done} done, {summary.failed} failed, {summary.rejected} rejected "
        f"of {summary.seeds} seeds ({summary.skipped} already done) in {summary.duration_s:.1f}s on "
        f"{summary.executor}; cost ${summary.cost_this_run_usd:.6f} this run, ${summary.cost_usd:.6f} in all",
    ]
    where = sorted({o.where for o in summary.jobs if o.where})
    if where:
        out.append(f"  ran on: {', '.join(where)}")
    if summary.slowest_tasks:
        out.append(
            "  slowest tasks: "
            + ", ".join(
                f"{t['task']} {t['mean_s']}s mean ({t['max_s']}s max)" for t in summary.slowest_tasks[:3]
            )
        )
    for line in manifest:
        if line.error:
            out.append(f"  rejected: {line.error}")
    for job in summary.jobs:
        if job.state != "done":
            out.append(f"  {job.state} {job.job}: {job.error or '-'}  ->  {job.resume or ''}")
    if summary.stalled:
        out.append(f"  stopped waiting: {summary.stalled}")
    elif summary.failed:
        out.append("  run the same `pop batch` command again to resume every failure at once")
    return "\n".join(out)
