"""What isolation costs: a fresh kernel per stage, pop-nb against plain papermill and a warm reused kernel.

Figures, each beside its anchor, from one run:
1. overhead per stage (wall minus time in cells), 50 sequential trivial stages (sustained, not just the
   first): pop-nb (a kernel forked from the preloaded kernel server, started ahead) vs plain papermill
   (one new ``python3`` kernel each, its default engine) vs one warm kernel reused by nbclient for all
   50 (no isolation at all: the floor);
2. the demo pipeline end to end (content-generation, 16 stage runs, mock models) with the kernel server
   cold (stopped first) and warm, vs the same stage notebooks run one after another by plain papermill;
3. time inside the LLM stages' cells (pop-nb: litellm preloaded in the server; papermill: each kernel
   imports it);
4. ``pop compile content-generation``, cold process, median of 3.

    python benchmarks/stage_overhead.py
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import nbformat
import psutil

REPO = Path(__file__).resolve().parents[1]
TRIVIAL = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("print(x)")]
LLM_STAGES = {"inference", "critique", "refine"}
SPACED, SPACE_S = 20, 0.3  # stages not back to back: this many, this far apart


def cells_s(nb: nbformat.NotebookNode) -> float:
    """Time the cells ran, measured the same way for every runner: nbclient's own timestamps (the kernel
    got the code -> it replied), falling back to papermill's per-cell duration."""
    total = 0.0
    for cell in nb.cells:
        timing = cell.metadata.get("execution", {})
        if "iopub.execute_input" in timing and "shell.execute_reply" in timing:
            began = datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00"))
            ended = datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00"))
            total += (ended - began).total_seconds()
        else:
            total += float(cell.metadata.get("papermill", {}).get("duration") or 0)
    return total


def trivial_stages(n: int, out: Path) -> dict[str, list[tuple[float, float]]]:
    """(wall, time in cells) of each of ``n`` trivial stages, three ways."""
    import papermill
    from nbclient import NotebookClient

    from pop_nb.execution.engine import get_engine
    from pop_nb.execution.kernels import KERNEL_NAME, FreshKernelProvider
    from pop_nb.execution.papermill_engine import StageNotebookClient  # noqa: F401 (registered engine)

    get_engine()
    nb = nbformat.v4.new_notebook(cells=TRIVIAL)
    provider = FreshKernelProvider(60, start="fork", preload=["litellm"])
    if provider._server is not None:
        provider._server.wait_ready(120)
    provider.prestart(str(out), 2)
    time.sleep(1)
    results: dict[str, list[tuple[float, float]]] = {
        "pop-nb": [], "pop-nb, spaced": [], "plain papermill": [], "one warm kernel": [], "warm, spaced": []
    }  # fmt: skip
    for spaced in (False, True):
        for _ in range(n if not spaced else SPACED):
            if spaced:  # as between real stages (an LLM call takes seconds): the next kernel is ready
                time.sleep(SPACE_S)
            t0 = time.monotonic()
            done = papermill.execute_notebook(
                nb, str(out / "pop.ipynb"), engine_name="pop", kernel_name=KERNEL_NAME, progress_bar=False,
                kernel_provider=provider, kernel_cwd=str(out),
            )  # fmt: skip
            results["pop-nb, spaced" if spaced else "pop-nb"].append((time.monotonic() - t0, cells_s(done)))
    provider.shutdown_all()
    for _ in range(n):
        t0 = time.monotonic()
        done = papermill.execute_notebook(
            nb, str(out / "plain.ipynb"), kernel_name="python3", progress_bar=False, cwd=str(out)
        )
        results["plain papermill"].append((time.monotonic() - t0, cells_s(done)))
    client = NotebookClient(nbformat.v4.new_notebook(cells=TRIVIAL), kernel_name="python3")
    with client.setup_kernel():
        for spaced in (False, True):
            for _ in range(n if not spaced else SPACED):
                if spaced:
                    time.sleep(SPACE_S)
                client.nb = nbformat.v4.new_notebook(cells=[nbformat.from_dict(c) for c in TRIVIAL])
                t0 = time.monotonic()
                for index, cell in enumerate(client.nb.cells):
                    client.execute_cell(cell, index)
                nbformat.write(client.nb, out / "warm.ipynb")
                took = (time.monotonic() - t0, cells_s(client.nb))
                results["warm, spaced" if spaced else "one warm kernel"].append(took)
    return results


def stop_kernel_servers() -> None:
    for proc in psutil.process_iter(["cmdline"]):
        if "--serve" in (proc.info["cmdline"] or []) and proc.cwd() == "/":
            proc.terminate()
            proc.wait(10)


def demo(root: Path, job_id: str) -> tuple[float, object]:
    import pop_nb

    seed = json.loads((REPO / "pipelines/content-generation/seeds/solid-state-batteries.json").read_text())
    started = time.monotonic()
    job = pop_nb.run("content-generation", seed=seed, root=root, job_id=job_id)
    wall = time.monotonic() - started
    assert job.status.state == "done", job.status.error
    return wall, job


def replay_with_papermill(root: Path, job: object) -> tuple[float, list[float]]:
    """Every stage notebook of ``job`` again, one after another, with plain papermill (its default
    engine, a new ``python3`` kernel each), on a copy of the job folder."""
    import papermill

    status = job.status  # type: ignore[attr-defined]
    replay = root / "replay"
    shutil.copytree(job.path, replay)  # type: ignore[attr-defined]
    os.environ["POP_RUNNER_JOB"] = replay.name  # the stages write into this copy, as under a runner
    llm_cells, started = [], time.monotonic()
    for _task, task_status in status.tasks.items():
        for _key, run in task_status.stages.items():
            source = replay / run.notebook
            nb = nbformat.read(source, as_version=4)
            for cell in nb.cells:  # point the injected parameters at the copy
                if "injected-parameters" in cell.metadata.get("tags", []):
                    cell.source = re.sub(r'pop_job_dir = ".*"', f'pop_job_dir = "{replay}"', cell.source)
            done = papermill.execute_notebook(
                nb,
                str(source.with_suffix(".plain.ipynb")),
                kernel_name="python3",
                progress_bar=False,
                cwd=str(root / "pipelines/content-generation/tasks"),
            )
            if run.stage in LLM_STAGES:
                llm_cells.append(cells_s(done))
    return time.monotonic() - started, llm_cells


def compile_s(root: Path) -> list[float]:
    times = []
    for _ in range(3):
        t0 = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "pop_nb.cli", "compile", "content-generation"], cwd=root, check=True,
            capture_output=True,
        )  # fmt: skip
        times.append(time.monotonic() - t0)
    return times


def main() -> None:
    logging.getLogger("papermill").setLevel(logging.WARNING)
    logging.getLogger("traitlets").setLevel(logging.ERROR)
    root = Path(tempfile.mkdtemp(prefix="pop-bench-"))
    for folder in ("content-generation", "personalities"):
        shutil.copytree(REPO / "pipelines" / folder, root / "pipelines" / folder)
    os.environ["POP_DATA_DIR"] = str(root / "pipeline-data")
    # as installed: the kernel server and the kernels it forks find pop-nb's bytecode cached
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

    stop_kernel_servers()
    cold_s, _ = demo(root, "cold")
    warm_s, job = demo(root, "warm")
    runs = [run for ts in job.status.tasks.values() for run in ts.stages.values()]  # type: ignore[attr-defined]
    pop_llm = [run.cells_ms / 1000 for run in runs if run.stage in LLM_STAGES]
    plain_s, plain_llm = replay_with_papermill(root, job)

    n = 50
    trivial = trivial_stages(n, root)
    compiled = compile_s(root)
    shutil.rmtree(root, ignore_errors=True)

    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}, {sys.platform}")
    print(f"1. overhead per stage, {n} sequential trivial stages (wall minus time in cells; wall):")
    overhead = {name: [wall - cells for wall, cells in taken] for name, taken in trivial.items()}
    wall = {name: [w for w, _ in taken] for name, taken in trivial.items()}
    for name, values in overhead.items():
        print(
            f"   {name:<17} median {statistics.median(values) * 1000:7.1f} ms  mean "
            f"{statistics.mean(values) * 1000:7.1f} ms  last 10 median "
            f"{statistics.median(values[-10:]) * 1000:7.1f} ms;  wall median "
            f"{statistics.median(wall[name]) * 1000:7.1f} ms"
        )
    floor = statistics.median(overhead["one warm kernel"])
    pop_median = statistics.median(overhead["pop-nb"])
    plain_median = statistics.median(overhead["plain papermill"])
    print(
        f"   pop-nb / plain papermill: {pop_median / plain_median:.2f}; "
        f"pop-nb - warm kernel: {(pop_median - floor) * 1000:.0f} ms per stage for a fresh process "
        f"({pop_median / floor:.1f}x)"
    )
    spaced, warm_spaced = (statistics.median(overhead[k]) for k in ("pop-nb, spaced", "warm, spaced"))
    spaced_wall, warm_wall = (statistics.median(wall[k]) for k in ("pop-nb, spaced", "warm, spaced"))
    print(
        f"   {SPACED} stages {SPACE_S} s apart (the next kernel started and greeted meanwhile, as between "
        f"real stages): pop-nb {spaced * 1000:.1f} ms, one warm kernel {warm_spaced * 1000:.1f} ms "
        f"({spaced / warm_spaced:.1f}x); wall, cells included: {spaced_wall * 1000:.1f} ms vs "
        f"{warm_wall * 1000:.1f} ms ({spaced_wall / warm_wall:.1f}x)"
    )
    print(
        f"2. demo end to end ({len(runs)} stage runs): kernel server cold {cold_s:.2f} s, warm {warm_s:.2f} s"
    )
    print(
        f"   plain papermill, the same stage notebooks one after another: {plain_s:.2f} s "
        f"(warm pop-nb / papermill: {warm_s / plain_s:.2f})"
    )
    print(
        f"3. time in LLM stages' cells, median of {len(pop_llm)}: pop-nb {statistics.median(pop_llm):.3f} s, "
        f"plain papermill {statistics.median(plain_llm):.3f} s"
    )
    print(f"4. pop compile content-generation, cold process: median {statistics.median(compiled):.2f} s")


if __name__ == "__main__":
    main()
