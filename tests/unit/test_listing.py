"""When a folder's listing may be kept: the mtime must be a tick of its clock older than the listing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pop_nb.store.listing import (
    FINE_SETTLE_NS,
    SETTLE_NS,
    ended_since,
    file_mark,
    job_entries,
    settled,
    stamp,
)

S = 1_000_000_000
FINE = 1_733_000_000 * S + 123_456_789  # an mtime with a fraction of a second: a clock of milliseconds
WHOLE = 1_733_000_000 * S  # in whole seconds: maybe a clock of a second or two


@pytest.mark.parametrize(
    ("mtime", "after", "holds"),
    [
        (FINE, FINE_SETTLE_NS + 1, True),
        (FINE, FINE_SETTLE_NS, False),  # the change may share the listing's tick
        (FINE, 1_000, False),
        (WHOLE, SETTLE_NS + 1, True),
        (WHOLE, SETTLE_NS, False),
        (WHOLE, FINE_SETTLE_NS * 5, False),  # half a second is no tick of a coarse clock
    ],
)
def test_a_listing_holds_once_the_mtime_is_a_tick_older_than_it(mtime: int, after: int, holds: bool) -> None:
    assert settled((7, mtime), [7, mtime], mtime + after) is holds


@pytest.mark.parametrize("recorded", [[8, FINE], [7, FINE + 1], None, "7", {"7": FINE}, [7]])
def test_a_listing_of_another_stamp_or_a_recorded_stamp_that_is_no_stamp_never_holds(
    recorded: object,
) -> None:
    assert not settled((7, FINE), recorded, FINE + SETTLE_NS * 10)


def test_a_folder_that_is_gone_has_no_stamp_and_no_listing_of_it_holds(tmp_path: Path) -> None:
    folder = tmp_path / "complete"
    folder.mkdir()
    found = stamp(folder)
    assert found == (os.stat(folder).st_ino, os.stat(folder).st_mtime_ns)
    folder.rmdir()
    assert stamp(folder) is None
    assert not settled(None, list(found), found[1] + SETTLE_NS * 10)


def test_the_jobs_runs_jsonl_names_since_a_mark_and_every_line_when_the_mark_is_no_mark(
    tmp_path: Path,
) -> None:
    """The mark comes from a cache file anyone could edit: a value that is no mark of this file reads
    every line again (or says it cannot tell); it never fails. A line being written waits."""
    runs = tmp_path / "runs.jsonl"
    runs.write_text('{"job": "a"}\n{"job": "b"}\n[1]\n{"job": 7}\n{"job": "c"')
    now = file_mark(runs)
    whole = [now[0], now[1] - len('{"job": "c"')]
    assert ended_since(runs, [0, 0], now) == ({"a", "b"}, whole)
    assert ended_since(runs, [now[0], 13], now) == ({"b"}, whole)
    assert ended_since(runs, whole, now) == (set(), whole)
    for edited in ([now[0], "13"], [now[0], True], [now[0], None]):
        assert ended_since(runs, edited, now) == ({"a", "b"}, whole), edited
    for no_mark in ([now[0], now[1] + 1], [now[0], -1], [now[0] + 1, 0], "junk", None, [now[0]]):
        assert ended_since(runs, no_mark, now) == (None, now), no_mark


def test_job_folders_are_directories_named_as_job_ids(tmp_path: Path) -> None:
    for name in ("job-1", "exp-a-b-c_2", ".hidden", "j.old-123", "x[1]", "-dash"):
        (tmp_path / name).mkdir()
    os.mkdir(os.path.join(os.fsencode(tmp_path), b"bad-\xff"))
    (tmp_path / "a-file").write_text("")
    (tmp_path / "a-link").symlink_to(tmp_path / "job-1")
    assert sorted(e.name for e in job_entries(tmp_path)) == ["exp-a-b-c_2", "job-1"]
    assert list(job_entries(tmp_path / "nowhere")) == []
