"""Real Redis (Debian's redis-server, on a free loopback port, persistence off) and real `pop worker`
processes, each in a session of its own so a test can kill one like a machine that dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pop_nb.testing.lab import free_port
from tests.conftest import Project, needs_programs, wait_for

REDIS = "redis-server"


class Redis:
    """redis-server on a loopback port, persistence off (as many run it): :meth:`restart` is a broker
    that loses its queue."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        import redis

        with (self.folder / "redis.log").open("a") as log:  # the child keeps its own copy
            self.proc = subprocess.Popen(
                [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.folder,
            )
        wait_for(lambda: _pings(redis.Redis.from_url(self.url)), timeout=20)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def restart(self) -> None:
        """Killed and started again, empty, on the same port."""
        self.kill9()
        self.start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[Redis]:
    needs_programs("redis-server", install="apt-get install redis-server")
    server = Redis(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: Redis) -> str:
    return redis_server.url


def _pings(client: object) -> bool:
    try:
        return bool(client.ping())  # type: ignore[attr-defined]
    except Exception:
        return False


@pytest.fixture
def celery_project(project: Project, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.setenv("POP_EXECUTOR", "celery")
    monkeypatch.setenv("POP_BROKER_URL", redis_url)
    (project.data / "current").mkdir(parents=True)
    return project


class Worker:
    """``pop worker`` in its own session; ``host`` gives it a machine name of its own (a UTS namespace)."""

    def __init__(
        self,
        project: Project,
        name: str,
        *,
        host: str | None = None,
        concurrency: int = 2,
        queues: str = "pop",
    ) -> None:
        self.name = name
        self.log = project.root / f"worker-{name}.log"
        cmd = [
            sys.executable,
            "-m",
            "pop_nb.cli",
            "worker",
            "--name",
            f"{name}@%h",
            "--concurrency",
            str(concurrency),
            "--queues",
            queues,
        ]
        if host:
            cmd = ["unshare", "--uts", "sh", "-c", f'hostname {host} && exec "$@"', "sh", *cmd]
        with self.log.open("w") as out:  # the child keeps its own copy
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: "ready." in self.text() or self.proc.poll() is not None, timeout=60)
        assert self.proc.poll() is None, self.text()

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def kill9(self) -> None:
        """Kill the worker like a machine that dies: SIGKILL to it and to its job's runner."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


@pytest.fixture
def workers(celery_project: Project) -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


def kill_runner(folder: Path) -> None:
    """SIGKILL a job's runner process group, found by its runner.json (its kernels then exit too)."""
    import json

    info = json.loads((folder / "runner.json").read_text())
    os.killpg(int(info["pgid"]), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(int(info["pgid"]), 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
