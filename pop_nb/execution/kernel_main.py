"""Entry point of stage kernels, started one of two ways.

``python -m pop_nb.execution.kernel_main -f <connection file>``: one kernel, a fresh interpreter (the
portable way; about a second of start-up, plus whatever the stage imports).

``python -m pop_nb.execution.kernel_main --serve <socket> --preload litellm,... --idle-s 300``: a *kernel
server*, shared by the runners of one user on one machine (one per interpreter, preload list and pop-nb
source; see :mod:`pop_nb.execution.forkserver`). It imports ipykernel, pop-nb and the heavy modules
once, then forks a kernel per request. Each kernel is a fresh process no other stage has used (its own
copy of the preloaded interpreter, nothing more), so isolation is the same as a spawned one; it just
starts with its imports done. The server never runs stage code itself; it holds no threads, no event
loop and no sockets but its listener when it forks. It ends when idle.

Every kernel dies with the runner that asked for it: a spawned kernel watches its parent (the runner),
a forked one waits on a pidfd of its runner.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import json
import os
import select
import signal
import socket
import sys
import threading
import time
import warnings

from pop_nb.execution.module_walk import ModuleWalk
from pop_nb.models.ids import JOB_ID_RE

PARENT_POLL_S = 0.5
MAX_REQUEST_BYTES = 16 << 20  # an environment and a command line; anything bigger is not a runner
# what every kernel imports while it starts (ipykernel imports some lazily), and what every stage uses
KERNEL_MODULES = (
    "ipykernel.kernelapp",
    "ipykernel.ipkernel",
    "ipykernel.zmqshell",
    "ipykernel.debugger",
    "IPython.core.completerlib",
    "IPython.core.debugger",  # these five (and pdb, bdb, cmd) are imported by a kernel starting: 5 ms
    "IPython.core.oinspect",
    "IPython.core.logger",
    "IPython.utils.wildcard",
    "tornado.platform.asyncio",
    "IPython.extensions.storemagic",
    "sqlite3",
    "tornado.queues",
    "faulthandler",  # these two are imported while a kernel initializes: with them here, it loads no
    "psutil",  # module, and starts from the server's walk over them (module_walk)
    "nbformat",
    "pop_nb.task",
    "pop_nb.execution.stage_kernel",
)


def _exit_when_orphaned(parent: int) -> None:
    while True:
        time.sleep(PARENT_POLL_S)
        if os.getppid() != parent:
            os._exit(70)  # EX_SOFTWARE; nothing to save: the runner that wanted our results is gone


def run_kernel(argv: list[str], watch_parent: bool = True, walk: ModuleWalk | None = None) -> None:
    """Run an IPython kernel with ``argv`` (``-f <connection file>``) in this process until it ends;
    ``walk``: the kernel server's walk over the modules, which a forked kernel starts from."""
    if watch_parent:
        threading.Thread(
            target=_exit_when_orphaned, args=(os.getppid(),), daemon=True, name="pop-parent-watch"
        ).start()
    # as ipykernel_launcher does: the kernel's cwd must not shadow installed packages
    if sys.path and sys.path[0] == "":
        del sys.path[0]
    from ipykernel.kernelapp import IPKernelApp

    from pop_nb.execution.stage_kernel import StageKernel

    sys.argv = [sys.argv[0], *argv]
    app = IPKernelApp.instance(kernel_class=StageKernel)
    with walk.serving() if walk is not None else contextlib.nullcontext():
        app.initialize(argv)  # type: ignore[no-untyped-call]
    app.start()  # type: ignore[no-untyped-call]


# -- the fork server ------------------------------------------------------------------------------------


def preload(modules: list[str]) -> None:
    """Import what every stage kernel would import anyway, so that no kernel pays for it."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never the network at import
    # nbformat imports jsonschema, which would build rfc3987_syntax's grammar (0.9 s) for a format check
    # hardly any stage makes: importing pop-nb defers it (pop_nb._lean), a kernel that makes one builds it
    for name in KERNEL_MODULES:
        importlib.import_module(name)
    # what each fork names itself with (14 ms of import): asked once here, it finds this process's command
    # line before a fork's environment is replaced (after that it cannot, and changes nothing)
    from setproctitle import getproctitle

    getproctitle()
    from pop_nb.execution.engine import get_engine

    importlib.import_module("pop_nb.execution.runner_main")  # what a forked job runner runs
    get_engine()  # papermill, nbclient, jupyter_client: what it runs stages with
    _build_what_each_fork_would(modules)

    for name in modules:
        if name == "litellm":  # with our providers registered, the local price map, warmed up
            from pop_nb.llm.providers import load_litellm, warm_up

            warm_up(load_litellm())
            importlib.import_module("pop_nb.llm.client")  # what a stage's first pop.chat imports
            importlib.import_module("pop_nb.llm.structured")
        elif name:
            importlib.import_module(name)


def _forget_event_loop() -> None:
    """Close the event loop preloading left set (litellm's first call through the OpenAI path makes one
    for its service logger), and start the next from nothing, as a new interpreter would. Left there,
    it would be every fork's loop: one self-pipe and one epoll instance shared by the server and every
    kernel and runner forked from it, so a wake-up one process writes is read by another (a kernel
    whose thread handed work back to its loop waited forever for it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            loop = asyncio.get_event_loop()  # the one set, or (none was) one made here
        except RuntimeError:
            loop = None
    if loop is not None:
        loop.close()
    policy = asyncio.get_event_loop_policy()
    if type(policy) is asyncio.DefaultEventLoopPolicy:
        asyncio.set_event_loop_policy(None)  # a new one: a fork makes its loop when it first asks
    else:
        policy.set_event_loop(None)  # one a preloaded module installed stays; its loop goes


def _build_what_each_fork_would(modules: list[str]) -> None:
    """Build here, once, what each runner and kernel forked from here would otherwise build again for
    every job: nbformat's schema validator (30 ms), the python3 kernelspec (20-50 ms: it imports and
    scans), pop-nb's pydantic validators (built on first use; 18 ms for all) and this server's key."""
    import nbformat

    from pop_nb.execution.forkserver import server_key
    from pop_nb.models.base import build_models
    from pop_nb.pipeline.task_notebook import python3_kernelspec

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("")])
    nbformat.reads(nbformat.writes(notebook), as_version=4)
    python3_kernelspec()
    build_models()
    server_key(modules)


def serve(path: str, modules: list[str], idle_s: float, lock_fd: int | None = None) -> None:
    """Preload, then listen on the Unix socket ``path``. Each request (one JSON line: ``argv``, ``cwd``,
    ``env``, ``runner``) forks one kernel, answered with ``{"pid": n}`` and a pidfd of the kernel
    (SCM_RIGHTS). The kernel ends when ``runner`` (a pid) does. The server ends after ``idle_s`` without
    requests and without live kernels, or when another server has taken its socket path. ``lock_fd``:
    the server's lock (see :class:`~pop_nb.execution.forkserver.ForkServer`), held until it ends."""
    preload(modules)
    _forget_event_loop()
    walk = ModuleWalk.take()
    # what preloading made lives as long as the server: frozen, the collector of each forked child never
    # walks it (a walk writes to every object's page, and the child then copies those pages from us)
    gc.collect()
    gc.freeze()
    if threading.active_count() != 1:  # forking a process with threads can copy a held lock
        names = ", ".join(t.name for t in threading.enumerate() if t is not threading.main_thread())
        sys.exit(f"pop-nb kernel server: preloading started threads ({names}); not forking")
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # kernels are reaped by the system, never zombies
    children: set[int] = set()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path + ".tmp")
    listener.bind(path + ".tmp")
    listener.listen(64)
    os.rename(path + ".tmp", path)  # the socket appears only when the server is ready
    ours = os.stat(path).st_ino
    last = time.monotonic()
    while True:
        ready, _, _ = select.select([listener], [], [], PARENT_POLL_S)
        if ready:
            conn, _ = listener.accept()
            with conn:
                _answer(conn, (listener, lock_fd), children, walk)
            last = time.monotonic()
            continue
        _forget_dead(children)
        try:
            replaced = os.stat(path).st_ino != ours
        except FileNotFoundError:
            replaced = True
        if replaced or (not children and time.monotonic() - last > idle_s):
            break
    with contextlib.suppress(FileNotFoundError):
        if os.stat(path).st_ino == ours:
            os.unlink(path)


def _answer(
    conn: socket.socket, ours: tuple[socket.socket, int | None], children: set[int], walk: ModuleWalk
) -> None:
    """Fork what the request on ``conn`` asks for; ``ours`` (the listener, the lock) stay with the server.

    ``kind`` ``kernel`` (the default): fds are the runner's stdout and stderr, and the kernel ends with
    the process ``runner``. ``kind`` ``runner``: a job's runner (``argv``: runner_main's arguments, with
    ``--lock-fd`` naming the third fd, the job's lock); fds are its log twice and the lock. A runner
    outlives whoever asked for it (a daemon may restart), as a spawned one does."""
    conn.settimeout(5)
    fds: list[int] = []
    watch: int | None = None
    try:
        data, fds, _, _ = socket.recv_fds(conn, 1 << 16, 3)
        while not data.endswith(b"\n"):
            more = conn.recv(1 << 16)
            if not more or len(data) > MAX_REQUEST_BYTES:
                raise ValueError("the request ended early or is too long")
            data += more
        request = json.loads(data)
        argv, cwd, env = [str(a) for a in request["argv"]], str(request["cwd"]), dict(request["env"])
        kind = request.get("kind", "kernel")
        # a runner's job is its argument; a kernel's, its runner's (runner_main sets POP_RUNNER_JOB)
        title = _title(kind, argv[0] if kind == "runner" and argv else env.get("POP_RUNNER_JOB"))
        if kind not in ("kernel", "runner") or len(fds) != (2 if kind == "kernel" else 3):
            raise ValueError(f"a {kind} request takes {2 if kind == 'kernel' else 3} descriptors")
        if kind == "kernel":
            watch = os.pidfd_open(int(request["runner"]))  # before the fork: the runner is alive now
    except (OSError, ValueError, KeyError, TypeError) as exc:
        for fd in fds:
            os.close(fd)
        with contextlib.suppress(OSError):
            conn.sendall(json.dumps({"error": f"bad request: {exc}"}).encode() + b"\n")
        return
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            ours[0].close()
            if ours[1] is not None:
                os.close(ours[1])  # a child must not keep the server's lock alive after the server
            conn.close()
            os.setsid()  # its own process group: killed with everything it started, at once
            os.dup2(fds[0], 1)  # what it prints goes where its asker's output (or the job's log) goes
            os.dup2(fds[1], 2)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.chdir(cwd)
            os.environ.clear()
            os.environ.update(env)
            _name_process(f"pop-{kind}", title)
            if kind == "runner":
                from pop_nb.execution import runner_main

                os.close(fds[0])
                os.close(fds[1])
                sys.argv = ["pop-runner", *argv]
                code = runner_main.main([*argv, "--lock-fd", str(fds[2])])
            else:
                assert watch is not None
                threading.Thread(
                    target=_exit_with, args=(watch,), daemon=True, name="pop-runner-watch"
                ).start()
                # parent_handle=1: no ipykernel parent poller (the watch above does that job)
                run_kernel([*argv, "--IPKernelApp.parent_handle=1"], watch_parent=False, walk=walk)
                code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            with contextlib.suppress(BaseException):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
    for fd in (*fds, *([watch] if watch is not None else [])):
        os.close(fd)
    children.add(pid)
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:  # already gone
        conn.sendall(json.dumps({"error": f"{kind} {pid} exited at once"}).encode() + b"\n")
        return
    try:
        socket.send_fds(conn, [json.dumps({"pid": pid}).encode() + b"\n"], [pidfd])
    except OSError:
        if kind == "kernel":
            os.kill(pid, signal.SIGKILL)  # nobody will use it (a runner goes on: it has its job)
    finally:
        os.close(pidfd)


def _title(kind: str, label: object) -> str:
    """A forked child's command line: ``pop-runner <job>`` or ``pop-kernel <job>``. A label that is no
    job id (anything may send a request) is left out."""
    if isinstance(label, str) and JOB_ID_RE.fullmatch(label):
        return f"pop-{kind} {label}"
    return f"pop-{kind}"


def _name_process(name: str, title: str) -> None:
    """What ``ps``, ``top`` and ``pkill -f`` see of a forked child, which would otherwise show the kernel
    server's command line (so ``pkill -f kernel_main`` took every job's runner for the server, and
    cancelled the job): ``title`` as its command line and ``name`` as its ``comm`` (psutil's ``name()``;
    15 bytes), which tells a runner from a kernel."""
    from setproctitle import setproctitle  # imported by the server (preload)

    setproctitle(title)
    with contextlib.suppress(OSError), open("/proc/self/comm", "w") as comm:
        comm.write(name[:15])


def _exit_with(runner: int) -> None:
    """A forked kernel's watch: its runner is not its parent, so it waits on the runner's pidfd."""
    select.select([runner], [], [])
    os._exit(70)


def _forget_dead(children: set[int]) -> None:
    for pid in list(children):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            children.discard(pid)


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--serve"]:  # --serve <socket> --preload <a,b> --idle-s <seconds>
        if os.fork():  # detach: the one who started us waits for this process alone, which ends now
            os._exit(0)
        options = dict(zip(args[::2], args[1::2], strict=False))
        modules = [m for m in options.get("--preload", "").split(",") if m]
        lock_fd = int(options["--lock-fd"]) if "--lock-fd" in options else None
        serve(options["--serve"], modules, float(options.get("--idle-s", "300")), lock_fd)
        return
    run_kernel(args)


if __name__ == "__main__":
    main()
