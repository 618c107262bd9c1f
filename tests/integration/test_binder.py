"""``binder/`` works: a fresh virtualenv built from exactly what Binder reads (environment.yml's Python
and Node.js, then postBuild) has pop-nb with both extensions, and runs the quickstart notebook."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, committed_copy

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(900),  # a Binder environment installed and built: minutes on 2 busy cores
    pytest.mark.skipif(not shutil.which("node") or not shutil.which("git"), reason="needs Node.js and git"),
]


def test_a_binder_environment_runs_the_quickstart(tmp_path: Path) -> None:
    env_file = yaml.safe_load((REPO / "binder" / "environment.yml").read_text())
    wanted = {re.split("[=<> ]", d)[0]: d for d in env_file["dependencies"] if isinstance(d, str)}
    assert set(wanted) == {"python", "nodejs", "pip"}, wanted  # all that postBuild may count on
    python_version = wanted["python"].split("=")[1]
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == python_version
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout
    assert node.strip().lstrip("v").split(".")[0] == wanted["nodejs"].split("=")[1]

    repo = committed_copy(tmp_path / "repo")  # the repository as Binder clones it: nothing built
    assert not (repo / "pop_nb" / "labextension").exists()

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POP_", "VIRTUAL_ENV", "JUPYTER"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    built = subprocess.run(
        ["bash", "binder/postBuild"], cwd=repo, env=env, capture_output=True, text=True, timeout=1200
    )
    assert built.returncode == 0, (built.stdout + built.stderr)[-4000:]
    assert (repo / "pop_nb" / "labextension" / "static" / "style.js").is_file()

    ran = subprocess.run(
        [str(venv / "bin" / "jupyter"), "execute", "--inplace", "notebooks/01-quickstart.ipynb"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ran.returncode == 0, (ran.stdout + ran.stderr)[-4000:]
    done = list((repo / "pipeline-data" / "complete").glob("*/tasks-status.json"))
    assert done and all('"state": "done"' in f.read_text() for f in done)
