"""A full disk mid-job (a small filesystem of its own, as a data folder on a full volume): the job fails
saying so, every file stays readable, and it resumes once there is room."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import WAIT_FOR_GO, Project, needs_system, pop, wait_for


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs mounted for the test (mounting needs root: CI is root; elsewhere it skips)."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0:
        needs_system(["root (to mount a small tmpfs)"], "run as root, as .ci/run does")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        needs_system([f"mount -t tmpfs ({done.stderr.decode().strip()})"], "a machine that lets root mount")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path) -> Path:
    """Write a file until the filesystem is full; returns it (delete it to make room again)."""
    filler = folder / "filler.bin"
    with open(filler, "wb", buffering=0) as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0" * 65536)
    return filler


@pytest.fixture
def data(project: Project, small_disk: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The project's data folder, on the small disk."""
    monkeypatch.setenv("POP_DATA_DIR", str(small_disk / "pipeline-data"))
    return small_disk / "pipeline-data"


def big_output_after(go: Path) -> str:
    """A stage that waits for the test's ``go``, then writes an output bigger than the disk has room for."""
    return WAIT_FOR_GO.format(go=str(go)) + "pop.output('x' * 200_000)"


def test_a_full_disk_fails_the_job_saying_so_and_it_resumes_when_there_is_room(
    project: Project, small_disk: Path, data: Path
) -> None:
    go = project.root / "go"
    project.pipeline(
        "big",
        {
            "a": {"cells": [("inference", "pop.output('small')")]},
            "b": {"needs": ["a"], "cells": [("inference", big_output_after(go))]},
        },
    )
    run = subprocess.Popen(
        [sys.executable, "-m", "pop_nb.cli", "run", "big", "--data", "{}", "--id", "full", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: (data / "current/full/tasks/b/logs/inference.log").exists(), timeout=120)
    filler = fill(small_disk)
    go.touch()
    out, err = run.communicate(timeout=120)
    assert run.returncode != 0, out + err
    folder = data / "failed" / "full"
    assert folder.is_dir(), (out, err, sorted(p.name for p in (data / "current").iterdir()))
    status = json.loads((folder / "tasks-status.json").read_text())
    assert status["state"] == "failed"
    assert status["error"]["type"] == "DiskFull", status["error"]
    assert "No space left" in status["error"]["message"] and "pop resume full" in status["error"]["fix"]
    assert "No space left" in err or "disk" in err.lower(), err
    for path in folder.rglob("*.json"):  # every file the job left is whole
        json.loads(path.read_text())
    filler.unlink()
    resumed = pop("resume", "full", timeout=120)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    done = json.loads((data / "complete/full/tasks-status.json").read_text())
    assert done["state"] == "done" and done["tasks"]["a"]["attempts"] == 1  # a was kept


def test_the_daemon_stays_up_through_a_full_disk_and_goes_on_when_there_is_room(
    project: Project, small_disk: Path, data: Path
) -> None:
    from tests.orchestrator.test_daemon import Daemon, seed

    go = project.root / "go"
    project.pipeline("big", {"a": {"cells": [("inference", big_output_after(go))]}})
    project.pipeline("tiny", {"a": {"cells": [("inference", "pop.output(1)")]}})
    daemon = Daemon(project)
    try:
        wait_for(lambda: "orchestrating" in daemon.output(), timeout=60)
        (data / "pending/d1-seed.json").write_bytes(seed("big"))
        wait_for(lambda: (data / "current/d1/tasks/a/logs/inference.log").exists(), timeout=120)
        filler = fill(small_disk)
        go.touch()
        wait_for(lambda: (data / "failed/d1/tasks-status.json").exists(), timeout=120)
        status = json.loads((data / "failed/d1/tasks-status.json").read_text())
        assert status["error"]["type"] == "DiskFull", status["error"]
        time.sleep(1)  # the daemon's passes over a full disk
        assert daemon.proc.poll() is None, daemon.output()
        filler.unlink()
        resumed = pop("resume", "d1", "--quiet")
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        (data / "pending/d2-seed.json").write_bytes(seed("tiny"))
        wait_for(lambda: (data / "complete/d1").is_dir() and (data / "complete/d2").is_dir(), timeout=120)
    finally:
        daemon.proc.send_signal(signal.SIGTERM)
        daemon.wait(60)
