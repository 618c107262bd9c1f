"""Shared fixtures: throwaway projects with real pipelines, real notebooks and real kernels."""

from __future__ import annotations

import atexit
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import psutil
import pytest
import yaml
from jupyter_client.manager import AsyncKernelManager
from traitlets import default

REPO = Path(__file__).resolve().parents[1]
# A test that imports litellm directly must not reach for the network either.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

Cell = tuple[str | None, str]  # (tag or None for setup, source)

PARAMS = 'pop_job_dir = None\npop_sample = {"seed": {}}'
SETUP = "from pop_nb import task as pop"


class UnixSocketKernel(AsyncKernelManager):
    """A plain kernel, as papermill or JupyterLab start one, but on Unix sockets instead of TCP.

    For a test that runs a notebook outside pop-nb's runner: a TCP port is picked free here and bound
    later by the kernel, and with the other test worker starting kernels too, one is sometimes taken in
    between; the kernel dies and the client hangs on a send. pop-nb's own kernels use ipc for the same
    reason (pop_nb.execution.kernels). Pass ``kernel_manager_class=UnixSocketKernel`` to nbclient or
    papermill.
    """

    @default("transport")
    def _unix_sockets(self) -> str:
        return "ipc"

    @default("ip")
    def _socket_path(self) -> str:
        return os.path.join(_SOCKETS, uuid.uuid4().hex[:8])


# short: a Unix socket path must fit in ~100 bytes
_SOCKETS = tempfile.mkdtemp(prefix="pop-t-", dir="/tmp" if os.path.isdir("/tmp") else None)
atexit.register(shutil.rmtree, _SOCKETS, True)


def write_notebook(path: Path, cells: list[Cell], params: str = PARAMS, setup: str = SETUP) -> Path:
    nb = nbformat.v4.new_notebook()
    all_cells = [("parameters", params), (None, setup), *cells]
    for tag, source in all_cells:
        cell = nbformat.v4.new_code_cell(source)
        if tag:
            cell.metadata["tags"] = [tag]
        nb.cells.append(cell)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


class Project:
    """A project root with ``pipelines/`` and its own ``pipeline-data/``; settings point at it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "pipeline-data"

    def pipeline(self, slug: str, tasks: dict[str, dict[str, Any]], **top: Any) -> Path:
        """Write ``pipelines/<slug>``: each task is its spec plus ``cells`` for its notebook."""
        folder = self.root / "pipelines" / slug
        spec_tasks = {}
        for name, task in tasks.items():
            task = dict(task)
            cells = task.pop("cells", [("inference", "pop.output({'ok': True})")])
            task.setdefault("notebook", f"tasks/{name}.ipynb")
            write_notebook(folder / task["notebook"], cells)
            spec_tasks[name] = task
        doc = {"name": slug, "llm": {"model": "mock/gpt-4o-mini"}, **top, "tasks": spec_tasks}
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "pipeline.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
        return folder

    def copy_example(self, slug: str) -> Path:
        dest = self.root / "pipelines" / slug
        shutil.copytree(REPO / "pipelines" / slug, dest)
        personalities = REPO / "pipelines" / "personalities"
        if not (self.root / "pipelines" / "personalities").exists():
            shutil.copytree(personalities, self.root / "pipelines" / "personalities")
        return dest

    def settings(self) -> Any:
        from pop_nb.config import load_settings

        return load_settings(self.root)

    def run(self, slug: str, data: dict[str, Any] | None = None, **kw: Any) -> Any:
        import pop_nb

        return pop_nb.run(slug, data or {}, root=self.root, **kw)

    def job(self, job_id: str) -> Any:
        from pop_nb.jobs import Job

        return Job(job_id, self.settings())

    def events(self, job: Any) -> list[dict[str, Any]]:
        return [json.loads(line) for line in (job.path / "events.jsonl").read_text().splitlines()]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    root = tmp_path / "proj"
    (root / "pipelines").mkdir(parents=True)
    monkeypatch.setenv("POP_ROOT", str(root))
    monkeypatch.setenv("POP_DATA_DIR", str(root / "pipeline-data"))
    monkeypatch.chdir(root)
    yield Project(root)


@pytest.fixture(autouse=True)
def _closes_its_event_loop() -> Iterator[None]:
    """A test that runs papermill or nbclient in the test process: jupyter_core's ``run_sync`` makes an
    event loop, sets it for this thread and leaves it open. Closed when the test ends, it is never
    collected during a later test of this worker (whose unclosed-loop ResourceWarning pytest would blame
    on that test). Every test, so that a new one needs nothing to be safe; what pytest-jupyter's
    ``jp_asyncio_loop`` does after each server test (tests/server), without its loop made before."""
    yield
    from jupyter_core.utils import ensure_event_loop

    ensure_event_loop().close()  # the next run_sync makes a new one


# A stage cell that holds until the test creates the file ``go``: the test decides when it moves on.
WAIT_FOR_GO = "import pathlib, time\nwhile not pathlib.Path({go!r}).exists():\n    time.sleep(0.02)\n"


# .ci/run installs every system program a test needs and sets this: there, a missing one is a failure.
REQUIRE_SYSTEM = os.environ.get("POPNB_REQUIRE_SYSTEM") == "1"


def needs_system(missing: list[str], install: str) -> None:
    """Skip the test, naming what to install, when a system program (or root) it needs is missing; under
    ``POPNB_REQUIRE_SYSTEM=1`` (.ci/run) fail instead, so CI never skips silently."""
    if not missing:
        return
    message = f"needs {', '.join(missing)}: {install}"
    if REQUIRE_SYSTEM:
        pytest.fail(f"{message} (POPNB_REQUIRE_SYSTEM=1)")
    pytest.skip(message)


def needs_programs(*programs: str, install: str) -> None:
    needs_system([p for p in programs if shutil.which(p) is None], install)


def wait_for(check: Any, timeout: float = 120, every: float = 0.05) -> Any:
    """Poll ``check()`` until it returns something true (returned), or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {check}")


def pop(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The ``pop`` CLI, run as a user would, in its own process."""
    return subprocess.run(
        [sys.executable, "-m", "pop_nb.cli", *args], capture_output=True, text=True, timeout=timeout
    )


def kernels_of(data_dir: Path) -> list[psutil.Process]:
    """Live kernel processes started for jobs of the project that holds ``data_dir``: spawned (their
    command line runs kernel_main) or forked from the kernel server (named ``pop-kernel``), found by
    their working directory, which is a task notebook's folder in the project."""
    project = data_dir.parent.resolve()
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            cmdline = " ".join(proc.info["cmdline"] or [])
            spawned = "pop_nb.execution.kernel_main" in cmdline and "--serve" not in cmdline
            if not spawned and proc.name() != "pop-kernel":
                continue
            if Path(proc.cwd()).is_relative_to(project) and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, FileNotFoundError):
            continue
    return found


@pytest.fixture(autouse=True)
def _no_provider_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never reach a paid provider: keys that a developer's shell may hold are removed."""
    for name in list(os.environ):
        if name.endswith("_API_KEY"):
            monkeypatch.delenv(name)


def committed_copy(dest: Path) -> Path:
    """The repository's committed files (what a release is built from), nothing built."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for name in filter(None, (f.decode() for f in files.split(b"\0"))):
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    return dest


def too_deep() -> bytes:
    """JSON nested past what the parser follows (it raises RecursionError at the recursion limit). Garbage
    is collected first: an earlier test's object finalized while the parser is at that limit fails
    there, and pytest blames whichever test is running."""
    gc.collect()
    return b"[" * 100_000
