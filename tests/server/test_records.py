"""A job's files through ``/pop/api/jobs/<id>/file`` (what Lab's ``pop-job:`` drive reads): found by id
wherever the job's folder moves, read-only (cells trusted and locked, nothing written into the job), safe
against paths that try to leave the job, masked like every answer; and ``.../copy``, the editable copy."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from tests.conftest import Project
from tests.server.test_api import call, parse, wait_until

KEY = "sk-canary-0b7c1d9e4f2a6358c4d1"


@pytest.fixture
def jp_root_dir(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir(exist_ok=True)
    return root


async def _done_job(project: Project, jp_fetch: Any) -> dict[str, Any]:
    project.pipeline(
        "tiny",
        {
            "a": {
                "cells": [
                    (
                        "inference",
                        "pop.output(f\"# n is {pop.seed['n']}\")\n"
                        "from IPython.display import HTML\nHTML('<b>hi</b>')",
                    )
                ]
            }
        },
        products=[{"path": "out.md", "from": "a"}],
    )
    assert (await call(jp_fetch, "POST", "pop/api/jobs", {"pipeline": "tiny", "data": {"n": 7}, "id": "r1"}))[
        0
    ] == 201
    return await wait_until(jp_fetch, "r1", lambda j: j["place"] == "complete")


async def file(jp_fetch: Any, job: str, name: str, **params: Any) -> tuple[int, Any]:
    try:
        response = await jp_fetch("pop", "api", "jobs", job, "file", params={"path": name, **params})
    except HTTPClientError as exc:
        return exc.code, parse(exc.response.body if exc.response else b"")
    return response.code, parse(response.body)


async def test_a_stage_notebook_is_served_as_a_read_only_trusted_record_wherever_the_job_moves(
    project: Project, jp_fetch: Any
) -> None:
    job = await _done_job(project, jp_fetch)
    notebook = job["stages"][0]["notebook"]
    code, model = await file(jp_fetch, "r1", notebook)
    assert code == 200 and model["type"] == "notebook" and model["format"] == "json"
    assert model["path"] == f"r1/{notebook}" and model["name"] == "04-inference.ipynb"
    assert model["writable"] is False
    cells = model["content"]["cells"]
    code_cells = [c for c in cells if c["cell_type"] == "code"]
    assert code_cells and all(c["metadata"]["trusted"] is True for c in code_cells)
    assert all(c["metadata"]["editable"] is False and c["metadata"]["deletable"] is False for c in cells)
    assert any("<b>hi</b>" in json.dumps(c.get("outputs")) for c in code_cells)
    on_disk = json.loads((project.data / "complete/r1" / notebook).read_text())
    assert "trusted" not in json.dumps([c["metadata"] for c in on_disk["cells"]])  # served so, not written

    # the job moves (failed/, then back to current/ as a resume does): the same name still reads it
    for place in ("failed", "current"):
        (project.data / place).mkdir(exist_ok=True)
        old = next(project.data.glob("*/r1"))
        old.rename(project.data / place / "r1")
        code, again = await file(jp_fetch, "r1", notebook, content="0")
        assert code == 200 and again["content"] is None and again["type"] == "notebook", place

    # the folder, without hidden entries (what Lab keeps beside an opened file)
    (project.data / "current/r1/products/.ipynb_checkpoints").mkdir()
    code, listing = await file(jp_fetch, "r1", "products")
    assert code == 200 and listing["type"] == "directory"
    assert [e["name"] for e in listing["content"]] == ["out.md"]
    code, md = await file(jp_fetch, "r1", "products/out.md")
    assert (
        code == 200
        and md["format"] == "text"
        and md["mimetype"] == "text/markdown"
        and md["content"].startswith("# n is 7")
    )
    # reading wrote nothing into the job
    assert not list((project.data / "current/r1").rglob(".ipynb_checkpoints/*"))


async def test_paths_that_leave_the_job_are_refused_and_the_server_stays_up(
    project: Project, jp_fetch: Any, tmp_path: Path
) -> None:
    await _done_job(project, jp_fetch)
    secret = tmp_path / "outside.txt"
    secret.write_text("not yours")
    os.symlink(secret, project.data / "complete/r1/link.txt")
    for path, status, name in [
        ("../../pipelines/tiny/pipeline.yaml", 400, "RequestError"),
        ("/etc/passwd", 400, "RequestError"),
        ("tasks\\..\\..\\x", 400, "RequestError"),
        ("a\x00b", 404, "JobFileNotFound"),  # Tornado reads a control character in a query as a space
        ("x" * 5000, 400, "RequestError"),
        ("link.txt", 400, "RequestError"),
        ("tasks/a/nothing.ipynb", 404, "JobFileNotFound"),
    ]:
        code, body = await file(jp_fetch, "r1", path)
        assert (code, body["error"]) == (status, name), path
        assert "r1" in body["message"]
    code, body = await file(jp_fetch, "nope", "seed.json")
    assert (code, body["error"]) == (404, "JobNotFound")
    code, body = await file(jp_fetch, "r1", "seed.json", raw="1")
    assert code == 200  # still up


async def test_raw_bytes_and_a_key_in_a_file_is_masked_in_every_answer(
    project: Project, jp_fetch: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    await _done_job(project, jp_fetch)
    job_dir = project.data / "complete/r1"
    (job_dir / "products/leak.md").write_text(f"the key is {KEY}\n")  # written some other way
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    (job_dir / "products/chart.png").write_bytes(png)
    code, md = await file(jp_fetch, "r1", "products/leak.md")
    assert code == 200 and KEY not in json.dumps(md) and "[REDACTED]" in md["content"]
    response = await jp_fetch(
        "pop", "api", "jobs", "r1", "file", params={"path": "products/leak.md", "raw": "1"}
    )
    assert KEY.encode() not in response.body and b"[REDACTED]" in response.body
    assert response.headers["Content-Security-Policy"].startswith("sandbox")
    code, image = await file(jp_fetch, "r1", "products/chart.png")
    assert image["format"] == "base64" and base64.b64decode(image["content"]) == png
    response = await jp_fetch(
        "pop", "api", "jobs", "r1", "file", params={"path": "products/chart.png", "raw": "1"}
    )
    assert response.body == png and response.headers["Content-Type"] == "image/png"


async def test_open_a_copy_makes_an_editable_notebook_under_scratch_and_never_overwrites_one(
    project: Project, jp_fetch: Any
) -> None:
    job = await _done_job(project, jp_fetch)
    notebook = job["stages"][0]["notebook"]
    code, made = await call(jp_fetch, "POST", "pop/api/jobs/r1/copy", {"path": notebook})
    assert code == 201 and made["lab_path"] == "scratch/r1/a-04-inference.ipynb"
    copy = project.root / made["lab_path"]
    copied = json.loads(copy.read_text())
    assert copied["cells"] and "editable" not in json.dumps([c["metadata"] for c in copied["cells"]])
    assert copied["metadata"].get("papermill")  # the executed notebook, parameters and all: it replays
    copy.write_text(copy.read_text().replace("pop.output", "pop.output  # edited"))
    code, second = await call(jp_fetch, "POST", "pop/api/jobs/r1/copy", {"path": notebook})
    assert code == 201 and second["lab_path"] == "scratch/r1/a-04-inference-2.ipynb"
    assert "# edited" in copy.read_text()  # the first copy keeps its edits
    for body, status in [
        ({"path": "seed.json"}, 400),
        ({"path": "../x.ipynb"}, 400),
        ({}, 400),
        ({"path": 3}, 400),
    ]:
        assert (await call(jp_fetch, "POST", "pop/api/jobs/r1/copy", body))[0] == status, body
    with pytest.raises(HTTPClientError):
        await jp_fetch("pop", "api", "jobs", "r1", "copy", method="GET")


async def test_a_running_stage_is_followed_by_its_log_and_its_notebook_is_written_on_request(
    project: Project, jp_fetch: Any, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    cell = (
        "import pathlib, time\nprint('line one', flush=True)\n"
        f"while not pathlib.Path({str(go)!r}).exists():\n"
        "    print('.', end='', flush=True)\n    time.sleep(0.1)\n"
        "print('\\nline two')\npop.output(2)"
    )
    project.pipeline("live", {"a": {"cells": [("inference", cell)]}})
    assert (await call(jp_fetch, "POST", "pop/api/jobs", {"pipeline": "live", "id": "l1"}))[0] == 201
    await wait_until(jp_fetch, "l1", lambda j: j["current_stage"] == "inference")

    async def log(offset: int = 0) -> dict[str, Any]:
        params = {"task": "a", "stage": "inference", "offset": str(offset)}
        response = await jp_fetch("pop", "api", "jobs", "l1", "log", params=params)
        return json.loads(response.body)

    for _ in range(100):
        first = await log()
        if "line one" in first["text"]:
            break
        await asyncio.sleep(0.1)
    assert first["state"] == "running" and first["text"].startswith("line one")
    assert first["text"].endswith("\n")  # whole lines only while it runs
    notebook = project.data / "current/l1/tasks/a/04-inference.ipynb"
    assert not notebook.exists()  # a stage writes its notebook when it ends, unless asked
    code, snap = await call(jp_fetch, "POST", "pop/api/jobs/l1/snapshot", {"task": "a", "stage": "inference"})
    assert code == 200 and snap["saved"] is True and snap["notebook"] == "tasks/a/04-inference.ipynb"
    assert "line one" in notebook.read_text()  # the notebook as it stands, outputs so far
    code, record = await file(jp_fetch, "l1", snap["notebook"])  # and the record reads it
    assert code == 200 and "line one" in json.dumps(record["content"])

    go.write_text("go")
    await wait_until(jp_fetch, "l1", lambda j: j["place"] == "complete")
    rest = await log(first["offset"])
    assert rest["state"] == "done" and "line two" in rest["text"] and "line one" not in rest["text"]
    assert rest["offset"] == rest["size"]
    # bad names: 400 naming what is wrong; the server stays up
    for params, status in [
        ({"task": "a", "stage": "nonsense"}, 400),
        ({"task": "zz", "stage": "inference"}, 400),
        ({"task": "a", "stage": "inference", "offset": "x"}, 400),
    ]:
        with pytest.raises(HTTPClientError) as refused:
            await jp_fetch("pop", "api", "jobs", "l1", "log", params=params)
        assert refused.value.code == status, params
    code, done = await call(jp_fetch, "POST", "pop/api/jobs/l1/snapshot", {"task": "a", "stage": "inference"})
    assert code == 200 and done["saved"] is True  # ended: its notebook as it is


async def test_a_job_downloads_as_one_zip(project: Project, jp_fetch: Any) -> None:
    import io
    import zipfile

    await _done_job(project, jp_fetch)
    response = await jp_fetch("pop", "api", "jobs", "r1", "zip")
    assert response.headers["Content-Type"] == "application/zip"
    assert response.headers["Content-Disposition"] == 'attachment; filename="r1.zip"'
    with zipfile.ZipFile(io.BytesIO(response.body)) as archive:
        assert "r1/tasks/a/04-inference.ipynb" in archive.namelist()
    with pytest.raises(HTTPClientError) as missing:
        await jp_fetch("pop", "api", "jobs", "nope", "zip")
    assert missing.value.code == 404
