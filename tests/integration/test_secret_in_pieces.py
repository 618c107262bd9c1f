"""A stage that prints an API key in two pieces, flushing between them, at every cut: no piece pair
lands in the stage log, ``pop logs`` or the executed notebook."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Project, pop

KEY = "sk-live-0a1b2c3d4e5f6a7b8c9d"


def test_a_key_printed_in_two_pieces_is_masked_everywhere(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    cell = (
        "import os, sys\n"
        "k = os.environ['ANTHROPIC_API_KEY']\n"
        "for cut in range(1, len(k)):\n"
        "    sys.stdout.write(f'{cut}: ' + k[:cut]); sys.stdout.flush()\n"
        "    sys.stdout.write(k[cut:] + '\\n'); sys.stdout.flush()\n"
        "pop.output('printed')"
    )
    project.pipeline("leaky", {"t": {"cells": [("inference", cell)]}})
    job = project.run("leaky")
    assert job.state == "done", job.status.error
    log = (job.path / "tasks/t/logs/inference.log").read_text()
    shown = pop("logs", job.id).stdout
    notebook = (job.path / "tasks/t/04-inference.ipynb").read_text()
    for cut in range(1, len(KEY)):
        assert f"{cut}: [REDACTED]\n" in log and f"{cut}: [REDACTED]\n" in shown
    outputs = [o for c in json.loads(notebook)["cells"] for o in c.get("outputs", [])]
    joined = "".join("".join(o.get("text", "")) for o in outputs if o.get("output_type") == "stream")
    assert joined.count("[REDACTED]") == len(KEY) - 1
    for where in (log, shown, notebook, joined):
        assert KEY not in where and KEY[3:] not in where  # no whole key, not even its tail
    assert not [p for p in job.path.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]
