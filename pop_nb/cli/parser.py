"""The ``pop`` command line: one subcommand per job function or tool, each handled in a module of
:mod:`pop_nb.cli`."""

from __future__ import annotations

import argparse
from pathlib import Path

from pop_nb.cli.cache import cmd_cache
from pop_nb.cli.diff import cmd_diff
from pop_nb.cli.experiments import cmd_experiment
from pop_nb.cli.jobs import cmd_approve, cmd_cancel, cmd_reject, cmd_resume, cmd_run, cmd_submit, cmd_tidy
from pop_nb.cli.orchestrate import cmd_batch, cmd_orchestrate, cmd_worker
from pop_nb.cli.project import cmd_compile, cmd_init, cmd_pipelines
from pop_nb.cli.prompt_tests import cmd_test
from pop_nb.cli.schedules import cmd_schedules
from pop_nb.cli.status import cmd_costs, cmd_logs, cmd_status
from pop_nb.cli.trace import cmd_trace


def build_parser() -> argparse.ArgumentParser:
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
    c.add_argument(
        "--json", action="store_true", help="every job's summary as JSON, newest first, a page at a time"
    )
    c.add_argument("--recent", type=int, default=10, help="how many recent failures to list")
    c.add_argument("--offset", type=int, default=0, help="--json: skip this many of the newest")
    c.add_argument("--limit", type=int, default=500, help="--json: at most this many (1-500; default 500)")
    c.add_argument("--all", action="store_true", help="--json: every job, however many (page after page)")
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

    c = sub.add_parser(
        "schedules",
        help="schedules: each one's next slots and last outcomes; pause or resume one",
        description="List the project's schedules (schedules: in each pipeline.yaml, and schedules.yaml), "
        "each with its next slots and its latest slots' outcomes; `pop orchestrate` keeps them. "
        "`pause NAME` stops a schedule firing; `resume NAME` starts it again (slots during the pause are "
        "not caught up).",
    )
    c.add_argument("action", nargs="?", choices=["list", "pause", "resume"], default="list")
    c.add_argument("name", nargs="?", help="the schedule (pause, resume)")
    c.add_argument("--next", type=int, default=3, help="how many next slots to show (default 3)")
    c.add_argument("--history", type=int, default=5, help="how many past slots to show (default 5)")
    c.add_argument("--json", action="store_true", help="ScheduleView list as JSON")
    c.set_defaults(func=cmd_schedules)

    c = sub.add_parser(
        "trace",
        help="a job's span tree: job > task > stage > LLM call, with durations, tokens and cost",
        description="Print the job's trace (its spans.jsonl, and what is still running), one tree per run: "
        "each span's state and duration, and what the LLM calls under it used and cost.",
    )
    c.add_argument("job_id", help="the job's id (see `pop status`)")
    c.add_argument("--json", action="store_true", help="the trees as JSON (JobTrace)")
    c.add_argument("--attributes", action="store_true", help="every span's attributes too")
    c.set_defaults(func=cmd_trace)

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
    c.add_argument(
        "--output",
        action="append",
        default=[],
        metavar="TASK=FILE",
        help="approve with your correction of a waiting task's output (a JSON file); repeatable",
    )
    c.add_argument("--detach", action="store_true", help="start its runner and return at once")
    c.add_argument("--quiet", action="store_true")
    c.set_defaults(func=cmd_approve)

    c = sub.add_parser("reject", help="end a job waiting at a gate (it fails with GateRejected)")
    c.add_argument("job_id")
    c.add_argument("--reason")
    c.set_defaults(func=cmd_reject)

    for name, what in (
        ("archive", "move an ended job out of the way (archive/; found by id, not listed)"),
        ("restore", "bring an archived job back to complete/ or failed/"),
        ("delete", "remove an ended job's folder for good"),
    ):
        c = sub.add_parser(name, help=what)
        c.add_argument("job_id")
        if name == "delete":
            c.add_argument("--yes", action="store_true", help="do it (without it, say what would go)")
        c.set_defaults(func=cmd_tidy, action=name)

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
    c.add_argument("--json", action="store_true", help="every row, as JSON")
    c.add_argument(
        "--limit", type=int, default=50, help="the N costliest rows, then a line for the others (default 50)"
    )
    c.add_argument("--all", action="store_true", help="every row (with --by job: one per job)")
    c.set_defaults(func=cmd_costs)

    c = sub.add_parser(
        "test",
        help="prompt regression tests: run pipelines/<slug>/tests.jsonl, check each job's outputs",
        description="Run each test (a seed and its `expect` checks) as a job, through the executor, and "
        "check what it gave. By default in cache mode replay: no request leaves the machine, answers come "
        "from the recording (tests.cache.jsonl); --record asks the providers what is not recorded and "
        "writes the recording. Exit 0: all passed; 1: a regression; 4: a provider failed (429, timeout).",
    )
    c.add_argument("slug")
    c.add_argument("--dataset", type=Path, help="a tests file (default: pipelines/<slug>/tests.jsonl)")
    c.add_argument(
        "--record",
        action="store_true",
        help="cache mode read-write, then write the answers used to tests.cache.jsonl (commit it)",
    )
    c.add_argument(
        "--cache",
        default="replay",
        choices=["replay", "read-only", "read-write", "auto", "off"],
        help="the jobs' cache mode (default: replay)",
    )
    c.add_argument("--only", help="comma-separated test ids")
    c.add_argument("--concurrency", type=int, help="jobs at once (default: POP_MAX_RUNNING_JOBS)")
    c.add_argument("--executor", help="local, celery, ... (default: POP_EXECUTOR)")
    c.add_argument("--junit-xml", type=Path, help="also write a JUnit XML report here (for CI)")
    c.add_argument("--json", action="store_true", help="print the report as JSON")
    c.set_defaults(func=cmd_test)

    c = sub.add_parser(
        "experiment",
        help="variants of a pipeline over a dataset: run them, score them, compare them",
        description="An experiment (experiments/<name>.yaml, or pipelines/<slug>/experiments/) runs its "
        "pipeline over its dataset once per variant, through the executor, with the response cache on "
        "(read-write): running it again pays only for what changed. compare scores each job and puts the "
        "variants side by side: metric means with 95%% intervals, win/tie/loss against the baseline, cost.",
    )
    acts = c.add_subparsers(dest="action", metavar="ACTION", required=True)
    a = acts.add_parser("run", help="run every variant (again: only what is missing or failed), then compare")
    a.add_argument("name")
    a.add_argument("--only", help="comma-separated variants")
    a.add_argument("--concurrency", type=int, help="jobs at once (default: POP_MAX_RUNNING_JOBS)")
    a.add_argument("--executor", help="local, celery, ... (default: POP_EXECUTOR)")
    a = acts.add_parser("compare", help="score the finished jobs and compare the variants")
    a.add_argument("name")
    a.add_argument("--json", action="store_true")
    a = acts.add_parser(
        "show", help="one item under every variant: outputs, scores, what differs from the baseline"
    )
    a.add_argument("name")
    a.add_argument("--item", required=True, help="the item's id (its line's id, else item-<line>)")
    a.add_argument("--repeat", type=int, default=0, help="which repeat (default 0)")
    a.add_argument("--html", type=Path, help="also write the diffs against the baseline as one HTML file")
    c.set_defaults(func=cmd_experiment)

    c = sub.add_parser(
        "diff",
        help="what changed between two jobs (or two refine passes of a task): prompts, output, errors, cost",
        description="Task by task: the prompt text sent, the output compared as JSON, validation errors "
        "fixed and new, tokens and cost before and after. With one job and --task: its first answer "
        "against its last refine pass (or --passes I J).",
    )
    c.add_argument("job_a")
    c.add_argument("job_b", nargs="?")
    c.add_argument("--task", help="only this task")
    c.add_argument("--passes", type=int, nargs=2, metavar=("I", "J"), help="with one job: passes I and J")
    c.add_argument("--html", type=Path, help="also write it as one self-contained HTML file (no script)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_diff)

    c = sub.add_parser(
        "cache",
        help="the shared response cache: stats | prune | clear | export | import",
        description="Answers already paid for, shared by every job of the data folder (<data>/.cache/llm).",
    )
    acts = c.add_subparsers(dest="action", metavar="ACTION", required=True)
    a = acts.add_parser("stats", help="entries, size, last use; --by pipeline|model reads every entry")
    a.add_argument("--by", choices=["pipeline", "model"])
    a.add_argument("--json", action="store_true")
    a = acts.add_parser("prune", help="remove entries unused for a while, or paid for by one pipeline")
    a.add_argument("--older-than", help="unused for this long: 30d, 12h, 90m, 2w")
    a.add_argument("--pipeline", help="only entries this pipeline paid for")
    a.add_argument("--dry-run", action="store_true", help="say what would go; remove nothing")
    acts.add_parser("clear", help="remove every entry")
    a = acts.add_parser("export", help="write entries to a JSON Lines file (what some jobs used, or all)")
    a.add_argument("file", type=Path)
    a.add_argument("--jobs", nargs="+", metavar="ID", help="the entries these jobs used")
    a.add_argument("--batch", help="the entries the jobs of this batch used")
    a.add_argument("--all", action="store_true", help="every entry")
    a = acts.add_parser("import", help="add the entries of an exported file (each checked against its key)")
    a.add_argument("file", type=Path)
    c.set_defaults(func=cmd_cache)

    c = sub.add_parser("init", help="scaffold a project with an example pipeline")
    c.add_argument("dir", nargs="?", default=".", type=Path)
    c.set_defaults(func=cmd_init)
    return p
