"""``pop``: the command line. Imports stay light: no litellm, papermill or duckdb for help and status."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pop_nb import _lean
from pop_nb.errors import (
    EXIT_CLOSED_PIPE,
    EXIT_DONE,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_WAITING,
    PipelineError,
    PopError,
    did_you_mean,
    exit_code,
)

if TYPE_CHECKING:
    from pop_nb.config import PopSettings
    from pop_nb.models.status import JobStatus


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # the `pop` command, a process of ours (%pop passes its words: a user's kernel)
        _lean.block()
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except PopError as exc:
        print(f"pop: {exc}", file=sys.stderr)
        return exit_code(exc)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `pop logs ... | head` closed the pipe: not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return EXIT_CLOSED_PIPE


def load_settings() -> PopSettings:
    """The settings, read when a command needs them (pydantic's import is half of ``pop --help``)."""
    from pop_nb.config import load_settings as load

    return load()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pop", description="Notebook-native prompt orchestration pipelines.")
    sub = p.add_subparsers(metavar="COMMAND")

    c = sub.add_parser("run", help="run a pipeline on one seed, in the foreground, with live progress")
    c.add_argument("slug")
    src = c.add_mutually_exclusive_group()
    src.add_argument("--seed", type=Path, help="seed file: {pipeline?, name?, data, llm?, config?}")
    src.add_argument("--data", help="seed data as JSON")
    c.add_argument("--id", help="job id (default: <slug>-<time>-<random>)")
    c.add_argument(
        "--model",
        help="the model of this job's calls, as a seed's llm.model (e.g. local/smollm2, openai/gpt-4o-mini); "
        "a task that names its own model keeps it",
    )
    c.add_argument("--quiet", action="store_true", help="no progress display")
    c.set_defaults(func=cmd_run)

    c = sub.add_parser("status", help="running, queued, waiting, recent failures; or one job in detail")
    c.add_argument("job_id", nargs="?")
    c.add_argument("--json", action="store_true")
    c.add_argument("--recent", type=int, default=10, help="how many recent failures to list")
    c.set_defaults(func=cmd_status)

    c = sub.add_parser(
        "logs",
        help="stage logs of a job (the output its cells printed)",
        description="Print what each stage's cells printed (stdout and stderr, secrets masked), in the "
        "order the stages ran; a failed stage's log ends with its traceback.",
    )
    c.add_argument("job_id", help="the job's id (see `pop status`)")
    c.add_argument("--task", help="only this task's stages")
    c.add_argument("--stage", help="only this stage (e.g. inference; refine passes included)")
    c.set_defaults(func=cmd_logs)

    c = sub.add_parser("resume", help="re-run a failed job, keeping finished upstream work")
    c.add_argument("job_id")
    c.add_argument("--from-task", help="reset this task and everything downstream of it")
    c.add_argument("--budget-usd", type=float, help="a new budget for the job (after BudgetExceeded)")
    c.add_argument("--quiet", action="store_true")
    c.set_defaults(func=cmd_resume)

    c = sub.add_parser(
        "orchestrate", help="the daemon: turn seeds dropped in pending/ into jobs and run them"
    )
    c.add_argument("--once", action="store_true", help="take what is pending, run it all, then exit")
    c.add_argument("--drain", action="store_true", help="on SIGTERM/SIGINT, wait for running jobs")
    c.add_argument("--poll", type=float, default=1.0, help="seconds between scans (default 1)")
    c.add_argument("--no-watch", action="store_true", help="poll only (network file systems)")
    c.set_defaults(func=cmd_orchestrate)

    c = sub.add_parser(
        "batch",
        help="run one pipeline over many seeds: plan, dispatch, execute, verify (again: resume it)",
        description="Check every seed, then run a job per seed, at most --concurrency at once, through "
        "the executor; print a summary (done, failed, cost, slowest tasks, how to resume each failure). "
        "The same command again resumes the batch: done jobs are kept, failed ones resumed.",
    )
    c.add_argument("slug")
    src = c.add_mutually_exclusive_group(required=True)
    src.add_argument("--seeds", type=Path, help="a JSON Lines file: one seed per line")
    src.add_argument("--glob", help="seed files, e.g. 'seeds/*.json' (quote it)")
    c.add_argument("--concurrency", type=int, help="jobs at once (default: POP_MAX_RUNNING_JOBS)")
    c.add_argument("--executor", help="local, celery, ... (default: POP_EXECUTOR)")
    c.add_argument("--name", help="the batch's name (default: from the pipeline and the seeds' source)")
    c.add_argument("--json", action="store_true", help="print the summary as JSON")
    c.set_defaults(func=cmd_batch)

    c = sub.add_parser(
        "worker",
        help="run jobs of the celery executor on this machine (a Celery worker; needs pop-nb[celery])",
        description="A Celery worker that runs the jobs dispatched to its queues (POP_EXECUTOR=celery, "
        "POP_BROKER_URL), each in a runner process of its own, in the shared data folder (POP_DATA_DIR).",
    )
    c.add_argument("--queues", help="comma-separated queues to take jobs from (default: POP_QUEUE)")
    c.add_argument("--concurrency", type=int, help="jobs at once (default: POP_MAX_RUNNING_JOBS)")
    c.add_argument("--name", help="worker name, name@host (default: pop-<pid>@<host>)")
    c.set_defaults(func=cmd_worker)

    c = sub.add_parser("submit", help="drop a seed into pending/ for the daemon (written atomically)")
    c.add_argument("slug")
    g = c.add_mutually_exclusive_group(required=True)
    g.add_argument("--seed", type=Path, help="a seed file")
    g.add_argument("--data", help="the seed's data, as JSON")
    c.add_argument("--id", help="job id (default: <slug>-<time>-<random>)")
    c.set_defaults(func=cmd_submit)

    c = sub.add_parser("approve", help="let a job waiting at a gate go on")
    c.add_argument("job_id")
    c.add_argument("--detach", action="store_true", help="start its runner and return at once")
    c.add_argument("--quiet", action="store_true")
    c.set_defaults(func=cmd_approve)

    c = sub.add_parser("reject", help="end a job waiting at a gate (it fails with GateRejected)")
    c.add_argument("job_id")
    c.add_argument("--reason")
    c.set_defaults(func=cmd_reject)

    c = sub.add_parser("cancel", help="stop a running job (SIGTERM, then SIGKILL after a grace period)")
    c.add_argument("job_id")
    c.set_defaults(func=cmd_cancel)

    c = sub.add_parser("pipelines", help="list the pipelines found under the root")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_pipelines)

    c = sub.add_parser("compile", help="validate a pipeline (YAML, notebooks, tags, conditions, schemas)")
    c.add_argument("slug")
    c.add_argument("--json", action="store_true")
    c.add_argument(
        "--explain",
        action="store_true",
        help="also write what it is for (intention, by its model), how it runs (architecture) and whether "
        "the one serves the other; saved as <pipeline>/explain.json, asked again only when it changed",
    )
    c.add_argument("--strict", action="store_true", help="with --explain: a misaligned pipeline is an error")
    c.add_argument("--model", help="with --explain: the model that writes it (default: the pipeline's)")
    c.set_defaults(func=cmd_compile)

    c = sub.add_parser("costs", help="LLM spend over every job: calls, tokens, cost, cache savings")
    c.add_argument("--by", default="pipeline", choices=["pipeline", "task", "stage", "model", "day", "job"])
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_costs)

    c = sub.add_parser("init", help="scaffold a project with an example pipeline")
    c.add_argument("dir", nargs="?", default=".", type=Path)
    c.set_defaults(func=cmd_init)
    return p


# --- commands -----------------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from pop_nb.jobs import Job, create_job
    from pop_nb.models.seed import parse_seed
    from pop_nb.orchestrator.executors import get_executor, submit

    settings = load_settings()
    executor = get_executor(settings)
    if args.seed:
        seed = parse_seed(_read_json(args.seed), str(args.seed), args.slug)
    else:
        seed = parse_seed({"data": _parse_data(args.data)}, "--data", args.slug)
    if args.model:
        from pop_nb.models.pipeline import LLMSettings

        llm = seed.llm.model_dump(exclude_none=True) if seed.llm else {}
        seed.llm = LLMSettings.model_validate({**llm, "model": args.model})
    try:
        folder = create_job(settings, seed, args.id, where=str(args.seed or "--data"))
    except PopError as exc:
        if args.seed or args.data:
            raise
        raise PopError(f"{exc}\n{_example_seeds_hint(settings, args.slug)}") from None
    job = Job(folder.job_id, settings, submit(settings, folder.job_id, executor))
    return follow_job(job, args.quiet)


def _example_seeds_hint(settings: Any, slug: str) -> str:
    """What to pass when ``pop run <slug>`` got no seed: the pipeline's example seeds, if it has some."""
    from pop_nb.pipeline.load import discover

    file = discover(settings.root).get(slug)
    if file is None:
        return "pop run needs --seed FILE or --data JSON"
    folder = file.parent
    seeds = sorted((folder / "seeds").glob("*.json"))
    if not seeds:
        return "pop run needs --seed FILE or --data JSON"
    shown = " | ".join(os.path.relpath(p) for p in seeds[:3])
    return f"pop run needs --seed FILE or --data JSON; this pipeline's examples: {shown}"


def cmd_resume(args: argparse.Namespace) -> int:
    from pop_nb.jobs import Job, reset_for_resume
    from pop_nb.orchestrator.executors import get_executor, submit

    settings = load_settings()
    executor = get_executor(settings)
    reset_for_resume(settings, args.job_id, args.from_task, args.budget_usd)
    return follow_job(Job(args.job_id, settings, submit(settings, args.job_id, executor)), args.quiet)


def cmd_orchestrate(args: argparse.Namespace) -> int:
    from pop_nb.orchestrator import Orchestrator

    daemon = Orchestrator(
        load_settings(), poll_s=args.poll, watch=not args.no_watch, once=args.once, drain=args.drain
    )
    return daemon.run()


def cmd_batch(args: argparse.Namespace) -> int:
    from pop_nb.orchestrator.batch import BatchRun, default_name, read_manifest, read_seeds, summary_text

    settings = load_settings()
    name = args.name or default_name(args.slug, args.seeds, args.glob)
    seeds = list(read_seeds(args.seeds, args.glob, Path.cwd()))
    live = sys.stderr.isatty() and not args.json

    def show(progress: Any) -> None:
        print(("\r" if live else "") + progress.line(), end="" if live else "\n", file=sys.stderr, flush=True)

    batch = BatchRun(
        settings,
        args.slug,
        name,
        seeds,
        concurrency=args.concurrency,
        executor=args.executor,
        on_progress=show,
    )
    print(f"batch {name}: {len(seeds)} seed(s) -> {batch.folder}", file=sys.stderr)
    summary = batch.run()
    if live:
        print(file=sys.stderr)
    if args.json:
        print(summary.model_dump_json(indent=2))
    else:
        print(summary_text(summary, read_manifest(batch.manifest_file)))
    return EXIT_DONE if summary.failed == 0 and summary.rejected == 0 else EXIT_FAILED


def cmd_worker(args: argparse.Namespace) -> int:
    from pop_nb.orchestrator.worker import run_worker

    queues = [q.strip() for q in args.queues.split(",") if q.strip()] if args.queues else None
    return run_worker(load_settings(), queues, args.concurrency, args.name)


def cmd_submit(args: argparse.Namespace) -> int:
    from pop_nb.jobs import validate_seed
    from pop_nb.models.seed import new_job_id, parse_seed
    from pop_nb.orchestrator import submit_seed

    settings = load_settings()

    seed = _read_json(args.seed) if args.seed else {"data": _parse_data(args.data)}
    where = str(args.seed or "--data")
    parsed = parse_seed(seed, where, args.slug)
    seed = {**seed, "pipeline": parsed.pipeline}
    validate_seed(settings, parsed, where)  # the daemon checks again; best caught now
    path = submit_seed(settings, seed, args.id or new_job_id(args.slug))
    print(path)
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    from pop_nb.jobs import Job, approve_gate
    from pop_nb.orchestrator.executors import get_executor, submit

    settings = load_settings()
    executor = get_executor(settings)
    approve_gate(settings, args.job_id)
    handle = submit(settings, args.job_id, executor)
    job = Job(args.job_id, settings, handle)
    if args.detach:
        print(f"approved: job {args.job_id} goes on ({handle.executor}); `pop status {args.job_id}`")
        return 0
    return follow_job(job, args.quiet)


def cmd_reject(args: argparse.Namespace) -> int:
    from pop_nb.jobs import reject_gate

    folder = reject_gate(load_settings(), args.job_id, args.reason)
    print(f"rejected: job {args.job_id} is in {folder.path}")
    return 0


def follow_job(job: Any, quiet: bool) -> int:
    """Show live progress until the job ends; Ctrl-C cancels the job."""
    from pop_nb.jobs import cancel_job

    print(f"job {job.id}  ({job.path})", file=sys.stderr)
    try:
        status = _follow_plain(job) if quiet or not sys.stderr.isatty() else _follow_live(job)
    except KeyboardInterrupt:
        print("\ncancelling...", file=sys.stderr)
        cancel_job(job.settings, job.id)
        status = job.wait()
    _print_outcome(job, status)
    if status.state == "waiting":
        return EXIT_WAITING
    return EXIT_DONE if status.state == "done" else EXIT_FAILED


def _watch(job: Any, show: Any, poll_s: float) -> JobStatus:
    """Call ``show(status, elapsed)`` every ``poll_s`` until the runner exits; return the final status."""
    started = time.monotonic()
    while not job.handle.ended():
        show(job.wait(timeout=poll_s), time.monotonic() - started)
    return job.status  # type: ignore[no-any-return]


def _follow_plain(job: Any) -> JobStatus:
    """One line per change of task/stage/state (for logs and CI, where a live display would spam)."""
    last: list[Any] = [None]

    def show(st: JobStatus, elapsed: float) -> None:
        key = (st.state, st.current_task, st.current_stage, st.totals.calls)
        if key != last[0]:
            print(_progress_line(st, elapsed), file=sys.stderr)
            last[0] = key

    return _watch(job, show, 0.5)


def _follow_live(job: Any) -> JobStatus:
    from rich.console import Console
    from rich.live import Live

    with Live(console=Console(stderr=True), refresh_per_second=4, transient=True) as live:
        return _watch(job, lambda st, elapsed: live.update(_progress_line(st, elapsed)), 0.25)


def _progress_line(st: JobStatus, elapsed: float) -> str:
    where: str = st.state
    if st.current_task and st.state == "running":
        where = f"{st.current_task}/{st.current_stage or 'starting'}"
    return (
        f"[{st.progress:3d}%] {where:<40} {elapsed:6.1f}s  calls {st.totals.calls:3d}  "
        f"tokens {st.totals.input_tokens}+{st.totals.output_tokens}  {st.totals.cost_text(4)}"
    )


def _print_outcome(job: Any, st: JobStatus) -> None:
    print(f"{st.state}: job {job.id} in {job.path}", file=sys.stderr)
    t = st.totals
    retried = f" ({t.attempts} attempts)" if t.attempts != t.calls else ""
    print(
        f"  {t.calls} LLM calls{retried}, {t.input_tokens} input + {t.output_tokens} output tokens, "
        f"{t.cost_text()}",
        file=sys.stderr,
    )
    if st.state == "waiting":
        gates = ", ".join(st.waiting_gates) or "a gated task"
        print(
            f"  waiting at the gate after {gates}: `pop approve {job.id}` to go on, "
            f"`pop reject {job.id} [--reason R]` to end it",
            file=sys.stderr,
        )
    elif st.state not in ("done", "failed", "cancelled"):
        print(
            f"  the runner exited without finishing the job; see {job.path / 'runner.log'}", file=sys.stderr
        )
    if st.error:
        for line in _error_lines(st.error, job.path):
            print(line, file=sys.stderr)


def _error_lines(error: Any, job_dir: Path) -> list[str]:
    """A failure as people need it: where, what, the failing cell, the end of its traceback, the fix."""
    where = f"task {error.task}, stage {error.stage}" if error.stage else f"task {error.task}"
    lines = [f"  error: {where}: {error.type}: {error.message}"]
    if error.notebook:
        cell = f" (cell In [{error.exec_count}])" if error.exec_count is not None else ""
        lines.append(f"  notebook: {job_dir / error.notebook}{cell}")
    if error.cell_source:
        lines += ["  cell:", *(f"    {line}" for line in error.cell_source.splitlines()[:12])]
    if error.traceback:
        lines += [
            "  traceback (end):",
            *(f"    {line}" for line in "\n".join(error.traceback).splitlines()[-6:]),
        ]
    lines.append(f"  fix: {error.fix}" if error.fix else f"  fix: see above, then pop resume {job_dir.name}")
    return lines


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
            print("\n".join(_error_lines(st.error, folder.path)))
        return 0
    from pop_nb import service

    if args.json:
        page = service.list_jobs(settings, limit=service.MAX_PAGE)
        print(json.dumps([job.model_dump(mode="json") for job in page.jobs], indent=2))
        return 0
    view = service.overview(settings)
    if not (view.running or view.queued or view.waiting or view.failed or view.done):
        print(f"no jobs in {settings.data}")
    _print_overview(view, args.recent)
    return 0


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
    if len(view.failed) > recent:
        print(f"         ... and {len(view.failed) - recent} older failures (pop status --recent N)")
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


def cmd_cancel(args: argparse.Namespace) -> int:
    from pop_nb import service

    job = service.cancel(load_settings(), args.job_id)  # JobStateError (exit 2) if it had ended
    print(f"cancelled {job.id}")
    return 0


def cmd_pipelines(args: argparse.Namespace) -> int:
    from pop_nb import service

    settings = load_settings()
    found = service.pipelines(settings, detail=args.json)
    if args.json:
        print(json.dumps([p.model_dump(mode="json") for p in found], indent=2))
    elif not found:
        print(f"no pipelines under {settings.root / 'pipelines'}; `pop init` makes an example")
    for p in [] if args.json else found:
        print(f"{p.slug:<28} {len(p.tasks)} tasks  {p.description or p.error or ''}")
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    from pop_nb.pipeline.compile import check_models, compile_file

    settings = load_settings()
    pipeline, problems = compile_file(settings.root, args.slug)
    if pipeline is not None:
        problems += check_models(pipeline, settings.prices)
    explained: dict[str, Any] | None = None
    fresh = False
    if args.explain and pipeline is not None and not problems:
        from pop_nb.pipeline.explain import explain

        explained, fresh = explain(pipeline, settings.default_model, model=args.model)
    misaligned = bool(args.strict and explained is not None and not explained["aligned"])
    code = 1 if problems or misaligned else 0
    if args.json:
        body: dict[str, Any] = {
            "slug": args.slug,
            "ok": not problems,
            "problems": [p.as_dict() for p in problems],
        }
        if explained is not None:
            body["explanation"] = explained
        print(json.dumps(body, indent=2))
        return code
    if problems:
        print(PipelineError(args.slug, problems), file=sys.stderr)
        return 1
    assert pipeline is not None
    order = " -> ".join(pipeline.topological_order())
    print(f"ok: {args.slug} ({pipeline.file}), {len(pipeline.spec.tasks)} tasks: {order}")
    if explained is not None:
        from pop_nb.pipeline.explain import FILE, as_markdown

        print()
        print(as_markdown(explained), end="")
        how = f"{explained['model']}, ${explained['cost_usd']:.6f}" if fresh else "unchanged since: no call"
        print(f"\n(saved in {pipeline.dir / FILE}; {how})")
        if misaligned:
            print(f"pop: {args.slug} is misaligned (--strict): see the findings above", file=sys.stderr)
    return code


def _stages() -> tuple[str, ...]:
    from pop_nb.models.pipeline import STAGES

    return STAGES


def cmd_costs(args: argparse.Namespace) -> int:
    from pop_nb.analytics.rollup import cost_rows

    settings = load_settings()
    rows = cost_rows(settings.data, args.by)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"no LLM calls logged under {settings.data}")
        return 0
    width = max(len(args.by), *(len(str(r["key"])) for r in rows))
    print(
        f"{args.by:<{width}}  {'calls':>6} {'attempts':>8} {'in tok':>10} {'out tok':>10} {'cost USD':>12} "
        f"{'cache hits':>10} {'saved USD':>11}"
    )
    for r in rows:
        note = f"  (+ {r['unpriced_calls']} unpriced: cost unknown)" if r["unpriced_calls"] else ""
        print(
            f"{r['key']:<{width}}  {r['calls']:>6} {r['attempts']:>8} {r['input_tokens']:>10} "
            f"{r['output_tokens']:>10} {r['cost_usd']:>12.6f} {r['cache_hits']:>10} "
            f"{r['saved_usd']:>11.6f}{note}"
        )
    total = sum(r["cost_usd"] for r in rows)
    saved = sum(r["saved_usd"] for r in rows)
    unpriced = sum(r["unpriced_calls"] for r in rows)
    note = f"  (+ {unpriced} unpriced: cost unknown)" if unpriced else ""
    print(
        f"{'total':<{width}}  {sum(r['calls'] for r in rows):>6} {sum(r['attempts'] for r in rows):>8} "
        f"{'':>21} {total:>12.6f} {'':>10} {saved:>11.6f}{note}"
    )
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from pop_nb.scaffold import init_project

    created = init_project(args.dir)
    print(f'created {created}; try: cd {args.dir} && pop run hello --data \'{{"topic": "tidal power"}}\'')
    return 0


def _parse_data(text: str | None) -> Any:
    from pop_nb.models.seed import loads_seed

    if not text:
        return {}
    try:
        return loads_seed(text, "--data")
    except PopError as exc:
        raise PopError(f'{exc}. Quote it for the shell, e.g. --data \'{{"topic": "x"}}\'') from None


def _read_json(path: Path) -> dict[str, Any]:
    from pop_nb.models.seed import loads_seed

    try:
        value = loads_seed(path.read_bytes(), str(path))
    except FileNotFoundError:
        raise PopError(f"seed file {path} does not exist") from None
    if not isinstance(value, dict):
        raise PopError(f'{path} must hold a JSON object: {{"pipeline": "<slug>", "data": {{...}}}}')
    return value


if __name__ == "__main__":
    sys.exit(main())
