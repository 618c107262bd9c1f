"""Entry point of a stage kernel: ``python -m pop_nb.execution.kernel_main -f <connection file>``.

An IPython kernel that dies with its runner. A runner stops its kernels itself on every path it
controls (done, failed, timeout, cancel); this covers the one it cannot: the runner killed outright
(``kill -9``, out of memory). The kernel then finds itself re-parented and exits.
"""

from __future__ import annotations

import os
import sys
import threading
import time

PARENT_POLL_S = 0.5


def _exit_when_orphaned(parent: int) -> None:
    while True:
        time.sleep(PARENT_POLL_S)
        if os.getppid() != parent:
            os._exit(70)  # EX_SOFTWARE; nothing to save: the runner that wanted our results is gone


def main() -> None:
    threading.Thread(
        target=_exit_when_orphaned, args=(os.getppid(),), daemon=True, name="pop-parent-watch"
    ).start()
    # as ipykernel_launcher does: the kernel's cwd must not shadow installed packages
    if sys.path and sys.path[0] == "":
        del sys.path[0]
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


if __name__ == "__main__":
    main()
