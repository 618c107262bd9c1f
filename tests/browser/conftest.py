"""The browser every test here drives: Debian's chromium, headless, through chromedriver (a test skips,
naming what to install, where they are missing; CI installs them and turns such skips into failures)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import needs_programs


@pytest.fixture
def browser() -> Iterator[Any]:
    needs_programs("chromium", "chromedriver", install="apt-get install chromium chromium-driver")
    from pop_nb.testing.lab import chromium

    with chromium() as driver:
        yield driver
