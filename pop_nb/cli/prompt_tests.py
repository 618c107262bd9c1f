"""``pop test <pipeline>``: its prompt regression tests, each a job held to its checks."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import TYPE_CHECKING

from pop_nb.cli.common import load_settings

if TYPE_CHECKING:
    from pop_nb.models.pipeline import CacheMode


def cmd_test(args: argparse.Namespace) -> int:
    from pop_nb.orchestrator.prompt_report import failure_text, junit_xml
    from pop_nb.orchestrator.prompt_tests import recording_of, run_tests
    from pop_nb.pipeline.load import load_pipeline
    from pop_nb.store.atomic import atomic_write_text

    settings = load_settings()
    mode: CacheMode = "read-write" if args.record else args.cache
    dataset = args.dataset.resolve() if args.dataset else None
    tests_file = dataset or load_pipeline(settings.root, args.slug).dir / "tests.jsonl"
    only = {part.strip() for part in args.only.split(",") if part.strip()} if args.only else None
    if not args.json:
        sends = {"replay": "no request is sent", "off": "every call is sent"}.get(mode, "misses are sent")
        print(f"pop test {args.slug}: {tests_file} in cache mode {mode} ({sends})", flush=True)
    report = run_tests(
        settings,
        args.slug,
        dataset,
        mode=mode,
        only=only,
        concurrency=args.concurrency,
        executor=args.executor,
        record_to=recording_of(tests_file) if args.record else None,
    )
    if args.junit_xml:
        atomic_write_text(args.junit_xml, junit_xml(report))
    if args.json:
        print(json.dumps(asdict(report), indent=2, default=str))
        return report.exit_code
    for outcome in report.outcomes:
        label = {"passed": "PASS ", "failed": "FAIL ", "error": "ERROR"}[outcome.result]
        print(
            f"  {label} {outcome.id:<32} job {outcome.job or '-'} ({outcome.state}) ${outcome.cost_usd:.6f}"
        )
        if outcome.result == "error":
            print(f"        infrastructure, not a regression: {outcome.error}")
        for failure in outcome.failures:
            print("\n".join(f"        {line}" for line in failure_text(failure).splitlines()))
    cost = sum(o.cost_usd for o in report.outcomes)
    print(
        f"{report.count('passed')} passed, {report.count('failed')} failed, {report.count('error')} "
        f"infrastructure errors in {report.seconds:.1f} s; spent ${cost:.6f} (run {report.run})"
    )
    if report.recorded is not None:
        answers = f"{report.recorded} answer{'s' if report.recorded != 1 else ''}"
        print(f"recorded {answers} in {recording_of(tests_file)}: commit it to replay them")
    return report.exit_code
