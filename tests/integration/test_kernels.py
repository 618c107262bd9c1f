"""What a stage's fresh kernel guarantees, forked from the kernel server or spawned: nothing shared between
stages, a crash or a hang fails that stage only, and no kernel outlives its stage or its runner."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import psutil
import pytest

from pop_nb.execution.job_runner import JobRunner
from pop_nb.execution.kernels import FreshKernelProvider, KernelManager
from pop_nb.testing.provider_server import ProviderServer
from tests.conftest import WAIT_FOR_GO, Project, UnixSocketKernel, kernels_of, pop, wait_for

# the first stage leaves traces everywhere it can; the second looks for them
LEAVE_TRACES = """
import os, sys, email, wave
trace_variable = 1
email._pop_trace = 1
os.environ["POP_TRACE"] = "1"
pop.output({"pid": os.getpid()})
"""
LOOK_FOR_TRACES = """
import os, sys, email, psutil
seen = {
    "variable": "trace_variable" in globals(),
    "module attribute": hasattr(email, "_pop_trace"),
    "imported module": "wave" in sys.modules,
    "environment": "POP_TRACE" in os.environ,
    "code in IPython's history": bool(list(get_ipython().history_manager.search("*trace_variable*"))),
}
parent = psutil.Process().parent()
pop.output({
    "pid": os.getpid(),
    "seen": seen,
    "litellm preloaded": "litellm" in sys.modules,
    "parent": " ".join(parent.cmdline()) if parent else "",
})
"""


@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_a_stage_sees_nothing_another_stage_left(
    project: Project, monkeypatch: pytest.MonkeyPatch, start: str
) -> None:
    monkeypatch.setenv("POP_KERNEL_START", start)
    project.pipeline(
        "traces", {"t": {"cells": [("ingestion", LEAVE_TRACES), ("inference", LOOK_FOR_TRACES)]}}
    )
    job = project.run("traces")
    assert job.state == "done", job.status.error
    first = json.loads((job.path / "tasks/t/outputs/ingestion.json").read_text())
    second = json.loads((job.path / "tasks/t/outputs/inference.json").read_text())
    assert first["pid"] != second["pid"]
    assert not any(second["seen"].values()), second["seen"]
    if start == "fork":  # forked from the preloaded server, litellm already imported
        assert "--serve" in second["parent"] and second["litellm preloaded"]
    else:  # a new interpreter, a child of the runner
        assert "--serve" not in second["parent"] and "runner_main" in second["parent"]
    assert kernels_of(project.data) == []


# what a kernel noted of the modules loaded as it started: ipykernel's list of their files, IPython's set
# of their names (taken a little later: a few more); and whether those came from the kernel server's walk
# (copies) or from the modules themselves
LOOK_AT_THE_START = """
import os, sys
shell = get_ipython()
files, names = shell.kernel._kernel_modules, shell._sys_modules_keys
own = {id(m.__file__) for m in list(sys.modules.values()) if getattr(m, "__file__", None)}
sys.seen = {
    "files": len(files),
    "names": len(names),
    # all but __main__'s (the kernel's entry point): IPython has put the user's namespace there since
    "files not of those names": [os.path.basename(f) for f in set(files) - {
        sys.modules[n].__file__ for n in names if getattr(sys.modules.get(n), "__file__", None)
    }],
    "litellm in names": "litellm" in names,
    "from the server's walk": not any(id(f) in own for f in files),
}
pop.output(sys.seen)
sys.reset_seen = os.path.join(pop_job_dir, "reset.json")
import wave
shell.run_line_magic("reset", "-f --aggressive")  # the user's names (pop too) go as well
import json, sys
with open(sys.reset_seen, "w") as out:
    json.dump(["wave" in sys.modules, "litellm" in sys.modules], out)
"""


@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_a_kernel_notes_the_modules_it_started_with_as_a_walk_over_them_would(
    project: Project, monkeypatch: pytest.MonkeyPatch, start: str
) -> None:
    """A forked kernel takes the kernel server's walk over the modules instead of reading each module
    (pop_nb.execution.module_walk); what it ends with is what ipykernel and IPython would have made."""
    monkeypatch.setenv("POP_KERNEL_START", start)
    project.pipeline("modules", {"t": {"cells": [("ingestion", LOOK_AT_THE_START)]}})
    job = project.run("modules")
    assert job.state == "done", job.status.error
    seen = json.loads((job.path / "tasks/t/outputs/ingestion.json").read_text())
    assert seen["files"] > 500 and seen["names"] > seen["files"], seen
    assert set(seen["files not of those names"]) <= {"kernel_main.py"}, seen
    assert seen["litellm in names"] == (start == "fork"), seen  # preloaded in the server only
    assert seen["from the server's walk"] == (start == "fork"), seen
    # %reset --aggressive unloads what the stage imported, and keeps what the kernel started with
    assert json.loads((job.path / "reset.json").read_text()) == [False, start == "fork"]


# the sockets of the kernel's event loop (its self-pipe), and whether its parent, the kernel server, has
# them open too
LOOK_AT_THE_LOOP = """
import asyncio, os, psutil
loop = asyncio.get_running_loop()
mine = {os.readlink(f"/proc/self/fd/{s.fileno()}") for s in (loop._ssock, loop._csock)}
server = psutil.Process().parent()
theirs = {os.readlink(f"/proc/{server.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{server.pid}/fd")}
pop.output({"server": " ".join(server.cmdline()), "shared": sorted(mine & theirs)})
"""


def test_a_forked_kernels_event_loop_is_its_own(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel server's preload leaves no event loop for its forks to share (litellm's first call
    made one): a kernel that ran on it shared its self-pipe with the server and every other kernel, so a
    wake-up one wrote could be read by another, and a kernel waited forever on a thread's answer."""
    monkeypatch.setenv("POP_KERNEL_START", "fork")
    project.pipeline("loop", {"t": {"cells": [("inference", LOOK_AT_THE_LOOP)]}})
    job = project.run("loop")
    assert job.state == "done", job.status.error
    seen = json.loads((job.path / "tasks/t/outputs/inference.json").read_text())
    assert "--serve" in seen["server"] and seen["shared"] == [], seen


# a stage that leaves a file open (its last lines still in the file object's buffer), has an exit
# function, and started a process that would run on
LEAVE_BEHIND = """
import atexit, os, subprocess
notes = open(os.path.join(pop_job_dir, "notes.txt"), "w")
notes.write("the stage's notes")
atexit.register(lambda: open(os.path.join(pop_job_dir, "atexit.txt"), "w").write("ran"))
child = subprocess.Popen(["sleep", "300"])
with open(os.path.join(pop_job_dir, "child.pid"), "w") as out:
    out.write(str(child.pid))
"""
READ_WHAT_WAS_LEFT = """
import os
def text(name):
    path = os.path.join(pop_job_dir, name)
    return open(path).read() if os.path.exists(path) else None
pop.output({"notes": text("notes.txt"), "atexit": text("atexit.txt")})
folder = os.path.join(pop_job_dir, "files", "artifacts", pop_task)
os.makedirs(folder, exist_ok=True)
report = open(os.path.join(folder, "report.txt"), "w")  # the last stage's, left open too
report.write("x" * 5000)
"""


@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_a_stage_ends_as_papermills_kernel_would_before_the_next_stage_and_the_products(
    project: Project, monkeypatch: pytest.MonkeyPatch, start: str
) -> None:
    """A stage's kernel is asked to exit and runs its exit functions before it is killed: the file it
    left open is whole when the next stage reads it, its atexit function ran, and a file the last stage
    left open is whole in the job's products; what it started is killed all the same."""
    monkeypatch.setenv("POP_KERNEL_START", start)
    project.pipeline(
        "left",
        {"t": {"cells": [("ingestion", LEAVE_BEHIND), ("inference", READ_WHAT_WAS_LEFT)]}},
        products=[{"path": "files.zip", "from": "t"}],
    )
    job = project.run("left")
    assert job.state == "done", job.status.error
    seen = json.loads((job.path / "tasks/t/outputs/inference.json").read_text())
    assert seen == {"notes": "the stage's notes", "atexit": "ran"}
    with zipfile.ZipFile(job.path / "products/files.zip") as archive:
        assert archive.read("report.txt") == b"x" * 5000
    child = int((job.path / "child.pid").read_text())
    wait_for(lambda: _gone(child), 10)
    assert kernels_of(project.data) == []


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_stage_whose_exit_function_hangs_is_killed_after_the_wait(project: Project) -> None:
    """As papermill's: a kernel asked to exit has EXIT_WAIT_S to do so, then it is killed."""
    from pop_nb.execution.kernels import EXIT_WAIT_S

    hang = "import atexit, time\natexit.register(time.sleep, 3600)\npop.output({'ok': True})"
    project.pipeline("hang-at-exit", {"t": {"cells": [("inference", hang)]}})
    began = time.monotonic()
    job = project.run("hang-at-exit")
    assert job.state == "done", job.status.error
    assert EXIT_WAIT_S <= time.monotonic() - began < EXIT_WAIT_S + 60
    assert kernels_of(project.data) == []


SEGFAULT = "import ctypes\nctypes.string_at(0)"
HANG = "while True:\n    pass"
SLEEP = "import time\nprint('working', flush=True)\ntime.sleep(300)"


FIRST_CALL = """
import sys
before = set(sys.modules)
reply = pop.chat("Say hello")
pop.output({"imported": sorted(set(sys.modules) - before), "reply": reply.content})
"""


def test_a_stages_first_call_to_an_openai_protocol_server_finds_everything_it_needs_imported(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kernel server's warm-up went down the whole path once (OpenAI's SDK, its answer's types, an
    HTTP transport, pop's LLM layer): a stage's first call imports nothing (it imported ~580 modules,
    0.5 s, in every stage before)."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    with ProviderServer(answer=lambda body: "Hello.") as server:
        project.pipeline(
            "ask",
            {"t": {"cells": [("inference", FIRST_CALL)]}},
            llm={"model": "openai/gpt-4o-mini", "api_base": server.openai_base},
        )
        job = project.run("ask")
    assert job.state == "done", job.status.error
    output = json.loads((job.path / "tasks/t/outputs/inference.json").read_text())
    assert output == {"imported": [], "reply": "Hello."}


def test_a_segfault_and_a_hang_fail_their_own_stage_only(project: Project) -> None:
    project.pipeline(
        "crashes",
        {
            "segfault": {
                "on_failure": "continue",
                "cells": [("inference", "import ctypes\nctypes.string_at(0)")],
            },
            "hang": {
                "on_failure": "continue",
                "timeout_s": 2,
                "cells": [("inference", "while True:\n    pass")],
            },
            "fine": {"cells": [("inference", "pop.output({'ok': True})")]},
        },
    )
    job = project.run("crashes")
    tasks = job.status.tasks
    assert tasks["segfault"].state == "failed" and tasks["segfault"].error.type == "KernelDied"
    assert tasks["hang"].state == "failed" and tasks["hang"].error.type == "StageTimeout"
    assert tasks["fine"].state == "done"
    assert kernels_of(project.data) == []


def test_a_runner_killed_outright_takes_its_forked_kernels_with_it(project: Project) -> None:
    project.pipeline(
        "long",
        {"t": {"cells": [("inference", "import time\nprint('working', flush=True)\ntime.sleep(300)")]}},
    )
    from pop_nb.execution import kernels as kernels_module

    def socket_folders(pid: int) -> set[Path]:  # the runner's own (tests beside this one make theirs)
        found = Path(kernels_module.sockets_dir() or "/tmp").glob(f"{kernels_module._SOCKETS_PREFIX}{pid}-*")
        return set(found)

    job = project.run("long", wait=False)
    log = project.data / "current" / job.id / "tasks/t/logs/inference.log"
    wait_for(lambda: log.exists() and "working" in log.read_text(), timeout=60)
    kernels = kernels_of(project.data)
    assert kernels and all("--serve" in " ".join(k.parent().cmdline()) for k in kernels)  # forked
    left = socket_folders(job.handle.process.pid)
    assert left
    os.killpg(job.handle.process.pid, signal.SIGKILL)
    job.handle.process.wait()
    wait_for(lambda: kernels_of(project.data) == [], timeout=10)
    # a runner killed outright cannot remove its kernels' socket folder: the next sweep does (a runner
    # of another test may have swept it already)
    kernels_module.sweep_stale_sockets()
    assert not any(folder.exists() for folder in left)


def test_the_kernel_server_answers_a_bad_request_and_stays_up(project: Project) -> None:
    from pop_nb.execution.forkserver import shared_server

    server = shared_server(["litellm"], 300)
    server.wait_ready(120)
    for junk in (
        b"not json\n",
        b'{"argv": 1}\n',
        b"\xff" * 70000 + b"\n",
        b'{"argv": [], "cwd": "/", "env": {}}\n',
        b'{"kind": "runner", "argv": ["j"], "cwd": "/", "env": {}}\n',  # no log, no lock passed
        b'{"kind": "shell", "argv": ["sh"], "cwd": "/", "env": {}, "runner": 1}\n',
    ):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(10)
            conn.connect(server.path)
            conn.sendall(junk)
            answer = conn.makefile("rb").readline()
        assert b"bad request" in answer, answer
    # still serving: a job runs on it
    project.pipeline("after", {"t": {}})
    assert project.run("after").state == "done"


def test_a_kernel_folder_that_is_not_ours_means_spawned_kernels(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = tmp_path / "runtime"
    (runtime / "pop-nb").mkdir(parents=True, mode=0o777)
    os.chmod(runtime / "pop-nb", 0o777)  # open to everyone: whoever reaches the socket runs code as us
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    project.pipeline("spawned", {"t": {"cells": [("inference", LOOK_FOR_TRACES)]}})
    job = project.run("spawned")
    assert job.state == "done"
    assert "runner_main" in json.loads((job.path / "tasks/t/outputs/inference.json").read_text())["parent"]
    assert "not a private folder" in (job.path / "runner.log").read_text()


SUSTAINED = """
import gc, json, sys, time
import nbformat, papermill, psutil
from pop_nb.execution.engine import get_engine
from pop_nb.execution.kernels import KERNEL_NAME, FreshKernelProvider
get_engine()
provider = FreshKernelProvider(60, start="fork", preload=["litellm"])
provider.prestart("/tmp", 2)
nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
me, samples = psutil.Process(), {}
def is_server(p):  # the server itself, not the kernels it forked (they show its command line too)
    try:
        return provider._server.path in " ".join(p.info["cmdline"] or []) and p.cwd() == "/"
    except psutil.Error:
        return False
def in_tmp(p):
    try:
        return p.cwd() == "/tmp"
    except psutil.Error:
        return False
for i in range(1, int(sys.argv[1]) + 1):
    papermill.execute_notebook(nb, sys.argv[2], engine_name="pop", kernel_name=KERNEL_NAME,
                               progress_bar=False, kernel_provider=provider, kernel_cwd="/tmp")
    if i in (100, int(sys.argv[1])):
        gc.collect()
        time.sleep(0.5)  # let the spares settle
        server = [p for p in psutil.process_iter(["cmdline"]) if is_server(p)]
        samples[i] = {
            "rss_mb": me.memory_info().rss / 2**20,
            "fds": me.num_fds(),
            "threads": me.num_threads(),
            # ours: kernels started in /tmp (other tests' kernels and runners share the server)
            "kernels": sum(1 for p in server for k in p.children() if in_tmp(k)),
            # each kernel server by pid: one another process starts meanwhile is not this one growing
            "servers_mb": {str(p.pid): p.memory_info().rss / 2**20 for p in server},
        }
provider.shutdown_all()
print(json.dumps(samples))
"""


def test_a_thousand_stages_in_a_row_leave_nothing_behind(tmp_path: Path) -> None:
    """Processes, descriptors, threads and memory after 1,000 forked stages are what they were after 100."""
    out = subprocess.run(
        [sys.executable, "-c", SUSTAINED, "1000", str(tmp_path / "out.ipynb")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-3000:]  # why it stopped, not only that it did
    samples = json.loads(out.stdout.strip().splitlines()[-1])
    early, late = samples["100"], samples["1000"]
    assert late["kernels"] <= early["kernels"] <= 3, samples  # the spares, no more
    assert late["fds"] <= early["fds"] + 2 and late["threads"] <= early["threads"] + 1, samples
    assert late["rss_mb"] - early["rss_mb"] < 25, samples
    both = set(early["servers_mb"]) & set(late["servers_mb"])
    assert both, samples  # the server the stages ran on lived through them
    grew = sum(late["servers_mb"][pid] - early["servers_mb"][pid] for pid in both)
    assert grew < 10, samples
    wait_for(lambda: kernels_in_tmp() == [], timeout=10)  # the spares ended with their provider


ON_ITS_OWN = """
import glob, json, os, sys, threading
import nbformat, papermill
from pop_nb.execution.engine import get_engine
from pop_nb.execution.kernels import KERNEL_NAME, sockets_dir
get_engine()
nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
papermill.execute_notebook(nb, sys.argv[1], engine_name="pop", kernel_name=KERNEL_NAME, progress_bar=False)
print(json.dumps({
    "threads": sorted(t.name for t in threading.enumerate() if t.name.startswith("pop-kernel")),
    "folders": glob.glob(os.path.join(sockets_dir() or "/tmp", f"pop-k-*-{os.getpid()}-*")),
}))
"""


def test_a_notebook_run_with_the_pop_engine_alone_leaves_no_thread_folder_or_traceback(
    tmp_path: Path,
) -> None:
    """papermill's engine "pop" with no provider given (a check notebook of ``pop test``, a user's script)
    makes a provider for the notebook and ends it with the notebook: no reaper thread left holding an event
    loop for the interpreter's exit to collect (a traceback printed after the command's own output broke
    ``pop test --json``), and no socket folder left for a later sweep."""
    out = subprocess.run(
        [sys.executable, "-c", ON_ITS_OWN, str(tmp_path / "out.ipynb")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0 and out.stderr == "", out.stderr[-3000:]
    assert json.loads(out.stdout) == {"threads": [], "folders": []}


CLIENTS = """
import json, threading, time, psutil
from jupyter_core.utils import run_sync
from pop_nb.execution.kernels import FreshKernelProvider, connected_client, disconnect, kernel_ready
provider = FreshKernelProvider(60, start="fork", preload=[])
km = provider.acquire("/tmp")
async def one():
    kc = connected_client(km)
    info = await kernel_ready(kc, 60)
    disconnect(kc)
    return info
me = psutil.Process()
for _ in range(5):  # what is made once, on a first use, is made
    run_sync(one)()
time.sleep(0.5)  # the manager's own control socket connects after a reconnect interval (100 ms)
before = (me.num_fds(), sorted(t.name for t in threading.enumerate()))
infos = [run_sync(one)() for _ in range(20)]
after = (me.num_fds(), sorted(t.name for t in threading.enumerate()))
provider.release(km)
provider.shutdown_all()
languages = sorted({info["language_info"]["name"] for info in infos})
print(json.dumps({"before": before, "after": after, "languages": languages}))
"""


def test_stage_clients_connected_and_closed_leave_no_thread_or_descriptor() -> None:
    """A stage's client opens the channels a stage uses and no heartbeat thread; closed, it leaves none of
    its sockets (each a descriptor) or threads behind; the kernel's answer it was found ready with is the
    kernel_info a notebook's language_info comes from."""
    out = subprocess.run([sys.executable, "-c", CLIENTS], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout)
    assert seen["after"] == seen["before"] and seen["languages"] == ["python"], seen


def test_a_job_started_starts_the_kernel_server_before_it_compiles_its_pipeline(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``pop run`` and ``pop_nb.run`` start the kernel server first (without waiting for it), so that its
    imports (seconds when it is not up: litellm's) go on while the pipeline is compiled and the job made."""
    from pop_nb.execution import forkserver
    from pop_nb.service import actions

    seen: list[str] = []
    real_server, real_check = forkserver.shared_server, actions.validate_seed

    def server(*args: object, **kwargs: object) -> object:
        seen.append("kernel server")
        return real_server(*args, **kwargs)

    def check(*args: object, **kwargs: object) -> object:
        seen.append("compile")
        return real_check(*args, **kwargs)

    monkeypatch.setattr(forkserver, "shared_server", server)
    monkeypatch.setattr(actions, "validate_seed", check)
    project.pipeline("early", {"t": {}})
    assert project.run("early").state == "done"
    assert seen[:2] == ["kernel server", "compile"], seen


def kernels_in_tmp() -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["name"]):
        try:
            if p.info["name"] == "pop-kernel" and p.cwd() == "/tmp":
                found.append(p)
        except psutil.Error:
            continue
    return found


# The tests that kill a kernel server kill one of their own (another preload list is another server), never
# the one that the tests running beside them (pytest -n) fork their kernels from.
OWN_SERVER = ["litellm", "colorsys"]


def kill_kernel_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGKILL this test's kernel server (started, and ready, first) and wait until it is gone; the runners
    the test starts use that server. It is never our child, even when this process started it (it
    detaches), so it never lingers as our zombie."""
    from pop_nb.execution.forkserver import shared_server

    monkeypatch.setenv("POP_KERNEL_PRELOAD", json.dumps(OWN_SERVER))
    server = shared_server(OWN_SERVER, 300)
    server.wait_ready(120)
    for proc in psutil.process_iter(["cmdline"]):
        if server.path in (proc.info["cmdline"] or []) and proc.cwd() == "/":
            assert proc.ppid() != os.getpid()
            proc.kill()
            proc.wait(10)  # not our child: psutil follows it until it is gone


def test_pop_run_says_so_when_it_waits_for_the_kernel_server_to_start(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first job in a while waits seconds for the kernel server to preload before its first line:
    said at once, so the terminal is not silent meanwhile (pop run, pop batch); not said once the
    server is up."""
    kill_kernel_server(monkeypatch)
    project.pipeline("hello", {"t": {}})
    said = "starting the kernel server: it imports ipykernel, litellm and colorsys once"
    cold = pop("run", "hello", "--data", "{}")
    assert cold.returncode == 0, cold.stderr
    assert cold.stderr.startswith(said), cold.stderr  # before the job's own first line
    warm = pop("run", "hello", "--data", "{}")
    assert warm.returncode == 0 and "kernel server" not in warm.stderr, warm.stderr
    assert "kernel server" not in pop("run", "hello", "--data", "{}", "--quiet").stderr
    kill_kernel_server(monkeypatch)  # and a batch's first jobs
    seeds = project.root / "seeds.jsonl"
    seeds.write_text('{"data": {}}\n')
    batch = pop("batch", "hello", "--seeds", str(seeds))
    assert batch.returncode == 0 and said in batch.stderr, batch.stderr


def test_a_killed_kernel_server_is_started_again_by_the_next_runner(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    kill_kernel_server(monkeypatch)  # kill -9: its socket file stays behind, its lock goes
    project.pipeline("again", {"t": {"cells": [("inference", LOOK_FOR_TRACES)]}})
    job = project.run("again")
    assert job.state == "done", job.status.error
    assert "--serve" in json.loads((job.path / "tasks/t/outputs/inference.json").read_text())["parent"]


PARENT = "import os, psutil\npop.output({'server': os.getppid(), 'name': psutil.Process().name()})"


def test_a_kernel_server_stopped_under_a_running_job_is_started_again_for_its_next_stages(
    project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`pkill -f "kernel_main --serve"` (SIGTERM, as the README says to stop it) while a job runs: the
    job goes on, its next kernels forked from a new server (the ones started ahead come from the old)."""
    import threading

    kill_kernel_server(monkeypatch)
    go = tmp_path / "go"
    later = ["preProcessing", "promptTemplating", "inference", "parsing", "integration"]
    cells = [("ingestion", WAIT_FOR_GO.format(go=str(go)) + PARENT), *((stage, PARENT) for stage in later)]
    project.pipeline("stopped", {"t": {"cells": cells}})
    jobs: list[Any] = []
    running = threading.Thread(target=lambda: jobs.append(project.run("stopped")))
    running.start()
    try:
        (kernel,) = wait_for(lambda: kernels_of(project.data) or not running.is_alive(), timeout=120)
        old = kernel.ppid()
        assert "--serve" in psutil.Process(old).cmdline()
        os.kill(old, signal.SIGTERM)
        psutil.Process(old).wait(10)
    finally:
        go.touch()
        running.join(120)
    (job,) = jobs
    assert job.state == "done", job.status.error
    outputs = job.path / "tasks" / "t" / "outputs"
    seen = [json.loads((outputs / f"{stage}.json").read_text()) for stage in ["ingestion", *later]]
    assert all(kernel["name"] == "pop-kernel" for kernel in seen), seen  # forked, every one: none spawned
    # from another server than the one stopped (the first stage's kernel outlived it: adopted)
    assert old not in [kernel["server"] for kernel in seen[1:]], seen


class CountingProvider(FreshKernelProvider):
    """Forked kernels, counted as they start (handed to a stage or started ahead)."""

    def __init__(self) -> None:
        super().__init__(60, start="fork", preload=[])
        self.started = 0

    def _start(self, cwd: str) -> KernelManager:
        self.started += 1
        return super()._start(cwd)


def test_a_stage_takes_the_kernel_being_started_ahead_instead_of_starting_another(tmp_path: Path) -> None:
    provider = CountingProvider()
    try:
        provider.prestart(str(tmp_path), 1)
        wait_for(lambda: provider.started, timeout=60, every=0.001)  # the spare is on its way
        provider.prestart(str(tmp_path), 0)  # none after it
        km = provider.acquire(str(tmp_path))
        assert provider.started == 1
        assert km.provisioner is not None and km.provisioner.process.poll() is None
        provider.release(km)
    finally:
        provider.shutdown_all()


def test_the_next_spare_starts_once_a_stage_is_done_not_beside_its_start_while_another_is_ready(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from pop_nb.execution import kernels as kernels_module

    monkeypatch.setattr(kernels_module, "REFILL_AFTER_S", 60.0)
    provider = CountingProvider()
    try:
        provider.prestart(str(tmp_path), 2)
        wait_for(lambda: len(provider._greeted) == 2, timeout=60, every=0.005)
        first = provider.acquire(str(tmp_path))  # one more is ready: the next waits for this stage
        time.sleep(0.5)
        assert provider.started == 2
        provider.release(first)
        wait_for(lambda: provider.started == 3, timeout=30, every=0.005)
        wait_for(lambda: len(provider._greeted) == 2, timeout=60, every=0.005)
        second = provider.acquire(str(tmp_path))
        third = provider.acquire(str(tmp_path))  # the last ready one: the next starts at once
        wait_for(lambda: provider.started == 4, timeout=30, every=0.005)
        for km in (second, third):
            provider.release(km)
        monkeypatch.setattr(kernels_module, "REFILL_AFTER_S", 0.5)
        wait_for(lambda: len(provider._greeted) == 2, timeout=60, every=0.005)
        long_stage = provider.acquire(str(tmp_path))  # a long stage: the next starts before it is done
        wait_for(lambda: provider.started == 6, timeout=30, every=0.005)
        provider.release(long_stage)
    finally:
        provider.shutdown_all()


def test_kernels_are_started_ahead_only_for_stages_that_will_need_them(project: Project) -> None:
    from pop_nb.models.seed import parse_seed
    from pop_nb.pipeline.snapshot import job_pipeline
    from pop_nb.service import create_job

    three = [("inference", "pop.output(1)"), ("parsing", "pop.output(2)"), ("integration", "pop.output(3)")]
    project.pipeline("single", {"only": {}})  # one task of one stage
    project.pipeline("chain", {"first": {"cells": three}, "second": {"cells": three, "needs": ["first"]}})
    settings = project.settings()
    started = {}
    for slug in ("single", "chain"):
        folder = create_job(settings, parse_seed({"pipeline": slug, "data": {}}, "test"), None, where="test")
        provider = CountingProvider()
        runner = JobRunner(settings, folder, job_pipeline(folder, settings.root, slug), provider=provider)
        assert runner.run().state == "done"
        started[slug] = provider.started
    assert started["single"] == 1  # no spare for a stage that will never come
    assert 6 <= started["chain"] <= 6 + 2  # a kernel per stage, and at most a spare or two to spare


PAPERMILL_CELLS = [
    ("x = 1", ["parameters"]),
    ("print('out'); import sys; print('err', file=sys.stderr)", []),
    ("from IPython.display import HTML, display\ndisplay(HTML('<b>bold</b>'))\nx * 2", []),
    ("1 / 0", []),
    ("y = 3", []),
]
VARYING = {"id", "start_time", "end_time", "duration", "output_path"} | {
    "iopub.execute_input",
    "iopub.status.busy",
    "iopub.status.idle",
    "shell.execute_reply",
}


def _without_what_varies(value: object) -> object:
    """A notebook with what differs between any two runs (cell ids, times, its own path) left out."""
    if isinstance(value, dict):
        return {k: _without_what_varies(v) for k, v in value.items() if k not in VARYING}
    if isinstance(value, list):
        return [_without_what_varies(v) for v in value]
    return value


@pytest.mark.parametrize("failing", [False, True], ids=["runs", "raises"])
def test_an_executed_stage_notebook_is_what_plain_papermill_writes(tmp_path: Path, failing: bool) -> None:
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from pop_nb.execution.engine import get_engine
    from pop_nb.execution.kernels import KERNEL_NAME

    get_engine()
    cells = [(src, tags) for src, tags in PAPERMILL_CELLS if failing or src != "1 / 0"]
    spec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(src, metadata={"tags": tags}) for src, tags in cells],
        metadata={"kernelspec": spec},
    )
    provider = FreshKernelProvider(60, start="fork", preload=[])
    written = {}
    try:
        for way, options in (
            ("pop", {"engine_name": "pop", "kernel_name": KERNEL_NAME, "kernel_provider": provider}),
            ("papermill", {"kernel_name": "python3", "kernel_manager_class": UnixSocketKernel}),
        ):
            out = tmp_path / f"{way}.ipynb"
            try:
                papermill.execute_notebook(
                    notebook, str(out), parameters={"x": 5}, progress_bar=False, cwd=str(tmp_path), **options
                )
            except PapermillExecutionError as exc:
                assert failing and exc.ename == "ZeroDivisionError"
            written[way] = _without_what_varies(json.loads(out.read_text()))
    finally:
        provider.shutdown_all()
    assert written["pop"] == written["papermill"]
    outputs = [o for cell in written["pop"]["cells"] for o in cell.get("outputs", [])]
    assert {o["output_type"] for o in outputs} >= {"stream", "display_data", "execute_result"}


READ_OWN_ENVIRON = """
import os, psutil
def names(pid):
    with open(f"/proc/{pid}/environ", "rb") as fh:
        return sorted({entry.split(b"=", 1)[0].decode() for entry in fh.read().split(b"\\0") if entry})
pop.output({"kernel": names(os.getpid()), "server": names(psutil.Process().parent().pid),
            "seen here": os.environ.get("LEFT_IN_THE_SHELL")})
"""


def test_the_kernel_server_and_what_it_forks_show_no_environment_of_whoever_started_it(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server is shared by every runner of this user; /proc/<pid>/environ of it and of every kernel
    forked from it is the environment it was started with: only what preloading needs, never another
    project's POP_*, a broker URL or whatever the starting shell held. The stage still has its own."""
    from pop_nb.execution.forkserver import SERVER_ENV, SERVER_ENV_PREFIXES

    kill_kernel_server(monkeypatch)  # whoever started it before, this test's environment starts the next
    monkeypatch.setenv("LEFT_IN_THE_SHELL", "canary-0f3e")
    monkeypatch.setenv("POP_BROKER_URL", "redis://10.9.8.7:6379/0")
    project.pipeline("env", {"t": {"cells": [("inference", READ_OWN_ENVIRON)]}})
    job = project.run("env")
    assert job.state == "done", job.status.error
    seen = json.loads((job.path / "tasks/t/outputs/inference.json").read_text())
    allowed = SERVER_ENV | {"PYDEVD_DISABLE_FILE_VALIDATION", "LITELLM_LOCAL_MODEL_COST_MAP"}
    for who in ("server", "kernel"):
        extra = [n for n in seen[who] if n not in allowed and not n.startswith(SERVER_ENV_PREFIXES)]
        assert extra == [], (who, extra)
    assert seen["seen here"] == "canary-0f3e"  # the stage's own environment is its runner's


def test_only_the_socket_folders_of_processes_that_are_gone_are_swept(tmp_path: Path) -> None:
    from pop_nb.execution import kernels as kernels_module

    prefix = kernels_module._SOCKETS_PREFIX
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    folders = {
        "gone": tmp_path / f"{prefix}{gone.pid}-abc",
        "alive": tmp_path / f"{prefix}{os.getppid()}-abc",
        "mine": tmp_path / f"{prefix}{os.getpid()}-abc",
        "other namespace": tmp_path / f"pop-k-1-{gone.pid}-abc",
        "not a pid": tmp_path / f"{prefix}x{gone.pid}-abc",
        "old name": tmp_path / "pop-k-abc",
    }
    for folder in folders.values():
        folder.mkdir()
        (folder / "4f2a-1").write_text("")  # where a socket was
    (tmp_path / f"{prefix}{gone.pid}-file").write_text("")  # not a folder
    assert kernels_module.sweep_stale_sockets(str(tmp_path)) == 1
    assert [name for name, folder in folders.items() if not folder.exists()] == ["gone"]
    assert (tmp_path / f"{prefix}{gone.pid}-file").exists()


SEEN_BY_A_FIRST_CELL = """
ip = get_ipython()
print(json.dumps({
    "names": sorted(k for k in globals() if not k.startswith("_")),
    "In": list(In), "Out": dict(Out), "_ih": list(_ih), "count": ip.execution_count,
    "history": [list(row) for row in ip.history_manager.get_range(raw=True)],
    "last": [_i, _ii, _iii],
}, sort_keys=True))
"""


def test_a_kernel_greeted_ahead_shows_a_stage_what_a_kernel_never_greeted_does(tmp_path: Path) -> None:
    """A spare is greeted (a request and an empty cell, so a stage does not pay for a fresh kernel's first
    ones): none of it may show in the stage's notebook or namespace."""
    import nbformat
    import papermill

    from pop_nb.execution.engine import get_engine
    from pop_nb.execution.kernels import KERNEL_NAME

    get_engine()
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("import json"), nbformat.v4.new_code_cell(SEEN_BY_A_FIRST_CELL)]
    )
    provider = FreshKernelProvider(60, start="fork", preload=[])
    seen = {}
    try:
        for way in ("never greeted", "greeted"):
            if way == "greeted":
                provider.prestart(str(tmp_path), 1)
                wait_for(lambda: len(provider._greeted) == 1, timeout=60, every=0.005)
                provider.prestart(str(tmp_path), 0)
            done = papermill.execute_notebook(
                notebook, str(tmp_path / f"{way}.ipynb"), engine_name="pop", kernel_name=KERNEL_NAME,
                kernel_provider=provider, progress_bar=False, kernel_cwd=str(tmp_path),
            )  # fmt: skip
            assert [c.execution_count for c in done.cells] == [1, 2], way
            outputs = [o for cell in done.cells for o in cell.outputs]
            assert [o.get("text", "") for o in outputs if o.output_type == "stream"] == [outputs[-1].text]
            seen[way] = json.loads(outputs[-1].text)
    finally:
        provider.shutdown_all()
    assert seen["greeted"] == seen["never greeted"]
    assert seen["greeted"]["_ih"][1] == "import json"
