"""The Lab extension's own unit tests (``extension/src/__tests__``: the panel's state, the event-stream
parser, the seed form, the grid), run with Node's test runner through ``jlpm test`` once, and reported
here test by test: each ``test('...')`` of the TypeScript sources is a pytest test of the same name."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, needs_programs

EXTENSION = REPO / "extension"
JLPM = shutil.which("jlpm", path=str(Path(sys.executable).parent)) or shutil.which("jlpm")
DECLARED = re.compile(r"""^test\((['"])(.+?)\1,""", re.M)
RESULT = re.compile(r"^(not ok|ok) \d+ - (.+)$", re.M)  # a top-level line of Node's TAP report


def declared() -> list[str]:
    """The names of the tests in the TypeScript sources, in order."""
    return [
        match.group(2).replace("\\'", "'")
        for source in sorted((EXTENSION / "src" / "__tests__").glob("*.test.ts"))
        for match in DECLARED.finditer(source.read_text())
    ]


@pytest.fixture(scope="module")
def report() -> tuple[dict[str, str], str]:
    """``jlpm test`` (compile, then Node's runner) once: each test's ``ok`` / ``not ok``, and the output."""
    needs_programs("node", install="Node.js 20 (apt-get install nodejs, or nodejs.org)")
    if JLPM is None:
        pytest.fail("jlpm is missing: it comes with JupyterLab (pip install -e .)")
    if not (EXTENSION / "node_modules").is_dir():  # an install from a wheel or sdist built it elsewhere
        subprocess.run([JLPM, "install"], cwd=EXTENSION, check=True, capture_output=True, timeout=600)
    done = subprocess.run([JLPM, "test"], cwd=EXTENSION, capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    return {name: verdict for verdict, name in RESULT.findall(output)}, output


def test_every_declared_test_ran(report: tuple[dict[str, str], str]) -> None:
    results, output = report
    assert len(declared()) >= 15 and sorted(results) == sorted(declared()), output[-3000:]


@pytest.mark.parametrize("name", declared())
def test_extension(name: str, report: tuple[dict[str, str], str]) -> None:
    results, output = report
    if results.get(name) != "ok":
        at = output.find(f"# Subtest: {name}")
        pytest.fail(f"{results.get(name, 'did not run')}: {name}\n{output[at : at + 3000]}")


def test_the_sources_pass_eslint_and_prettier(report: tuple[dict[str, str], str]) -> None:
    """``jlpm lint:check``: prettier's formatting and ESLint's rules (typescript-eslint with types,
    React), as configured in ``extension/eslint.config.mjs``. (After ``report``: node_modules is there.)"""
    done = subprocess.run([JLPM, "lint:check"], cwd=EXTENSION, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
