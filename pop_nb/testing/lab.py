"""JupyterLab and a browser, for pop-nb's browser tests and benchmarks: ``jupyter lab`` on a project,
with a token and its own workspace, and headless Debian chromium driven by selenium."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def jupyter_lab(
    root: Path, scratch: Path, token: str, config: dict[str, Any] | None = None, timeout_s: float = 60
) -> Iterator[str]:
    """``jupyter lab`` serving ``root`` (and --allow-root, as CI is root); yields its URL. Its log, its
    workspace and settings (so no layout is restored from another run) go in ``scratch``; ``config``
    goes in a config folder of its own, which wins over the installed ``jupyter-config``."""
    scratch.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("POP_")}
    if config is not None:
        (scratch / "config").mkdir(exist_ok=True)
        (scratch / "config" / "jupyter_server_config.json").write_text(json.dumps(config))
        env["JUPYTER_CONFIG_DIR"] = str(scratch / "config")
    # Lab's settings, where its kernels look too (pop-nb's charts follow the theme picked there)
    env["JUPYTERLAB_SETTINGS_DIR"] = str(scratch / "settings")
    port = free_port()
    args = [
        *(sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1"),
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--allow-root",
        "--ServerApp.disable_check_xsrf=False",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp, for the tests' commands
        "--LabApp.news_url=None",
        f"--LabApp.workspaces_dir={scratch / 'workspaces'}",
    ]
    with (scratch / "lab.log").open("w") as log:
        proc = subprocess.Popen(args, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while not _up(f"{url}/api/status?token={token}"):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"jupyter lab did not start; see {scratch / 'lab.log'}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()  # a server stops its kernels first: under load that took over 30 s once
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _up(url: str) -> bool:
    try:
        return bool(urllib.request.urlopen(url, timeout=2).status == 200)
    except (OSError, http.client.HTTPException):  # not listening yet, or not answering HTTP yet
        return False


@contextmanager
def chromium(width: int = 1400, height: int = 1000) -> Iterator[Any]:
    """Debian's headless chromium through its chromedriver (selenium), offline; quit on exit."""
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium must not try to download a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or "/usr/bin/chromium"
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        f"--window-size={width},{height}",
        "--disable-dev-shm-usage",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER or "/usr/bin/chromedriver"), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()
