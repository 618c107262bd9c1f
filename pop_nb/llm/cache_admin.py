"""Looking after the shared response cache: its size, pruning, clearing, and moving entries between
data folders (``pop cache export`` of what a test set used, committed, ``pop cache import`` in CI).

An exported file is JSON Lines, one entry per line, as stored. Importing checks each entry: its key
must be the hash of the request it holds, so an entry can only ever answer the request it names.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pop_nb import safejson
from pop_nb.errors import RequestError
from pop_nb.llm.cache import FORMAT, Store, cache_key, job_store
from pop_nb.store import layout
from pop_nb.store.atomic import atomic_write_bytes

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> float:
    """``30d``, ``12h``, ``90m``, ``2w``, ``45s`` as seconds."""
    match = _DURATION.match(text)
    if match is None:
        raise RequestError(f"--older-than {text!r}: give a number and a unit: 30d, 12h, 90m, 2w or 45s")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


@dataclass
class Size:
    entries: int = 0
    bytes: int = 0
    oldest: float | None = None  # last use, as a timestamp
    newest: float | None = None

    def add(self, size: int, used: float) -> None:
        self.entries += 1
        self.bytes += size
        self.oldest = used if self.oldest is None else min(self.oldest, used)
        self.newest = used if self.newest is None else max(self.newest, used)

    def text(self) -> str:
        return f"{self.entries} entr{'y' if self.entries == 1 else 'ies'}, {human_bytes(self.bytes)}"


@dataclass
class Stats:
    where: str
    total: Size = field(default_factory=Size)
    by: dict[str, Size] = field(default_factory=dict)


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def size(store: Store) -> Size:
    """Entries and bytes, from the folder listing alone (no entry is read)."""
    found = Size()
    for entry in store.files():
        with contextlib.suppress(FileNotFoundError, ValueError):  # pruned or torn meanwhile
            info = entry.stat()
            found.add(info.st_size, info.st_mtime)
    return found


def estimate(store: Store, shards: int = 16, exact_below: int = 20_000) -> tuple[Size, bool]:
    """The size of a large cache in a few milliseconds, for ``pop status``: keys are SHA-256, spread
    evenly over the 256 shard folders, so ``shards`` of them (evenly picked) are counted and scaled,
    and bytes are their entries' mean size times the count. Exact (and says so) when small."""
    folders = store.shards()
    if len(folders) <= shards:
        return size(store), True
    picked = folders[:: len(folders) // shards][:shards]
    names = [entry for folder in picked for entry in store.listing(folder)]
    scale = len(folders) / len(picked)
    if len(names) * scale < exact_below:
        return size(store), True
    sizes = []
    for entry in names[:: max(len(names) // 200, 1)]:
        with contextlib.suppress(FileNotFoundError):
            sizes.append(entry.stat().st_size)
    found = Size(entries=round(len(names) * scale))
    found.bytes = round(found.entries * (sum(sizes) / len(sizes) if sizes else 0))
    return found, False


def stats(store: Store, by: str | None = None) -> Stats:
    """Size, and per ``by`` (``pipeline`` or ``model``: who paid, for what) when asked; that reads every
    entry."""
    result = Stats(str(store.root))
    for entry in store.files():
        with contextlib.suppress(FileNotFoundError, ValueError):  # pruned or torn meanwhile
            info = entry.stat()
            result.total.add(info.st_size, info.st_mtime)
            if by is not None:
                group = _group(_read(Path(entry.path)), by)
                result.by.setdefault(group, Size()).add(info.st_size, info.st_mtime)
    return result


def prune(store: Store, older_than_s: float | None, pipeline: str | None, dry_run: bool = False) -> Size:
    """Remove the entries unused for ``older_than_s`` (all, if None) that ``pipeline`` paid for (any, if
    None). Returns what was (or, with ``dry_run``, would be) removed."""
    cutoff = time.time() - older_than_s if older_than_s is not None else None
    removed = Size()
    for entry in store.files():
        with contextlib.suppress(FileNotFoundError, ValueError):  # pruned or torn meanwhile
            info = entry.stat()
            if cutoff is not None and info.st_mtime >= cutoff:
                continue
            if pipeline is not None and _group(_read(Path(entry.path)), "pipeline") != pipeline:
                continue
            if not dry_run:
                Path(entry.path).unlink()
            removed.add(info.st_size, info.st_mtime)
    return removed


def keys_of_jobs(job_dirs: Iterable[Path]) -> set[str]:
    """The cache keys the jobs' calls were answered from or kept in (their ``usage.jsonl``)."""
    keys: set[str] = set()
    for job in job_dirs:
        try:
            lines = (job / layout.USAGE).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            continue
        for line in lines:
            with contextlib.suppress(FileNotFoundError, ValueError):  # pruned or torn meanwhile
                row = safejson.loads(line)
                key = row.get("cache_key") if isinstance(row, dict) else None
                if isinstance(key, str):
                    keys.add(key)
    return keys


def job_stores(job_dirs: Iterable[Path]) -> list[Store]:
    return [job_store(job) for job in job_dirs]


def export(stores: list[Store], keys: Iterable[str] | None, dest: Path) -> int:
    """Write the entries of ``keys`` (every shared entry, if None) to ``dest`` as JSON Lines, sorted by
    key so a re-export of the same set is byte-for-byte the same file (a small diff when committed).
    Each key is looked up in ``stores`` in order (a job's own answers, then the shared cache)."""
    found: dict[str, dict[str, Any]] = {}
    wanted = None if keys is None else set(keys)
    if wanted is None:
        for entry in stores[-1].files():
            got = _read(Path(entry.path))
            if got is not None:
                found[got["key"]] = got
    else:
        for key in wanted:
            got = next((e for s in stores if (e := s.get(key)) is not None), None)
            if got is not None:
                found[key] = got
    lines = [json.dumps(found[k], ensure_ascii=False, sort_keys=True, default=str) for k in sorted(found)]
    atomic_write_bytes(dest, "".join(f"{line}\n" for line in lines).encode("utf-8"))
    os.chmod(dest, 0o644)  # a file to commit and share, not a private one
    return len(found)


def import_(store: Store, source: Path) -> tuple[int, list[str]]:
    """Add the entries of an exported file (an entry already there stays). Returns how many were added
    and why each refused line was refused."""
    added, refused = 0, []
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise RequestError(
            f"{source}: cannot read it ({exc}). Fix: give a file written by `pop cache export`"
        ) from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        why = _check(line)
        if isinstance(why, str):
            refused.append(f"{source}:{number}: {why}")
            continue
        added += store.put(why, first_wins=True)
    return added, refused


def _check(line: str) -> dict[str, Any] | str:
    try:
        entry = safejson.loads(line)
    except ValueError as exc:
        return f"not JSON ({exc})"
    if not isinstance(entry, dict) or entry.get("format") != FORMAT:
        return f"not a cache entry of format {FORMAT}"
    request, key = entry.get("request"), entry.get("key")
    if not isinstance(request, dict) or not isinstance(entry.get("response"), dict):
        return "no request or response"
    if not isinstance(key, str) or cache_key(request) != key:
        return "its key is not the hash of its request (edited, or written by another version)"
    return entry


def _read(path: Path) -> dict[str, Any] | None:
    try:
        entry = safejson.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return entry if isinstance(entry, dict) and isinstance(entry.get("key"), str) else None


def _group(entry: dict[str, Any] | None, by: str) -> str:
    if entry is None:
        return "(unreadable)"
    if by == "model":
        return str((entry.get("request") or {}).get("model") or "(unknown)")
    return str((entry.get("paid_by") or {}).get(by) or "(none)")
