"""What stage kernels print below Python reaches the runner's stderr through the redaction rule, and a
kernel never blocks on it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pop_nb.execution.kernel_output import KernelOutput
from pop_nb.redaction import MASK

KEY = "sk-test-0b9e8d7c6a5f4e3d2c1b"


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


def test_a_process_printing_into_it_reaches_the_target_masked(tmp_path: Path) -> None:
    log = tmp_path / "runner.log"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT, 0o600)
    output = KernelOutput(target=fd)
    os.close(fd)  # it writes to its own copy
    script = f'printf "%s" "{KEY[:6]}"; printf "%s\\n" "{KEY[6:]} in two writes" >&2; echo "déjà vu"'
    subprocess.run(["sh", "-c", script], stdout=output.fd, stderr=output.fd, check=True)
    output.close()
    assert log.read_text(encoding="utf-8") == f"{MASK} in two writes\ndéjà vu\n"


def test_with_nowhere_to_write_it_still_reads_so_no_kernel_blocks() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the target is gone: every write to it fails
    output = KernelOutput(target=write_end)
    os.close(write_end)
    # ten times what a pipe holds: blocks forever if nobody reads
    subprocess.run(["head", "-c", str(640 * 1024), "/dev/zero"], stdout=output.fd, check=True, timeout=60)
    output.close()
