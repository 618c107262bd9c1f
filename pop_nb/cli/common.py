"""What the commands share: settings read late (pydantic is half of ``pop --help``), seeds from the
command line."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pop_nb.errors import PopError

if TYPE_CHECKING:
    from pop_nb.config import PopSettings


def load_settings() -> PopSettings:
    """The settings, read when a command needs them (pydantic's import is half of ``pop --help``)."""
    from pop_nb.config import load_settings as load

    return load()


def parse_data(text: str | None) -> Any:
    from pop_nb.models.seed import loads_seed

    if not text:
        return {}
    try:
        return loads_seed(text, "--data")
    except PopError as exc:
        raise PopError(f'{exc}. Quote it for the shell, e.g. --data \'{{"topic": "x"}}\'') from None


def read_json(path: Path) -> dict[str, Any]:
    from pop_nb.models.seed import loads_seed

    try:
        value = loads_seed(path.read_bytes(), str(path))
    except FileNotFoundError:
        raise PopError(f"seed file {path} does not exist") from None
    if not isinstance(value, dict):
        raise PopError(f'{path} must hold a JSON object: {{"pipeline": "<slug>", "data": {{...}}}}')
    return value


PLAIN_EVERY_S = 5.0  # off a terminal (a log, CI), a progress line at most this often


class ProgressLine:
    """A progress line on stderr for the commands that run many jobs (``pop batch``, ``pop experiment
    run``). On a terminal it is redrawn in place; elsewhere (a log file, CI) a line is written at most
    every :data:`PLAIN_EVERY_S` and the last one at :meth:`end`: a batch of a thousand jobs is not two
    thousand lines, and the log still says where it stood."""

    def __init__(self, live: bool | None = None) -> None:
        self.out = sys.stderr
        self.live = self.out.isatty() if live is None else live
        self._written_at: float | None = None
        self._held: str | None = None

    def show(self, line: str) -> None:
        if self.live:
            print("\r" + line + "\x1b[K", end="", file=self.out, flush=True)  # K: the rest of a longer line
            self._held = line
            return
        now = time.monotonic()
        if self._written_at is None or now - self._written_at >= PLAIN_EVERY_S:
            print(line, file=self.out, flush=True)
            self._written_at, self._held = now, None
        else:
            self._held = line

    def end(self) -> None:
        """The line as it stands, once and whole; the next :meth:`show` starts a new one."""
        if self.live:
            if self._held is not None:
                print(file=self.out, flush=True)
        elif self._held is not None:
            print(self._held, file=self.out, flush=True)
        self._written_at, self._held = None, None


def say_if_the_kernel_server_starts(settings: PopSettings, executor: str | None = None) -> None:
    """A job started while the kernel server is down waits for it to start and preload (a few seconds
    with litellm) before its first line: said first, so the terminal is not silent meanwhile."""
    from pop_nb.execution import forkserver

    if (
        (executor or settings.executor) != "local"
        or settings.kernel_start != "fork"
        or not forkserver.fork_supported()
    ):
        return  # the job runs elsewhere, or its kernels are spawned
    try:
        if forkserver.is_ready(settings.kernel_preload):
            return
    except forkserver.ForkServerError:
        return  # no private folder for it: kernels are spawned, and the runner says why
    idle = round(settings.kernel_server_idle_s / 60)
    names: list[str] = ["ipykernel", *settings.kernel_preload]
    preload = f"{', '.join(names[:-1])} and {names[-1]}" if len(names) > 1 else names[0]
    print(
        f"starting the kernel server: it imports {preload} once, in a few seconds, then forks every "
        f"job's runner and kernels at once (it stays up {idle} min after the last job)",
        file=sys.stderr,
    )
