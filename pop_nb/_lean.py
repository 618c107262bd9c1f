"""Costly imports that pop-nb's processes pay for nothing.

jsonschema imports a library for each string format it can check, whenever that library is installed
(jupyter's ``jsonschema[format-nongpl]`` installs them all), and some cost a lot: ``rfc3987_syntax``
builds a parser grammar (0.9-2.0 s, 3.7 s under load; nbformat imports jsonschema), ``rfc3986_validator``
compiles its regexes (~40 ms) and ``isoduration`` brings ``arrow`` (~25 ms).

The ``pop`` command and a job runner of its own call :func:`block` before anything imports jsonschema
(never a user's kernel, where ``%pop`` runs the same code): pop-nb checks no string formats (it never
passes a ``format_checker``), so jsonschema simply has no checker for them there. Libraries that others
use too (``idna``, ``jsonpointer``) are left alone. The kernel server, whose forks are users' kernels,
uses :func:`deferred` instead: the checker is there and works, and pays for its grammar the first time
it is used.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

BLOCKED = (
    "rfc3987_syntax",
    "rfc3986_validator",
    "rfc3339_validator",
    "isoduration",
    "uri_template",
    "webcolors",
    "fqdn",
)


def block() -> None:
    """Make ``import <library>`` fail for each of :data:`BLOCKED` not imported yet."""
    for module in BLOCKED:
        sys.modules.setdefault(module, None)  # type: ignore[arg-type]  # None means "import fails"


@contextlib.contextmanager
def deferred(module: str, function: str) -> Iterator[None]:
    """While inside, ``from <module> import <function>`` gives a stand-in that imports the real module
    when it is first called; on leaving, ``module`` is unknown again, so ``import <module>`` anywhere
    later is the real one. Nothing changes for a module that is already imported or not installed."""
    if module in sys.modules or importlib.util.find_spec(module) is None:
        yield
        return
    stand_in = types.ModuleType(module, f"a stand-in of {module} until it is used (pop_nb._lean)")

    def call(*args: Any, **kwargs: Any) -> Any:
        if sys.modules.get(module) is stand_in:
            del sys.modules[module]
        real: Callable[..., Any] = getattr(importlib.import_module(module), function)
        return real(*args, **kwargs)

    setattr(stand_in, function, call)
    sys.modules[module] = stand_in
    try:
        yield
    finally:
        if sys.modules.get(module) is stand_in:
            del sys.modules[module]
