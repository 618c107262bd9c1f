"""How a stage gets its kernel: the one seam a kernel pool (or remote kernels) plugs into.

:class:`FreshKernelProvider` gives each stage a new IPython kernel process on this interpreter and kills
its whole process group afterwards. The kernel is forked from a preloaded kernel server (Linux; see
:mod:`pop_nb.execution.kernel_main`) or spawned as a new interpreter. Every kernel it hands out is
tracked, so a cancelled runner can stop them all at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from typing import Protocol

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync

from pop_nb.execution import forkserver

# nbclient drives kernels from an event loop; it needs the async manager (a blocking client would block
# that loop on iopub reads, and the dead-kernel watchdog would never run).
KernelManager = AsyncKernelManager

log = logging.getLogger(__name__)

KERNEL_NAME = "pop-python"
# No IPython history database: it is one file shared by every kernel of the user, so a stage could read
# the code of stages before it (`%history -g`), and each kernel paid for opening it and a writer thread.
# In, Out and _i<n> still hold the stage's own cells.
KERNEL_OPTIONS = ("--HistoryManager.enabled=False",)
KERNEL_EXIT_WAIT_S = 10  # after SIGKILL: only a process stuck in the kernel (D state) takes this long


class KernelProvider(Protocol):
    def acquire(self, cwd: str) -> KernelManager:
        """A started kernel whose working directory is ``cwd``."""

    def release(self, km: KernelManager) -> None:
        """Give the kernel back; after this it must not keep running user state."""

    def prestart(self, cwd: str, count: int) -> None:
        """Keep ``count`` kernels started ahead for ``cwd`` (a hint; a provider may ignore it)."""

    def shutdown_all(self) -> None:
        """Stop every kernel handed out and not yet released (cancel, runner exit)."""


class _ThisPythonSpecs(KernelSpecManager):
    """Resolves only our kernel name, to the interpreter running pop-nb.

    A user's global ``python3`` kernelspec may point at another environment without pop-nb installed;
    stage kernels must import ``pop_nb``, so they run on ``sys.executable``. With a fork server
    (``server``: its socket), the kernel is launched by our provisioner, forked from that server.
    """

    def __init__(self, server: str | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.server = server

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        provisioner = {"provisioner_name": forkserver.PROVISIONER_NAME, "config": {"server": self.server}}
        metadata = {"kernel_provisioner": provisioner} if self.server else {}
        return KernelSpec(
            argv=[
                sys.executable,
                "-m",
                "pop_nb.execution.kernel_main",
                "-f",
                "{connection_file}",
                *KERNEL_OPTIONS,
            ],
            display_name="pop-nb stage (Python)",
            language="python",
            env={"PYDEVD_DISABLE_FILE_VALIDATION": "1"},
            metadata=metadata,
        )


class FreshKernelProvider:
    """A new kernel process per stage: full isolation.

    ``start="fork"`` (Linux): kernels are forked from a kernel server started here at once, which has
    ipykernel, pop-nb and ``preload`` (litellm by default) imported; a stage pays a fork and a handshake.
    ``start="spawn"``: each kernel is a new interpreter, about a second of start-up plus its imports.

    Kernels talk over Unix sockets (``transport="ipc"``) in a private folder, not TCP: TCP ports are
    picked free by the parent and bound later by the kernel, and with many kernels starting at once
    another process takes one in between ("Address already in use", a stage failing for nothing).
    """

    def __init__(
        self,
        startup_timeout_s: float = 60,
        start: str = "spawn",
        preload: list[str] | None = None,
        server_idle_s: float = 300,
    ) -> None:
        self.startup_timeout_s = startup_timeout_s
        self._live: set[KernelManager] = set()
        self._lock = threading.Lock()
        self._wanted = threading.Condition(self._lock)
        self._closed = False
        self._spare: dict[str, list[KernelManager]] = {}  # started ahead, per working directory
        self._starting: dict[str, int] = {}  # being started ahead now, per working directory
        self._target: tuple[str, int] = ("", 0)
        self._filler: threading.Thread | None = None
        # short: a Unix socket path must fit in ~100 bytes
        self._sockets = tempfile.mkdtemp(prefix="pop-k-", dir="/tmp" if os.path.isdir("/tmp") else None)
        self._server: forkserver.ForkServer | None = None
        if start == "fork" and forkserver.fork_supported():
            try:
                self._server = forkserver.shared_server(preload or [], server_idle_s)
            except (OSError, forkserver.ForkServerError) as exc:
                log.warning("pop-nb: kernels are spawned, not forked: %s", exc)

    def acquire(self, cwd: str) -> KernelManager:
        """A started kernel in ``cwd``: one started ahead if there is one (see :meth:`prestart`), or
        the one being started ahead, which is further along than a new one would be."""
        with self._lock:
            while not self._spare.get(cwd) and self._starting.get(cwd) and not self._closed:
                self._wanted.wait()
            spare = self._spare.get(cwd, [])
            km = spare.pop(0) if spare else None
            self._wanted.notify_all()  # the filler starts the next one now
        if km is not None and _running(km):
            return km
        if km is not None:  # it died while it waited (killed from outside): never hand that out
            self.release(km)
        return self._start(cwd)

    def prestart(self, cwd: str, count: int) -> None:
        """Keep ``count`` kernels started ahead for stages run in ``cwd``: a stage then pays only the
        handshake. 0 stops starting new ones (spares are ended with the provider)."""
        with self._lock:
            self._target = (cwd, max(0, count))
            if self._filler is None and count > 0 and not self._closed:
                self._filler = threading.Thread(target=self._fill, daemon=True, name="pop-kernel-pool")
                self._filler.start()
            self._wanted.notify_all()

    def _fill(self) -> None:
        try:
            self._fill_until_closed()
        finally:
            close_thread_loop()

    def _fill_until_closed(self) -> None:
        while True:
            with self._lock:
                while not self._closed and len(self._spare.get(self._target[0], [])) >= self._target[1]:
                    self._wanted.wait()
                if self._closed:
                    return
                cwd = self._target[0]
                self._starting[cwd] = self._starting.get(cwd, 0) + 1
            km: KernelManager | None = None
            with contextlib.suppress(Exception):  # the stage that needs a kernel starts its own, says why
                km = self._start(cwd)
            with self._lock:
                self._starting[cwd] -= 1
                closing = self._closed
                if km is not None and not closing:
                    self._spare.setdefault(cwd, []).append(km)
                self._wanted.notify_all()  # a stage waiting for it
            if km is None:
                time.sleep(1)
            elif closing:
                self.release(km)

    def _start(self, cwd: str) -> KernelManager:
        for attempt in (1, 2):
            km = KernelManager(
                kernel_name=KERNEL_NAME,
                kernel_spec_manager=_ThisPythonSpecs(self._server.path if self._server else None),
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
            except Exception as exc:
                self.release(km)
                if isinstance(exc, forkserver.ForkServerError) and self._server is not None:
                    log.warning("pop-nb: kernels are spawned from now on, not forked: %s", exc)
                    self._server = None
                if attempt == 2 or self._closed:
                    raise
        raise AssertionError("unreachable")

    def release(self, km: KernelManager) -> None:
        """Kill the kernel's process group at once (the stage is over: nothing in it is owed a goodbye),
        wait for the kernel to end, and remove its connection file and sockets."""
        try:
            kill_kernel(km)
            process = getattr(km.provisioner, "process", None) if km.provisioner else None
            if process is not None:
                process.wait(KERNEL_EXIT_WAIT_S)  # on its pidfd or waitpid: no polling interval
            if km.provisioner is not None:
                run_sync(km.provisioner.wait)()
                run_sync(km.cleanup_resources)()
        finally:
            with self._lock:
                self._live.discard(km)

    def shutdown_all(self) -> None:
        with self._lock:
            self._closed = True
            spares = [km for kms in self._spare.values() for km in kms]
            self._spare.clear()
            self._wanted.notify_all()
            live = list(self._live)
        for km in live:
            kill_kernel(km)
        for km in spares:  # nobody else holds these: their sockets and zmq context are let go of here
            with contextlib.suppress(Exception):
                self.release(km)
        shutil.rmtree(self._sockets, ignore_errors=True)


def _running(km: KernelManager) -> bool:
    process = getattr(km.provisioner, "process", None) if km.provisioner else None
    return process is not None and process.poll() is None


def kill_kernel(km: KernelManager) -> None:
    """SIGKILL a kernel's process group, from any thread (no event loop, no messages)."""
    process = getattr(km.provisioner, "process", None) if km.provisioner else None
    pid = getattr(process, "pid", None)
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(os.getpgid(pid), signal.SIGKILL)


def close_thread_loop() -> None:
    """Close the event loop jupyter_core's ``run_sync`` made for this thread, if it made one: it keeps a
    loop per thread and never closes it, so a thread that ends would leave the loop (and its two
    sockets) to the garbage collector. Called where a thread of ours is done with kernels; the next
    ``run_sync`` in the thread, if any, makes a new loop."""
    if threading.current_thread() is threading.main_thread():
        return  # the main thread's loop lives as long as the process
    try:
        loop = asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:  # none was made here
        return
    if not loop.is_running() and not loop.is_closed():
        loop.close()
