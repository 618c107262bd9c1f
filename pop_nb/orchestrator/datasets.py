"""A dataset file (``tests.jsonl``, an experiment's items): one JSON object a line, read a line at a time
(a file of any length streams), each line a model, each id once. Every way the file can be wrong is a
:class:`~pop_nb.errors.DatasetError` naming the file (and line) and the fix, never a crash."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from pop_nb.errors import DatasetError
from pop_nb.safejson import loads

M = TypeVar("M", bound=BaseModel)


def read_lines(
    path: Path,
    model: type[M],
    what: str,
    ident: Callable[[M, int], str],
    fix: str = "",
    *,
    where: list[tuple[int, int]] | None = None,
) -> Iterator[tuple[str, M]]:
    """``(id, line as model)`` for each non-blank line of ``path``; ``ident`` names a line (its model and
    line number); ``what`` is what a line is (``a test``), ``fix`` what to write when the file is absent.
    ``where``, when given, gets each line's ``(byte offset, line number)``: :func:`read_line` reads it
    again alone, so a caller can keep those two numbers instead of every line."""
    seen: set[str] = set()
    try:
        with path.open("rb") as lines:
            offset = 0
            for number, raw in enumerate(lines, 1):
                at, offset = offset, offset + len(raw)
                if not raw.strip():
                    continue
                value = _parse(path, number, raw, model, what)
                name = ident(value, number)
                if name in seen:
                    raise DatasetError(
                        f"{path}:{number}: the id {name!r} is used twice; give each its own id"
                    )
                seen.add(name)
                if where is not None:
                    where.append((at, number))
                yield name, value
    except FileNotFoundError:
        raise DatasetError(f"{path} does not exist.{' Fix: ' + fix if fix else ''}") from None
    except OSError as exc:  # a folder, no permission
        raise DatasetError(
            f"{path} cannot be read ({exc.strerror or exc}). Fix: name a JSON Lines file"
        ) from None


def read_line(path: Path, offset: int, number: int, model: type[M], what: str) -> M:
    """The line at ``offset`` (line ``number``, as :func:`read_lines` gave it) as ``model``."""
    try:
        with path.open("rb") as lines:
            lines.seek(offset)
            raw = lines.readline()
    except OSError as exc:
        raise DatasetError(f"{path} cannot be read again ({exc.strerror or exc})") from None
    return _parse(path, number, raw, model, what)


def _parse(path: Path, number: int, raw: bytes, model: type[M], what: str) -> M:
    try:
        return model.model_validate(loads(raw.decode("utf-8")))
    except UnicodeDecodeError:
        raise DatasetError(f"{path}:{number}: not UTF-8 text. Fix: save the file as UTF-8") from None
    except (ValueError, ValidationError) as exc:
        raise DatasetError(f"{path}:{number}: not {what}: {exc}") from None
