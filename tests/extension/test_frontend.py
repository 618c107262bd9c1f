"""The Lab extension's own unit tests (``extension/src/__tests__``: the panel's state, the event-stream
parser, the seed form, the grid), run with Node's test runner through ``jlpm test``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

EXTENSION = REPO / "extension"
JLPM = shutil.which("jlpm", path=str(Path(sys.executable).parent)) or shutil.which("jlpm")

pytestmark = pytest.mark.skipif(
    not (JLPM and shutil.which("node")), reason="needs Node.js and jlpm (JupyterLab's yarn)"
)


def test_the_extension_unit_tests_pass() -> None:
    if not (EXTENSION / "node_modules").is_dir():  # an install from a wheel or sdist built it elsewhere
        subprocess.run([JLPM, "install"], cwd=EXTENSION, check=True, capture_output=True, timeout=600)
    done = subprocess.run([JLPM, "test"], cwd=EXTENSION, capture_output=True, text=True, timeout=300)
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-6000:]
    passed = [line for line in report.splitlines() if line.startswith("# pass ")]
    assert passed and int(passed[-1].split()[-1]) >= 15, report[-3000:]  # the tests ran, not zero of them
