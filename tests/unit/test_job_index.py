"""The job index behind `GET /pop/api/jobs` and `pop status`: finished jobs come from a shelf kept in
`.index/`, checked against their folders without reading a status file; it follows jobs that end, move,
come back, are replaced or removed; it skips a status caught mid-write, and sums finished jobs exactly."""

from __future__ import annotations

import json
import os
import shutil
import time
import typing
import zlib
from pathlib import Path

import pytest

from pop_nb import service
from pop_nb.models.status import JobStatus, StatusHead, TaskGate, TaskStatus
from pop_nb.store.job_index import FOLDER, VERSION, JobIndex
from pop_nb.store.jobs import JobFolder, JobStore
from pop_nb.store.listing import SETTLE_NS
from tests.conftest import Project
from tests.unit.test_analytics import write_job


def settle(*folders: Path) -> None:
    """Make folders look unchanged for longer than a coarse clock's tick (as they would a while later)."""
    past = time.time_ns() - 2 * SETTLE_NS
    for folder in folders:
        os.utime(folder, ns=(past, past))


def corrupt(status_file: Path) -> None:
    """Break a status file in place, leaving its folder's listing alone: only a reader that opens it
    notices."""
    status_file.write_text('{"job_id": "broken", "pipel')


def finish(data: Path, job: str, cost: float) -> None:
    """What a runner's close does to a job in current/: final status, the move, the runs.jsonl line."""
    store = JobStore(data)
    folder = JobFolder(data / "current" / job)
    status = folder.read_status()
    status.state = "done"
    status.tasks["a"].usage.cost_usd = cost
    status.refresh_progress()
    store.close(folder, status)


def costs(index: JobIndex) -> dict[str, float]:
    return {e.job_id: e.totals[4] for e in index.refresh()}


def test_a_new_process_answers_from_the_shelf_without_reading_one_status(tmp_path: Path) -> None:
    for i in range(20):
        write_job(tmp_path, "complete", f"j{i:02d}", "done", cost=0.5)
    write_job(tmp_path, "failed", "f1", "failed")
    settle(tmp_path / "complete", tmp_path / "failed")
    assert len(JobIndex(tmp_path).refresh()) == 21  # the first look reads them all and keeps the shelf
    assert (tmp_path / FOLDER / "complete.json").is_file()

    corrupt(tmp_path / "complete" / "j03" / "tasks-status.json")
    cold = JobIndex(tmp_path)
    assert costs(cold)["j03"] == 0.5  # answered from the shelf: the broken file was never opened
    assert cold.counts("complete")["count"] == 20
    assert cold.counts("complete")["totals"][4] == pytest.approx(20 * 0.5)

    # a job that comes in is listed (the folder changed), and only it is read
    write_job(tmp_path, "complete", "j99", "done", cost=2.0)
    again = JobIndex(tmp_path)
    assert costs(again)["j99"] == 2.0 and costs(again)["j03"] == 0.5


def test_it_follows_jobs_that_end_move_come_back_are_replaced_or_removed(tmp_path: Path) -> None:
    for i in range(5):
        write_job(tmp_path, "complete", f"j{i}", "done", cost=1.0)
    write_job(tmp_path, "current", "live", "running", cost=0.1)
    warm = JobIndex(tmp_path)
    assert costs(warm) == {**{f"j{i}": 1.0 for i in range(5)}, "live": 0.1}

    finish(tmp_path, "live", 0.3)  # current/ -> complete/, one runs.jsonl line
    assert {e.job_id: e.place for e in warm.refresh()}["live"] == "complete"
    assert costs(warm)["live"] == 0.3

    # resumed and ended again in the same place with no reader in between: same name, same inode; the
    # runs.jsonl line it gained is what says to read it again
    settle(tmp_path / "complete")
    JobIndex(tmp_path).refresh()
    store = JobStore(tmp_path)
    store.move(JobFolder(tmp_path / "complete" / "j1"), "current")
    finish(tmp_path, "j1", 7.0)
    settle(tmp_path / "complete")
    assert costs(JobIndex(tmp_path))["j1"] == 7.0
    assert costs(warm)["j1"] == 7.0

    # replaced by another folder of the same name (another inode): read again; removed: gone
    replacement = write_job(tmp_path, "scratch", "j2", "done", cost=5.0)
    shutil.rmtree(tmp_path / "complete" / "j2")
    os.rename(replacement, tmp_path / "complete" / "j2")
    shutil.rmtree(tmp_path / "complete" / "j3")
    for index in (warm, JobIndex(tmp_path)):
        found = costs(index)
        assert found["j2"] == 5.0 and "j3" not in found

    # moved to failed/: listed there, once
    shutil.move(str(tmp_path / "complete" / "j4"), str(tmp_path / "failed" / "j4"))
    assert [e.place for e in warm.refresh() if e.job_id == "j4"] == ["failed"]


def test_a_status_caught_half_written_is_left_out_until_whole(project: Project) -> None:
    settings = project.settings()
    folder = write_job(project.data, "current", "busy", "running")
    whole = (folder / "tasks-status.json").read_bytes()
    assert service.list_jobs(settings).total == 1
    (folder / "tasks-status.json").write_text('{"job_id": "busy", "pipel')
    assert service.list_jobs(settings).total == 0  # nothing raises
    (folder / "tasks-status.json").write_bytes(whole)
    assert [j.id for j in service.list_jobs(settings).jobs] == ["busy"]


def test_a_broken_or_unwritable_shelf_is_only_a_cache(tmp_path: Path) -> None:
    for i in range(3):
        write_job(tmp_path, "complete", f"j{i}", "done", cost=1.0)
    settle(tmp_path / "complete")
    JobIndex(tmp_path).refresh()
    shelf = tmp_path / FOLDER / "complete.json"
    whole = shelf.read_bytes()
    assert b'"cost_usd":[1.0,1.0,1.0]' in whole
    body = whole.partition(b"\n")[2]
    hostile = (
        b'{"version":%d,"place":"complete","folder":"x","made_ns":"y","runs":{"a":1},"unread":[]}\n' % VERSION
    )
    wrong = b'{"version":%d,"place":"complete","folder":[1,2],"made_ns":true,"runs":[0,"9"]}\n' % VERSION
    newest, _, every = body.partition(b"\n")

    def signed(lines: bytes) -> bytes:  # a shelf whose crc holds, so its lines are what is checked
        head = json.loads(whole.partition(b"\n")[0])
        head.update(crc=zlib.crc32(lines), made_ns=0)
        return json.dumps(head).encode() + b"\n" + lines

    for torn in (
        shelf.read_bytes()[:-40],
        b'{"version": 999}\n[]',
        b"\x00" * 10,
        b"[" * 100_000,
        hostile + body,
        wrong + body,
        b'{"version":%d,"place":"complete"}\n{"dir":["j0"],"inode":"x"}\n' % VERSION,
        signed(b'{"dir":["j0"],"inode":"x"}\n' + every),  # a broken newest line
        signed(newest + b"\n" + b'{"dir":["j0"]}\n'),  # a broken body
        signed(b"[]\n" + every),
        signed(
            newest + b"\n" + every.replace(b'"name":["",', b'"name":[null,', 1)  # a name that is no text
        ),
        whole.replace(b'"cost_usd":[1.0,1.0,1.0]', b'"cost_usd":["a","b","c"]'),  # edited: its crc fails
    ):
        shelf.write_bytes(torn)
        assert costs(JobIndex(tmp_path)) == {"j0": 1.0, "j1": 1.0, "j2": 1.0}  # rebuilt from the folders
        assert all(isinstance(e.name, str) for e in JobIndex(tmp_path).refresh())  # a search can lower() it
    shutil.rmtree(tmp_path / FOLDER)
    (tmp_path / FOLDER).write_text("not a folder")  # the shelf cannot be written: answered anyway
    assert sorted(costs(JobIndex(tmp_path))) == ["j0", "j1", "j2"]


def test_a_replaced_or_cut_runs_log_means_every_job_is_read_again(tmp_path: Path) -> None:
    for i in range(3):
        write_job(tmp_path, "complete", f"j{i}", "done", cost=1.0)
    (tmp_path / "complete" / "runs.jsonl").write_text('{"job": "j0"}\n{"job": "j1"}\n')
    settle(tmp_path / "complete")
    JobIndex(tmp_path).refresh()
    status_file = tmp_path / "complete" / "j2" / "tasks-status.json"
    status = json.loads(status_file.read_text())
    status["totals"]["cost_usd"] = 4.0
    status_file.write_text(json.dumps(status))
    (tmp_path / "complete" / "runs.jsonl").write_text('{"job": "j0"}\n')  # cut: who ended since is unknown
    settle(tmp_path / "complete")
    assert costs(JobIndex(tmp_path))["j2"] == 4.0


def test_pop_status_sums_every_finished_job_and_lists_the_latest_failures(project: Project) -> None:
    for i in range(12):
        write_job(project.data, "complete", f"d{i}", "done", cost=0.25)
    for i in range(4):
        folder = write_job(project.data, "failed", f"f{i}", "failed", cost=9.0)
        status = json.loads((folder / "tasks-status.json").read_text())
        status["ended_at"] = f"2026-11-2{i}T10:00:00.000+00:00"
        (folder / "tasks-status.json").write_text(json.dumps(status))
    view = service.overview(project.settings(), recent=2)
    assert view.done == 12 and view.latest_done is not None
    assert view.done_totals.cost_usd == pytest.approx(12 * 0.25)
    assert [j.id for j in view.failed] == ["f3", "f2"] and view.failed_count == 4


def test_the_status_head_is_the_status_s_own_fields() -> None:
    head = typing.get_type_hints(StatusHead)
    whole = typing.get_type_hints(JobStatus)
    assert {name: whole[name] for name in head if name != "tasks"} == {
        n: t for n, t in head.items() if n != "tasks"
    }
    gate = typing.get_type_hints(TaskGate)
    assert {name: typing.get_type_hints(TaskStatus)[name] for name in gate} == gate  # a task: its gate


def test_a_summary_from_the_head_is_the_summary_from_the_whole_status(tmp_path: Path) -> None:
    folder = write_job(tmp_path, "current", "gated", "waiting")
    status = JobFolder(folder).read_status()
    status.tasks["a"].gate = "waiting"
    status.error = None
    (folder / "tasks-status.json").write_text(status.model_dump_json(indent=2))
    entry = JobIndex(tmp_path).entries("current")[0]
    from_head = service.summary(entry.folder, entry.head())
    assert from_head == service.summary(entry.folder, entry.folder.read_status())
    assert from_head.waiting_gates == ["a"]


def test_the_shelf_is_written_when_it_lags_by_many_jobs_not_at_every_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pop_nb.store import job_index

    monkeypatch.setattr(job_index, "SAVE_AFTER", 3)
    for i in range(5):
        write_job(tmp_path, "complete", f"j{i}", "done")
    JobIndex(tmp_path).refresh()
    shelf = tmp_path / FOLDER / "complete.json"
    written = shelf.read_bytes()
    write_job(tmp_path, "complete", "new-1", "done")
    assert "new-1" in costs(JobIndex(tmp_path))  # answered: the folder listed, the one new job read
    assert shelf.read_bytes() == written  # but a shelf one job behind is not written again (0.8 s at 100k)
    for n in (2, 3):
        write_job(tmp_path, "complete", f"new-{n}", "done")
    assert {"new-1", "new-2", "new-3"} <= set(costs(JobIndex(tmp_path)))
    assert shelf.read_bytes() != written and b"new-3" in shelf.read_bytes()  # three behind: written


def test_the_first_pages_newest_first_parse_only_the_newest_and_are_the_full_sort_s_pages(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default list's first pages (``pop status --json``, the Lab's jobs list) come from each
    finished place's newest entries, kept on a line of their own; the pages past them from every entry.
    Either way the order is the same, ties in creation broken by id, page after page."""
    from pop_nb.service import queries
    from pop_nb.store import job_index

    monkeypatch.setattr(job_index, "NEWEST", 6)
    monkeypatch.setattr(queries, "NEWEST", 6)
    data = project.data
    made = {}
    for i in range(14):
        place = "current" if i % 7 == 3 else "failed" if i % 5 == 1 else "complete"
        job = f"j{(i * 5) % 14:02d}"
        created = f"2026-11-{1 + i // 3:02d}T10:00:00.000+00:00"  # threes made in the same instant
        status_file = write_job(data, place, job, "running" if place == "current" else "done") / (
            "tasks-status.json"
        )
        status = json.loads(status_file.read_text())
        status["created_at"] = made[job] = created
        status_file.write_text(json.dumps(status))
    expected = sorted(made, key=lambda job: (made[job], job), reverse=True)
    settle(data / "complete", data / "failed")
    JobIndex(data).refresh()  # the shelves are written

    def pages() -> list[str]:
        queries._indexes.clear()  # a new process
        found, totals = [], set()
        for offset in range(0, 16, 4):
            page = service.list_jobs(project.settings(), offset=offset, limit=4)
            totals.add(page.total)
            found += [job.id for job in page.jobs]
        assert totals == {len(found)}
        return found

    assert pages() == expected
    fresh = JobIndex(data)
    top, total = fresh.newest(5)
    assert [e.job_id for e in top] == expected[:5] and total == 14
    assert all(shelf._entries is None for shelf in fresh._shelves.values())  # no other entry parsed

    finish(data, "j01", 1.0)  # current/ -> complete/: the shelf is not fresh, its entries are read
    assert pages() == expected
    (data / "complete" / "j07").rename(data / "failed" / "j07")
    assert pages() == expected
    shutil.rmtree(data / "failed" / "j07")
    assert pages() == [job for job in expected if job != "j07"]


def test_a_search_or_a_filter_in_a_new_process_makes_only_the_entries_it_finds(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Filtering runs over the shelf's columns, and only the jobs kept become entries; what it finds is
    what filtering every entry finds, with jobs in current/ and a broken shelf too."""
    from pop_nb.service import queries

    data = project.data
    for i in range(30):
        place = "current" if i % 10 == 4 else "failed" if i % 4 == 1 else "complete"
        write_job(
            data,
            place,
            f"job-{i:02d}",
            "running" if place == "current" else "failed" if place == "failed" else "done",
        )
    settle(data / "complete", data / "failed")
    JobIndex(data).refresh()
    every = {e.job_id: e for e in JobIndex(data).refresh()}
    cases = [
        ({"search": "JOB-1"}, lambda e: "job-1" in e.job_id),
        ({"state": "failed"}, lambda e: e.state == "failed"),
        ({"state": "done", "search": "2"}, lambda e: e.state == "done" and "2" in e.job_id),
        ({"pipeline": "alpha", "search": "-0"}, lambda e: e.job_id.startswith("job-0")),
        ({"pipeline": "beta"}, lambda e: False),
        ({"state": "", "search": ""}, lambda e: True),
    ]
    for query, wanted in cases:
        queries._indexes.clear()  # a new process
        page = service.list_jobs(project.settings(), limit=100, sort="created", **query)
        expected = sorted((e for e in every.values() if wanted(e)), key=lambda e: (e.created_at, e.job_id))
        assert [j.id for j in page.jobs] == [e.job_id for e in expected], query
        assert page.total == len(expected)
        shelves = queries._indexes[(project.settings().data, False)]._shelves.values()
        made = [shelf._entries is not None for shelf in shelves]
        assert any(made) == (not any(query.values())), query  # a filter makes none but those it finds

    shelf_file = data / FOLDER / "failed.json"
    head, _, lines = shelf_file.read_bytes().partition(b"\n")
    newest, _, body = lines.partition(b"\n")
    broken = newest + b"\n" + body.replace(b'"inode":[', b'"inode":["x",')
    fixed = json.loads(head)
    fixed["crc"] = zlib.crc32(broken)
    shelf_file.write_bytes(json.dumps(fixed).encode() + b"\n" + broken)  # columns of unequal length
    queries._indexes.clear()
    page = service.list_jobs(project.settings(), limit=100, state="failed")
    assert sorted(j.id for j in page.jobs) == sorted(e.job_id for e in every.values() if e.state == "failed")


def test_folders_that_are_no_job_are_not_listed_even_with_a_job_s_status_inside(tmp_path: Path) -> None:
    """A copy of a job named in no encoding, a move's leftover ``<job>.old-<pid>``, a symlink: each
    holds a status naming the job, and each was listed as a second one (its cost counted twice)."""
    job = write_job(tmp_path, "complete", "j1", "done", cost=0.5)
    running = write_job(tmp_path, "current", "r1", "running", cost=0.25)
    for folder in (job, running):
        shutil.copytree(
            folder, os.path.join(os.fsencode(folder.parent), b"bad-\xff").decode(errors="surrogateescape")
        )
        shutil.copytree(folder, folder.with_name(f"{folder.name}.old-123"))
        folder.with_name("a-link").symlink_to(folder)
    index = JobIndex(tmp_path)
    assert sorted(e.job_id for e in index.refresh()) == ["j1", "r1"]
    assert index.counts("complete")["count"] == 1 and sum(costs(index).values()) == 0.75
