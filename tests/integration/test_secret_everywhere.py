"""A key a stage reaches for (``os.environ``) never lands in anything pop-nb writes: a canary sent through
every writer a cell can reach (outputs, flags, validation errors, artifacts, products, a raised error,
the events and status that report it) is masked in every file of the job, however JSON spells it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Project, pop

KEY = "sk-canary-7d1e9a0b4c2f8e6d5a3b"
ODD = 'pa"ss\\wörd-0xC0FFEE'  # a password JSON must escape: a quote, a backslash, a non-ASCII letter

LEAKS = """
import os
k, odd = os.environ["OPENAI_API_KEY"], os.environ["DB_PASSWORD"]
pop.flag("leaked", k)
pop.invalid()  # nothing invalid; the flag file is written again
pop.write_artifact("note.txt", f"key={k} odd={odd}\\n")
pop.write_artifact("data.json", {"k": k, k: "as a key", "odd": odd})
pop.write_artifact("blob.bin", b"\\xff\\xfe" + k.encode())  # binary: written as given
pop.output({"k": k, "nested": [{"deep": k}], k: "a key", "odd": odd, "text": f"the key is {k}.",
            "rows": [{"name": "key", "value": k}]})
# below Python: the kernel's own descriptors (ipykernel copies these to the notebook and to them)
import subprocess, sys
os.write(2, f"raw {k}\\n".encode())
subprocess.run(["sh", "-c", 'echo "sub $OPENAI_API_KEY"; echo "err $DB_PASSWORD" >&2'], check=True)
subprocess.run(["echo", "given", k], stdout=sys.__stdout__.fileno(), check=True)  # descriptor 1
"""


def forms(secret: str) -> list[bytes]:
    """The secret as bytes, and as JSON spells it (escaped, ASCII-only or not)."""
    return [
        secret.encode(),
        json.dumps(secret)[1:-1].encode(),
        json.dumps(secret, ensure_ascii=False)[1:-1].encode(),
    ]


def holding(folder: Path, secret: str, skip: set[str] = frozenset()) -> list[str]:  # type: ignore[assignment]
    return [
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and p.name not in skip and any(f in p.read_bytes() for f in forms(secret))
    ]


def test_a_canary_key_sent_through_every_writer_is_masked_in_every_file(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("DB_PASSWORD", ODD)
    project.pipeline(
        "leaky",
        {
            "t": {"cells": [("inference", LEAKS)]},
            "boom": {
                "needs": ["t"],
                "on_failure": "continue",
                "cells": [
                    ("inference", "import os\nraise ValueError('refused ' + os.environ['OPENAI_API_KEY'])")
                ],
            },
        },
        products=[
            {"path": "report.md", "from": "t", "key": "text"},
            {"path": "out.json", "from": "t"},
            {"path": "rows.csv", "from": "t", "key": "rows"},
            {"path": "files.zip", "from": "t"},
        ],
    )
    job = project.run("leaky", {"topic": "canaries"})
    assert job.state == "done", job.status.error
    status = job.status
    assert status.tasks["boom"].state == "failed"
    assert "refused [REDACTED]" in (status.tasks["boom"].error.message if status.tasks["boom"].error else "")

    assert holding(job.path, KEY, skip={"blob.bin", "files.zip"}) == []
    assert holding(job.path, ODD, skip={"files.zip"}) == []
    out = json.loads((job.path / "products/out.json").read_text())
    assert out["k"] == "[REDACTED]" and out["[REDACTED]"] == "a key" and out["odd"] == "[REDACTED]"
    assert out["nested"] == [{"deep": "[REDACTED]"}]
    assert (job.path / "products/report.md").read_text() == "the key is [REDACTED]."
    assert "key,[REDACTED]" in (job.path / "products/rows.csv").read_text()
    artifacts = job.path / "files/artifacts/t"
    assert (artifacts / "note.txt").read_text() == "key=[REDACTED] odd=[REDACTED]\n"
    assert json.loads((artifacts / "data.json").read_text())["[REDACTED]"] == "as a key"
    assert (artifacts / "blob.bin").read_bytes() == b"\xff\xfe" + KEY.encode()  # binary, as given
    # what the kernel printed below Python still reaches runner.log, masked
    printed = (job.path / "runner.log").read_text()
    for line in ("raw [REDACTED]", "sub [REDACTED]", "err [REDACTED]", "given [REDACTED]"):
        assert line in printed, printed
    # every JSON file is still JSON after masking
    for path in job.path.rglob("*.json"):
        json.loads(path.read_text())
    for line in (job.path / "events.jsonl").read_text().splitlines():
        json.loads(line)
    # and what the CLI shows of the job
    shown = pop("status", job.id, "--json").stdout + pop("logs", job.id).stdout
    assert KEY not in shown and "refused [REDACTED]" in shown
