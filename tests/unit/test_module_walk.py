"""The kernel server's walk over the modules, served to the two walkers of a starting kernel."""

from __future__ import annotations

import sys
import types

import ipykernel.ipkernel
import IPython.core.shellapp

from pop_nb.execution.module_walk import ModuleWalk


def files(modules: object) -> dict[str, object]:
    return {name: getattr(module, "__file__", None) for name, module in modules.items()}  # type: ignore[attr-defined]


def test_the_walkers_read_the_walk_while_it_is_current_and_the_modules_once_it_is_not() -> None:
    walk = ModuleWalk.take()
    with walk.serving():
        seen = ipykernel.ipkernel.sys.modules
        assert IPython.core.shellapp.sys.modules is seen
        assert seen.copy() is not seen.copy()  # a copy each time, as dict.copy gives
        assert files(seen.copy()) == files(sys.modules)
        assert set(seen.keys()) == set(sys.modules)
        assert not any(isinstance(m, types.ModuleType) for m in seen.values())  # the walk's, not modules
        assert seen["sys"] is sys and len(seen) == len(sys.modules)
        assert ipykernel.ipkernel.sys.version is sys.version  # the rest of sys is sys

        sys.modules["pop_walk_probe"] = probe = types.ModuleType("pop_walk_probe")
        try:
            assert seen.copy()["pop_walk_probe"] is probe  # a module loaded since: the modules themselves
            assert "pop_walk_probe" in set(seen.keys())
        finally:
            del sys.modules["pop_walk_probe"]
        assert not any(isinstance(m, types.ModuleType) for m in seen.values())
    assert ipykernel.ipkernel.sys is sys and IPython.core.shellapp.sys is sys


def test_a_walker_is_given_back_its_sys_when_the_start_fails() -> None:
    walk = ModuleWalk.take()
    try:
        with walk.serving():
            raise RuntimeError("the kernel did not start")
    except RuntimeError:
        pass
    assert ipykernel.ipkernel.sys is sys and IPython.core.shellapp.sys is sys


def test_an_object_in_sys_modules_whose_file_raises_is_walked_as_one_without_a_file() -> None:
    class Odd:
        @property
        def __file__(self) -> str:
            raise RuntimeError("computed on access, and failing")

    sys.modules["pop_walk_odd"] = Odd()  # type: ignore[assignment]
    try:
        walk = ModuleWalk.take()
        with walk.serving():
            entry = ipykernel.ipkernel.sys.modules.copy()["pop_walk_odd"]
        assert not hasattr(entry, "__file__")
    finally:
        del sys.modules["pop_walk_odd"]
