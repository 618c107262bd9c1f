"""The plan of a batch: where its seeds come from, each checked against the pipeline before anything
runs, and the manifest that records, per seed, its job or why it was not submitted."""

from __future__ import annotations

import functools
import glob as globlib
import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pop_nb.config import PopSettings
from pop_nb.errors import PopError, SeedError
from pop_nb.models.batch import ManifestLine
from pop_nb.models.seed import check_job_id, loads_seed

MAX_SEEDS = 100_000


def read_manifest(path: Path) -> list[ManifestLine]:
    """The batch's lines (written whole by each run, never appended: one parse of them all, as a JSON
    array; a line that is not one is found and named by reading them one by one)."""
    from pydantic import ValidationError

    lines = [line for line in path.read_text().splitlines() if line.strip()]
    try:
        found: list[ManifestLine] = _lines_adapter().validate_json("[" + ",".join(lines) + "]")
        return found
    except ValidationError:
        return [ManifestLine.model_validate(json.loads(line)) for line in lines]


@functools.cache
def _lines_adapter() -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(list[ManifestLine])


def default_name(slug: str, seeds: Path | None, pattern: str | None) -> str:
    """The batch's name when none is given: the same source gives the same name, so running the same
    command again resumes the same batch."""
    if seeds is not None:
        stem = "".join(c if c.isalnum() or c in "_-" else "-" for c in seeds.stem)[:40].strip("-_")
        return f"{slug}-{stem or 'seeds'}"
    digest = hashlib.sha256((pattern or "").encode()).hexdigest()[:6]
    return f"{slug}-glob-{digest}"


def read_seeds(
    seeds: Path | None, pattern: str | None, root: Path
) -> Iterator[tuple[str, dict[str, Any] | str]]:
    """``(source, seed object or why it is unreadable)`` for each seed, in order."""
    if seeds is not None:
        try:
            lines = seeds.read_bytes().splitlines()
        except OSError as exc:
            raise PopError(
                f"cannot read the seeds file {seeds}: {exc.strerror}. Fix: check the path"
            ) from None
        numbered = [(i, line) for i, line in enumerate(lines, 1) if line.strip()]
        if len(numbered) > MAX_SEEDS:
            raise PopError(
                f"{seeds} has {len(numbered)} seeds; a batch takes at most {MAX_SEEDS}. Fix: split it"
            )
        for i, line in numbered:
            yield from _one(f"{seeds}:{i}", line)
        return
    assert pattern is not None
    base = pattern if Path(pattern).is_absolute() else str(root / pattern)
    paths = sorted(Path(p) for p in globlib.glob(base, recursive=True) if Path(p).is_file())
    if not paths:
        raise PopError(f"--glob {pattern!r} matches no file under {root}. Fix: check the pattern (quote it)")
    if len(paths) > MAX_SEEDS:
        raise PopError(f"--glob {pattern!r} matches {len(paths)} files; a batch takes at most {MAX_SEEDS}")
    for path in paths:
        try:
            yield from _one(str(path), path.read_bytes())
        except OSError as exc:
            yield str(path), f"unreadable: {exc.strerror}"


def _one(source: str, data: bytes) -> Iterator[tuple[str, dict[str, Any] | str]]:
    try:
        value = loads_seed(data, source)
    except SeedError as exc:
        yield source, str(exc)
        return
    if not isinstance(value, dict):
        yield source, f'{source} is JSON but not an object. Fix: a seed looks like {{"data": {{...}}}}'
        return
    yield source, value


def plan(
    settings: PopSettings, slug: str, name: str, seeds: Iterable[tuple[str, dict[str, Any] | str]]
) -> list[ManifestLine]:
    """Check every seed against the pipeline (compiled once); nothing is made here."""
    from pop_nb.models.seed import parse_seed
    from pop_nb.service import validate_seed

    check_job_id(f"{name}-1")
    lines = []
    for n, (source, raw) in enumerate(seeds, 1):
        line = ManifestLine(n=n, source=source, job=f"{name}-{n}")
        try:
            if isinstance(raw, str):
                raise SeedError("invalid_seed", raw)
            validate_seed(settings, parse_seed(raw, source, slug), source)
        except PopError as exc:
            line.job, line.error = None, str(exc)
        lines.append(line)
    return lines
