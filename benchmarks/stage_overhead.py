"""Per-stage overhead of pop-nb vs plain papermill on the same stage notebooks.

Overhead = a stage's wall time minus the time its cells ran (papermill's per-cell durations): kernel
start, notebook building, parameter injection, saving, status writes. Runs the offline demo job once
through pop-nb, then executes every stage notebook of that job again with plain ``papermill`` (default
engine, one new kernel each), on a copy of the job folder so the replayed LLM calls are logged there.

    python benchmarks/stage_overhead.py
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    import logging

    import nbformat
    import papermill

    import pop_nb

    logging.getLogger("papermill").setLevel(logging.WARNING)
    root = Path(tempfile.mkdtemp(prefix="pop-bench-"))
    for folder in ("content-generation", "personalities"):
        shutil.copytree(REPO / "pipelines" / folder, root / "pipelines" / folder)
    os.environ["POP_DATA_DIR"] = str(root / "pipeline-data")
    seed = json.loads((REPO / "pipelines/content-generation/seeds/solid-state-batteries.json").read_text())

    started = time.monotonic()
    job = pop_nb.run("content-generation", seed=seed, root=root, job_id="bench")
    job_wall = time.monotonic() - started
    status = job.status
    assert status.state == "done", status.error
    runs = [(t, key, run) for t, ts in status.tasks.items() for key, run in ts.stages.items()]
    pop_overhead = [(run.duration_ms - run.cells_ms) / 1000 for _, _, run in runs]
    pop_cells = [run.cells_ms / 1000 for _, _, run in runs]

    replay = root / "replay"
    shutil.copytree(job.path, replay)
    os.environ["POP_RUNNER_JOB"] = replay.name  # the stages write into this copy, as under a runner
    plain_overhead, plain_cells = [], []
    for _task, _key, run in runs:
        source = replay / run.notebook
        nb = nbformat.read(source, as_version=4)
        for cell in nb.cells:  # point the injected parameters at the copy
            if "injected-parameters" in cell.metadata.get("tags", []):
                cell.source = re.sub(r'pop_job_dir = ".*"', f'pop_job_dir = "{replay}"', cell.source)
        t0 = time.monotonic()
        done = papermill.execute_notebook(
            nb,
            str(source.with_suffix(".plain.ipynb")),
            kernel_name="python3",
            progress_bar=False,
            cwd=str(root / "pipelines/content-generation/tasks"),
        )
        wall = time.monotonic() - t0
        cells = sum(float(c.metadata.get("papermill", {}).get("duration") or 0) for c in done.cells)
        plain_overhead.append(wall - cells)
        plain_cells.append(cells)

    def row(name: str, values: list[float]) -> str:
        return (
            f"{name:<28} n={len(values):2d}  mean {statistics.mean(values):6.3f}s  "
            f"median {statistics.median(values):6.3f}s  total {sum(values):7.3f}s"
        )

    print(f"demo job: {len(runs)} stage runs, {job_wall:.2f}s wall (python {sys.version.split()[0]})")
    print(row("pop-nb overhead/stage", pop_overhead))
    print(row("plain papermill overhead", plain_overhead))
    print(row("pop-nb time in cells", pop_cells))
    print(row("papermill time in cells", plain_cells))
    mean_ratio = statistics.mean(pop_overhead) / statistics.mean(plain_overhead)
    median_ratio = statistics.median(pop_overhead) / statistics.median(plain_overhead)
    # the median is the steadier figure: papermill's first stage also pays one-off import costs
    print(f"overhead ratio pop-nb / papermill: median {median_ratio:.2f}, mean {mean_ratio:.2f}")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
