"""The kernel server leaves no event loop to its forks (kernel_main._forget_event_loop)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from pop_nb.execution.kernel_main import _forget_event_loop


@pytest.fixture(autouse=True)
def _own_policy() -> Iterator[None]:
    before = asyncio.get_event_loop_policy()
    yield
    asyncio.set_event_loop_policy(before)


def _loop_set(policy: asyncio.AbstractEventLoopPolicy) -> asyncio.AbstractEventLoop | None:
    return policy._local._loop  # type: ignore[attr-defined, no-any-return]


def test_the_loop_left_set_is_closed_and_the_next_is_made_anew() -> None:
    left = asyncio.new_event_loop()
    asyncio.set_event_loop(left)
    _forget_event_loop()
    assert left.is_closed()
    policy = asyncio.get_event_loop_policy()
    assert _loop_set(policy) is None
    made = policy.get_event_loop()  # as in a new interpreter: made when first asked, not an error
    try:
        assert made is not left and not made.is_closed()
    finally:
        made.close()


def test_a_policy_a_preloaded_module_installed_stays_without_its_loop() -> None:
    class Theirs(asyncio.DefaultEventLoopPolicy):
        pass

    theirs = Theirs()
    asyncio.set_event_loop_policy(theirs)
    left = theirs.new_event_loop()
    theirs.set_event_loop(left)
    _forget_event_loop()
    assert asyncio.get_event_loop_policy() is theirs
    assert left.is_closed() and _loop_set(theirs) is None
