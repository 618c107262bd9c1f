"""Where pop-nb reaches into a library's internals (for speed: a stage's kernel start, litellm's first
call), one module per library. Each checks at import that what it touches is there, so a library
upgrade that moved it fails at once, naming the library, its version and the fix, instead of deep in a
stage."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from pop_nb.errors import IncompatibleLibrary


def require(package: str, tested: str, owner: Any, *names: str) -> None:
    """Raise :class:`IncompatibleLibrary` unless ``owner`` (a class or module of ``package``) has every
    one of ``names``. ``tested``: the versions pop-nb is tested with, for the fix."""
    missing = [name for name in names if not hasattr(owner, name)]
    if missing:
        try:
            found = version(package)
        except PackageNotFoundError:
            found = "(not installed)"
        where = getattr(owner, "__qualname__", getattr(owner, "__name__", repr(owner)))
        raise IncompatibleLibrary(
            f"{package} {found} has no {', '.join(f'{where}.{n}' for n in missing)}, which pop-nb uses. "
            f"Fix: pip install '{package}{tested}' (the versions pop-nb is tested with)"
        )
