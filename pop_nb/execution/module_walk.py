"""The walk over ``sys.modules`` that a starting kernel makes, taken once by the kernel server.

As it starts, ipykernel lists the file of every loaded module (the debugger's "just my code" rules) and
IPython keeps the set of their names (for ``%reset --aggressive``). A kernel forked from the server has
some 4,000 modules loaded (litellm's), each object on a page it shares with the server: reading one
writes its reference count, so the kernel copies the page. Those two walks cost a forked kernel ~6,000
page copies, 16-20 ms of the ~56 ms of CPU its start takes.

The server walks once (:meth:`ModuleWalk.take`), into fresh objects packed in a few hundred pages, and
each kernel it forks reads those instead while it initializes (:meth:`ModuleWalk.serving`), as long as
no module was loaded or removed since the walk; otherwise it walks ``sys.modules`` as usual. Either
way the kernel ends with the same list and set.
"""

from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Iterator, Mapping
from typing import Any

# the modules whose global ``sys`` a starting kernel reads ``sys.modules`` through
WALKERS = ("ipykernel.ipkernel", "IPython.core.shellapp")


class _Module:
    """What a walk reads of a module: its ``__file__``, when it has one."""

    __slots__ = ("__file__",)
    __file__: Any


def _fresh(value: Any) -> Any:
    """A new copy of a string, allocated beside the other copies (the original sits wherever the import
    that made it left it); anything else as it is."""
    return (value + ".")[:-1] if isinstance(value, str) else value


class ModuleWalk:
    def __init__(self, modules: dict[str, _Module]) -> None:
        self._modules = modules

    @classmethod
    def take(cls) -> ModuleWalk:
        modules = {}
        for name, module in list(sys.modules.items()):
            entry = _Module()
            try:
                file = getattr(module, "__file__", None)
            except Exception:  # an object in sys.modules whose attributes run code: as if it had none
                file = None
            if file:
                entry.__file__ = _fresh(file)
            modules[_fresh(name)] = entry
        return cls(modules)

    def current(self) -> bool:
        """Whether ``sys.modules`` still holds what was walked (a module loaded or removed since changes
        its size; neither happens between a fork and the kernel's start but by a change of ipykernel)."""
        return len(sys.modules) == len(self._modules)

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        """While inside, the walkers' ``sys.modules`` answers ``copy``, ``keys`` and ``values`` from this
        walk; any other use of it, and all of ``sys``, is the real one."""
        view = _Sys(_Modules(self))
        walkers = [
            module
            for name in WALKERS
            if (module := sys.modules.get(name)) is not None and getattr(module, "sys", None) is sys
        ]
        for module in walkers:
            module.sys = view  # type: ignore[attr-defined]
        try:
            yield
        finally:
            for module in walkers:
                module.sys = sys  # type: ignore[attr-defined]


class _Modules(Mapping[str, Any]):
    def __init__(self, walk: ModuleWalk) -> None:
        self._walk = walk

    def __getitem__(self, name: str) -> Any:
        return sys.modules[name]

    def __iter__(self) -> Iterator[str]:
        return iter(sys.modules)

    def __len__(self) -> int:
        return len(sys.modules)

    def copy(self) -> dict[str, Any]:
        return dict(self._walk._modules) if self._walk.current() else sys.modules.copy()

    def keys(self) -> Any:
        return self._walk._modules.keys() if self._walk.current() else sys.modules.keys()

    def values(self) -> Any:
        return self._walk._modules.values() if self._walk.current() else sys.modules.values()


class _Sys(types.ModuleType):
    """``sys`` with another ``modules``."""

    def __init__(self, modules: _Modules) -> None:
        super().__init__("sys")
        self.__dict__["modules"] = modules

    def __getattr__(self, name: str) -> Any:
        return getattr(sys, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(sys, name, value)
