"""Crash-safe file writes: whole files via temp + fsync + rename, log lines via one O_APPEND write.

Every write here passes through the one redaction rule (:func:`pop_nb.redaction.redact_bytes`): no
file the engine writes through this module can hold a key from the environment.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pop_nb.redaction import redact_bytes
from pop_nb.safejson import loads

if TYPE_CHECKING:
    from pydantic import BaseModel


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_beside(path: Path, data: bytes, durable: bool, make_parents: bool = True) -> str:
    """A temp file beside ``path`` holding ``data`` with secrets masked (fsynced if ``durable``)."""
    data = redact_bytes(data)
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def atomic_write_bytes(path: Path, data: bytes, durable: bool = True, make_parents: bool = True) -> None:
    """Replace ``path`` with ``data`` (secrets masked) so a reader sees the old file or the new one,
    never a torn one.

    ``durable`` also fsyncs file and folder, so the new file survives a power cut, not just a crash.
    ``make_parents=False``: a folder that is gone stays gone (a job folder that moved is not made again
    where it was); the write raises ``FileNotFoundError``.
    """
    tmp = _temp_beside(path, data, durable, make_parents)
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        _fsync_dir(path.parent)


def atomic_create_bytes(path: Path, data: bytes) -> bool:
    """Write ``path`` (secrets masked) unless it exists: the first of racing writers wins and every
    reader sees a whole file. Returns whether this call wrote it. Not fsynced."""
    tmp = _temp_beside(path, data, durable=False)
    try:
        os.link(tmp, path)  # atomic and exclusive, on local disks and NFS alike
    except FileExistsError:
        return False
    finally:
        Path(tmp).unlink(missing_ok=True)
    return True


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _is_model(value: object) -> bool:
    """A pydantic model? (Asked without importing pydantic: if it is not loaded, nothing is one.)"""
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(value, pydantic.BaseModel)


def atomic_write_json(path: Path, value: Any, durable: bool = True, make_parents: bool = True) -> None:
    if _is_model(value):
        text = value.model_dump_json(indent=2)
    else:
        text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    atomic_write_bytes(path, (text + "\n").encode("utf-8"), durable=durable, make_parents=make_parents)


def append_jsonl(path: Path, row: BaseModel | dict[str, Any]) -> None:
    """Append one JSON line with a single ``write`` on an ``O_APPEND`` descriptor.

    Concurrent writers (parallel tasks' kernels) therefore never interleave within a line.
    """
    text = json.dumps(row, default=str) if isinstance(row, dict) else row.model_dump_json()
    data = redact_bytes((text.replace("\n", " ") + "\n").encode("utf-8"), compact=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a JSON-lines file; a torn last line (a crash mid-append) is skipped, not fatal."""
    try:
        fh = path.open("r", encoding="utf-8")
    except FileNotFoundError:
        return
    with fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                yield loads(line)
            except ValueError:
                continue


def read_json(path: Path) -> Any:
    return loads(path.read_text(encoding="utf-8"))
