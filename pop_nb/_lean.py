"""Costly imports that pop-nb's processes pay for nothing.

jsonschema imports a library for each string format it can check, whenever that library is installed
(jupyter's ``jsonschema[format-nongpl]`` installs them all), and some cost a lot: ``rfc3987_syntax``
builds a parser grammar (0.9-2.0 s, 3.7 s under load; nbformat imports jsonschema), ``rfc3986_validator``
compiles its regexes (~40 ms) and ``isoduration`` brings ``arrow`` (~25 ms).

The ``pop`` command and a job runner of its own call :func:`block` before anything imports jsonschema
(never a user's kernel, where ``%pop`` runs the same code): pop-nb checks no string formats (it never
passes a ``format_checker``), so jsonschema simply has no checker for them there. Libraries that others
use too (``idna``, ``jsonpointer``) are left alone. Every other process that imports pop-nb (a user's
kernel calling ``pop_nb.run``, the kernel server, whose forks are users' kernels) gets
:func:`defer_grammar` instead: the ``iri`` checker is there and works, and pays for its grammar the first
time it is used (``pop_nb.run``'s first call in a fresh kernel paid it while compiling the pipeline).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import types
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec

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


GRAMMAR = ("rfc3987_syntax", "is_valid_syntax")  # the library whose import builds a grammar, its checker
FORMATS = "jsonschema._format"  # the module of jsonschema that imports the format libraries


def defer_grammar() -> None:
    """Have jsonschema, when this process first imports it, take :data:`GRAMMAR` :func:`deferred`. Nothing
    changes if jsonschema is imported already, or once the format libraries are blocked (:func:`block`)."""
    if FORMATS not in sys.modules and not any(isinstance(f, _DeferGrammar) for f in sys.meta_path):
        sys.meta_path.insert(0, _DeferGrammar())


class _DeferGrammar:
    """An import finder (``sys.meta_path``): finds :data:`FORMATS` as the import system would, with a
    loader that runs it inside :func:`deferred`; then steps aside (it is needed once). Not an
    ``importlib.abc`` class: importing that costs 20-50 ms, here at every ``import pop_nb``."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        if name != FORMATS:
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _Deferring(spec.loader)  # type: ignore[assignment]  # a loader by what it does
        return spec


class _Deferring:
    """A module loader: the one the import system found, run inside :func:`deferred` (and answering
    for it otherwise: its source, its file, for tracebacks and tools)."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def __getattr__(self, name: str) -> Any:
        if name == "loader":  # not set yet (a copy being made): never look for it on itself
            raise AttributeError(name)
        return getattr(self.loader, name)

    def create_module(self, spec: ModuleSpec) -> types.ModuleType | None:
        made: types.ModuleType | None = self.loader.create_module(spec)
        return made

    def exec_module(self, module: types.ModuleType) -> None:
        with deferred(*GRAMMAR):
            self.loader.exec_module(module)
