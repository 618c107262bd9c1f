"""The daemon with real processes: runners, kernels, kill -9, two daemons on one folder, gates, drain."""

from __future__ import annotations

import ctypes
import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest

from tests.conftest import WAIT_FOR_GO, Project, kernels_of, pop, too_deep, wait_for
from tests.orchestrator.test_intake import HOSTILE, drop

pytestmark = pytest.mark.slow


class Daemon:
    def __init__(self, project: Project, *args: str) -> None:
        self.log = project.root / f"daemon-{time.monotonic_ns()}.log"
        with self.log.open("w") as out:  # the child keeps its own copy
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pop_nb.cli", "orchestrate", "--poll", "0.2", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait(self, timeout: float = 180) -> int:
        return self.proc.wait(timeout)

    def output(self) -> str:
        return self.log.read_text()


def events(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]


def stage_starts(folder: Path) -> Counter:
    return Counter(
        f"{e['task']}/{e['stage']}"
        for e in events(folder)
        if e["kind"] == "stage" and e["status"] == "started"
    )


def seed(slug: str, **data: object) -> bytes:
    return json.dumps({"pipeline": slug, "data": data}).encode()


def test_two_daemons_take_twenty_seeds_each_once_and_reject_the_hostile(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POP_MAX_RUNNING_JOBS", "2")
    project.pipeline("tiny", {"a": {"cells": [("inference", "pop.output({'n': pop.seed['n']})")]}})
    for i in range(20):
        drop(project, f"job-{i:02d}-seed.json", seed("tiny", n=i))
    for name, content, _ in HOSTILE:
        drop(project, name, content.replace(b'"tiny"', b'"tiny"'))
    daemons = [Daemon(project, "--once"), Daemon(project, "--once")]
    assert [d.wait() for d in daemons] == [0, 0], [d.output() for d in daemons]

    complete = sorted(p.name for p in (project.data / "complete").iterdir() if p.is_dir())
    assert complete == [f"job-{i:02d}" for i in range(20)]
    for name in complete:
        folder = project.data / "complete" / name
        runs = [e for e in events(folder) if e["kind"] == "job" and e["status"] == "started"]
        assert len(runs) == 1, name  # one runner, one run
        assert stage_starts(folder) == {"a/inference": 1}
        assert json.loads((folder / "tasks" / "a" / "outputs" / "final.json").read_text()) == {
            "n": int(name[-2:])
        }
    rejected = {
        json.loads((p / "rejection.json").read_text())["file"]: json.loads(
            (p / "rejection.json").read_text()
        )["reason"]
        for p in (project.data / "rejected").iterdir()
    }
    assert rejected == {name: reason for name, _, reason in HOSTILE}
    assert list((project.data / "pending").iterdir()) == []
    accepted = sum(d.output().count("accepted ") for d in daemons)
    assert accepted == 20  # each seed claimed by exactly one of the two daemons
    assert kernels_of(project.data) == []


def test_a_runner_killed_mid_stage_is_recovered_from_that_stage(project: Project) -> None:
    marker = project.root / "inference-began"
    project.pipeline(
        "slow",
        {
            "t": {
                "cells": [
                    ("ingestion", "pop.output({'got': 1})"),
                    (
                        "inference",
                        "import pathlib, time\n"
                        f"m = pathlib.Path({str(marker)!r})\n"
                        "if not m.exists():\n"
                        "    m.touch()\n"
                        "    time.sleep(300)\n"
                        "pop.output({'prev': pop.prev})",
                    ),
                    ("integration", "pop.output({'final': pop.prev})"),
                ]
            }
        },
    )
    drop(project, "victim-seed.json", seed("slow"))
    daemon = Daemon(project)
    try:
        wait_for(marker.exists)
        folder = project.data / "current" / "victim"
        runner = json.loads((folder / "runner.json").read_text())["pid"]
        kernels = wait_for(lambda: kernels_of(project.data))
        os.kill(runner, signal.SIGKILL)
        # the stranded kernel notices its runner is gone and exits
        wait_for(lambda: not any(k.is_running() and k.status() != psutil.STATUS_ZOMBIE for k in kernels), 30)
        done = project.data / "complete" / "victim"
        wait_for(done.exists, 180)
    finally:
        daemon.proc.send_signal(signal.SIGTERM)
        assert daemon.wait(60) == 0
    assert stage_starts(done) == {"t/ingestion": 1, "t/inference": 2, "t/integration": 1}
    status = json.loads((done / "tasks-status.json").read_text())
    assert status["state"] == "done" and status["recoveries"] == 1
    assert json.loads((done / "tasks" / "t" / "outputs" / "final.json").read_text()) == {
        "final": {"prev": {"got": 1}}
    }
    assert any(e["status"] == "recovered" for e in events(done))
    assert "recovering victim" in daemon.output()
    # its trace goes on: one trace, the interrupted stage an error span, the stage run again beside it
    spans = [json.loads(line) for line in (done / "spans.jsonl").read_text().splitlines()]
    assert {s["trace_id"] for s in spans} == {status["trace"]["trace_id"]}
    inference = [s for s in spans if s["kind"] == "stage" and s["stage"] == "inference"]
    assert sorted(s["status"] for s in inference) == ["error", "ok"]
    assert next(s for s in inference if s["status"] == "error")["attributes"]["error.type"] == "RunnerDied"
    assert len({s["parent_id"] for s in inference}) == 1, "both under the one task span"


def test_a_killed_daemon_restarted_loses_and_repeats_nothing(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POP_MAX_RUNNING_JOBS", "2")
    go = project.root / "go"
    project.pipeline(
        "nap", {"a": {"cells": [("inference", WAIT_FOR_GO.format(go=str(go)) + "pop.output(1)")]}}
    )
    for i in range(6):
        drop(project, f"nap-{i}-seed.json", seed("nap"))
    first = Daemon(project)
    wait_for(lambda: "started nap-1" in first.output())
    first.proc.kill()  # kill -9 while its runners work (they wait for go)
    first.wait(30)
    go.touch()
    second = Daemon(project, "--once")
    assert second.wait() == 0, second.output()
    complete = sorted(p.name for p in (project.data / "complete").iterdir() if p.is_dir())
    assert complete == [f"nap-{i}" for i in range(6)]
    for name in complete:
        folder = project.data / "complete" / name
        assert stage_starts(folder) == {"a/inference": 1}, name
        assert not any(e["status"] == "recovered" for e in events(folder))  # its runner outlived the daemon
    assert not (project.data / "rejected").exists() or list((project.data / "rejected").iterdir()) == []


def test_gates_wait_for_approve_or_reject(project: Project) -> None:
    project.pipeline(
        "gated",
        {
            "draft": {"gate": True, "cells": [("inference", "pop.output('draft text')")]},
            "publish": {"needs": ["draft"], "cells": [("inference", "pop.output(pop.inputs['draft'])")]},
        },
    )
    job = project.run("gated")
    assert job.state == "waiting" and job.folder.place == "current"
    assert job.status.tasks["draft"].gate == "waiting" and job.status.tasks["publish"].state == "pending"
    overview = pop("status").stdout
    assert f"waiting  {job.id}" in overview and f"pop approve|reject {job.id}" in overview
    approve = pop("approve", job.id, "--quiet")
    assert approve.returncode == 0, approve.stderr
    assert job.state == "done" and job.outputs()["publish"] == "draft text"
    assert stage_starts(job.path) == {"draft/inference": 1, "publish/inference": 1}

    other = project.run("gated")
    reject = pop("reject", other.id, "--reason", "off-brand")
    assert reject.returncode == 0, reject.stderr
    assert other.state == "failed" and other.folder.place == "failed"
    assert other.status.error.type == "GateRejected" and "off-brand" in other.status.error.message
    assert f"failed   {other.id}" in pop("status").stdout


def test_cancel_of_a_queued_job_ends_it_without_a_runner(project: Project) -> None:
    from pop_nb.models.seed import parse_seed
    from pop_nb.service import cancel, create_job
    from pop_nb.store.jobs import JobStore

    project.pipeline("tiny", {"a": {}})
    settings = project.settings()
    folder = create_job(settings, parse_seed({"pipeline": "tiny"}, "test"), "queued-1")
    assert "queued   queued-1" in pop("status").stdout
    assert cancel(settings, "queued-1").state == "cancelled"
    status = json.loads((project.data / "failed" / "queued-1" / "tasks-status.json").read_text())
    assert status["state"] == "cancelled" and not folder.path.exists()
    assert cancel(settings, "queued-1").state == "cancelled"  # asking again: it is cancelled
    assert pop("cancel", "queued-1").returncode == 0

    ended = create_job(settings, parse_seed({"pipeline": "tiny"}, "test"), "ended-1")
    status = ended.read_status()
    status.state = "done"
    JobStore(settings.data).close(ended, status)
    refused = pop("cancel", "ended-1")
    assert refused.returncode == 2 and "ended-1 has already ended (done, in complete/)" in refused.stderr


def test_sigterm_with_drain_waits_for_running_jobs(project: Project) -> None:
    go = project.root / "go"
    project.pipeline(
        "nap", {"a": {"cells": [("inference", WAIT_FOR_GO.format(go=str(go)) + "pop.output(1)")]}}
    )
    drop(project, "last-seed.json", seed("nap"))
    daemon = Daemon(project, "--drain")
    wait_for(lambda: "started last" in daemon.output())
    daemon.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: "taking no more seeds" in daemon.output())  # the signal is handled asynchronously
    drop(project, "late-seed.json", seed("nap"))  # arrives after the signal: left for the next daemon
    assert daemon.proc.poll() is None  # draining: it waits for the running job
    go.touch()
    assert daemon.wait(120) == 0
    assert (project.data / "complete" / "last").is_dir()  # finished before the daemon exited
    assert (project.data / "pending" / "late-seed.json").exists()


def _hostile_files(rng: random.Random, n: int) -> list[tuple[bytes, bytes]]:
    """Names (any bytes but / and NUL, often not UTF-8) and contents no seed should have."""
    contents = [
        b"",
        b"\x00" * 64,
        bytes(rng.randrange(256) for _ in range(200)),
        b'{"pipeline": "tiny", "data": {"x": ' + b"[" * 10_000 + b"]" * 10_000 + b"}}",
        b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
        b'{"pipeline": "tiny", "data": "' + b"x" * (1 << 20) + b'"}',
        json.dumps({"pipeline": "ghost"}).encode(),
        json.dumps({"pipeline": "tiny", "data": {"k": "\ud800"}}, ensure_ascii=True).encode(),
        json.dumps({"pipeline": "tiny", "llm": {"api_key": "sk-fuzz-123456"}}).encode(),
        b'{"pipeline": "tiny", "data": {"x": 1e999999}}',
        b'{"pipeline": "tiny", "pipeline": "tiny2"}',
        '{"pipeline": "tiny", "data": {"\u202e": "\U0001f4a3"}}'.encode(),
    ]
    files = [
        (b"raw\xff-seed.json", json.dumps({"pipeline": "tiny"}).encode()),
        (b"deep-seed.json", contents[3]),
    ]
    alphabet = [bytes([b]) for b in range(1, 256) if b != ord("/")]
    while len(files) < n:
        name = b"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
        if rng.random() < 0.7:
            name += b"-seed.json"
        if name in (b".", b"..") or any(name == f for f, _ in files):
            continue
        files.append((name, rng.choice(contents)))
    return files


def test_no_file_name_or_content_stops_the_daemon(project: Project) -> None:
    from pop_nb.store.pending import scan_pending

    project.pipeline("tiny", {"a": {"cells": [("inference", "pop.output({'n': pop.seed.get('n')})")]}})
    pending = project.data / "pending"
    pending.mkdir(parents=True)
    files = _hostile_files(random.Random(9), 80)
    for name, content in files:
        with open(os.path.join(os.fsencode(pending), name), "wb") as fh:
            fh.write(content)
    (pending / "a-folder-seed.json").mkdir()
    (pending / "a-link-seed.json").symlink_to("/etc/passwd")
    os.mkfifo(pending / "a-fifo-seed.json")
    daemon = Daemon(project, "--no-watch")
    try:
        wait_for(lambda: scan_pending(pending)[0] == [], timeout=60)  # every seed answered
        assert daemon.proc.poll() is None, daemon.output()
        drop(project, "after-seed.json", seed("tiny", n=7))  # and it still does its job
        wait_for((project.data / "complete" / "after").is_dir, timeout=120)
        assert daemon.proc.poll() is None, daemon.output()
    finally:
        daemon.proc.send_signal(signal.SIGTERM)
        assert daemon.wait(60) == 0, daemon.output()
    rejected = list((project.data / "rejected").iterdir())
    seeds = [n for n, _ in files if n.endswith(b"-seed.json") and not n.startswith(b".")]
    assert len(rejected) == len(seeds)  # each with its reason, nothing lost
    for folder in rejected:
        why = json.loads((folder / "rejection.json").read_text(encoding="utf-8"))
        assert why["reason"] and why["message"] and why["file"]
        assert (folder / "seed.json").is_file()
    assert "sk-fuzz-123456" not in "".join(
        (f / "rejection.json").read_text(encoding="utf-8") for f in rejected
    )
    strays = scan_pending(pending)[1]
    assert {"a-folder-seed.json", "a-link-seed.json", "a-fifo-seed.json"} <= set(strays)
    assert daemon.output().count("a-fifo-seed.json") == 1  # reported once, not at every pass


def standbys_of(daemon: Daemon) -> list[psutil.Process]:
    """Runners the daemon started ahead, waiting for a job (their command line says ``--standby``)."""
    return [
        p
        for p in psutil.process_iter(["cmdline", "ppid"])
        if p.info["ppid"] == daemon.proc.pid and "--standby" in (p.info["cmdline"] or [])
    ]


def alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_dropped_seed_runs_in_a_runner_forked_from_the_kernel_server(
    project: Project, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    project.pipeline(
        "nap", {"a": {"cells": [("inference", WAIT_FOR_GO.format(go=str(go)) + "pop.output(1)")]}}
    )
    daemon = Daemon(project)
    try:
        drop(project, "nap-1-seed.json", seed("nap"))
        folder = project.data / "current" / "nap-1"
        wait_for(lambda: (folder / "runner.json").exists(), timeout=120)
        runner = psutil.Process(json.loads((folder / "runner.json").read_text())["pid"])
        assert runner.name() == "pop-runner"  # forked: its imports done before the seed came
        server = runner.parent()
        assert "--serve" in " ".join(server.cmdline()) and server.pid != daemon.proc.pid
        # what `ps` shows: its job, not the server's command line (`pkill -f kernel_main` took it for
        # the server, and cancelled the job); its stage kernel the same
        assert " ".join(runner.cmdline()).split() == ["pop-runner", "nap-1"]
        (kernel,) = wait_for(lambda: kernels_of(project.data))
        assert kernel.name() == "pop-kernel" and " ".join(kernel.cmdline()).split() == ["pop-kernel", "nap-1"]
        serving = [p.pid for p in psutil.process_iter(["cmdline"]) if "--serve" in (p.info["cmdline"] or [])]
        assert runner.pid not in serving and kernel.pid not in serving and server.pid in serving
        assert runner.pid == os.getpgid(runner.pid)  # its own process group: a cancel ends just the job
        go.touch()
        wait_for((project.data / "complete" / "nap-1").exists, timeout=60)
        wait_for(lambda: "runner of nap-1 exited" in daemon.output(), timeout=10)  # followed by its pidfd
    finally:
        go.touch()
        daemon.proc.kill()
        daemon.wait(30)


def test_a_seed_is_run_by_the_runner_waiting_for_it_and_a_new_one_waits(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POP_KERNEL_START", "spawn")  # a standby runner is for where runners are spawned
    project.pipeline("quick", {"a": {}})
    daemon = Daemon(project)
    try:
        waiting = wait_for(lambda: standbys_of(daemon), timeout=30)
        assert len(waiting) == 1
        drop(project, "quick-1-seed.json", seed("quick"))
        done = project.data / "complete" / "quick-1"
        wait_for(done.exists, timeout=120)
        assert json.loads((done / "tasks-status.json").read_text())["state"] == "done"
        started = [e for e in events(done) if e["kind"] == "job" and e["status"] == "started"]
        assert started[0]["pid"] == waiting[0].pid  # the job ran in the runner that was waiting for it
        next_one = wait_for(lambda: [p for p in standbys_of(daemon) if p.pid != waiting[0].pid], timeout=30)
    finally:
        daemon.proc.kill()  # kill -9: the waiting runner sees its channel close and exits on its own
        daemon.wait(30)
    wait_for(lambda: not any(alive(p) for p in next_one), timeout=10)


def test_a_queued_jobs_files_are_parsed_again_only_once_replaced(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every wake looks at every queued job: unchanged files are not parsed again, replaced ones are."""
    from pop_nb.models.records import Dispatch
    from pop_nb.models.seed import parse_seed
    from pop_nb.orchestrator import Orchestrator
    from pop_nb.service import create_job
    from pop_nb.store.atomic import atomic_write_json
    from pop_nb.store.jobs import JobFolder

    project.pipeline("queued", {"t": {}})
    settings = project.settings()
    folder = create_job(settings, parse_seed({"pipeline": "queued", "data": {}}, "test"), "q1", where="test")
    daemon = Orchestrator(settings, out=io.StringIO())
    parsed: list[str] = []
    real = JobFolder.read_status
    monkeypatch.setattr(JobFolder, "read_status", lambda self: parsed.append(self.job_id) or real(self))

    assert daemon.current.read(folder)[0].state == "pending"
    assert daemon.current.read(folder)[1] is None
    assert parsed == ["q1"]  # once

    status = real(folder)
    status.state = "waiting"  # as a gate leaves it
    folder.write_status(status)
    assert daemon.current.read(folder)[0].state == "waiting" and parsed == ["q1", "q1"]
    atomic_write_json(folder.dispatch_file, Dispatch(executor="celery", queue=None, ticket="t", by="h"))
    dispatch = daemon.current.read(folder)[1]
    assert dispatch is not None and dispatch.executor == "celery" and parsed == ["q1", "q1", "q1"]


def test_a_wake_looks_at_no_queued_job_until_a_slot_is_free_then_at_the_oldest(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A queue thousands deep must cost a wake what an empty one does: queued jobs already looked at
    wait unlooked-at while every slot is taken; a free slot takes the oldest; every FULL_LOOK_S all of
    them are looked at again."""
    from pop_nb.models.seed import parse_seed
    from pop_nb.orchestrator import Orchestrator
    from pop_nb.orchestrator import daemon as daemon_module
    from pop_nb.service import create_job

    project.pipeline("queued", {"t": {}})
    settings = project.settings()
    for n in range(5):
        create_job(settings, parse_seed({"pipeline": "queued", "data": {}}, "test"), f"q{n}", where="test")
    daemon = Orchestrator(settings, out=io.StringIO())
    daemon.claimed.update(f"q{n}" for n in range(5))  # made here: no freshness wait
    looked: list[str] = []
    real_look = daemon.current.look
    monkeypatch.setattr(
        daemon.current, "look", lambda folder: looked.append(folder.job_id) or real_look(folder)
    )
    started: list[str] = []
    monkeypatch.setattr(
        daemon,
        "_start",
        lambda executor, folder, lock, lost=None: started.append(folder.job_id) or lock.release(),
    )
    slots = {"free": False}
    monkeypatch.setattr(daemon, "_where", lambda here: daemon.executor if slots["free"] else None)

    daemon._schedule()  # the first wake looks at each once
    assert sorted(looked) == [f"q{n}" for n in range(5)] and started == [] and daemon.unfinished == 5
    looked.clear()
    for _ in range(3):
        daemon._schedule()
    assert looked == [] and daemon.unfinished == 5  # all slots taken: none looked at again

    slots["free"] = True
    daemon._schedule()
    assert started[:1] == ["q0"] and looked[:1] == ["q0"]  # the oldest first, looked at before it starts

    looked.clear()
    slots["free"] = False
    monkeypatch.setattr(daemon_module, "FULL_LOOK_S", 0.0)
    daemon._full_look_at = 0.0
    daemon._schedule()
    assert sorted(looked) == [f"q{n}" for n in range(5)]  # the full look


def test_jobs_waiting_at_a_remote_queue_are_not_looked_at_again_until_their_lease_is_over(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Thousands of jobs sent to Celery's queue cost a wake nothing: a job waiting there is looked at
    once, then again when its lease is over (sent again if still untaken) or at the full look."""
    from datetime import UTC, datetime, timedelta

    from pop_nb.models.records import Dispatch
    from pop_nb.models.seed import parse_seed
    from pop_nb.orchestrator import Orchestrator
    from pop_nb.orchestrator import daemon as daemon_module
    from pop_nb.service import create_job
    from pop_nb.store.atomic import atomic_write_json

    project.pipeline("queued", {"t": {}})
    settings = project.settings()
    lease = settings.dispatch_lease_s
    for n, left_s in enumerate((0.5, 3600.0, 3600.0)):  # q0's lease is over in half a second
        folder = create_job(
            settings, parse_seed({"pipeline": "queued", "data": {}}, "test"), f"q{n}", where="t"
        )
        sent = datetime.now(UTC) - timedelta(seconds=lease - left_s)
        atomic_write_json(folder.dispatch_file, Dispatch(executor="celery", by="h", at=sent.isoformat()))
    daemon = Orchestrator(settings, out=io.StringIO())
    looked: list[str] = []
    real_look = daemon.current.look
    monkeypatch.setattr(
        daemon.current, "look", lambda folder: looked.append(folder.job_id) or real_look(folder)
    )
    monkeypatch.setattr(daemon, "_named", lambda name: daemon.executor)
    resent: list[str] = []
    monkeypatch.setattr(
        daemon,
        "_start",
        lambda executor, folder, lock, lost=None: (
            resent.append(folder.job_id if lost else "") or lock.release()
        ),
    )

    daemon._schedule()
    assert sorted(looked) == ["q0", "q1", "q2"] and daemon.unfinished == 3 and resent == []
    looked.clear()
    for _ in range(3):
        daemon._schedule()
    assert looked == [] and daemon.unfinished == 3  # waiting at the queue: not looked at

    time.sleep(0.6)  # q0's lease is over: looked at, and sent again
    daemon._schedule()
    assert looked == ["q0"] and resent == ["q0"]

    looked.clear()
    monkeypatch.setattr(daemon_module, "FULL_LOOK_S", 0.0)
    daemon._full_look_at = 0.0
    daemon._schedule()
    assert sorted(looked) == ["q0", "q1", "q2"]  # the full look


def test_a_job_whose_status_is_not_json_is_passed_over_not_fatal(project: Project) -> None:
    from pop_nb.orchestrator import Orchestrator

    folder = project.data / "current" / "broken"
    folder.mkdir(parents=True)
    (folder / "seed.json").write_text('{"pipeline": "x", "data": {}}')
    (folder / "tasks-status.json").write_bytes(too_deep())
    daemon = Orchestrator(project.settings(), out=io.StringIO())
    daemon._schedule()  # raised RecursionError, which ended the daemon
    assert daemon.unfinished == 1 and not daemon.children


def exchange(a: Path, b: Path) -> None:
    """Swap two paths at once (Linux ``renameat2(RENAME_EXCHANGE)``). An unlink and a rename left a moment
    without ``b``, in which the daemon made ``current/`` anew and started a job in it (seen once in CI)."""
    libc = ctypes.CDLL(None, use_errno=True)
    at_cwd, rename_exchange = -100, 2
    if libc.renameat2(at_cwd, os.fsencode(a), at_cwd, os.fsencode(b), rename_exchange) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error), str(a))


def test_a_data_folder_that_cannot_be_read_for_a_while_is_waited_out(project: Project) -> None:
    """current/ replaced by a file under the daemon (as a mount that went away looks; chmod cannot do it
    to root, whom CI runs as): the daemon says so once, keeps trying, and goes on when it is back."""
    project.pipeline("tiny", {"a": {"cells": [("inference", "pop.output(1)")]}})
    daemon = Daemon(project)
    try:
        wait_for(lambda: "orchestrating" in daemon.output(), timeout=60)
        current = project.data / "current"
        current.rename(project.data / "current.away")
        current.write_text("not a folder")
        drop(project, "during-seed.json", seed("tiny"))
        wait_for(lambda: "cannot use the data folder" in daemon.output(), timeout=30)
        time.sleep(1)  # several polls of the fault
        assert daemon.proc.poll() is None, daemon.output()
        assert daemon.output().count("cannot use the data folder") == 1  # said once, not every poll
        exchange(project.data / "current.away", current)  # never missing: the daemon would make it anew
        (project.data / "current.away").unlink()
        wait_for(lambda: (project.data / "complete" / "during").is_dir(), timeout=120)
        assert "works again" in daemon.output()
    finally:
        daemon.proc.send_signal(signal.SIGTERM)
        daemon.wait(60)
