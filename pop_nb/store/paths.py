"""Relative paths that must stay inside a folder: artifacts, generated files, products.

A name comes from a notebook, a model's answer or a pipeline file, so it is checked twice: by its text
(no absolute path, no ``..``, no drive or backslash tricks, nothing a filesystem refuses) and, once the
folder exists, by where it resolves to (a symlink inside the folder must not lead out of it).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

MAX_PATH_CHARS = 255 * 4
"""Longer names are refused up front instead of failing later with ENAMETOOLONG."""


def path_problem(name: object) -> str | None:
    """Why ``name`` is not a safe relative path (``None`` when it is). Text checks only."""
    if not isinstance(name, str) or not name.strip():
        return "is empty or not text"
    if "\x00" in name or any(ord(c) < 32 for c in name):
        return "contains a control character"
    if len(name) > MAX_PATH_CHARS:
        return f"is longer than {MAX_PATH_CHARS} characters"
    if "\\" in name:
        return "contains a backslash; use / between folders"
    path = PurePosixPath(name)
    if path.is_absolute() or (len(name) > 1 and name[1] == ":"):
        return "is absolute"
    if ".." in path.parts:
        return "goes up with '..'"
    if any(len(part.encode("utf-8", "surrogateescape")) > 255 for part in path.parts):
        return "has a part longer than 255 bytes"
    return None


def inside(base: Path, name: str, what: str) -> Path:
    """``base / name``, refused with a ``ValueError`` naming ``what`` if it could land outside ``base``."""
    problem = path_problem(name)
    if problem is None:
        root = base.resolve()
        path = (base / name).resolve()
        if path == root:
            problem = "names the folder itself"
        elif not path.is_relative_to(root):
            problem = "leads outside its folder (through a symlink)"
    if problem is not None:
        raise ValueError(f"{what} {name!r} {problem}; use a relative path like 'src/module.py'")
    return path
