"""The Parquet snapshot of finished jobs: a new process gets the same tables as from the JSON files,
whatever happened to the jobs (resumed, finished again, deleted) or to the snapshot (torn, deleted,
unwritable, written by someone else right now)."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pop_nb.analytics import Analytics, costs, rollup
from pop_nb.analytics import snapshot as snapshot_module
from pop_nb.analytics import store as analytics_store
from pop_nb.analytics.cost_query import COLUMNS, MONEY, CostRows
from pop_nb.analytics.schema import JOB_TABLES
from pop_nb.analytics.snapshot import MAX_SEGMENTS, Snapshot
from pop_nb.models.records import RunRecord
from pop_nb.models.status import now_iso
from pop_nb.store.atomic import append_jsonl, atomic_write_json
from pop_nb.store.jobs import JobFolder, JobStore
from pop_nb.store.listing import SETTLE_NS
from tests.conftest import too_deep
from tests.unit.test_analytics import log_call, write_job


@pytest.fixture(autouse=True)
def save_at_every_refresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(analytics_store, "SAVE_EVERY_S", 0.0)


def finish(data: Path, place: str, job: str) -> Path:
    """A job as ``JobStore.close`` leaves it: its folder in place, its line in runs.jsonl."""
    folder = write_job(data, place, job, "done" if place == "complete" else "failed")
    append_jsonl(
        data / "complete" / "runs.jsonl",
        RunRecord(
            job=job,
            pipeline="alpha",
            name=None,
            state="done",
            started_at=None,
            ended_at=None,
            duration_ms=None,
            tasks=2,
            calls=1,
            input_tokens=10,
            output_tokens=5,
            cost_usd=0.01,
        ),
    )
    return folder


def tables(analytics: Analytics) -> dict[str, list[tuple[object, ...]]]:
    return {
        table: sorted(analytics.con.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
        for table in (*JOB_TABLES, "runs")
    }


def settle(data: Path) -> None:
    """Make the finished places' last change old enough that a listing of them may be kept."""
    past = time.time_ns() - 2 * SETTLE_NS
    for place in ("complete", "failed", "archive"):
        if (data / place).is_dir():
            os.utime(data / place, ns=(past, past))


def manifest_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that gets an item each time a snapshot's manifest is asked for (parsed or not)."""
    reads: list[int] = []
    real = Snapshot.manifest
    monkeypatch.setattr(Snapshot, "manifest", lambda self: reads.append(1) or real(self))
    return reads


def rows_held(data: Path, by: str) -> list[dict[str, Any]] | None:
    """The rollup's rows, when the snapshot holds every finished job (none to read from files)."""
    finished = rollup.finished_costs(data, by)
    if finished is None:
        return None
    assert finished.unheld == {}
    return finished.rows.dicts()


def connect_fresh(data: Path) -> Analytics:
    analytics = Analytics(data)
    analytics.refresh()
    return analytics


def from_files(data: Path) -> dict[str, list[tuple[object, ...]]]:
    analytics = Analytics(data, snapshot=False)
    analytics.refresh()
    return tables(analytics)


def test_a_new_process_loads_finished_jobs_from_the_snapshot_and_reads_only_the_others(
    tmp_path: Path,
) -> None:
    for i in range(5):
        finish(tmp_path, "complete", f"done-{i}")
    finish(tmp_path, "failed", "broke")
    write_job(tmp_path, "current", "running", "running")
    assert Analytics(tmp_path).refresh() == 7  # the first look reads every job, and writes the snapshot
    assert len(Snapshot(tmp_path).manifest().jobs) == 6  # type: ignore[union-attr]

    again = Analytics(tmp_path)
    assert again.refresh() == 1  # only the running job, from its files
    assert tables(again) == from_files(tmp_path)
    assert costs(again, "pipeline")["calls"].tolist() == [7]

    shutil.rmtree(tmp_path / ".analytics")  # a cache: deleting it loses nothing
    assert tables(connect_fresh(tmp_path)) == from_files(tmp_path)


def test_a_job_resumed_and_finished_again_is_read_again_not_taken_from_the_snapshot(tmp_path: Path) -> None:
    for job in ("a", "b"):
        finish(tmp_path, "complete", job)
    connect_fresh(tmp_path)  # the snapshot holds a and b
    live = connect_fresh(tmp_path)

    # `pop resume a --from-task b`, it runs and ends done again: back in the same place with the same
    # inode; what tells is its second line in runs.jsonl
    store = JobStore(tmp_path)
    folder = store.move(JobFolder(tmp_path / "complete" / "a"), "current")
    log_call(folder.path, "a", "b", 0.25, "h-again")
    store.close(folder, folder.read_status())

    assert live.refresh() == 1  # the live dashboard saw the new run line
    assert tables(live) == from_files(tmp_path)
    fresh = connect_fresh(tmp_path)
    assert fresh.query("SELECT state, place FROM jobs WHERE job = 'a'") == [
        {"state": "done", "place": "complete"}
    ]
    assert tables(fresh) == from_files(tmp_path)  # a's old rows are not loaded beside its new ones


def test_deleted_and_replaced_job_folders_are_not_taken_from_the_snapshot(tmp_path: Path) -> None:
    for job in ("keep", "gone", "replaced"):
        finish(tmp_path, "complete", job)
    connect_fresh(tmp_path)
    shutil.rmtree(tmp_path / "complete" / "gone")
    shutil.rmtree(tmp_path / "complete" / "replaced")
    write_job(tmp_path, "complete", "replaced", "done", cost=7.0)  # same name, another folder
    fresh = connect_fresh(tmp_path)
    assert tables(fresh) == from_files(tmp_path)
    assert fresh.query("SELECT job, cost_usd FROM call_totals ORDER BY job") == [
        {"job": "keep", "cost_usd": 0.01},
        {"job": "replaced", "cost_usd": 7.0},
    ]


def test_a_job_folder_rewritten_in_place_is_not_taken_from_the_snapshot(tmp_path: Path) -> None:
    # the same folder, so the same inode, as when a deleted folder's inode is given to its successor
    folder = finish(tmp_path, "complete", "j")
    connect_fresh(tmp_path)
    inode = folder.stat().st_ino
    (folder / "usage.jsonl").unlink()
    write_job(tmp_path, "complete", "j", "done", cost=7.0)
    assert folder.stat().st_ino == inode
    fresh = connect_fresh(tmp_path)
    assert tables(fresh) == from_files(tmp_path)
    assert fresh.query("SELECT cost_usd FROM call_totals") == [{"cost_usd": 7.0}]


def test_a_live_refresh_lists_finished_folders_again_only_when_they_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    finish(tmp_path, "complete", "old")
    finish(tmp_path, "failed", "broke")
    for place in ("complete", "failed"):  # last changed long ago: the listing may be kept
        os.utime(tmp_path / place, ns=(10**18, 10**18))
    live = connect_fresh(tmp_path)
    listed: list[str] = []
    real_scandir = os.scandir

    def scandir(path: str) -> object:
        if isinstance(path, (str, os.PathLike)) and Path(path).parent == tmp_path:
            listed.append(Path(path).name)
        return real_scandir(path)

    monkeypatch.setattr(analytics_store.os, "scandir", scandir)  # os's own: rmtree passes it fds
    assert live.refresh() == 0
    assert "complete" not in listed and "failed" not in listed  # not listed again

    shutil.rmtree(tmp_path / "complete" / "old")
    finish(tmp_path, "complete", "old")  # deleted and made again: complete/ changed
    finish(tmp_path, "complete", "new")
    listed.clear()
    assert live.refresh() == 2
    assert "complete" in listed and "failed" not in listed
    assert tables(live) == from_files(tmp_path)


def test_a_torn_snapshot_is_dropped_and_rebuilt(tmp_path: Path) -> None:
    for i in range(3):
        finish(tmp_path, "complete", f"j{i}")
    connect_fresh(tmp_path)
    [segment] = Snapshot(tmp_path).manifest().segments  # type: ignore[union-attr]
    calls = tmp_path / ".analytics" / segment / "llm_calls.parquet"
    calls.write_bytes(calls.read_bytes()[:100])  # a torn write: half a file

    torn = Analytics(tmp_path)
    assert torn.refresh() == 3  # everything read from the job folders instead
    assert tables(torn) == from_files(tmp_path)
    rebuilt = Analytics(tmp_path)
    assert rebuilt.refresh() == 0  # ... and the snapshot written again, whole
    assert tables(rebuilt) == from_files(tmp_path)

    (tmp_path / ".analytics" / "manifest.json").write_text('{"version": 1, "schema": ')  # torn manifest
    assert tables(connect_fresh(tmp_path)) == from_files(tmp_path)


def test_a_snapshot_from_another_schema_is_ignored(tmp_path: Path) -> None:
    finish(tmp_path, "complete", "j")
    connect_fresh(tmp_path)
    manifest = tmp_path / ".analytics" / "manifest.json"
    body = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**body, "schema": "an-older-pop-nb"}))
    other = Analytics(tmp_path)
    assert other.refresh() == 1
    assert tables(other) == from_files(tmp_path)


def test_without_a_writable_snapshot_folder_analytics_still_work(tmp_path: Path) -> None:
    finish(tmp_path, "complete", "j")
    (tmp_path / ".analytics").write_text("not a folder")
    analytics = Analytics(tmp_path)
    assert analytics.refresh() == 1
    assert analytics.snapshot is not None and not analytics.snapshot.enabled
    assert tables(analytics) == from_files(tmp_path)


def test_while_another_process_writes_the_snapshot_a_refresh_does_not_wait_and_saves_later(
    tmp_path: Path,
) -> None:
    finish(tmp_path, "complete", "j")
    (tmp_path / ".analytics").mkdir()
    fd = os.open(tmp_path / ".analytics" / "lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        analytics = Analytics(tmp_path)
        analytics.refresh()
        assert Snapshot(tmp_path).manifest() is None
    finally:
        os.close(fd)
    analytics.refresh()
    assert list(Snapshot(tmp_path).manifest().jobs) == ["j"]  # type: ignore[union-attr]


def test_a_job_that_just_ended_is_left_out_until_its_run_line_is_surely_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(analytics_store, "SETTLE_S", 3600.0)
    finish(tmp_path, "complete", "old")
    recent = write_job(tmp_path, "complete", "recent", "done")  # ended now: its run line may be coming
    status = json.loads((recent / "tasks-status.json").read_text())
    atomic_write_json(recent / "tasks-status.json", {**status, "ended_at": now_iso()})
    connect_fresh(tmp_path)
    assert list(Snapshot(tmp_path).manifest().jobs) == ["old"]  # type: ignore[union-attr]


def test_segments_are_merged_as_jobs_keep_finishing(tmp_path: Path) -> None:
    live = Analytics(tmp_path)
    for i in range(3 * MAX_SEGMENTS):
        finish(tmp_path, "complete", f"j{i:02d}")
        live.refresh()
        assert len(Snapshot(tmp_path).manifest().segments) <= MAX_SEGMENTS  # type: ignore[union-attr]
    manifest = Snapshot(tmp_path).manifest()
    assert manifest is not None and len(manifest.jobs) == 3 * MAX_SEGMENTS
    assert tables(connect_fresh(tmp_path)) == from_files(tmp_path)


def test_runs_are_read_incrementally_and_a_torn_line_waits_for_its_end(tmp_path: Path) -> None:
    finish(tmp_path, "complete", "j1")
    analytics = connect_fresh(tmp_path)
    runs = tmp_path / "complete" / "runs.jsonl"
    line = runs.read_text().splitlines()[0].replace('"j1"', '"j2"')
    with open(runs, "a") as fh:
        fh.write("not json\n" + line[:20])
    analytics.refresh()
    assert [r["job"] for r in analytics.query("SELECT job FROM runs")] == ["j1"]
    with open(runs, "a") as fh:
        fh.write(line[20:] + "\n")
    analytics.refresh()
    assert [r["job"] for r in analytics.query("SELECT job FROM runs ORDER BY job")] == ["j1", "j2"]


def test_calls_stay_in_parquet_and_follow_the_snapshot_when_another_process_rewrites_or_deletes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshot_module, "KEEP_OBSOLETE_S", 0.0)
    monkeypatch.setattr(analytics_store, "SETTLE_S", 0.0)
    for job in ("a", "b"):
        finish(tmp_path, "complete", job)
    connect_fresh(tmp_path)
    reader = connect_fresh(tmp_path)  # its calls: a view over the snapshot's Parquet
    assert reader.query("SELECT count(*) AS n FROM llm_calls_live") == [{"n": 0}]
    assert tables(reader) == from_files(tmp_path)

    # another process: a is resumed and finished again, the snapshot rewritten, the old segment deleted
    store = JobStore(tmp_path)
    folder = store.move(JobFolder(tmp_path / "complete" / "a"), "current")
    log_call(folder.path, "a", "b", 0.25, "h-again")
    store.close(folder, folder.read_status())
    [old] = Snapshot(tmp_path).manifest().segments  # type: ignore[union-attr]
    connect_fresh(tmp_path)
    assert not (tmp_path / ".analytics" / old).exists()

    # before any refresh: b's calls are now read from the new segment, a's (its file deleted) from its
    # usage.jsonl as it is now; none lost, none twice
    assert reader.query("SELECT job, count(*) AS n FROM llm_calls GROUP BY job ORDER BY job") == [
        {"job": "a", "n": 2},
        {"job": "b", "n": 1},
    ]
    assert reader.query("SELECT count(*) AS n FROM llm_calls_live") == [{"n": 2}]
    reader.refresh()
    assert tables(reader) == from_files(tmp_path)

    shutil.rmtree(tmp_path / ".analytics")  # and if the snapshot disappears: from the jobs' files
    assert reader.query("SELECT count(*) AS n FROM llm_calls") == [{"n": 3}]
    assert tables(reader) == from_files(tmp_path)


@pytest.mark.parametrize(
    "segments, changed",
    [
        ({"../../elsewhere": 1}, {}),  # a folder not its own
        ({"18ea74d91a81664a-1": 1}, {"segment": [1]}),  # a segment it does not list
        ({"18ea74d91a81664a-1": 1}, {"segment": [-1]}),
        ({"18ea74d91a81664a-1": 1}, {"inode": [True]}),
        ({"18ea74d91a81664a-1": 1}, {"inode": ["12"]}),
        ({"18ea74d91a81664a-1": 1}, {"place": [7]}),
        ({"18ea74d91a81664a-1": 1}, {"runs": []}),  # columns of other lengths
        ({"18ea74d91a81664a-1": 1}, {"job": "j"}),
    ],
)
def test_a_hostile_manifest_is_not_followed(tmp_path: Path, segments: dict[str, int], changed: dict) -> None:
    finish(tmp_path, "complete", "j")
    connect_fresh(tmp_path)
    manifest = tmp_path / ".analytics" / "manifest.json"
    body = json.loads(manifest.read_text())
    assert sorted(body["jobs"]) == ["ctime", "inode", "job", "place", "runs", "segment"]
    manifest.write_text(json.dumps({**body, "segments": segments, "jobs": {**body["jobs"], **changed}}))
    assert tables(connect_fresh(tmp_path)) == from_files(tmp_path)
    assert Snapshot(tmp_path).manifest() is not None  # dropped and written again, whole


def test_a_data_folder_whose_path_has_a_quote(tmp_path: Path) -> None:
    data = tmp_path / "it's data"
    finish(data, "complete", "j")
    connect_fresh(data)
    fresh = Analytics(data)
    assert fresh.refresh() == 0  # from its snapshot
    assert tables(fresh) == from_files(data)


def test_costs_come_from_the_manifest_without_duckdb_while_nothing_finished_changed(tmp_path: Path) -> None:
    import subprocess
    import sys

    from pop_nb.analytics.cost_query import GROUPINGS, costs_sql

    for i in range(4):
        finish(tmp_path, "complete", f"done-{i}")
    finish(tmp_path, "failed", "broke")

    connect_fresh(tmp_path)  # writes the snapshot, and its rollup
    direct = Analytics(tmp_path, snapshot=False)
    direct.refresh()
    for by in GROUPINGS:
        assert rows_held(tmp_path, by) == direct.query(costs_sql(by)), by
    probe = (
        "import sys, json; from pop_nb import service; from pop_nb.config import load_settings; "
        "rows = service.costs(load_settings(), 'job'); print(json.dumps([rows, 'duckdb' in sys.modules]))"
    )
    env = {**os.environ, "POP_DATA_DIR": str(tmp_path), "POP_ROOT": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    rows, used_duckdb = json.loads(out.stdout)
    assert not used_duckdb and len(rows) == 5

    # a job that ended since is read from its files beside the rows
    late = finish(tmp_path, "complete", "late")
    ended = rollup.finished_costs(tmp_path, "job")
    assert ended is not None and ended.unheld == {"late": str(late)} and len(ended.rows) == 5
    connect_fresh(tmp_path)
    assert len(rows_held(tmp_path, "job") or []) == 6
    # a job the snapshot holds that changed: its rows come off, and it is read from its files
    append_jsonl(tmp_path / "complete" / "runs.jsonl", {"job": "late", "state": "done"})  # finished again
    again = rollup.finished_costs(tmp_path, "job")
    assert again is not None and again.unheld == {"late": str(late)} and len(again.rows) == 5
    assert rollup.cost_rows(tmp_path, "job") == costs_from_files(tmp_path, "job") != []
    connect_fresh(tmp_path)
    assert rows_held(tmp_path, "job") is not None
    write_job(tmp_path, "current", "running", "running")
    assert rows_held(tmp_path, "job") is not None  # open jobs are added by cost_rows
    shutil.rmtree(tmp_path / "failed" / "broke")  # a job gone: its rows come off
    gone = rollup.finished_costs(tmp_path, "job")
    assert gone is not None and "broke" not in gone.rows.columns["key"] and len(gone.rows) == 5
    assert rollup.cost_rows(tmp_path, "job") == costs_from_files(tmp_path, "job")
    assert rollup.finished_costs(tmp_path, "nonsense") is None


def test_costs_with_jobs_open_add_their_files_to_the_rollup_without_loading_the_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pop_nb.analytics.cost_query import GROUPINGS, costs_sql

    for i in range(3):
        finish(tmp_path, "complete", f"done-{i}")
    finish(tmp_path, "failed", "broke")
    connect_fresh(tmp_path)  # the snapshot and its rollup
    running = write_job(tmp_path, "current", "running", "running", cost=0.5)  # a key the rollup has too
    log_call(running, "running", "fresh", 0.25, "h2", input_tokens=7, output_tokens=3)  # and a new one
    write_job(tmp_path, "current", "idle", "running", cost=0.0)

    def everything(by: str) -> list[dict[str, object]]:
        direct = Analytics(tmp_path, snapshot=False)
        direct.refresh()
        return direct.query(costs_sql(by))

    def no_load(*args: object, **kwargs: object) -> None:
        raise AssertionError("the snapshot's Parquet was read: not the rollup path")

    with monkeypatch.context() as patch:
        patch.setattr(snapshot_module.Snapshot, "load", no_load)
        for by in GROUPINGS:
            assert rollup.cost_rows(tmp_path, by) == everything(by), by
    by_task = {row["key"]: row for row in rollup.cost_rows(tmp_path, "task")}
    assert by_task["alpha/fresh"]["cost_usd"] == 0.25 and by_task["alpha/a"]["calls"] == 6

    # a finished job resumed (back in current/): its rows come off the rollup's, and it is read as open
    shutil.move(tmp_path / "complete" / "done-0", tmp_path / "current" / "done-0")
    log_call(tmp_path / "current" / "done-0", "done-0", "a", 1.0, "h3", input_tokens=1, output_tokens=1)
    resumed = rollup.finished_costs(tmp_path, "job")
    assert resumed is not None and "done-0" not in resumed.rows.columns["key"]
    with monkeypatch.context() as patch:
        patch.setattr(snapshot_module.Snapshot, "load", no_load)
        for by in GROUPINGS:
            assert rollup.cost_rows(tmp_path, by) == everything(by), by


def test_cost_rows_of_disjoint_jobs_add_up_by_key_in_the_querys_order() -> None:
    row = {"calls": 1, "attempts": 2, "input_tokens": 3, "output_tokens": 4, "cached_tokens": 0}
    a = [{"key": "x", **row, "cost_usd": 0.1, "cache_hits": 0, "saved_usd": 0.0, "unpriced_calls": 0}]
    b = [
        {"key": "y", **row, "cost_usd": 0.25, "cache_hits": 1, "saved_usd": 0.2, "unpriced_calls": 1},
        {"key": "x", **row, "cost_usd": 0.2, "cache_hits": 1, "saved_usd": 0.1, "unpriced_calls": 0},
    ]
    total = CostRows.of(a).add(b).dicts()
    assert [r["key"] for r in total] == ["x", "y"]  # 0.3 before 0.25
    assert total[0]["cost_usd"] == 0.3 and total[0]["attempts"] == 4 and total[0]["saved_usd"] == 0.1
    assert total[1] == b[0] and a[0]["cost_usd"] == 0.1  # inputs untouched


def _cost_row(key: str, cost: float, calls: int) -> dict[str, Any]:
    counts = {"calls": calls, "attempts": calls, "input_tokens": 3 * calls, "output_tokens": calls}
    money = {"cost_usd": cost, "saved_usd": cost / 4}
    return {"key": key, **counts, "cached_tokens": 0, **money, "cache_hits": 0, "unpriced_calls": 0}


def in_order(rows: dict[str, tuple[float, int]]) -> list[dict[str, Any]]:
    """Rows of the query for these keys (key -> cost, calls), in its order."""
    made = [_cost_row(key, cost, calls) for key, (cost, calls) in rows.items()]
    return sorted(made, key=lambda r: (-r["cost_usd"], r["key"]))


def _cost_table(keys: str, costs: list[float]) -> st.SearchStrategy[dict[str, tuple[float, int]]]:
    return st.dictionaries(st.sampled_from(keys), st.tuples(st.sampled_from(costs), st.integers(0, 3)))


@settings(max_examples=300, deadline=None)
@given(
    _cost_table("abcdefghij", [0.0, 0.1, 0.2, 0.25, 1e-9]), _cost_table("abcdefghijkl", [0.0, 0.1, 0.3, 2e-9])
)
def test_cost_rows_added_are_what_summing_and_sorting_every_row_gives(base: dict, more: dict) -> None:
    first, second = in_order(base), in_order(more)
    expected: dict[str, dict[str, Any]] = {}
    for row in first + second:  # the sums as summed, money rounded once at the end, as the query does
        if row["key"] in expected:
            total = expected[row["key"]]
            for column in COLUMNS:
                total[column] += row[column]
        else:
            expected[row["key"]] = dict(row)
    for total in expected.values():
        for column in MONEY:
            total[column] = round(total[column], 9)
    assert CostRows.of(first).add(second).dicts() == sorted(
        expected.values(), key=lambda r: (-r["cost_usd"], r["key"])
    )


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from("abcdefghij"), st.tuples(st.sampled_from([0.0, 0.1, 0.25, 4e-9]), st.integers(1, 3))
    ),
    st.dictionaries(
        st.sampled_from("abcdefghijkl"), st.tuples(st.sampled_from([0.0, 0.2, 0.3, 8e-9]), st.integers(1, 3))
    ),
)
def test_cost_rows_less_some_jobs_rows_are_the_other_jobs_rows(kept: dict, gone: dict) -> None:
    """Rows as the query gives them (money to 1e-9, a row per key with a call): added, then taken off."""

    both = CostRows.of(in_order(kept)).add(in_order(gone))
    left = both.less(in_order(gone))
    assert left is not None and left.dicts() == in_order(kept)  # a key only the gone jobs had is gone
    assert CostRows.of(in_order(kept)).less([_cost_row("z", 0.1, 1)]) is None  # not part of them
    if kept:
        key, (cost, calls) = next(iter(kept.items()))
        assert CostRows.of(in_order(kept)).less([_cost_row(key, cost, calls + 1)]) is None  # more than all


def test_run_lines_count_the_whole_json_objects_that_name_a_job() -> None:
    good = b'{"job": "a"}\n{"job": "b", "state": "done"}\n{"job": "a"}\n'
    assert analytics_store.run_lines(good) == {"a": 2, "b": 1}
    messy = good + b'{"job": "a", "tor\n[1]\n{"job": 7}\n\n  \n{"job": "b"}\n\xff\xfe\n"a"\n'
    messy += too_deep() + b"\n"  # deeper than the parser follows: skipped like any bad line
    assert analytics_store.run_lines(messy) == {"a": 2, "b": 2}


@pytest.mark.parametrize(
    "text",
    ["not json", "deep", '{"a": 1}', "[[1, 2]]", '[{"key": "alpha"}]', '[{"key": 1, "calls": "x"}]'],
    ids=["not-json", "too-deep", "an-object", "lists", "columns-missing", "wrong-types"],
)
def test_a_tampered_cost_rollup_is_not_believed(tmp_path: Path, text: str) -> None:
    from pop_nb.analytics.cost_query import costs_sql

    finish(tmp_path, "complete", "done-1")
    connect_fresh(tmp_path)
    manifest = tmp_path / ".analytics" / "manifest.json"
    body = json.loads(manifest.read_text())
    body["costs"]["pipeline"] = too_deep().decode() if text == "deep" else text
    before = manifest.stat()
    manifest.write_text(json.dumps(body))  # in place, as an editor may: the same file
    os.utime(manifest, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))  # a second later, by hand
    direct = Analytics(tmp_path, snapshot=False)
    direct.refresh()
    # the rows kept in rollup.json (if the places have settled) are the manifest's as it was: right
    assert rollup.cost_rows(tmp_path, "pipeline") == direct.query(costs_sql("pipeline"))
    (tmp_path / ".analytics" / "rollup.json").unlink(missing_ok=True)
    assert rollup.finished_costs(tmp_path, "pipeline") is None  # the manifest's own: not believed
    assert rollup.cost_rows(tmp_path, "pipeline") == direct.query(costs_sql("pipeline"))


def test_a_manifest_rewritten_in_place_is_another_manifest_even_within_the_clocks_tick(
    tmp_path: Path,
) -> None:
    """File times move by the clock's tick (milliseconds): the size tells such a rewrite too, for the
    rows kept in rollup.json and for a process's parse of the manifest."""
    finish(tmp_path, "complete", "done-1")
    connect_fresh(tmp_path)
    snapshot = Snapshot(tmp_path)
    manifest = snapshot.dir / "manifest.json"
    before, stamp, parsed = manifest.stat(), snapshot.stamp(), snapshot.manifest()
    body = json.loads(manifest.read_text())
    body["costs"]["pipeline"] = "[]"
    manifest.write_text(json.dumps(body))
    os.utime(manifest, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert manifest.stat().st_ino == before.st_ino and manifest.stat().st_mtime_ns == before.st_mtime_ns
    assert snapshot.stamp() != stamp
    assert snapshot.manifest() is not parsed and snapshot.manifest().costs["pipeline"] == "[]"


@pytest.mark.parametrize("folder", ["data", "data[1]*?"])
def test_paths_with_glob_characters_are_read_as_named(tmp_path: Path, folder: str) -> None:
    """DuckDB's readers glob: a data folder named with * ? [ ] must still mean itself. (A job folder
    cannot be: its name is a job id; a folder named otherwise is no job, and is not read.)"""
    data = tmp_path / folder
    finish(data, "complete", "done-1")
    write_job(data, "current", "x1", "running", cost=1.0)
    write_job(data, "current", "x[1]", "running", cost=5.0)  # no job id; as a glob, it names x1's folder
    connect_fresh(data)  # writes the snapshot of done-1
    fresh = connect_fresh(data)  # and reads it back from Parquet
    assert tables(fresh) == from_files(data)
    sql = "SELECT job, sum(cost_usd) AS cost_usd FROM llm_calls GROUP BY job"
    assert {r["job"]: r["cost_usd"] for r in fresh.query(sql)} == {"done-1": 0.01, "x1": 1.0}
    by_job = {r["key"]: r["cost_usd"] for r in rollup.cost_rows(data, "job")}
    assert by_job == {"done-1": 0.01, "x1": 1.0}


def test_costs_found_to_hold_are_kept_and_answer_alone_until_a_finished_place_or_runs_log_changes(
    tmp_path: Path,
) -> None:
    for i in range(3):
        finish(tmp_path, "complete", f"done-{i}")
    finish(tmp_path, "failed", "broke")
    connect_fresh(tmp_path)
    settle(tmp_path)
    expected = rows_held(tmp_path, "job")  # checked against every folder: kept
    assert expected is not None and len(expected) == 4
    assert (tmp_path / ".analytics" / "rollup.json").is_file()

    (tmp_path / ".analytics" / "manifest.json").write_text("torn")
    alone = rollup.finished_costs(tmp_path, "job")
    assert alone is not None and alone.listed is None and alone.rows.dicts() == expected  # no manifest

    append_jsonl(tmp_path / "complete" / "runs.jsonl", {"job": "done-1", "state": "done"})  # ended again
    assert rollup.finished_costs(tmp_path, "job") is None
    (tmp_path / ".analytics" / "rollup.json").write_bytes(b"\x00" * 64)  # a broken kept file: not trusted
    assert rollup.finished_costs(tmp_path, "job") is None
    connect_fresh(tmp_path)  # the snapshot rebuilt
    settle(tmp_path)
    assert len(rows_held(tmp_path, "job") or []) == 4
    late = finish(tmp_path, "complete", "late")  # a new folder: the place's stamp moved
    settle(tmp_path)
    # the names listed again, and runs.jsonl's new line: the kept rows, and the job read from its files
    caught = rollup.finished_costs(tmp_path, "job")
    assert caught is not None and caught.listed is None and caught.unheld == {"late": str(late)}
    kept = rollup.finished_costs(tmp_path, "job")  # and kept with the job the snapshot does not hold
    assert kept is not None and kept.listed is None and kept.unheld == {"late": str(late)}
    assert Snapshot(tmp_path).rollup() == kept.kept
    shutil.rmtree(late)  # a job it does not hold, gone: no more to read
    gone = rollup.finished_costs(tmp_path, "job")
    assert gone is not None and gone.listed is None and gone.unheld == {}
    shutil.rmtree(tmp_path / "complete" / "done-0")  # one it holds: its calls come off, told by a listing
    left = rollup.finished_costs(tmp_path, "job")
    assert left is not None and left.listed is None and left.unheld == {}
    assert left.kept is not None and [job for job, _ in left.kept.gone] == ["done-0"]
    assert sorted(left.rows.columns["key"]) == ["broke", "done-1", "done-2"]


def test_files_read_in_rounds_make_the_same_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Job files are copied for DuckDB a round at a time (bounded temporary space): any round size
    gives the same rows, a torn last line and a half-written status included."""
    from pop_nb.analytics import folders

    for i in range(7):
        finish(tmp_path, "complete" if i % 3 else "failed", f"job-{i}")
    with open(tmp_path / "complete" / "job-1" / "usage.jsonl", "a") as fh:
        fh.write('{"ts": "2026-11-20T10:00:00", "job": "job-1", "request_ha')  # a torn last line
    (tmp_path / "complete" / "job-2" / "tasks-status.json").write_text('{"job_id": "job-2", "pipel')
    whole = from_files(tmp_path)
    monkeypatch.setattr(folders, "GATHER_ROUND", 2)
    assert from_files(tmp_path) == whole
    assert len(whole["jobs"]) == 6 and len(whole["llm_calls"]) == 7  # the broken status and line left out


def _edited(columns: dict[str, Any], name: str, value: Any) -> dict[str, Any]:
    """The rollup's columns with one of them set to ``value`` (a ``list`` keeps its other values)."""
    if isinstance(value, tuple):  # the column's first value
        return {**columns, name: [value[0], *columns[name][1:]]}
    return {**columns, name: value}


@pytest.mark.parametrize(
    "change",
    [
        lambda cols: _edited(cols, "key", (1,)),
        lambda cols: _edited(cols, "calls", (True,)),
        lambda cols: _edited(cols, "saved_usd", (None,)),
        lambda cols: _edited(cols, "cost_usd", ("0.5",)),
        lambda cols: _edited(cols, "more", [1]),
        lambda cols: {k: v for k, v in cols.items() if k != "cache_hits"},
        lambda cols: _edited(cols, "calls", []),
        lambda cols: _edited(cols, "calls", 5),
        lambda cols: [dict(zip(cols, row, strict=True)) for row in zip(*cols.values(), strict=True)],
    ],
    ids=[
        "key-a-number",
        "a-bool",
        "a-null",
        "a-text",
        "a-column-more",
        "a-column-less",
        "a-column-shorter",
        "a-column-no-list",
        "rows-not-columns",
    ],
)
def test_a_rollup_row_changed_in_one_place_is_not_believed(tmp_path: Path, change: Any) -> None:
    from pop_nb.analytics.cost_query import costs_sql

    finish(tmp_path, "complete", "done-1")
    connect_fresh(tmp_path)
    manifest = tmp_path / ".analytics" / "manifest.json"
    body = json.loads(manifest.read_text())
    columns = json.loads(body["costs"]["pipeline"])
    as_rows = [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]
    assert rows_held(tmp_path, "pipeline") == as_rows  # as written
    body["costs"]["pipeline"] = json.dumps(change(json.loads(body["costs"]["pipeline"])))
    manifest.write_text(json.dumps(body))
    (tmp_path / ".analytics" / "rollup.json").unlink(missing_ok=True)
    assert rollup.finished_costs(tmp_path, "pipeline") is None
    direct = Analytics(tmp_path, snapshot=False)
    direct.refresh()
    assert rollup.cost_rows(tmp_path, "pipeline") == direct.query(costs_sql("pipeline"))


def test_a_manifest_is_parsed_once_while_its_file_is_the_same(tmp_path: Path) -> None:
    finish(tmp_path, "complete", "done-1")
    connect_fresh(tmp_path)
    first = Snapshot(tmp_path).manifest()
    assert first is not None and Snapshot(tmp_path).manifest() is first  # shared, not parsed again
    finish(tmp_path, "complete", "done-2")
    connect_fresh(tmp_path)  # saves: a new manifest file, written from a copy
    second = Snapshot(tmp_path).manifest()
    assert second is not first and sorted(second.jobs) == ["done-1", "done-2"]
    assert sorted(first.jobs) == ["done-1"]  # the shared one was not changed by the save


def test_the_process_that_saves_a_manifest_never_parses_it_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[bytes] = []
    parse = snapshot_module.Manifest.parse
    monkeypatch.setattr(snapshot_module.Manifest, "parse", lambda raw: parsed.append(raw) or parse(raw))
    for job in ("done-1", "done-2"):
        finish(tmp_path, "complete", job)
        connect_fresh(tmp_path)  # builds, saves, then follows what it saved
        assert rollup.finished_costs(tmp_path, "job") is not None  # held: the manifest was asked for
    assert parsed == []
    kept = Snapshot(tmp_path).manifest()
    assert kept == parse((tmp_path / ".analytics" / "manifest.json").read_bytes())  # what the file says


def test_a_manifest_masked_as_it_was_written_is_parsed_from_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-canary-in-a-job-name-0123456789")
    finish(tmp_path, "complete", "run-sk-canary-in-a-job-name-0123456789")
    connect_fresh(tmp_path)
    raw = (tmp_path / ".analytics" / "manifest.json").read_bytes()
    assert b"sk-canary" not in raw
    assert Snapshot(tmp_path).manifest() == snapshot_module.Manifest.parse(raw)  # the file, not memory


@pytest.mark.parametrize("how", ["deleted", "resumed"])
def test_a_job_that_left_the_finished_places_leaves_the_snapshot_so_its_costs_hold_again(
    tmp_path: Path, how: str
) -> None:
    for job in ("a", "b", "c"):
        finish(tmp_path, "complete", job)
    connect_fresh(tmp_path)
    before = Snapshot(tmp_path).manifest()
    assert before is not None and len(before.segments) == 1
    if how == "deleted":  # the Lab's Delete, or rm -r
        shutil.rmtree(tmp_path / "complete" / "b")
    else:  # `pop resume b`: back in current/, running
        JobStore(tmp_path).move(JobFolder(tmp_path / "complete" / "b"), "current")
    left = rollup.finished_costs(tmp_path, "job")  # b's rows come off the kept ones
    assert left is not None and sorted(left.rows.columns["key"]) == ["a", "c"] and left.unheld == {}

    live = connect_fresh(tmp_path)  # a new process: it never saw b finished
    manifest = Snapshot(tmp_path).manifest()
    assert manifest is not None and sorted(manifest.jobs) == ["a", "c"]
    assert manifest.segments == before.segments  # no rows written again: b's rows are left unread
    held = rows_held(tmp_path, "job")
    assert held is not None and sorted(row["key"] for row in held) == ["a", "c"]
    assert tables(live) == from_files(tmp_path)
    assert tables(connect_fresh(tmp_path)) == from_files(tmp_path)

    # a live dashboard sees the next one go too
    shutil.rmtree(tmp_path / "complete" / "c")
    live.refresh()
    assert sorted(Snapshot(tmp_path).manifest().jobs) == ["a"]  # type: ignore[union-attr]
    assert [row["key"] for row in rows_held(tmp_path, "job") or []] == ["a"]
    assert tables(live) == from_files(tmp_path)

    shutil.rmtree(tmp_path / "complete" / "a")  # none left: the segment leaves the manifest
    live.refresh()
    empty = Snapshot(tmp_path).manifest()
    assert empty is not None and empty.jobs == {} and empty.segments == {}
    assert tables(live) == from_files(tmp_path)


def costs_from_files(data: Path, by: str) -> list[dict[str, Any]]:
    from pop_nb.analytics.cost_query import costs_sql

    direct = Analytics(data, snapshot=False)
    direct.refresh()
    return direct.query(costs_sql(by))


def test_jobs_ended_since_the_snapshot_are_read_from_their_files_beside_its_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pop_nb.analytics.cost_query import GROUPINGS

    for i in range(3):
        finish(tmp_path, "complete", f"done-{i}")
    connect_fresh(tmp_path)
    finish(tmp_path, "complete", "late")  # not in the snapshot (one that just ended waits a minute)
    finish(tmp_path, "failed", "broke")
    write_job(tmp_path, "current", "running", "running", cost=0.5)

    def no_load(*args: object, **kwargs: object) -> None:
        raise AssertionError("the snapshot's Parquet was read: not the rollup path")

    with monkeypatch.context() as patch:
        patch.setattr(snapshot_module.Snapshot, "load", no_load)
        for by in GROUPINGS:
            assert rollup.cost_rows(tmp_path, by) == costs_from_files(tmp_path, by), by

    monkeypatch.setattr(rollup, "MAX_UNHELD", 1)  # more than this many: DuckDB answers, and saves them
    assert rollup.finished_costs(tmp_path, "job") is None
    assert rollup.cost_rows(tmp_path, "job") == costs_from_files(tmp_path, "job")
    assert sorted(Snapshot(tmp_path).manifest().jobs) == ["broke", "done-0", "done-1", "done-2", "late"]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "then",
    [
        "nothing-else",  # the kept rows, and the jobs named by runs.jsonl's new lines
        "a-held-job-ended-again",  # its kept calls come off, and it is read from its files
        "a-held-job-was-archived",
        "a-held-job-was-deleted",
        "a-held-job-was-replaced",  # another folder of the same name (another inode), no runs.jsonl line
        "a-stray-folder-appeared",  # no runs.jsonl line names it
    ],
)
def test_after_jobs_end_costs_answer_from_the_kept_rows_and_the_new_runs_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, then: str
) -> None:
    for i in range(3):
        finish(tmp_path, "complete", f"done-{i}")
    connect_fresh(tmp_path)
    settle(tmp_path)
    assert rollup.finished_costs(tmp_path, "job") is not None  # kept, with the folders it holds
    finish(tmp_path, "complete", "new-1")
    finish(tmp_path, "failed", "new-2")
    held = tmp_path / "complete" / "done-1"
    if then == "a-held-job-ended-again":
        log_call(held, "done-1", "a", 0.25, "again", input_tokens=1, output_tokens=1)
        finish(tmp_path, "complete", "done-1")
    elif then == "a-held-job-was-archived":
        (tmp_path / "archive").mkdir()
        move(tmp_path, "done-1", "archive")
    elif then == "a-held-job-was-deleted":
        shutil.rmtree(held)
    elif then == "a-held-job-was-replaced":
        other = write_job(tmp_path, "complete", "other", "done", cost=0.75)  # made before: not its inode
        shutil.rmtree(held)
        other.rename(held)
    elif then == "a-stray-folder-appeared":
        (tmp_path / "complete" / "stray").mkdir()
    manifests = manifest_reads(monkeypatch)
    for by in ("job", "model"):
        assert rollup.cost_rows(tmp_path, by) == costs_from_files(tmp_path, by), by
    assert not manifests  # a listing, and the folders the rows are for (held-<name>.txt), told what changed
    kept = Snapshot(tmp_path).rollup()
    gone = [] if then in ("nothing-else", "a-stray-folder-appeared") else ["done-1"]
    read = [("complete", "new-1"), ("failed", "new-2")]  # an archived job is in no cost (as in DuckDB's)
    if then in ("a-held-job-ended-again", "a-held-job-was-replaced"):
        read.append(("complete", "done-1"))
    elif then == "a-stray-folder-appeared":
        read.append(("complete", "stray"))
    assert kept is not None and [job for job, _ in kept.gone] == gone and sorted(kept.unheld) == sorted(read)
    assert rollup.cost_rows(tmp_path, "job") == costs_from_files(tmp_path, "job") and not manifests  # again


def _held_file(data: Path) -> Path:
    (found,) = (data / ".analytics").glob("held-*.txt")
    return found


def _edit_rollup(data: Path, **head: Any) -> None:
    path = data / ".analytics" / "rollup.json"
    first, *rest = path.read_text().splitlines()
    path.write_text("\n".join([json.dumps({**json.loads(first), **head}), *rest]) + "\n")


@pytest.mark.parametrize(
    "edit",
    [
        lambda data: _held_file(data).write_bytes(_held_file(data).read_bytes()[:-3]),  # torn
        lambda data: _held_file(data).unlink(),
        lambda data: _held_file(data).write_bytes(  # a segment elsewhere, with the lines as they were
            b'{"segments":["../../x"],"serving":[0,0,0]}\n'
            + _held_file(data).read_bytes().partition(b"\n")[2]
        ),
        lambda data: _held_file(data).write_bytes(
            b'{"segments":["../../x"],"serving":[0,0,7]}\n'
            + _held_file(data).read_bytes().partition(b"\n")[2]
        ),
        lambda data: _edit_rollup(data, held="../../../etc/passwd"),
        lambda data: _edit_rollup(data, gone=[["done-1", "../../x"]]),
    ],
    ids=["torn", "missing", "segment-elsewhere", "index-out-of-range", "digest-a-path", "gone-elsewhere"],
)
def test_a_held_file_or_rollup_edited_is_not_believed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit: Any
) -> None:
    """What says which folders the kept rows are for is a cache anyone could edit: torn, lost or naming
    files elsewhere, it is not followed, and the manifest is checked instead (the same rows)."""
    for i in range(3):
        finish(tmp_path, "complete", f"done-{i}")
    connect_fresh(tmp_path)
    settle(tmp_path)
    assert rollup.finished_costs(tmp_path, "job") is not None  # kept, with held-<name>.txt
    edit(tmp_path)
    shutil.rmtree(tmp_path / "complete" / "done-1")
    manifests = manifest_reads(monkeypatch)
    assert rollup.cost_rows(tmp_path, "job") == costs_from_files(tmp_path, "job")
    assert manifests  # checked against the manifest, not the edited file
    assert sorted(r["key"] for r in rollup.cost_rows(tmp_path, "job")) == ["done-0", "done-2"]


def test_a_job_deleted_after_a_save_moved_it_to_another_segment_has_that_segments_calls_taken_off(
    tmp_path: Path,
) -> None:
    """The folders held are the same before and after a save that merged segments, but each job's rows
    are in another segment: the calls taken off are read from the one the manifest now serves it from
    (found by hypothesis: the old segment's calls were taken off, and the job's second run stayed)."""
    for i in range(2):
        finish(tmp_path, "complete", f"done-{i}")
    connect_fresh(tmp_path)
    settle(tmp_path)
    rollup.cost_rows(tmp_path, "job")
    job = tmp_path / "complete" / "done-1"
    (tmp_path / "current").mkdir()
    job.rename(tmp_path / "current" / "done-1").rename(job)  # resumed, and ended again with a call more
    log_call(job, "done-1", "a", 0.25, "again", input_tokens=1, output_tokens=1)
    finish(tmp_path, "complete", "done-1")
    connect_fresh(tmp_path)  # a dashboard saves: every job's rows rewritten into one new segment
    shutil.rmtree(job)
    found = rollup.finished_costs(tmp_path, "job")
    assert found is not None and found.listed is None  # told by a listing
    assert found.rows.dicts() == costs_from_files(tmp_path, "job")
    assert [r["key"] for r in rollup.cost_rows(tmp_path, "job")] == ["done-0"]


def test_folders_that_are_no_job_are_left_out_of_the_tables_and_the_costs(tmp_path: Path) -> None:
    """A folder named in no encoding (DuckDB takes only UTF-8: it made `pop costs` fail), a move's
    leftover ``<job>.old-<pid>`` (the same job id in its status), a symlink: no job, in no place."""
    finish(tmp_path, "complete", "j1")
    for place in ("complete", "failed", "current"):
        (tmp_path / place).mkdir(exist_ok=True)
        os.mkdir(os.path.join(os.fsencode(tmp_path / place), b"bad-\xff\xfe"))
        (tmp_path / place / "elsewhere").symlink_to(tmp_path / "complete" / "j1")
    shutil.copytree(tmp_path / "complete" / "j1", tmp_path / "complete" / "j1.old-123")
    analytics = connect_fresh(tmp_path)
    assert [r["job"] for r in analytics.query("SELECT job FROM jobs")] == ["j1"]
    assert [r["key"] for r in rollup.cost_rows(tmp_path, "job")] == ["j1"]
    settle(tmp_path)
    assert rollup.finished_costs(tmp_path, "job") is not None  # kept
    finish(tmp_path, "complete", "j2")  # and brought up to date beside another such folder
    os.mkdir(os.path.join(os.fsencode(tmp_path / "complete"), b"more-\xff"))
    assert rollup.cost_rows(tmp_path, "job") == costs_from_files(tmp_path, "job")
    assert sorted(r["key"] for r in rollup.cost_rows(tmp_path, "job")) == ["j1", "j2"]


JOBS_DO = ["end", "end-failed", "delete", "resume", "archive", "run-again", "settle", "dashboard-saves"]


@settings(max_examples=15, deadline=None)
@given(st.lists(st.sampled_from(JOBS_DO), min_size=1, max_size=6), st.randoms(use_true_random=False))
def test_costs_are_what_duckdb_says_over_the_files_whatever_jobs_do_in_any_order(
    ops: list[str], pick: Any
) -> None:
    """Every way `pop costs` answers (kept rows as they are, brought up to date, with rows taken off,
    DuckDB) gives what DuckDB over the job files alone gives, after any sequence of what jobs do."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        for i in range(4):
            finish(data, "complete", f"done-{i}")
        connect_fresh(data)
        settle(data)
        rollup.cost_rows(data, "job")  # the rows kept
        for n, op in enumerate(ops):
            ended = sorted(p for place in ("complete", "failed", "archive") for p in data.glob(f"{place}/*/"))
            job = pick.choice(ended) if ended else None
            if op in ("end", "end-failed"):
                finish(data, "complete" if op == "end" else "failed", f"new-{n}")
            elif op == "delete" and job:
                shutil.rmtree(job)
            elif op in ("resume", "archive") and job:
                (data / op.replace("resume", "current")).mkdir(exist_ok=True)
                job.rename(data / op.replace("resume", "current") / job.name)
            elif op == "run-again" and job:  # resumed, and ended again in the same place, with a call more
                (data / "current").mkdir(exist_ok=True)
                job.rename(data / "current" / job.name).rename(job)
                finish(data, job.parent.name, job.name)
            elif op == "settle":
                settle(data)
            elif op == "dashboard-saves":
                connect_fresh(data)
            assert rollup.cost_rows(data, "job") == costs_from_files(data, "job"), (ops, op)
        assert rollup.cost_rows(data, "model") == costs_from_files(data, "model"), ops


def move(data: Path, job: str, place: str) -> None:
    found = next(data.glob(f"*/{job}"))
    found.rename(data / place / job)


@pytest.mark.parametrize(
    "while_listing",
    [
        "an-open-job-ends",  # read as open, then found finished: not counted twice
        "a-job-starts",  # in neither listing it would be missed
        "an-ended-job-resumes",  # from a finished place the snapshot does not hold
        "a-held-job-resumes",  # the rollup no longer holds: DuckDB
    ],
)
@pytest.mark.parametrize("kept", [False, True], ids=["listed", "kept"])
def test_costs_count_each_job_once_whatever_moves_while_they_are_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, while_listing: str, kept: bool
) -> None:
    for i in range(3):
        finish(tmp_path, "complete", f"done-{i}")
    connect_fresh(tmp_path)
    finish(tmp_path, "complete", "late")
    write_job(tmp_path, "current", "running", "running", cost=0.5)
    if kept:  # settled, then listed once: rollup.json answers alone
        settle(tmp_path)
        assert rollup.finished_costs(tmp_path, "job") is not None
    real = rollup.finished_costs

    def moving(data: Path, by: str) -> rollup.Finished | None:
        if while_listing == "an-open-job-ends":
            move(data, "running", "complete")
        elif while_listing == "an-ended-job-resumes":
            move(data, "late", "current")
        found = real(data, by)
        if while_listing == "a-job-starts":
            write_job(data, "current", "started", "running", cost=2.0)
        elif while_listing == "a-held-job-resumes":
            move(data, "done-1", "current")
        return found

    monkeypatch.setattr(rollup, "finished_costs", moving)
    assert rollup.cost_rows(tmp_path, "job") == costs_from_files(tmp_path, "job")


def test_a_rollup_file_naming_folders_elsewhere_is_not_followed(tmp_path: Path) -> None:
    finish(tmp_path, "complete", "done-1")
    connect_fresh(tmp_path)
    settle(tmp_path)
    assert rollup.finished_costs(tmp_path, "job") is not None  # kept
    path = tmp_path / ".analytics" / "rollup.json"
    head, *rest = path.read_text().splitlines()
    for elsewhere in (["..", "done-1"], ["complete", "../../x"], ["complete", ".hidden"], ["complete", ""]):
        path.write_text("\n".join([json.dumps({**json.loads(head), "unheld": [elsewhere]}), *rest]) + "\n")
        found = rollup.finished_costs(tmp_path, "job")
        assert found is not None and found.listed is not None and found.unheld == {}, elsewhere


def test_a_refresh_that_saves_the_snapshot_keeps_its_cost_rows_for_the_next_pop_costs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dashboard's refresh saves the snapshot: `pop costs` then answers from the rows it kept, without
    checking the new manifest against every folder (~1 s at 100,000 jobs)."""
    for job in ("a", "b"):
        finish(tmp_path, "complete", job)
    connect_fresh(tmp_path)
    finish(tmp_path, "complete", "c")
    connect_fresh(tmp_path)  # the snapshot saved again, with c
    manifests = manifest_reads(monkeypatch)
    kept = rollup.finished_costs(tmp_path, "job")
    assert kept is not None and kept.listed is None and not manifests
    assert sorted(kept.rows.columns["key"]) == ["a", "b", "c"] and kept.unheld == {}
    assert rollup.cost_rows(tmp_path, "job") == costs_from_files(tmp_path, "job")


def test_after_duckdb_answered_costs_the_next_call_answers_from_the_rows_it_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for job in ("a", "b", "c"):
        finish(tmp_path, "complete", job)
    connect_fresh(tmp_path)
    monkeypatch.setattr(analytics_store, "SETTLE_S", 1e9)  # every job ended just now: none saved
    late = finish(tmp_path, "failed", "late")
    shutil.rmtree(tmp_path / "complete" / "b")
    settle(tmp_path)
    monkeypatch.setattr(rollup, "_less", lambda _s, rows, gone, _by: None if gone else rows)  # unreadable
    assert rollup.finished_costs(tmp_path, "job") is None  # the snapshot holds a job gone: DuckDB
    assert rollup.cost_rows(tmp_path, "job") == costs_from_files(tmp_path, "job")
    kept = rollup.finished_costs(tmp_path, "job")
    assert kept is not None and kept.listed is None  # rollup.json answered, without a listing
    assert sorted(kept.rows.columns["key"]) == ["a", "c"] and kept.unheld == {"late": str(late)}
    assert rollup.cost_rows(tmp_path, "job") == costs_from_files(tmp_path, "job")
    append_jsonl(tmp_path / "complete" / "runs.jsonl", {"job": "a", "state": "done"})  # a ended again
    assert rollup.finished_costs(tmp_path, "job") is None
