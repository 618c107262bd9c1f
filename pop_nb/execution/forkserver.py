"""The runner's side of the kernel server (see :mod:`pop_nb.execution.kernel_main`).

:func:`shared_server` finds or starts the kernel server of this user, interpreter, preload list and
pop-nb source: the first runner starts it (in its own session, so it outlives that runner and the next
job finds it warm), later runners reuse it, and it ends by itself when idle. Its lock file, held by the
server process, says whether one is alive or starting, so two runners never start two.

:class:`ForkedKernelProvisioner` is a jupyter_client kernel provisioner (entry point ``pop-forked``)
that launches a kernel through the server, so the kernel manager, nbclient and papermill work exactly
as with a spawned kernel. A forked kernel is not the runner's child, so :class:`ForkedProcess` stands in
for its ``Popen``, on a pidfd: no pid-reuse race.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import os
import select
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jupyter_client.provisioning.local_provisioner import LocalProvisioner
from traitlets import Unicode

from pop_nb.redaction import is_secret_name, url_password
from pop_nb.store.locks import FileLock, is_locked

PROVISIONER_NAME = "pop-forked"


def fork_supported() -> bool:
    """Forking kernels needs Linux (pidfds); elsewhere every kernel is spawned."""
    return sys.platform == "linux" and hasattr(os, "pidfd_open") and hasattr(socket, "send_fds")


class ForkServerError(RuntimeError):
    pass


class AnswerLost(ForkServerError):
    """The server took the request but did not answer: what it was asked for may be running."""


def shared_server(preload: list[str], idle_s: float) -> ForkServer:
    """The kernel server for ``preload`` on this interpreter, started now if none is alive."""
    path = _socket_path(preload)
    server = _servers.get(str(path))
    if server is None:
        server = _servers[str(path)] = ForkServer(path, preload, idle_s)
    server.ensure_started()
    return server


def is_ready(preload: list[str]) -> bool:
    """Whether the kernel server for ``preload`` is up and ready (its socket there, its lock held): a job
    started now forks at once, instead of waiting for it to start and preload."""
    path = _socket_path(preload)
    return path.exists() and is_locked(Path(f"{path}.lock"))


def _socket_path(preload: list[str]) -> Path:
    return runtime_dir() / f"k-{server_key(preload)}.sock"


def runtime_dir() -> Path:
    """``$XDG_RUNTIME_DIR/pop-nb`` or ``/tmp/pop-nb-<uid>``: ours alone (mode 0700, owned by us, not a
    link), since whoever can reach the socket can start code as us."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    folder = Path(base) / "pop-nb" if base and os.path.isdir(base) else Path(f"/tmp/pop-nb-{os.getuid()}")
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700)
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise ForkServerError(
            f"{folder} is not a private folder of this user (owner {info.st_uid}, mode "
            f"{oct(info.st_mode & 0o777)}); kernels are spawned instead. Fix: remove it."
        )
    return folder


def server_key(preload: list[str]) -> str:
    """What a server's preloaded interpreter depends on: Python, the preload list, pop-nb's source, the
    packages installed (a server started before litellm or ipykernel was upgraded would go on running
    the old ones, as long as jobs keep it busy), where Jupyter looks for kernelspecs (the server looks
    up python3's once for all its runners); and where
    it runs: what it forks (runners, kernels) lives in the server's namespaces, so a process in other
    ones (a container or `unshare` sharing /tmp: another host name, network, process tree) gets a
    server of its own. Kept for the process: a runner forked from the server has its key already."""
    return _server_key(tuple(preload), tuple(os.environ.get(name, "") for name in sorted(JUPYTER_ENV)))


@functools.cache
def _server_key(preload: tuple[str, ...], jupyter_env: tuple[str, ...]) -> str:
    import pop_nb

    where = [os.uname().nodename, *jupyter_env]
    for kind in ("uts", "pid", "net", "mnt", "ipc"):
        with contextlib.suppress(OSError):
            where.append(str(os.stat(f"/proc/self/ns/{kind}").st_ino))
    digest = hashlib.sha256(f"{sys.executable}|{sys.version}|{','.join(preload)}|{'|'.join(where)}".encode())
    for file in sorted(Path(pop_nb.__file__).parent.rglob("*.py")):
        info = file.stat()
        digest.update(f"{file}|{info.st_mtime_ns}|{info.st_size}".encode())
    for folder in install_folders():
        with contextlib.suppress(OSError):
            digest.update(f"{folder}|{os.stat(folder).st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def install_folders() -> list[str]:
    """Where pip installs for this interpreter: installing, upgrading or removing a package changes one
    of these folders (a ``<name>-<version>.dist-info`` comes or goes), and so its mtime."""
    import site
    import sysconfig

    paths = sysconfig.get_paths()
    folders = {paths["purelib"], paths["platlib"]}
    if site.ENABLE_USER_SITE:
        folders.add(site.getusersitepackages())
    return sorted(folders)


# What the kernel server is started with: it is shared by every runner of this user, and what it forks
# shows its environment in /proc/<pid>/environ, so it gets only what preloading needs (each kernel and
# runner is then given its own runner's environment), never another project's POP_*, a broker URL or
# anything else of the shell that happened to start it. Where Jupyter and IPython look for kernelspecs
# and profiles is part of the server's key too (see server_key).
JUPYTER_ENV = frozenset(
    {"JUPYTER_PATH", "JUPYTER_DATA_DIR", "JUPYTER_CONFIG_DIR", "JUPYTER_PREFER_ENV_PATH", "IPYTHONDIR"}
)
SERVER_ENV = JUPYTER_ENV | frozenset(
    {"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV"}
    # what an HTTP client made while litellm is preloaded may read once: proxies and CA bundles
    | {"SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"}
    | {
        name
        for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
        for name in (proxy, proxy.lower())
    }
)
SERVER_ENV_PREFIXES = ("LC_", "XDG_")


def server_env(environ: Mapping[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in environ.items()
        if (k in SERVER_ENV or k.startswith(SERVER_ENV_PREFIXES))
        and not is_secret_name(k)
        and not url_password(v)
    }
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"  # as for a spawned kernel: no debugger warning
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # never the network when litellm is preloaded
    return env


class ForkServer:
    """A kernel server at ``path``: started here (:meth:`ensure_started`) or found alive."""

    def __init__(self, path: Path, preload: list[str], idle_s: float) -> None:
        self.path = str(path)
        self.preload = preload
        self.idle_s = idle_s
        self._lock_path = Path(self.path + ".lock")

    def ensure_started(self) -> None:
        """Start the server unless one is alive or starting (its lock is held). Returns as soon as it has
        detached (a tenth of a second); it preloads in the background (a few seconds with litellm)."""
        lock = FileLock(self._lock_path)
        if not lock.acquire():
            return  # alive or starting
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)  # a server killed outright leaves its socket behind
            env = server_env(os.environ)
            fd = lock.hand_over()
            with open(self.path + ".log", "ab") as log:
                launcher = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "pop_nb.execution.kernel_main",
                        "--serve",
                        self.path,
                        "--preload",
                        ",".join(self.preload),
                        "--idle-s",
                        str(self.idle_s),
                        "--lock-fd",
                        str(fd),
                    ],
                    env=env,
                    cwd="/",
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # not in the runner's process group: a cancel does not end it
                    pass_fds=(fd,),
                )
            # it detaches at once (a second fork): the server is nobody's child, so it never lingers as
            # a zombie of a long-lived caller (a notebook's kernel, the Jupyter server) once it ends
            launcher.wait()
        finally:
            lock.forget()

    def wait_ready(self, timeout_s: float, refused: tuple[int, int] | None = None) -> None:
        """Until the server's socket is there (another than the one stamped ``refused``: a dead
        server's, which the next server replaces). A server that ended meanwhile (idle, just now) is
        started again; one that died while it preloaded is an error (its log says why)."""
        deadline = time.monotonic() + timeout_s
        restarted = False
        while _stamp(self.path) in (None, refused):
            if not is_locked(self._lock_path):  # the server holds its lock from its start to its end
                if restarted:
                    raise ForkServerError(
                        f"the kernel server did not start, or exited before it was ready; see {self.path}.log"
                    )
                self.ensure_started()
                restarted = True
            if time.monotonic() > deadline:
                raise ForkServerError(f"the kernel server was not ready within {timeout_s:.0f}s")
            time.sleep(0.01)

    def launch(
        self, argv: list[str], cwd: str, env: Mapping[str, str], timeout_s: float, output: tuple[int, int]
    ) -> ForkedProcess:
        """A new kernel process running ``argv`` (the kernel's arguments, ``-f <connection file>``); it
        prints into ``output`` (the descriptors of its stdout and stderr), and ends when we do."""
        return self._launch(
            {"kind": "kernel", "argv": argv, "runner": os.getpid()}, cwd, env, list(output), timeout_s
        )

    def launch_runner(
        self, job_id: str, cwd: str, env: Mapping[str, str], log_fd: int, lock_fd: int, timeout_s: float
    ) -> ForkedProcess:
        """A new runner process for ``job_id`` (runner_main), printing to ``log_fd`` and holding the
        job's lock ``lock_fd`` (the same open file: once it has it, ours can be closed)."""
        request = {"kind": "runner", "argv": [job_id]}
        return self._launch(request, cwd, env, [log_fd, log_fd, lock_fd], timeout_s)

    def _launch(
        self, request: dict[str, Any], cwd: str, env: Mapping[str, str], fds: list[int], timeout_s: float
    ) -> ForkedProcess:
        deadline = time.monotonic() + timeout_s
        refused: tuple[int, int] | None = None
        while True:
            self.wait_ready(max(deadline - time.monotonic(), 0.0), refused)
            try:
                return self._request({**request, "cwd": cwd, "env": dict(env)}, fds, timeout_s)
            except (ConnectionError, FileNotFoundError):  # it ended (idle) or was killed
                # its socket may stay (killed outright), and threads of one runner find that out
                # together: one starts the next server, the others wait for its socket, not this one
                if time.monotonic() > deadline:
                    raise ForkServerError("the kernel server is gone and did not come back") from None
                refused = _stamp(self.path)
                self.ensure_started()

    def _request(self, request: dict[str, Any], fds: list[int], timeout_s: float) -> ForkedProcess:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout_s)
            conn.connect(self.path)
            socket.send_fds(conn, [json.dumps(request).encode() + b"\n"], fds)
            try:
                data, answer_fds, _, _ = socket.recv_fds(conn, 65536, 1)
            except OSError as exc:
                raise AnswerLost(f"the kernel server did not answer: {exc}") from exc
        if not data:  # it closed without answering: it was ending (idle) as we asked
            raise ConnectionResetError("the kernel server closed the connection")
        answer = json.loads(data)
        if "pid" not in answer or not answer_fds:
            for fd in answer_fds:
                os.close(fd)
            raise ForkServerError(answer.get("error") or "the kernel server did not answer")
        return ForkedProcess(int(answer["pid"]), answer_fds[0])


def _stamp(path: str) -> tuple[int, int] | None:
    """Which file is at ``path`` (its inode and ctime: a new one may get a freed inode back)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_ctime_ns


class ForkedProcess:
    """What jupyter_client (and a JobHandle) needs of a ``Popen`` (poll, wait, signals), for a process
    that is not our child. Its exit code is not ours to read: one that ended reports ``-1``."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int, pidfd: int) -> None:
        self.pid = pid
        self._pidfd: int | None = pidfd
        self.returncode: int | None = None

    def fileno(self) -> int | None:
        """The pidfd, readable once the process has ended (None once it is known to have ended)."""
        return self._pidfd

    def poll(self) -> int | None:
        if self.returncode is None and self._pidfd is not None:
            ready, _, _ = select.select([self._pidfd], [], [], 0)
            if ready:
                self._ended()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None and self._pidfd is not None:
            ready, _, _ = select.select([self._pidfd], [], [], timeout)
            if not ready:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0)
            self._ended()
        return self.returncode if self.returncode is not None else -1

    def send_signal(self, signum: int) -> None:
        if self.poll() is None and self._pidfd is not None:
            signal.pidfd_send_signal(self._pidfd, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def _ended(self) -> None:
        self.returncode = -1
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None

    def __del__(self, _close: Any = os.close) -> None:  # bound now: at exit module globals may be gone
        if self._pidfd is not None:
            try:  # noqa: SIM105 (not contextlib.suppress: at exit, module globals may already be None)
                _close(self._pidfd)
            except OSError:
                pass


class ForkedKernelProvisioner(LocalProvisioner):
    """Launches the kernel through the fork server at ``server`` (a kernel spec's provisioner config)."""

    server = Unicode(help="the fork server's socket").tag(config=True)

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> Any:
        server = _servers.get(self.server)
        if server is None:
            raise ForkServerError(f"no kernel fork server at {self.server}")
        # cmd is the kernel spec's argv: python -m pop_nb.execution.kernel_main <kernel arguments>
        process = server.launch(
            cmd[3:],
            cwd=str(kwargs.get("cwd") or os.getcwd()),
            env=kwargs.get("env") or os.environ,
            timeout_s=float(kwargs.get("timeout", 60)),
            output=(_descriptor(kwargs.get("stdout"), 1), _descriptor(kwargs.get("stderr"), 2)),
        )
        self.process = process  # type: ignore[assignment]  # Popen's interface, not its class
        self.pid = self.pgid = process.pid  # the kernel leads its own process group
        self.cwd = kwargs.get("cwd")
        return self.connection_info

    async def wait(self) -> int | None:
        """Until the kernel has ended: on its pidfd (LocalProvisioner polls every 0.1 s)."""
        process = self.process
        if not isinstance(process, ForkedProcess):
            return await super().wait()
        fd = process.fileno()
        if fd is not None:
            loop = asyncio.get_running_loop()
            ended: asyncio.Future[None] = loop.create_future()

            def on_ended() -> None:
                if not ended.done():
                    ended.set_result(None)

            loop.add_reader(fd, on_ended)
            try:
                await ended
            finally:
                loop.remove_reader(fd)
        code = process.wait()
        self.process = None
        return code


def _descriptor(given: Any, default: int) -> int:
    """The descriptor a kernel is given for a stream (``start_kernel(stdout=...)``): ours if none."""
    if given is None:
        return default
    return given if isinstance(given, int) else int(given.fileno())


_servers: dict[str, ForkServer] = {}  # by socket path: the provisioner is given only the path
