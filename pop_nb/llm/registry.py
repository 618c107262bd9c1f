"""pop-nb's own providers: ``<name>/<model>`` answered by a Python function, reached through litellm
like any hosted provider (its custom provider map), so every call is retried, hashed, priced and logged
the same way.

A provider is one module with a :class:`Provider` in it and one entry point naming it, in the group
``pop_nb.providers`` (pop-nb's ``mock``, ``claude-code`` and ``local`` are declared in its
``pyproject.toml``; a package of yours can add one the same way)::

    [project.entry-points."pop_nb.providers"]
    echo = "my_package.echo:PROVIDER"

:func:`register` adds one in this process only (tests, a notebook).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Literal

from pop_nb.errors import ProviderError

if TYPE_CHECKING:
    from pop_nb.llm.providers import Answer, Request

GROUP = "pop_nb.providers"
Pricing = Literal["imitated", "reported", "local"]


@dataclass(frozen=True)
class Provider:
    """One provider of ours.

    ``pricing``: ``imitated``: the model named after the prefix prices each call
    (``mock/gpt-4o-mini`` costs what ``gpt-4o-mini`` costs); ``reported``: the provider says what each
    call cost (``cost_source: provider``), so it needs no price map entry; ``local``: it runs on this
    machine and costs nothing (``cost_source: local``).
    ``key_env``: environment variables it needs (a candidate without them is passed over).
    ``own_params``: the request fields only it takes (``mock_responses``, ``claude_path``): they say how
    to reach it, not what is asked, so they are left out of the request hash (a replay survives a moved
    executable), and they are not sent to any other provider (a fallback, or ``--model``).
    ``response_schema``: whether it answers ``response_format`` with output constrained to the schema;
    None: as the model it imitates does.
    ``positional``: its answer depends on where a call is made (task, stage, pass, call), not only on
    what it asks (``mock``'s script): the response cache keys every call of it by that place.
    ``key_of``: given a call's parameters, what of its own fields decides the answer, as a JSON value
    (``mock``: a digest of its script's content, not the script's path): it joins the cache key.
    ``check``: given a model, what is wrong with it here (``"... Fix: ..."``) or None; ``pop compile``
    reports it, so a pipeline naming a model this machine cannot run is caught before a job starts.

    It answers in one of two ways: ``answer`` (a function given each request, behind litellm's custom
    provider path), or ``route`` (given the model, returns where litellm sends it instead: ``model``,
    ``api_base``, ``api_key`` of an OpenAI-compatible server, so litellm's own HTTP path runs).
    """

    def __post_init__(self) -> None:
        if (self.answer is None) == (self.route is None):
            raise TypeError(f"provider {self.name!r}: give it an answer function or a route, one of them")

    name: str
    answer: Callable[[Request], Answer] | None = None
    route: Callable[[str], dict[str, Any]] | None = None
    pricing: Pricing = "imitated"
    key_env: tuple[str, ...] = ()
    own_params: frozenset[str] = frozenset()
    response_schema: bool | None = None
    check: Callable[[str], str | None] | None = None
    positional: bool = False
    key_of: Callable[[dict[str, Any]], Any] | None = None


_registered: dict[str, Provider] = {}


def register(provider: Provider) -> None:
    """Make ``provider`` available in this process (it wins over an entry point of the same name)."""
    _registered[provider.name] = provider


@functools.cache
def _declared() -> tuple[dict[str, Provider], dict[str, str]]:
    """The entry points of ``pop_nb.providers``: those that load, and why each other one does not."""
    found: dict[str, Provider] = {}
    broken: dict[str, str] = {}
    for ep in entry_points(group=GROUP):
        try:
            provider = ep.load()
        except Exception as exc:  # a broken plug-in breaks its own models, not everyone's
            broken[ep.name] = f"it cannot be imported ({ep.value}: {type(exc).__name__}: {exc})"
            continue
        if not isinstance(provider, Provider) or provider.name != ep.name:
            broken[ep.name] = f"{ep.value} is not a pop_nb.llm.registry.Provider named {ep.name!r}"
            continue
        found[ep.name] = provider
    return found, broken


def own_providers() -> dict[str, Provider]:
    """Every provider of ours, by name: the entry points of ``pop_nb.providers``, then :func:`register`'s."""
    return {**_declared()[0], **_registered}


def own_provider(model: str) -> Provider | None:
    """The provider of ours that answers ``model`` (``mock/gpt-4o-mini`` -> mock); None for litellm's.
    A provider declared but broken is an error naming the fix."""
    prefix, sep, _ = model.partition("/")
    if not sep:
        return None
    provider = own_providers().get(prefix)
    if provider is None and prefix in (broken := _declared()[1]):
        raise ProviderError(
            "BadProvider",
            f"model {model!r}: provider {prefix!r} (entry point group {GROUP}) is unusable: "
            f"{broken[prefix]}. Fix: reinstall the package that declares it, or use another model",
        )
    return provider


def own_params() -> frozenset[str]:
    """The request fields of every provider of ours (see :attr:`Provider.own_params`)."""
    return frozenset().union(*(p.own_params for p in own_providers().values()))
