"""A job table's server side: sorted pages (created, started, ended, duration, cost, state), a job's
seed and each stage's cost in its detail, archive (out of the list, still readable) / restore / delete
(ended jobs only), and the whole job as one zip, masked like every answer."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from pop_nb import service
from pop_nb.errors import JobNotFound, JobStateError, PopError
from tests.conftest import Project

KEY = "sk-canary-3a9f1e7d5c2b8a604e1f"


def _jobs(project: Project) -> None:
    project.pipeline(
        "costly",
        {"a": {"cells": [("inference", "pop.output(pop.chat(pop.seed['ask']).content)")]}},
        llm={"model": "mock/gpt-4o", "mock_responses": {"*": {"inference": "An answer, of some length."}}},
    )
    project.pipeline("free", {"a": {}})
    project.run("free", seed={"pipeline": "free", "name": "Free one", "data": {}}, job_id="j-free")
    project.run("costly", {"ask": "Write a long essay on tides"}, job_id="j-costly")
    project.run("costly", {"ask": "Hi"}, job_id="j-cheap")


def test_pages_sort_on_each_column_and_refuse_an_unknown_one(project: Project) -> None:
    _jobs(project)
    settings = project.settings()
    ids = lambda sort: [j.id for j in service.list_jobs(settings, sort=sort).jobs]  # noqa: E731
    assert ids("-created") == ["j-cheap", "j-costly", "j-free"]  # newest first, as before
    assert ids("created") == ["j-free", "j-costly", "j-cheap"]
    by_cost = ids("-cost")
    assert by_cost[0] == "j-costly" and by_cost[-1] == "j-free"
    assert ids("name") == ["j-free", "j-cheap", "j-costly"]  # by name, else id: "Free one" < "j-..."
    assert set(ids("-duration")) == set(ids("started")) == {"j-free", "j-costly", "j-cheap"}
    with pytest.raises(PopError, match="sort on one of created, started, ended, duration, cost"):
        service.list_jobs(settings, sort="price")


def test_the_detail_has_the_seed_and_each_stages_cost(project: Project) -> None:
    _jobs(project)
    detail = service.get_job(project.settings(), "j-costly")
    assert (
        detail.seed["data"] == {"ask": "Write a long essay on tides"} and detail.seed["pipeline"] == "costly"
    )
    [stage] = [s for s in detail.stages if s.stage == "inference"]
    assert stage.calls == 1 and stage.cost_usd == pytest.approx(detail.totals.cost_usd) and stage.cost_usd > 0


def test_archive_restore_delete(project: Project) -> None:
    _jobs(project)
    settings = project.settings()
    archived = service.archive(settings, "j-free")
    assert archived.place == "archive" and archived.actions == ["restore", "delete"]
    assert (project.data / "archive/j-free/tasks-status.json").is_file()
    assert "j-free" not in [j.id for j in service.list_jobs(settings).jobs]  # out of the way
    assert [j.id for j in service.list_jobs(settings, archived=True).jobs] == ["j-free"]
    assert service.get_job(settings, "j-free").outputs == {"a": {"ok": True}}  # still readable
    assert service.list_jobs(settings).jobs[0].actions == ["resume", "archive", "delete"]
    restored = service.restore(settings, "j-free")
    assert restored.place == "complete" and (project.data / "complete/j-free").is_dir()
    events = [
        json.loads(line) for line in (project.data / "complete/j-free/events.jsonl").read_text().splitlines()
    ]
    assert [e["status"] for e in events if e["kind"] == "job"][-2:] == ["archived", "restored"]

    gone = service.delete(settings, "j-free")
    assert gone.place == "complete" and gone.files > 5 and gone.bytes > 0
    assert not (project.data / "complete/j-free").exists() and not list(
        project.data.glob("complete/.deleting-*")
    )
    with pytest.raises(JobNotFound):
        service.get_job(settings, "j-free")

    # a job that has not ended is neither archived nor deleted
    project.pipeline("gated", {"g": {"gate": True}})
    project.run("gated", job_id="j-wait")
    for act in (service.archive, service.delete):
        with pytest.raises(JobStateError, match="only an ended job"):
            act(settings, "j-wait")
    assert (project.data / "current/j-wait").is_dir()


def test_a_job_as_one_zip_with_its_text_masked(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    from pop_nb.service.records import zip_job

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    _jobs(project)
    job_dir = project.data / "complete/j-costly"
    (job_dir / "products").mkdir(exist_ok=True)
    (job_dir / "products/leak.md").write_text(f"key {KEY}\n")
    (job_dir / ".ipynb_checkpoints").mkdir()
    (job_dir / ".ipynb_checkpoints/x.ipynb").write_text("{}")
    buffer = io.BytesIO()
    count = zip_job(project.settings(), "j-costly", buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        names = archive.namelist()
        assert len(names) == count and "j-costly/tasks-status.json" in names
        assert "j-costly/tasks/a/04-inference.ipynb" in names and "j-costly/usage.jsonl" in names
        assert not [n for n in names if "/." in n]
        assert archive.read("j-costly/products/leak.md") == b"key [REDACTED]\n"
        assert json.loads(archive.read("j-costly/seed.json"))["data"]["ask"].startswith("Write")
