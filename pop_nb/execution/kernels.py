"""How a stage gets its kernel: the one seam a kernel pool (or remote kernels) plugs into.

:class:`FreshKernelProvider` starts a new IPython kernel on this interpreter for each stage and kills its
whole process group afterwards. Every kernel it hands out is tracked, so a cancelled runner can stop
them all at once.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
import threading
import uuid
from typing import Protocol

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync

# nbclient drives kernels from an event loop; it needs the async manager (a blocking client would block
# that loop on iopub reads, and the dead-kernel watchdog would never run).
KernelManager = AsyncKernelManager

KERNEL_NAME = "pop-python"


class KernelProvider(Protocol):
    def acquire(self, cwd: str) -> KernelManager:
        """A started kernel whose working directory is ``cwd``."""

    def release(self, km: KernelManager) -> None:
        """Give the kernel back; after this it must not keep running user state."""

    def shutdown_all(self) -> None:
        """Stop every kernel handed out and not yet released (cancel, runner exit)."""


class _ThisPythonSpecs(KernelSpecManager):
    """Resolves only our kernel name, to the interpreter running pop-nb.

    A user's global ``python3`` kernelspec may point at another environment without pop-nb installed;
    stage kernels must import ``pop_nb``, so they run on ``sys.executable``.
    """

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        return KernelSpec(
            argv=[sys.executable, "-m", "pop_nb.execution.kernel_main", "-f", "{connection_file}"],
            display_name="pop-nb stage (Python)",
            language="python",
            env={"PYDEVD_DISABLE_FILE_VALIDATION": "1"},
        )


class FreshKernelProvider:
    """A new kernel per stage: full isolation, about a second of start-up each.

    Kernels talk over Unix sockets (``transport="ipc"``) in a private folder, not TCP: TCP ports are
    picked free by the parent and bound later by the kernel, and with many kernels starting at once
    another process takes one in between ("Address already in use", a stage failing for nothing).
    """

    def __init__(self, startup_timeout_s: float = 60) -> None:
        self.startup_timeout_s = startup_timeout_s
        self._live: set[KernelManager] = set()
        self._lock = threading.Lock()
        self._closed = False
        # short: a Unix socket path must fit in ~100 bytes
        self._sockets = tempfile.mkdtemp(prefix="pop-k-", dir="/tmp" if os.path.isdir("/tmp") else None)

    def acquire(self, cwd: str) -> KernelManager:
        for attempt in (1, 2):
            km = KernelManager(
                kernel_name=KERNEL_NAME,
                kernel_spec_manager=_ThisPythonSpecs(),
                transport="ipc",
                ip=os.path.join(self._sockets, uuid.uuid4().hex[:8]),
            )
            with self._lock:
                if self._closed:
                    raise RuntimeError("kernel provider is shut down (the job is being cancelled)")
                self._live.add(km)
            try:
                run_sync(km.start_kernel)(cwd=cwd, env=dict(os.environ))
                return km
            except Exception:
                self.release(km)
                if attempt == 2 or self._closed:
                    raise
        raise AssertionError("unreachable")

    def release(self, km: KernelManager) -> None:
        try:
            if km.has_kernel:
                run_sync(km.shutdown_kernel)(now=True)
        except Exception:  # the kernel is already gone; make sure of it
            kill_kernel(km)
        finally:
            with self._lock:
                self._live.discard(km)

    def shutdown_all(self) -> None:
        with self._lock:
            self._closed = True
            live = list(self._live)
        for km in live:
            kill_kernel(km)
        shutil.rmtree(self._sockets, ignore_errors=True)


def kill_kernel(km: KernelManager) -> None:
    """SIGKILL a kernel's process group, from any thread (no event loop, no messages)."""
    process = getattr(km.provisioner, "process", None) if km.provisioner else None
    pid = getattr(process, "pid", None)
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(os.getpgid(pid), signal.SIGKILL)
