"""Plain papermill as its users run it: the ``papermill`` command, in a clean environment that has only
papermill and ipykernel (pop-nb's environment slows papermill's own import, see README: Benchmarks).

The environment is built once and kept in ``~/.cache/pop-nb/benchmarks/`` (``POPNB_BENCH_CACHE``
elsewhere); a benchmark prints which environment its anchor ran in.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

PACKAGES = ("papermill", "ipykernel")


def clean_papermill() -> Path:
    """The ``papermill`` program of the clean environment, made if it is not there yet."""
    base = Path(os.environ.get("POPNB_BENCH_CACHE") or Path.home() / ".cache" / "pop-nb" / "benchmarks")
    venv = base / f"papermill-py{sys.version_info.major}{sys.version_info.minor}"
    program = venv / "bin" / "papermill"
    ready = venv / ".ready"
    if not ready.exists():
        print(f"(building the clean papermill environment in {venv}: once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *PACKAGES], check=True)
        ready.write_text("\n".join(versions(venv)) + "\n")
    return program


def versions(venv: Path) -> list[str]:
    out = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import papermill, ipykernel; print(papermill.__version__, ipykernel.__version__)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [f"papermill {out[0]}", f"ipykernel {out[1]}"]


def described(program: Path) -> str:
    """Where the anchor ran, for a benchmark's output."""
    venv = program.parent.parent
    return f"clean venv {venv} ({', '.join(versions(venv))}, nothing else)"


def trivial_notebook(path: Path) -> Path:
    """The anchor's notebook: a parameters cell and one trivial cell, as a one-task job's stage does
    (without pop-nb, which the clean environment does not have)."""
    import nbformat

    parameters = nbformat.v4.new_code_cell("n = 0")
    parameters.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=[parameters, nbformat.v4.new_code_cell("result = {'n': n}\nresult")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


TRIES = 3


def failed_first(run: Callable[[], bool], what: str) -> int:
    """Run ``run`` until it succeeds (True), at most :data:`TRIES` times; how many runs failed first.
    Two at once, plain papermill's TCP kernels now and then lose a port to each other ("Kernel died
    before replying to kernel_info"): such a run is run again, as its user would, and counted."""
    for failed in range(TRIES):
        if run():
            return failed
    raise RuntimeError(f"papermill failed {TRIES} times on {what}")


def run_notebook(program: Path, path: str) -> int:
    """One notebook through the ``papermill`` command of ``program``'s environment, with its own
    ``python3`` kernel; how many runs failed first (see :func:`failed_first`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "POP_", "VIRTUAL_ENV"))}
    argv = [str(program), path, path + ".out.ipynb", "--kernel", "python3", "--no-progress-bar"]
    return failed_first(
        lambda: subprocess.run(argv, capture_output=True, env=env, check=False).returncode == 0, path
    )
