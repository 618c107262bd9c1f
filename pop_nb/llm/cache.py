"""The response cache: answers already paid for, found again by what was asked.

One key and one entry format, two stores:

- the job's own, ``<job>/llm/responses/<key>.json``: every answer the job got, so a stage that runs
  again (resume, retry) never pays twice, whatever the mode (except ``off``);
- the shared one, ``<data>/.cache/llm/<k[:2]>/<key>.json``: answers any job, batch or worker paid for,
  used as the mode says.

The key is the SHA-256 of the canonical JSON of what decides the answer: provider, model, messages and
every request parameter except those that only say how to reach the provider (:data:`TRANSPORT`, keys,
a provider's own fields), plus a *sample*: ``None`` for a deterministic request (``temperature: 0`` or a
``seed``), else where it was asked (repeat, task, stage, refinement pass, occurrence within the stage
run). So at temperature 0 one answer serves every identical request, and a stage that samples three
times gets three answers, and the same three when it runs again.

Modes (``llm.cache`` of the pipeline, seed or task; ``POP_LLM_CACHE`` over all):

- ``auto`` (default): the shared cache serves and keeps deterministic requests only; a sampled one is
  kept by the job alone, so re-running a seed at temperature 0 is free and sampling at 0.8 samples;
- ``read-write``: the shared cache serves and keeps every request (samples included, by position);
- ``read-only``: it serves but keeps nothing new (a committed recording stays as it was);
- ``replay``: no request is sent at all; a miss is a :class:`~pop_nb.errors.ReplayMiss` naming the call;
- ``off``: no store is read or written; every call is sent.

Entries are JSON (never pickle), written atomically, first writer wins, so parallel jobs and Celery
workers sharing the data folder can race on a key and leave one valid entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pop_nb import safejson
from pop_nb.models.pipeline import CacheMode
from pop_nb.redaction import is_secret_name
from pop_nb.store.atomic import atomic_create_bytes, atomic_write_bytes

DEFAULT_MODE: CacheMode = "auto"
FORMAT = 1

# Request fields that say how to reach a provider, or who asks, never what is asked: out of the key
# (and so out of every entry). Any other field is in the key: an unknown one costs a miss, never a
# wrong answer.
TRANSPORT = frozenset(
    {
        "api_base",
        "base_url",
        "api_version",
        "organization",
        "headers",
        "extra_headers",
        "timeout",
        "metadata",
        "user",
        "max_retries",
        "num_retries",
    }
)


def deterministic(params: dict[str, Any]) -> bool:
    """Whether the request asks for one answer: ``temperature: 0``, or a ``seed`` to reproduce."""
    temperature = params.get("temperature")
    return (isinstance(temperature, int | float) and temperature == 0) or params.get("seed") is not None


@dataclass(frozen=True)
class Sample:
    """Where a sampled request was asked: which sample of it this is."""

    repeat: int
    task: str | None
    stage: str | None
    refinement: int
    occurrence: int


def key_fields(
    provider: str, model: str, messages: list[dict[str, Any]], params: dict[str, Any], sample: Sample | None
) -> dict[str, Any]:
    """What decides the answer, as plain JSON values: what the key hashes and an entry keeps."""
    kept = {k: v for k, v in params.items() if k not in TRANSPORT and not is_secret_name(k)}
    return {
        "provider": provider,
        "model": model,
        "messages": _plain(messages),
        "params": _plain(kept),
        "sample": None if sample is None else vars(sample),
    }


def cache_key(fields: dict[str, Any]) -> str:
    blob = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _plain(value: Any) -> Any:
    """``value`` as JSON values. A pydantic model class (a ``response_format``) is its JSON schema, so
    a changed field changes the key; anything else unknown is its ``repr``."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    schema = getattr(value, "model_json_schema", None)
    if isinstance(value, type) and callable(schema):
        return {"json_schema": schema()}
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return _plain(dump())
    return repr(value)


def cacheable(raw: Any, params: dict[str, Any]) -> str | None:
    """Why this successful answer must not be kept, or None: a refusal, or an answer cut off at
    ``max_tokens`` where a structured answer was asked for."""
    choices = getattr(raw, "choices", None) or []
    if not choices:
        return "no choices"
    choice = choices[0]
    reason = getattr(choice, "finish_reason", None)
    message = getattr(choice, "message", None)
    if reason == "content_filter" or getattr(message, "refusal", None):
        return "refused"
    if reason == "length" and params.get("response_format") is not None:
        return "cut off at max_tokens"
    return None


_KEY = re.compile(r"[0-9a-f]{64}")


class Store:
    """A folder of entries, one JSON file each. ``sharded``: under ``<key[:2]>/`` (the shared cache,
    which may hold millions); a job's own store is flat."""

    def __init__(self, root: Path, *, sharded: bool) -> None:
        self.root = root
        self.sharded = sharded

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json" if self.sharded else self.root / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        if not _KEY.fullmatch(key):  # keys are SHA-256 hex; one read from a file a cell wrote is not a path
            return None
        try:
            entry = safejson.loads(self.path(key).read_bytes())
        except (OSError, ValueError):  # absent, unreadable, torn by a foreign writer: a miss
            return None
        return entry if isinstance(entry, dict) and entry.get("key") == key else None

    def put(self, entry: dict[str, Any], *, first_wins: bool) -> bool:
        """Write ``entry``; with ``first_wins``, only if its key has none yet. Whether it wrote."""
        blob = json.dumps(entry, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")
        # no fsync: an entry lost to a power cut is only paid for again; the usage row stays
        if first_wins:
            return atomic_create_bytes(self.path(entry["key"]), blob)
        atomic_write_bytes(self.path(entry["key"]), blob, durable=False)
        return True

    def touch(self, key: str) -> None:
        """Mark the entry used now (``pop cache prune --older-than`` goes by last use)."""
        with contextlib.suppress(OSError):  # read-only mount, pruned meanwhile: it stays as old as it was
            os.utime(self.path(key))

    def files(self) -> Iterator[os.DirEntry[str]]:
        """Every entry file (no order), skipping temp files."""
        for folder in self.shards() if self.sharded else [self.root]:
            yield from self.listing(folder)

    def shards(self) -> list[Path]:
        """The shard folders (``00`` .. ``ff``) there are, in order."""
        try:
            with os.scandir(self.root) as it:
                return sorted(Path(d.path) for d in it if len(d.name) == 2 and d.is_dir())
        except FileNotFoundError:
            return []

    @staticmethod
    def listing(folder: Path) -> list[os.DirEntry[str]]:
        """The entry files of one folder (temp files, which start with a dot, left out)."""
        try:
            with os.scandir(folder) as it:
                return [e for e in it if e.name.endswith(".json") and not e.name.startswith(".")]
        except FileNotFoundError:
            return []


def shared_store(data_dir: Path) -> Store:
    return Store(data_dir / ".cache" / "llm", sharded=True)


def job_store(job_dir: Path) -> Store:
    return Store(job_dir / "llm" / "responses", sharded=False)


@dataclass(frozen=True)
class Policy:
    """What a mode lets one call do with the shared cache (the job's own store: always, unless off)."""

    mode: CacheMode
    deterministic: bool

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    @property
    def reads_shared(self) -> bool:
        return self.mode in ("read-write", "read-only", "replay") or (
            self.mode == "auto" and self.deterministic
        )

    @property
    def writes_shared(self) -> bool:
        return self.mode == "read-write" or (self.mode == "auto" and self.deterministic)

    @property
    def sends(self) -> bool:
        return self.mode != "replay"


def new_entry(
    key: str, fields: dict[str, Any], response: dict[str, Any], paid_by: dict[str, Any]
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "key": key,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "paid_by": paid_by,
        "request": fields,
        "response": response,
    }
