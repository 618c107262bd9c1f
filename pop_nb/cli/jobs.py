"""``pop run``, ``resume``, ``approve``, ``reject``, ``cancel``, ``submit``: a job changed through
:mod:`pop_nb.service`, then followed."""

from __future__ import annotations

import argparse
import getpass
import os
from pathlib import Path
from typing import Any

from pop_nb.cli.common import load_settings, parse_data, read_json, say_if_the_kernel_server_starts
from pop_nb.cli.follow import follow_job
from pop_nb.errors import PopError, RequestError
from pop_nb.safejson import loads


def cmd_run(args: argparse.Namespace) -> int:
    from pop_nb import service
    from pop_nb.jobs import Job

    settings = load_settings()
    where = str(args.seed or "--data")
    seed = read_json(args.seed) if args.seed else {"data": parse_data(args.data)}
    llm = seed.get("llm", {})
    if args.model and isinstance(llm, dict):  # (an llm that is not an object: the seed rule says so)
        seed = {**seed, "llm": {**llm, "model": args.model}}
    if not args.quiet:
        say_if_the_kernel_server_starts(settings)
    try:
        started = service.start_job(settings, args.slug, seed=seed, job_id=args.id, where=where)
    except PopError as exc:
        if args.seed or args.data:
            raise
        raise PopError(f"{exc}\n{_example_seeds_hint(settings, args.slug)}") from None
    return follow_job(Job(started.id, settings), args.quiet)


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
    from pop_nb import service
    from pop_nb.jobs import Job

    settings = load_settings()
    if not args.quiet:
        say_if_the_kernel_server_starts(settings)
    service.resume_job(settings, args.job_id, args.from_task, args.budget_usd)
    return follow_job(Job(args.job_id, settings), args.quiet)


def cmd_submit(args: argparse.Namespace) -> int:
    from pop_nb import service

    seed = read_json(args.seed) if args.seed else {"data": parse_data(args.data)}
    print(service.drop_seed(load_settings(), args.slug, seed, args.id, str(args.seed or "--data")))
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    from pop_nb import service
    from pop_nb.jobs import Job

    settings = load_settings()
    outputs = {}
    for given in args.output:
        task, sep, file = given.partition("=")
        if not sep or not task or not file:
            raise RequestError(f"--output {given!r}: write it TASK=FILE (a JSON file of the task's output)")
        try:
            outputs[task] = loads(Path(file).read_bytes())
        except OSError as exc:
            raise RequestError(f"--output {given!r}: cannot read {file}: {exc.strerror}") from None
        except ValueError as exc:
            raise RequestError(f"--output {given!r}: {file} is not JSON ({exc})") from None
    service.approve(settings, args.job_id, outputs or None, by=getpass.getuser())
    job = Job(args.job_id, settings)
    if args.detach:
        print(f"approved: job {args.job_id} goes on ({job.handle.executor}); `pop status {args.job_id}`")
        return 0
    return follow_job(job, args.quiet)


def cmd_reject(args: argparse.Namespace) -> int:
    from pop_nb import service

    job = service.reject(load_settings(), args.job_id, args.reason)
    print(f"rejected: job {args.job_id} is in {job.place}/")
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    from pop_nb import service

    job = service.cancel(load_settings(), args.job_id)  # JobStateError (exit 2) if it had ended
    print(f"cancelled {job.id}")
    return 0


def cmd_tidy(args: argparse.Namespace) -> int:
    """``pop archive|restore|delete <id>``."""
    from pop_nb import service
    from pop_nb.store.jobs import JobStore

    settings = load_settings()
    if args.action == "delete" and not args.yes:
        folder = JobStore(settings.data).get(args.job_id)
        print(f"would delete {folder.path} for good; run again with --yes to do it")
        return 0
    if args.action == "delete":
        gone = service.delete(settings, args.job_id)
        print(f"deleted job {gone.id} from {gone.place}/ ({gone.files} files, {gone.bytes} bytes)")
        return 0
    job = (
        service.archive(settings, args.job_id)
        if args.action == "archive"
        else service.restore(settings, args.job_id)
    )
    print(f"job {job.id} is in {job.place}/ now")
    return 0
