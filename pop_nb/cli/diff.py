"""``pop diff``: two jobs, or two refine passes of one task, compared (:mod:`pop_nb.service.diff`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from pop_nb.cli.common import load_settings
from pop_nb.errors import PopError

if TYPE_CHECKING:
    from pop_nb.models.compare import JobDiff


def cmd_diff(args: argparse.Namespace) -> int:
    from pop_nb.service import diff

    settings = load_settings()
    if args.job_b is None:
        if args.task is None:
            raise PopError(
                "pop diff with one job compares two refine passes of a task: add --task T (or name a "
                "second job)"
            )
        before, after = args.passes or (None, None)
        found = diff.diff_passes(settings, args.job_a, args.task, before, after)
    else:
        if args.passes:
            raise PopError("--passes compares the passes of one job: name one job, not two")
        found = diff.diff_jobs(settings, args.job_a, args.job_b, args.task)
    show(found, args.json, args.html)
    return 0


def show(found: JobDiff, as_json: bool, html: Path | None) -> None:
    """Print ``found`` (text or JSON); write it as HTML to ``html`` when given."""
    from pop_nb.redaction import redact
    from pop_nb.service import diff

    if as_json:
        print(redact(found.model_dump_json(indent=2)))
    else:
        print(redact(diff.text(found)))  # what the job's files hold is masked; a key set since, too
    if html is not None:
        write_html(found, html)


def write_html(found: JobDiff, path: Path) -> None:
    write_html_of(f"pop diff {found.title}", [found], path)


def write_html_of(title: str, diffs: list[JobDiff], path: Path) -> None:
    """``diffs`` as one self-contained HTML file at ``path``."""
    import sys

    from pop_nb.service.diff_html import document, section
    from pop_nb.store.atomic import atomic_write_text

    atomic_write_text(path, document(title, [section(d) for d in diffs]))  # redacted there, as every write
    print(f"wrote {path}", file=sys.stderr)
