"""Job files gathered for DuckDB in rounds, the next one read on a thread: whatever way the caller
leaves, no copy and no thread is left behind, and no file in a job folder can hold the reading up."""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

import pytest

from pop_nb.analytics import Analytics, folders
from tests.unit.test_analytics import write_job


@pytest.fixture
def copies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the rounds' copies go; a round is one job folder, so every test has several rounds."""
    where = tmp_path / "tmp"
    where.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(where))
    monkeypatch.setattr(folders, "GATHER_ROUND", 1)
    return where


def job_folders(data: Path, n: int) -> list[str]:
    return [str(write_job(data, "complete", f"job-{i}", "done")) for i in range(n)]


def gatherers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "pop-gather"]


def test_every_round_is_read_and_its_copies_go_when_the_next_is_asked_for(
    tmp_path: Path, copies: Path
) -> None:
    seen = []
    for files in folders.rounds(job_folders(tmp_path / "data", 4), ["usage.jsonl", "tasks-status.json"]):
        assert all(Path(f).is_file() for f in files["usage.jsonl"] + files["tasks-status.json"])
        seen.append(b"".join(Path(f).read_bytes() for f in files["usage.jsonl"]))
        assert len(list(copies.iterdir())) <= 2  # this round's, and the one read ahead
    assert [s.count(b"\n") for s in seen] == [1, 1, 1, 1]
    assert list(copies.iterdir()) == [] and gatherers() == []


def test_a_caller_that_stops_early_leaves_no_copies_and_no_thread(tmp_path: Path, copies: Path) -> None:
    rounds = folders.rounds(job_folders(tmp_path / "data", 5), ["usage.jsonl"])
    next(rounds)
    rounds.close()  # as a `for` left by an exception or a break does
    assert list(copies.iterdir()) == [] and gatherers() == []


def test_a_round_that_cannot_be_read_raises_in_the_caller_and_leaves_nothing(
    tmp_path: Path, copies: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = folders._read

    def failing(path: str) -> bytes | None:
        if "job-3" in path:
            raise PermissionError(13, "Permission denied", path)
        return real(path)

    monkeypatch.setattr(folders, "_read", failing)
    got = []
    with pytest.raises(PermissionError, match="job-3"):
        for files in folders.rounds(job_folders(tmp_path / "data", 6), ["usage.jsonl"]):
            got.append(files)
    assert len(got) == 3 and list(copies.iterdir()) == [] and gatherers() == []


def test_a_named_pipe_or_a_folder_in_place_of_a_log_reads_as_no_lines(tmp_path: Path, copies: Path) -> None:
    """Opening a pipe for reading waits for a writer: a pipe put where a log belongs would hold every
    refresh (and ``pop costs``) forever. It reads as empty, as a folder in a log's place does."""
    data = tmp_path / "data"
    piped, walled = (Path(f) for f in job_folders(data, 2))
    (piped / "usage.jsonl").unlink()
    os.mkfifo(piped / "usage.jsonl")
    (walled / "events.jsonl").unlink()
    (walled / "events.jsonl").mkdir()
    analytics = Analytics(data, snapshot=False)
    assert analytics.refresh() == 2
    calls = analytics.query("SELECT job, count(*) AS n FROM llm_calls GROUP BY job")
    assert calls == [{"job": "job-1", "n": 1}]
    events = analytics.query("SELECT job, count(*) AS n FROM events GROUP BY job")
    assert events == [{"job": "job-0", "n": 1}]
    assert len(analytics.query("SELECT job FROM jobs")) == 2


@pytest.mark.parametrize("name", ["plain", 'quote"back\\slash', "naïve tab\there"])
def test_a_data_folder_named_with_any_character_gives_each_job_its_place_and_path(
    tmp_path: Path, name: str
) -> None:
    """The path each status is tagged with is written as a JSON string: quoted as it is when it can
    be, escaped when it holds a quote, a backslash, a control or a non-ASCII character."""
    data = tmp_path / name
    done = write_job(data, "complete", "a", "done")
    running = write_job(data, "current", "b", "running")
    analytics = Analytics(data, snapshot=False)
    analytics.refresh()
    rows = analytics.query("SELECT job, place, path FROM jobs ORDER BY job")
    assert rows == [
        {"job": "a", "place": "complete", "path": str(done)},
        {"job": "b", "place": "current", "path": str(running)},
    ]


def test_folders_read_by_many_threads_when_the_disk_is_slow_make_the_same_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow slice (here: any) has the next ones read by a thread per part, and one now and then by
    one thread again: the copies, and so the tables, are those of one thread reading everything."""
    from tests.unit.test_analytics_snapshot import from_files

    data = tmp_path / "data"
    for i in range(23):
        write_job(data, "complete" if i % 4 else "failed", f"job-{i:02d}", "done" if i % 4 else "failed")
    with open(data / "complete" / "job-05" / "usage.jsonl", "a") as fh:
        fh.write('{"job": "job-05", "request_ha')  # a torn last line: left out either way
    whole = from_files(data)
    readers: list[str] = []
    real = folders._read_into

    def watched(some: list[str], names: list[str], pieces: list[list[bytes]]) -> None:
        readers.append(threading.current_thread().name)
        real(some, names, pieces)

    monkeypatch.setattr(folders, "_read_into", watched)
    monkeypatch.setattr(folders, "SLICE", 4)
    monkeypatch.setattr(folders, "PROBE_EVERY", 2)
    monkeypatch.setattr(folders, "SLOW_S", 0.0)
    assert from_files(data) == whole
    pooled = [name for name in readers if name.startswith("pop-gather-read")]
    assert pooled and len(pooled) < len(readers)  # some by the pool, the first and the probes by one
    assert len(whole["jobs"]) == 23 and len(whole["llm_calls"]) == 23
