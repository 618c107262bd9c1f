"""The kernel class of stage kernels: IPython's, ending a stage as an interpreter ends.

A stage's kernel is killed once its stage ran (its process group: nothing the stage started outlives
it). Before that the runner asks it to exit (``shutdown_request``, as papermill does), and this kernel
answers only once it has done what an interpreter does at its exit that a stage can see: it runs the
``atexit`` functions (the stage's own; IPython's, which clears the stage's names, so a file the stage
left open is flushed and closed; those of the libraries it used), then collects what only a cycle kept
alive. ipykernel's own exit functions (closing its sockets and threads) are left out: the kill ends
them. So the kill loses nothing a stage wrote, and the process's exit (freeing its memory: ~10 ms for a
kernel forked from the kernel server) stays off the next stage's way.
"""

from __future__ import annotations

import asyncio
import atexit
import gc
from typing import Any

from ipykernel.ipkernel import IPythonKernel
from ipykernel.kernelapp import IPKernelApp


class StageKernel(IPythonKernel):
    async def do_shutdown(self, restart: bool) -> dict[str, Any]:
        app = IPKernelApp.instance()
        for own in (app.close, app.cleanup_connection_file, getattr(app.iopub_thread, "stop", None)):
            if own is not None:
                atexit.unregister(own)
        # on a thread of its own, as at an interpreter's exit: no event loop runs there (litellm's
        # makes one and sets it as the thread's; on this thread that would replace the kernel's)
        await asyncio.to_thread(_exit_functions)
        # last: IPython's answer stops the kernel's event loop 0.1 s later, answered or not
        reply: dict[str, Any] = super().do_shutdown(restart)  # type: ignore[no-untyped-call]
        return reply


def _exit_functions() -> None:
    atexit._run_exitfuncs()
    gc.collect()
