"""``pop cache stats | prune | clear | export | import``: the data folder's shared response cache."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from pop_nb.cli.common import load_settings
from pop_nb.errors import EXIT_ERROR, EXIT_FAILED, RequestError

if TYPE_CHECKING:
    from pop_nb.config import PopSettings
    from pop_nb.llm.cache_admin import Size


def cmd_cache(args: argparse.Namespace) -> int:
    from pop_nb.llm import cache_admin as admin
    from pop_nb.llm.cache import shared_store

    settings = load_settings()
    store = shared_store(settings.data)
    action = args.action
    if action == "stats":
        found = admin.stats(store, args.by)
        if args.json:
            print(json.dumps(asdict(found), indent=2))
            return 0
        print(f"{found.where}: {found.total.text()}{_ages(found.total)}")
        for group, size in sorted(found.by.items(), key=lambda kv: -kv[1].bytes):
            print(f"  {group:<40} {size.text()}")
        return 0
    if action in ("prune", "clear"):
        older = admin.parse_duration(args.older_than) if action == "prune" and args.older_than else None
        pipeline = args.pipeline if action == "prune" else None
        if action == "prune" and older is None and pipeline is None:
            print(
                "pop cache prune: give --older-than (e.g. 30d) and/or --pipeline P (`pop cache clear`: all)"
            )
            return EXIT_ERROR
        dry = action == "prune" and args.dry_run
        gone = admin.prune(store, older, pipeline, dry_run=dry)
        print(f"{'would remove' if dry else 'removed'} {gone.text()} from {store.root}")
        return 0
    if action == "export":
        folders = _job_dirs(settings, args)
        keys = None if args.all else admin.keys_of_jobs(folders)
        if keys is not None and not keys:
            print("pop cache export: those jobs kept no answers (no LLM calls, or the cache was off)")
            return EXIT_FAILED
        count = admin.export([*admin.job_stores(folders), store], keys, args.file)
        print(f"wrote {count} entr{'y' if count == 1 else 'ies'} to {args.file}")
        return 0
    added, refused = admin.import_(store, args.file)
    for why in refused:
        print(f"refused {why}")
    print(f"added {added} entr{'y' if added == 1 else 'ies'} to {store.root}")
    return EXIT_FAILED if refused else 0


def _job_dirs(settings: PopSettings, args: argparse.Namespace) -> list[Path]:
    """The folders of the jobs named by ``--jobs`` and ``--batch``."""
    from pop_nb.orchestrator.batch_plan import read_manifest
    from pop_nb.store.jobs import JobStore

    ids = list(args.jobs or [])
    if args.batch:
        manifest = settings.data / "batches" / args.batch / "manifest.jsonl"
        if not manifest.is_file():
            raise RequestError(f"no batch {args.batch!r} under {settings.data / 'batches'} (see `pop batch`)")
        ids += [line.job for line in read_manifest(manifest) if line.job]
    if not ids and not args.all:
        raise RequestError("pop cache export: say what to export: --jobs ID ..., --batch NAME, or --all")
    jobs = JobStore(settings.data)
    return [jobs.get(job_id).path for job_id in ids]


def _ages(size: Size) -> str:
    if size.oldest is None or size.newest is None:
        return ""
    now = time.time()
    return f"; last used {_ago(now - size.newest)} ago, the least recently {_ago(now - size.oldest)} ago"


def _ago(seconds: float) -> str:
    for unit, span in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= span:
            return f"{seconds / span:.0f}{unit}"
    return f"{max(seconds, 0):.0f}s"
