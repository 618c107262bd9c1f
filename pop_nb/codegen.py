"""Helpers for task notebooks that generate code: check the files a model proposed, run their tests.

A model answers with ``{"files": [{"path": ..., "content": ...}, ...]}``. :func:`check_files` says what is
wrong with that list (a path that would leave the job's ``files/`` area, a duplicate, a file that is not
text), and :func:`run_tests` writes the files into a scratch folder and runs their tests in a child
process of the stage kernel, so a test that hangs, crashes or leaks modules cannot take the kernel
with it. The child gets the environment without secrets (no ``*_KEY``, ``*_TOKEN``, ... variable) and
its output is redacted, so generated code cannot print a key into the executed notebook.

Generated code runs with the user's rights: this is isolation from the pipeline, not a security
sandbox. Review what a model wrote before running it anywhere that matters.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pop_nb.redaction import is_secret_name, redact
from pop_nb.store.paths import inside, path_problem

__all__ = ["TestRun", "check_files", "run_tests"]

MAX_FILES = 200
MAX_FILE_BYTES = 1_000_000
OUTPUT_TAIL = 20_000
"""Characters of the test output kept (the end, where the summary is)."""


def check_files(files: Any) -> list[str]:
    """Problems with a proposed list of files (empty when it can be written as it is)."""
    if not isinstance(files, list) or not files:
        return ["files must be a non-empty list of {path, content} objects"]
    if len(files) > MAX_FILES:
        return [f"{len(files)} files is more than {MAX_FILES}; generate fewer, larger files"]
    problems: list[str] = []
    seen: dict[str, str] = {}
    for i, item in enumerate(files):
        if not isinstance(item, dict) or not isinstance(item.get("content"), str):
            problems.append(f"files[{i}] needs a path and a text content")
            continue
        path = item.get("path")
        problem = path_problem(path)
        if problem is not None:
            problems.append(f"files[{i}].path {path!r} {problem}; use a relative path like 'pkg/module.py'")
            continue
        key = str(path).strip("/")
        if key.lower() in seen:  # on macOS and Windows, names differing only in case are one file
            problems.append(f"files[{i}].path {path!r} is already used by {seen[key.lower()]!r}")
        seen.setdefault(key.lower(), key)
        if len(item["content"].encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
            problems.append(f"files[{i}] ({path}) is larger than {MAX_FILE_BYTES} bytes")
    return problems


def write_files(files: Sequence[dict[str, str]], folder: Path) -> list[Path]:
    """Write checked files under ``folder``; a path that would leave it raises ``ValueError``."""
    written = []
    for item in files:
        target = inside(folder, item["path"], "generated file")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(item["content"], encoding="utf-8")
        written.append(target)
    return written


_TIMING = re.compile(r" in \d+(\.\d+)?s$")  # unittest's "Ran 5 tests in 0.001s"


@dataclass(frozen=True)
class TestRun:
    """What running the generated tests showed."""

    __test__ = False  # not a pytest test class

    ok: bool
    returncode: int | None
    output: str
    timed_out: bool = False

    @property
    def summary(self) -> str:
        """The failing tests' headers and assertion lines, then the verdict (the output's last lines)."""
        if self.timed_out:
            return "the tests did not finish in time (an endless loop, or a test waiting for input?)"
        lines = [line.strip() for line in self.output.splitlines() if line.strip()]
        failing = [line for line in lines if line.startswith(("FAIL:", "ERROR:")) or "Error: " in line]
        tail = [
            _TIMING.sub("", line) for line in lines[-3:] if not line.startswith("---") and line not in failing
        ]
        # no timings: the same failure makes the same prompt, which the response cache can answer again
        return "\n".join(dict.fromkeys(failing[:20] + tail))


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not is_secret_name(k)}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("PYTHONPATH", None)
    return env


def run_tests(
    files: Sequence[dict[str, str]],
    command: Sequence[str] | None = None,
    timeout_s: float = 60.0,
) -> TestRun:
    """Write ``files`` into a scratch folder and run ``command`` there (default: ``python -m unittest
    discover``, which finds ``test*.py``). The whole process group is killed after ``timeout_s``."""
    argv = list(command) if command else [sys.executable, "-m", "unittest", "discover", "-v", "-t", "."]
    with tempfile.TemporaryDirectory(prefix="pop-codegen-") as scratch, tempfile.TemporaryFile() as log:
        write_files(files, Path(scratch))
        proc = subprocess.Popen(
            argv,
            cwd=scratch,
            env=_child_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so a timeout kills what it started too
        )
        timed_out = False
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        size = log.seek(0, os.SEEK_END)
        log.seek(max(0, size - OUTPUT_TAIL * 4))
        output = redact(log.read().decode("utf-8", "replace"))[-OUTPUT_TAIL:]
    code = None if timed_out else proc.returncode
    ok = code == 0
    if ok and command is None and "\nRan 0 tests" in output:  # unittest before 3.12 exits 0 on no tests
        ok, output = False, output + "\nNO TESTS RAN: name the test files test_*.py"
    return TestRun(ok=ok, returncode=code, output=output, timed_out=timed_out)
