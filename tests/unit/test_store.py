import json
import os
from pathlib import Path

import pytest

from pop_nb.errors import SeedError
from pop_nb.models.seed import check_job_id, new_job_id
from pop_nb.store.atomic import append_jsonl, atomic_write_json, read_json, read_jsonl
from tests.conftest import too_deep


@pytest.mark.parametrize("bad", ["", "../x", "a/b", ".hidden", "-dash", "a" * 129, "sp ace", "nul\x00", "é"])
def test_unsafe_job_ids_are_rejected(bad: str) -> None:
    with pytest.raises(SeedError, match="not allowed"):
        check_job_id(bad)


def test_generated_ids_are_valid_and_unique() -> None:
    ids = {new_job_id("content-generation") for _ in range(50)}
    assert len(ids) == 50 and all(check_job_id(i) for i in ids)


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "status.json"
    for i in range(20):
        atomic_write_json(target, {"i": i})
    assert json.loads(target.read_text()) == {"i": 19}
    assert os.listdir(tmp_path) == ["status.json"]


def test_read_jsonl_skips_a_torn_last_line(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    append_jsonl(log, {"a": 1})
    append_jsonl(log, {"a": "multi\nline"})
    with log.open("a") as fh:
        fh.write('{"a": 3, "tor')
    assert [r["a"] for r in read_jsonl(log)] == [1, "multi\nline"]
    assert len(log.read_text().splitlines()) == 3


def test_json_nested_past_the_parser_is_unreadable_json_not_a_crash(tmp_path: Path) -> None:
    deep = too_deep()
    (tmp_path / "status.json").write_bytes(deep)
    with pytest.raises(ValueError, match="nested too deep"):  # what every reader already catches
        read_json(tmp_path / "status.json")
    (tmp_path / "log.jsonl").write_bytes(b'{"a": 1}\n' + deep + b'\n{"a": 2}\n')
    assert [r["a"] for r in read_jsonl(tmp_path / "log.jsonl")] == [1, 2]


@pytest.mark.parametrize("content", [b"garbage{", b"deep", b'{"job_id": 1}', b"\xff\xfe"])
def test_a_status_file_that_is_not_a_status_says_which_and_what_to_do(tmp_path: Path, content: bytes) -> None:
    from pop_nb.errors import UnreadableStatus, exit_code, http_status
    from pop_nb.store.jobs import JobFolder

    folder = tmp_path / "current" / "j1"
    folder.mkdir(parents=True)
    (folder / "tasks-status.json").write_bytes(too_deep() if content == b"deep" else content)
    with pytest.raises(UnreadableStatus) as caught:
        JobFolder(folder).read_status()
    assert isinstance(caught.value, ValueError)  # skipped wherever a status being written is skipped
    assert str(folder / "tasks-status.json") in str(caught.value) and "Fix:" in str(caught.value)
    assert (http_status(caught.value), exit_code(caught.value)) == (500, 2)


def test_locks_are_exclusive_handed_down_and_never_recreate_a_moved_folder(tmp_path) -> None:
    import subprocess
    import sys

    import pytest

    from pop_nb.store.locks import FileLock, is_locked

    job = tmp_path / "current" / "j1"
    job.mkdir(parents=True)
    first, second = FileLock(job / "runner.lock"), FileLock(job / "runner.lock")
    assert first.acquire() and not second.acquire() and is_locked(job / "runner.lock")
    # handed to a child, the lock outlives our descriptor and ends with the child
    child = subprocess.Popen(  # lives until we close its stdin
        [sys.executable, "-c", "import sys; sys.stdin.read()"],
        pass_fds=(first.hand_over(),),
        stdin=subprocess.PIPE,
    )
    first.forget()
    assert is_locked(job / "runner.lock")
    child.stdin.close()
    child.wait()
    assert not is_locked(job / "runner.lock") and second.acquire()
    second.release()
    job.rename(tmp_path / "complete-j1")  # the job moved on
    with pytest.raises(FileNotFoundError):
        FileLock(job / "runner.lock").acquire()
    assert not is_locked(job / "runner.lock") and not job.exists()
