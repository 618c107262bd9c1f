"""What one stage kernel forked from the kernel server costs the machine, start to end: the CPU and the page
copies of its whole life (fork, start, ``kernel_info``, two cells, shutdown, exit), as the system counts
them for the process (``wait4``), and the parent's CPU for the fork itself.

This process preloads what the kernel server does (``litellm`` by default) and forks kernels from itself,
as the server does, alternately starting from the server's walk over the modules
(:mod:`pop_nb.execution.module_walk`) and without it (ipykernel and IPython walk ``sys.modules``
themselves): the anchor is the same kernel without the walk, measured in the same run.

    python benchmarks/kernel_life.py [--kernels 20] [--preload litellm]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def one_kernel(walk: object | None, folder: str) -> tuple[float, float, int]:
    """(the kernel's CPU ms, the parent's CPU ms for the fork, the kernel's page faults)."""
    from jupyter_client import BlockingKernelClient
    from jupyter_client.connect import write_connection_file

    from pop_nb.execution import kernel_main

    connection, _ = write_connection_file(
        fname=os.path.join(folder, "kernel.json"), transport="ipc", ip=os.path.join(folder, "k")
    )
    began = time.process_time()
    pid = os.fork()
    if pid == 0:
        quiet = os.open(os.devnull, os.O_WRONLY)
        os.dup2(quiet, 1)
        os.dup2(quiet, 2)
        try:
            argv = ["-f", connection, "--IPKernelApp.parent_handle=1", "--HistoryManager.enabled=False"]
            kernel_main.run_kernel(argv, watch_parent=False, walk=walk)  # type: ignore[arg-type]
        finally:
            os._exit(0)
    fork_ms = (time.process_time() - began) * 1000
    client = BlockingKernelClient(connection_file=connection)
    client.load_connection_file()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        client.execute_interactive("x = 1", timeout=60)
        client.execute_interactive("print(x)", timeout=60, output_hook=lambda msg: None)
        client.shutdown()
        _, _, usage = os.wait4(pid, 0)
    finally:
        client.stop_channels()
    return (usage.ru_utime + usage.ru_stime) * 1000, fork_ms, usage.ru_minflt


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kernels", type=int, default=20, help="of each kind")
    parser.add_argument("--preload", default="litellm", help="comma-separated, as the server's")
    args = parser.parse_args()
    os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    sys.argv = sys.argv[:1]  # a kernel parses its own command line: not ours

    from jupyter_client import BlockingKernelClient  # noqa: F401 (imported before the walk, as used)
    from jupyter_client.connect import write_connection_file  # noqa: F401

    from pop_nb.execution import kernel_main
    from pop_nb.execution.module_walk import ModuleWalk

    started = time.perf_counter()
    kernel_main.preload([m for m in args.preload.split(",") if m])
    preload_s = time.perf_counter() - started
    walk = ModuleWalk.take()
    gc.collect()
    gc.freeze()  # as the server does
    rss_mb = int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") >> 20
    kinds = {"from the server's walk": walk, "walking the modules itself": None}
    taken: dict[str, list[tuple[float, float, int]]] = {kind: [] for kind in kinds}
    with tempfile.TemporaryDirectory(prefix="pop-life-") as folder:
        for _ in range(args.kernels + 1):  # the first of each: unmeasured
            for kind, given in kinds.items():
                taken[kind].append(one_kernel(given, folder))
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}, {sys.platform}")
    print(
        f"preloaded {args.preload or 'nothing'} in {preload_s:.2f} s: {len(sys.modules)} modules, "
        f"{rss_mb} MB resident; {args.kernels} kernels of each kind, interleaved, medians:"
    )
    medians = {}
    for kind, rows in taken.items():
        cpu, fork, faults = (statistics.median(column) for column in zip(*rows[1:], strict=True))
        medians[kind] = cpu
        print(f"   {kind:<28} kernel CPU {cpu:6.1f} ms  page faults {faults:6.0f}  the fork {fork:4.1f} ms")
    walked, itself = medians.values()
    print(f"   with the walk / without: {walked / itself:.2f}")


if __name__ == "__main__":
    main()
