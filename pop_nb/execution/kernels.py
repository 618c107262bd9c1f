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
import queue
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from typing import Any, Protocol

import zmq
import zmq.asyncio
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync

from pop_nb.compat.jupyter import channel_url, kernel_alive, take_kernel_info
from pop_nb.execution import forkserver
from pop_nb.execution.kernel_output import KernelOutput

# nbclient drives kernels from an event loop; it needs the async manager (a blocking client would block
# that loop on iopub reads, and the dead-kernel watchdog would never run).
KernelManager = AsyncKernelManager

log = logging.getLogger(__name__)

KERNEL_NAME = "pop-python"
# No IPython history database: it is one file shared by every kernel of the user, so a stage could read
# the code of stages before it (`%history -g`), and each kernel paid for opening it and a writer thread.
# In, Out and _i<n> still hold the stage's own cells.
KERNEL_OPTIONS = ("--HistoryManager.enabled=False",)
FILLER_STOP_WAIT_S = 10  # a start under way when the provider shuts down: a fork and a handshake
EXIT_WAIT_S = 5.0  # a stage's kernel asked to exit, to run its exit functions (papermill's wait, too)
GOODBYE_POLL_S = 0.05  # how often a kernel asked to exit is checked for having died instead
KERNEL_EXIT_WAIT_S = 10  # after SIGKILL: only a process stuck in the kernel (D state) takes this long
# A stage that took a spare while another is ready: the next is started once the stage is done, or this
# long after it began, whichever comes first; not while the stage connects to its kernel and runs its
# first cells (on two cores a kernel starting beside it made a short stage 50 ms where it takes 33)
REFILL_AFTER_S = 0.1


class KernelProvider(Protocol):
    def acquire(self, cwd: str) -> KernelManager:
        """A started kernel whose working directory is ``cwd``."""

    def release(self, km: KernelManager, exiting: bool = False) -> None:
        """Give the kernel back; after this it must not keep running user state. ``exiting``: its stage
        ran, and it may end as an interpreter would (its exit functions) before it is stopped."""

    def prestart(self, cwd: str, count: int) -> None:
        """Keep ``count`` kernels started ahead for ``cwd`` (a hint; a provider may ignore it)."""

    def shutdown_all(self, now: bool = False) -> None:
        """Stop every kernel handed out and not yet released (runner exit; ``now``: a cancel, nothing
        waited for)."""


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
        # (kernel, to ask to exit first) killed, or to kill, and not yet gone
        self._dying: queue.SimpleQueue[tuple[KernelManager, bool] | None] = queue.SimpleQueue()
        self._reaper: threading.Thread | None = None
        # kernels handed to the reaper to be asked to exit, and those it has done with (in that order)
        self._goodbyes_asked = self._goodbyes_said = 0
        self._lock = threading.Lock()
        self._wanted = threading.Condition(self._lock)
        self._closed = False
        self._spare: dict[str, list[KernelManager]] = {}  # started ahead, per working directory
        self._greeted: set[KernelManager] = set()  # spares that have answered once
        self._greeting: set[KernelManager] = set()  # the spare being greeted now
        self._starting: dict[str, int] = {}  # being started ahead now, per working directory
        self._target: tuple[str, int] = ("", 0)
        self._hold_until = 0.0  # monotonic time before which no spare is started or greeted
        self._filler: threading.Thread | None = None
        self._output = KernelOutput()
        # short: a Unix socket path must fit in ~100 bytes
        self._sockets = tempfile.mkdtemp(prefix=f"{_SOCKETS_PREFIX}{os.getpid()}-", dir=sockets_dir())
        _sweep_once()
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
            # what the stages that ended before this call wrote is on disk first (not those that end
            # meanwhile: with parallel tasks ending stages all along, the wait still ends)
            asked = self._goodbyes_asked
            while self._goodbyes_said < asked and not self._closed:
                self._wanted.wait()
            while True:
                spare = self._spare.get(cwd, [])
                # one greeted, else one not being greeted: a stage and the greeting on one kernel at
                # once hung the stage in a test run (the two clients share one jupyter_client Session)
                free = [k for k in spare if k not in self._greeting]
                km = next((k for k in free if k in self._greeted), free[0] if free else None)
                if km is not None or self._closed or not (spare or self._starting.get(cwd)):
                    break
                self._wanted.wait()
            if km is not None:
                spare.remove(km)
                self._greeted.discard(km)
                left = any(k in self._greeted for k in spare)
                self._hold_until = time.monotonic() + REFILL_AFTER_S if left else 0.0
            self._wanted.notify_all()  # the filler starts the next one (now, or once it may)
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
        """Start kernels ahead until there are as many as wanted, and greet each once (see
        :func:`_greet`): a start is quick (the kernel readies itself meanwhile), a greeting waits for
        the kernel, so kernels are started first and greeted when the count is reached."""
        while True:
            with self._lock:
                while not self._closed and (chore := self._next_chore()) is None:
                    held = self._hold_until - time.monotonic()
                    self._wanted.wait(held if held > 0 else None)
                if self._closed or chore is None:
                    return
                cwd, spare = chore
                if spare is None:
                    self._starting[cwd] = self._starting.get(cwd, 0) + 1
                else:
                    self._greeting.add(spare)
            if spare is not None:
                with contextlib.suppress(Exception):  # one that does not answer is found dead, or hangs
                    run_sync(_greet)(spare, self.startup_timeout_s)  # its stage as it would have anyway
                with self._lock:
                    self._greeting.discard(spare)
                    self._greeted.add(spare)
                    self._wanted.notify_all()  # a stage waiting for it
                continue
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

    def _next_chore(self) -> tuple[str, KernelManager | None] | None:
        """The filler's next step, under the lock: (cwd, None) start a kernel in cwd, (cwd, km) greet
        that spare, None nothing to do."""
        if time.monotonic() < self._hold_until:
            return None
        cwd, count = self._target
        spare = self._spare.get(cwd, [])
        if len(spare) < count:
            return cwd, None
        return next(((cwd, km) for km in spare if km not in self._greeted), None)

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
                # what it prints below Python (a subprocess, os.write) is masked on its way to our stderr
                out = self._output.fd
                run_sync(km.start_kernel)(cwd=cwd, env=dict(os.environ), stdout=out, stderr=out)
                return km
            except Exception as exc:
                self.release(km)
                # an answer lost (the server killed as it forked): asked again, of the next server; a
                # kernel it may have forked ends with us (it waits on our pidfd)
                lost = isinstance(exc, forkserver.AnswerLost)
                if isinstance(exc, forkserver.ForkServerError) and not lost and self._server is not None:
                    log.warning("pop-nb: kernels are spawned from now on, not forked: %s", exc)
                    self._server = None
                if attempt == 2 or self._closed:
                    raise
        raise AssertionError("unreachable")

    def release(self, km: KernelManager, exiting: bool = False) -> None:
        """Kill the kernel's process group (nothing the stage started outlives it): at once, or, when
        ``exiting`` (its stage ran), once it has ended as papermill's kernel would, with its exit
        functions (a file the stage left open is flushed and closed; its ``atexit`` functions run;
        :func:`say_goodbye`, :data:`EXIT_WAIT_S` at most). That goodbye is said by a thread of ours
        while the runner goes on (it writes the stage's notebook and status meanwhile); the next
        :meth:`acquire` and :meth:`shutdown_all` wait for it, so the next stage and the job's products
        see everything the stage wrote. Removing its connection file and sockets (3 ms: its zmq
        context ends its threads) and waiting for the process to be gone (7 ms: the system lets go of
        its memory) are left to that thread too."""
        with self._lock:
            self._hold_until = 0.0  # a stage is done: the next spare may start
            self._wanted.notify_all()
            if exiting and not self._closed:  # the reaper asks it, then kills it (_end)
                self._goodbyes_asked += 1
                self._to_reaper((km, True))
                return
        try:
            kill_kernel(km)
        finally:
            with self._lock:
                self._live.discard(km)
                closed = self._closed
                if not closed:
                    self._to_reaper((km, False))
            if closed:
                _let_go(km)

    def _to_reaper(self, item: tuple[KernelManager, bool]) -> None:
        """(Under the lock.) Hand a kernel to the reaper thread: (km, True) to ask to exit first."""
        self._dying.put(item)
        if self._reaper is None:
            self._reaper = threading.Thread(target=self._reap, daemon=True, name="pop-kernel-reaper")
            self._reaper.start()

    def _reap(self) -> None:
        try:
            while (item := self._dying.get()) is not None:
                km, goodbye = item
                if goodbye:
                    self._end(km)
                _let_go(km)
        finally:
            close_thread_loop()

    def _end(self, km: KernelManager) -> None:
        """(The reaper's.) Ask a kernel whose stage ran to exit, then kill its group; the goodbye is
        said, whatever happened (acquire and shutdown_all wait for that)."""
        try:
            say_goodbye(km, EXIT_WAIT_S)
            kill_kernel(km)
        finally:
            with self._lock:
                self._live.discard(km)
                self._goodbyes_said += 1
                self._wanted.notify_all()

    def shutdown_all(self, now: bool = False) -> None:
        with self._lock:
            while self._goodbyes_said < self._goodbyes_asked and not now:  # EXIT_WAIT_S each at most
                self._wanted.wait()
            self._closed = True
            spares = [km for kms in self._spare.values() for km in kms]
            self._spare.clear()
            self._greeted.clear()
            self._wanted.notify_all()
            live = list(self._live)
        for km in live:
            kill_kernel(km)
        for km in spares:  # nobody else holds these: their sockets and zmq context are let go of here
            with contextlib.suppress(Exception):
                self.release(km)
        if self._filler is not None:  # a kernel it is starting binds its sockets in the folder below
            self._filler.join(FILLER_STOP_WAIT_S)
        if self._reaper is not None:
            self._dying.put(None)
            self._reaper.join()
        if self._filler is None or not self._filler.is_alive():  # else a start may still pass it on
            self._output.close()
        shutil.rmtree(self._sockets, ignore_errors=True)


def sockets_dir() -> str | None:
    """Where each provider makes the folder of its kernels' sockets (None: the system's default)."""
    return "/tmp" if os.path.isdir("/tmp") else None


def _pid_namespace() -> int:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


# pop-k-<pid namespace>-<pid>-<random>: whose folder it is, so one whose process is gone can be removed
_SOCKETS_PREFIX = f"pop-k-{_pid_namespace()}-"
_swept = threading.Event()


def _sweep_once() -> None:
    """Once per process, on a thread: remove the socket folders of providers whose process is gone (one
    killed cannot remove its own: SIGKILL, the OOM killer)."""
    if not _swept.is_set():
        _swept.set()
        threading.Thread(target=sweep_stale_sockets, name="pop-sweep", daemon=True).start()


def sweep_stale_sockets(where: str | None = None) -> int:
    """Remove this user's kernel socket folders, in ``where`` (default :func:`sockets_dir`), made in
    this pid namespace by a process that is gone; how many. A live process's folder, another user's,
    or one from another namespace (a container sharing /tmp: its pids are not ours to judge) stays."""
    where = where or sockets_dir() or tempfile.gettempdir()
    removed = 0
    try:
        with os.scandir(where) as entries:
            found = [e for e in entries if e.name.startswith(_SOCKETS_PREFIX)]
    except OSError:
        return 0
    for entry in found:
        pid_text = entry.name[len(_SOCKETS_PREFIX) :].partition("-")[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid():
            continue
        try:
            if entry.stat(follow_symlinks=False).st_uid != os.getuid() or not entry.is_dir(
                follow_symlinks=False
            ):
                continue
            os.kill(int(pid_text), 0)
            continue  # alive (or our signal is refused: someone's, alive)
        except ProcessLookupError:
            shutil.rmtree(entry.path, ignore_errors=True)
            removed += 1
        except OSError:
            continue
    return removed


IOPUB_CHECK_S = 0.01
WARM_UP = 'print(end=" ")'  # a cell that readies what a first cell and a first print would (no name left)
# a kernel that has not bound its sockets yet (just started) refuses the connection, and zmq tries again
# after RECONNECT_IVL: 100 ms by default, a third of a short stage
RECONNECT_IVL_MS = 5


def connected_client(km: KernelManager) -> Any:
    """A client of ``km``'s kernel (not yet known to be answered) on a zmq context of its own, with the
    two channels a stage uses: shell and IOPub. No stdin (a stage takes no input), no control (a stage is
    ended by killing its kernel) and no heartbeat (whether the kernel lives is asked of ``km``, the
    client's parent): each one more socket to make and close, the heartbeat a thread (1.5 ms a stage).
    End it with :func:`disconnect`."""
    kc = km.client(context=zmq.asyncio.Context())
    kc.context.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
    kc.start_channels(shell=True, iopub=True, stdin=False, hb=False, control=False)
    return kc


def say_goodbye(km: KernelManager, timeout_s: float) -> bool:
    """Ask the kernel of a stage that ran to exit (``shutdown_request``, as papermill does) on a shell
    socket of its own (the process's zmq context), and wait until it answers (a stage kernel answers
    once its exit functions ran: :mod:`pop_nb.execution.stage_kernel`), dies, or ``timeout_s`` passed;
    whether it answered. Blocking: the reaper's, never a stage's or an event loop's. Never raises."""
    try:
        sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    except zmq.ZMQError:  # out of files: it is killed unasked
        return False
    try:
        sock.linger = 0
        sock.connect(channel_url(km, "shell"))
        asked = km.session.send(sock, "shutdown_request", {"restart": False})
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            if not sock.poll(int(min(left, GOODBYE_POLL_S) * 1000)):
                if not _running(km):
                    return False
                continue
            _, reply = km.session.feed_identities(sock.recv_multipart(), copy=True)
            answer = km.session.deserialize(reply, content=False)
            if answer["parent_header"].get("msg_id") == asked["header"]["msg_id"]:
                return True
        return False
    except Exception as exc:  # a kernel that answers nonsense is killed like one that does not answer
        log.debug("pop-nb: a stage kernel's goodbye failed: %s", exc)
        return False
    finally:
        sock.close(linger=0)


def disconnect(kc: Any) -> None:
    """Close a client of :func:`connected_client`: its sockets and its zmq context, at once (nothing it
    still holds is owed to a kernel that is being let go of). jupyter_client's ``stop_channels`` would
    first make the channels never started, to see that they are not running."""
    kc.context.destroy(linger=0)


async def kernel_ready(kc: Any, timeout_s: float) -> dict[str, Any]:
    """Wait until the kernel answers on shell and its IOPub messages reach us (a subscription takes a
    moment after connecting; a stage's first outputs must not be lost). Checked every 10 ms, where
    jupyter_client's ``wait_for_ready`` waits a fixed 0.2 s for IOPub. The kernel's ``kernel_info_reply``
    content."""
    deadline = time.monotonic() + timeout_s
    while True:
        reply = await _reply(kc, kc.kernel_info(), deadline, timeout_s)
        try:
            await kc.iopub_channel.get_msg(timeout=IOPUB_CHECK_S)
        except queue.Empty:
            await asyncio.sleep(0)
            continue  # IOPub is not connected yet: ask again
        take_kernel_info(kc, reply)
        content: dict[str, Any] = reply["content"]
        return content


async def _reply(kc: Any, msg_id: str, deadline: float, timeout_s: float) -> dict[str, Any]:
    """The kernel's reply on shell to the request ``msg_id``, by ``deadline`` (``timeout_s`` from when
    the wait began)."""
    while time.monotonic() < deadline:
        try:
            reply: dict[str, Any] = await kc.shell_channel.get_msg(timeout=IOPUB_CHECK_S)
        except queue.Empty:
            if not await kernel_alive(kc):
                raise RuntimeError("the kernel died before it replied") from None
            continue
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply
    raise RuntimeError(f"the kernel did not answer within {timeout_s:.0f}s")


async def _greet(km: KernelManager, timeout_s: float) -> None:
    """Talk to a kernel started ahead once, so that it has answered its first requests before a stage
    waits on it: in a fresh kernel the first connection and reply cost 8-20 ms (the next 4-5), and the
    first cell ~10 ms more than the next (IPython readies what runs around a cell; a silent one does not
    ready it). The cell run here (:data:`WARM_UP`: it prints a space, to nobody) leaves no name and is kept
    out of the history: the stage's first cell is still ``In [1]``, with nothing before it in ``In`` or
    ``Out``."""
    kc = connected_client(km)
    try:
        deadline = time.monotonic() + timeout_s
        await kernel_ready(kc, timeout_s)
        await _reply(kc, kc.execute(WARM_UP, store_history=False), deadline, timeout_s)
    finally:
        disconnect(kc)


def _let_go(km: KernelManager) -> None:
    """After its kill: remove a kernel's connection file and sockets, end its zmq context, and wait until
    its process is gone. Never raises (a reaper that stopped would leave every later kernel behind)."""
    try:
        if km.provisioner is not None:
            run_sync(km.cleanup_resources)()
    except Exception as exc:
        log.warning("pop-nb: a stage kernel's files could not be removed: %s", exc)
    _wait_gone(km)


def _wait_gone(km: KernelManager) -> None:
    """Until a killed kernel's process has ended (on its pidfd or waitpid: no polling interval)."""
    with contextlib.suppress(Exception):  # never stuck on one: at most KERNEL_EXIT_WAIT_S
        process = getattr(km.provisioner, "process", None) if km.provisioner else None
        if process is not None:
            process.wait(KERNEL_EXIT_WAIT_S)
        if km.provisioner is not None:
            run_sync(km.provisioner.wait)()


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
