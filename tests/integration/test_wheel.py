"""The wheel carries the Lab extension prebuilt and the server extension's config: installed into a
fresh virtualenv with no Node.js on PATH, JupyterLab lists both extensions enabled."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import committed_copy

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(900),  # a wheel built and installed in a fresh venv: minutes on 2 busy cores
    pytest.mark.skipif(not shutil.which("node") or not shutil.which("git"), reason="needs Node.js and git"),
]


def test_the_wheel_ships_both_extensions_and_installs_without_node(tmp_path: Path) -> None:
    repo = committed_copy(tmp_path / "repo")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POP_", "VIRTUAL_ENV", "JUPYTER"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # jlpm for the build
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path / "dist"), str(repo)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert built.returncode == 0, (built.stdout + built.stderr)[-4000:]
    wheel = next((tmp_path / "dist").glob("pop_nb-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    data = next(n.split("/")[0] for n in names if ".data/" in n)
    for shipped in (
        "data/share/jupyter/labextensions/pop-nb/package.json",
        "data/share/jupyter/labextensions/pop-nb/install.json",
        "data/share/jupyter/labextensions/pop-nb/static/style.js",
        "data/etc/jupyter/jupyter_server_config.d/pop_nb.json",
    ):
        assert f"{data}/{shipped}" in names, shipped
    assert not any(n.endswith(".map") for n in names), "a production build carries no source maps"

    # installed where there is no Node at all: the wheel needs none
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bare = {**env, "PATH": f"{venv / 'bin'}{os.pathsep}/usr/bin/not-here"}
    install = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", str(wheel)],
        env=bare,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert install.returncode == 0, (install.stdout + install.stderr)[-4000:]
    lab = subprocess.run(
        [str(venv / "bin" / "jupyter"), "labextension", "list"], env=bare, capture_output=True, text=True
    )
    server = subprocess.run(
        [str(venv / "bin" / "jupyter"), "server", "extension", "list"],
        env=bare,
        capture_output=True,
        text=True,
    )
    assert "pop-nb v0.1.0" in lab.stdout + lab.stderr and "enabled" in lab.stdout + lab.stderr
    assert "pop_nb" in server.stdout + server.stderr and "enabled" in server.stdout + server.stderr
