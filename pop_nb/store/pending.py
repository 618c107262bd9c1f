"""``pending/``, the drop folder: seeds waiting for the daemon (``<id>-seed.json``, written atomically
so the daemon never reads half of one), and what else lies there (strays, left for whoever put them)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pop_nb.config import PopSettings
from pop_nb.errors import SeedError
from pop_nb.models.seed import check_job_id, shown_name
from pop_nb.store.atomic import atomic_write_bytes
from pop_nb.store.jobs import JobStore

SEED_SUFFIX = "-seed.json"


def scan_pending(folder: Path) -> tuple[list[str], list[str]]:
    """``(seed file names oldest first, names of strays)`` in ``folder``: a stray is any name that is
    not a regular ``*-seed.json`` file (hidden names, a writer's temporaries, are neither)."""
    seeds, strays = [], []
    if not folder.is_dir():
        return [], []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.name.endswith(SEED_SUFFIX) and entry.is_file(follow_symlinks=False):
                    seeds.append((entry.stat(follow_symlinks=False).st_mtime, entry.name))
                else:
                    strays.append(shown_name(entry.name))
            except FileNotFoundError:  # taken by another daemon meanwhile
                continue
    return [name for _, name in sorted(seeds)], sorted(strays)


def submit_seed(settings: PopSettings, seed: dict[str, object], job_id: str) -> Path:
    """Write ``pending/<id>-seed.json`` atomically: a hidden temporary, then a rename."""
    check_job_id(job_id)
    target = JobStore(settings.data).dir("pending") / f"{job_id}{SEED_SUFFIX}"
    if target.exists():
        raise SeedError("duplicate_id", f"{target} is already waiting; use a new id")
    atomic_write_bytes(target, (json.dumps(seed, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return target
