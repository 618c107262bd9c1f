"""The library internals pop-nb touches are checked when its compatibility modules load: a library
without one fails at once, naming the library, its version and the fix (not deep in a stage)."""

from __future__ import annotations

import importlib
from importlib.metadata import version

import pytest
from jupyter_client.asynchronous.client import AsyncKernelClient

import pop_nb.compat.jupyter
from pop_nb.compat import require
from pop_nb.errors import ConfigError, IncompatibleLibrary, exit_code, http_status


def test_what_the_installed_libraries_have_passes() -> None:
    importlib.reload(pop_nb.compat.jupyter)
    from pop_nb.compat.litellm import check
    from pop_nb.llm.providers import load_litellm

    check(load_litellm())


def test_a_jupyter_client_without_an_internal_we_use_is_named_at_import(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = "_handle_kernel_info_reply"
    owner = next(cls for cls in AsyncKernelClient.__mro__ if name in vars(cls))  # where it is defined
    monkeypatch.delattr(owner, name)
    with pytest.raises(IncompatibleLibrary) as raised:
        importlib.reload(pop_nb.compat.jupyter)
    message = str(raised.value)
    assert (
        f"jupyter_client {version('jupyter_client')} has no AsyncKernelClient._handle_kernel_info_reply"
        in message
    )
    assert "Fix: pip install 'jupyter_client>=8,<9'" in message
    assert (
        isinstance(raised.value, ConfigError)
        and exit_code(raised.value) == 2
        and http_status(raised.value) == 500
    )


def test_every_missing_name_is_listed() -> None:
    import nbclient

    with pytest.raises(
        IncompatibleLibrary, match=r"nbclient \S+ has no NotebookClient.gone, NotebookClient.away"
    ):
        require("nbclient", ">=0.10", nbclient.NotebookClient, "gone", "execute", "away")
