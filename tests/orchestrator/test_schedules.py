"""Schedules with a clock the test controls: the scheduler is woken at chosen times (as a daemon's loop
wakes it), on a real data folder, and its seeds land in pending/ as the daemon would take them. Two
schedulers on one folder are two daemons."""

from __future__ import annotations

import itertools
import shutil
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pop_nb.orchestrator.scheduler import Scheduler
from tests.conftest import Project, pop

SEED = {"data": {"topic": "tides"}}


def scheduled(project: Project, **schedule: Any) -> None:
    entry = {"cron": "*/10 * * * *", "seed": SEED, **schedule}
    project.pipeline("p", {"t": {}}, schedules={"digest": entry})


def daemon(project: Project, name: str = "a") -> tuple[Scheduler, list[str]]:
    said: list[str] = []
    return Scheduler(project.settings(), by=name, say=said.append), said


def at(hour: int, minute: int = 0, second: int = 1, day: int = 5) -> datetime:
    return datetime(2026, 12, day, hour, minute, second, tzinfo=UTC)


def dropped(project: Project) -> list[str]:
    """Job ids whose seeds the schedulers dropped (waiting in pending/, or taken and finished)."""
    waiting = [p.name.removesuffix("-seed.json") for p in (project.data / "pending").glob("*-seed.json")]
    return sorted(waiting + [p.name for p in (project.data / "complete").glob("digest-*")])


def finish_all(project: Project) -> None:
    """What the daemon would do with the dropped seeds: take them, run them, end them."""
    for seed in (project.data / "pending").glob("*-seed.json"):
        (project.data / "complete" / seed.name.removesuffix("-seed.json")).mkdir(parents=True)
        seed.unlink()


def decisions(project: Project) -> dict[str, str]:
    import json

    folder = project.data / "schedules" / "digest" / "slots"
    return {p.stem: json.loads(p.read_text())["action"] for p in sorted(folder.glob("*.json"))}


def test_five_slots_with_two_daemons_make_exactly_five_jobs(project: Project) -> None:
    scheduled(project)
    (a, _), (b, _) = daemon(project, "a"), daemon(project, "b")
    a.wake(at(9, 55))
    b.wake(at(9, 55))
    for i, minute in enumerate((0, 10, 20, 30, 40)):
        first, second = (a, b) if i % 2 else (b, a)
        if i < 3:
            first.wake(at(10, minute))
            second.wake(at(10, minute, 2))
        else:  # both at once, from two threads
            threads = [threading.Thread(target=s.wake, args=(at(10, minute),)) for s in (a, b)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finish_all(project)
    a.wake(at(10, 45))
    b.wake(at(10, 45))
    assert dropped(project) == [f"digest-20261205T10{m}00Z" for m in ("00", "10", "20", "30", "40")]
    assert set(decisions(project).values()) == {"started"}


def test_a_restarted_daemon_never_starts_a_slot_again(project: Project) -> None:
    scheduled(project)
    first, _ = daemon(project)
    first.wake(at(9, 55))
    first.wake(at(10, 0))
    again, _ = daemon(project, "a-restarted")  # a new process: nothing in memory
    again.wake(at(10, 0, 30))
    assert dropped(project) == ["digest-20261205T100000Z"]


@pytest.mark.parametrize(("catch_up", "ran"), [(2, ["110000", "120000"]), (0, [])])
def test_a_daemon_down_for_three_slots_runs_at_most_catch_up_of_them(
    project: Project, catch_up: int, ran: list[str]
) -> None:
    scheduled(project, cron="0 * * * *", catch_up=catch_up)
    before, _ = daemon(project)
    before.wake(at(9, 30))  # first seen; then no daemon from 09:30 to 12:30
    after, _ = daemon(project, "back")
    after.wake(at(12, 30))
    finish_all(project)  # the first catch-up job ends; the second was queued behind it
    after.wake(at(12, 31))
    finish_all(project)
    after.wake(at(12, 32))
    assert dropped(project) == [f"digest-20261205T{t}Z" for t in ran]
    made = decisions(project)
    if catch_up:
        assert made == {
            "20261205T100000Z": "missed",
            "20261205T110000Z": "started",
            "20261205T120000Z": "queued",
        }
    else:
        assert made == {"20261205T120000Z": "missed"}  # one record for the gap


@pytest.mark.parametrize("overlap", ["skip", "queue"])
def test_a_slot_while_the_last_job_runs_is_skipped_or_queued(project: Project, overlap: str) -> None:
    scheduled(project, overlap=overlap)
    s, _ = daemon(project)
    s.wake(at(9, 55))
    s.wake(at(10, 0))  # its job is still running at 10:10
    (project.data / "current" / "digest-20261205T100000Z").mkdir(parents=True)
    (project.data / "pending" / "digest-20261205T100000Z-seed.json").unlink()
    s.wake(at(10, 10))
    assert dropped(project) == []
    assert decisions(project)["20261205T101000Z"] == ("skipped" if overlap == "skip" else "queued")
    shutil.rmtree(project.data / "current" / "digest-20261205T100000Z")  # it ended
    s.wake(at(10, 12))
    assert dropped(project) == (["digest-20261205T101000Z"] if overlap == "queue" else [])


@pytest.mark.parametrize(
    ("cron", "day", "local_times"),
    [
        # autumn: 01:00-01:59 happens twice (EDT, then EST); each wall-clock time fires once
        ("30 1 * * *", "2026-11-01", ["01:30 EDT"]),
        (
            "*/30 0-3 * * *",
            "2026-11-01",
            [
                "00:00 EDT",
                "00:30 EDT",
                "01:00 EDT",
                "01:30 EDT",
                "02:00 EST",
                "02:30 EST",
                "03:00 EST",
                "03:30 EST",
            ],
        ),
        # spring: 02:00-02:59 never happens; a time inside it fires once, at 03:00
        ("30 2 * * *", "2026-03-08", ["03:00 EDT"]),
        (
            "0 * * * *",
            "2026-03-08",
            [f"{h:02d}:00 {z}" for h, z in [(0, "EST"), (1, "EST")] + [(h, "EDT") for h in range(3, 24)]],
        ),
    ],
)
def test_across_a_daylight_saving_change_each_slot_fires_once(
    project: Project, cron: str, day: str, local_times: list[str]
) -> None:
    zone = ZoneInfo("America/New_York")
    scheduled(project, cron=cron, timezone="America/New_York")
    s, _ = daemon(project)
    start = datetime.fromisoformat(f"{day}T00:00:00").replace(tzinfo=zone) - timedelta(minutes=5)
    clock = start.astimezone(UTC)
    s.wake(clock)
    while clock < start.astimezone(UTC) + timedelta(hours=25):
        clock += timedelta(minutes=5)
        s.wake(clock)
        finish_all(project)
    fired = [
        datetime.strptime(j.split("-")[-1], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).astimezone(zone)
        for j in dropped(project)
    ]
    assert [f.strftime("%H:%M %Z") for f in fired if f.strftime("%Y-%m-%d") == day] == local_times
    assert len(set(dropped(project))) == len(dropped(project))


def test_a_paused_schedule_fires_nothing_and_resuming_owes_nothing_from_the_pause(project: Project) -> None:
    scheduled(project, catch_up=5)
    s, _ = daemon(project)
    s.wake(at(9, 55))
    assert pop("schedules", "pause", "digest").returncode == 0
    for minute in (0, 10, 20):
        s.wake(at(10, minute))
    assert dropped(project) == []
    assert pop("schedules", "resume", "digest").returncode == 0
    s.wake(at(10, 25))
    assert dropped(project) == []  # the paused slots are not caught up
    s.wake(at(10, 30))
    assert dropped(project) == ["digest-20261205T103000Z"]


def test_pop_compile_refuses_a_bad_schedule_naming_it(project: Project, tmp_path: Path) -> None:
    schema = {"type": "object", "required": ["topic"], "properties": {"topic": {"type": "string"}}}
    folder = project.pipeline(
        "p",
        {"t": {}},
        seed_schema="seed.schema.json",
        schedules={
            "bad-cron": {"cron": "61 * * * *", "seed": SEED},
            "bad-zone": {"cron": "0 6 * * *", "timezone": "Mars/Olympus", "seed": SEED},
            "never": {"cron": "0 0 31 2 *", "seed": SEED},
            "bad-seed": {"cron": "0 6 * * *", "seed": {"data": {"topic": 7}}},
            "no-file": {"cron": "0 6 * * *", "seed": "seeds/missing.json"},
            "endless": {"cron": "0 6 * * *", "seed": "/dev/zero"},
            "a-folder": {"cron": "0 6 * * *", "seed": "seeds"},
            "good": {"cron": "0 6 * * 1-5", "timezone": "Europe/London", "seed": SEED},
        },
    )
    import json

    (folder / "seed.schema.json").write_text(json.dumps(schema))
    (folder / "seeds").mkdir()
    out = pop("compile", "p")
    assert out.returncode == 1
    text = out.stderr
    assert "schedules.bad-cron" in text and "'61 * * * *' is not a cron expression" in text
    assert "schedules.bad-zone" in text and "unknown time zone 'Mars/Olympus'" in text
    assert "schedules.never" in text and "matches no date" in text
    assert "schedules.bad-seed" in text and "does not fit the seed_schema" in text
    assert "schedules.no-file" in text and "seeds/missing.json" in text
    assert "schedules.endless" in text and "over the 1048576-byte limit" in text  # read no further
    assert "schedules.a-folder" in text and "cannot be read" in text
    assert "schedules.good" not in text


def test_two_real_daemons_keep_a_schedule_each_slot_run_once(project: Project) -> None:
    """The daemons themselves (`pop orchestrate`), a schedule every 2 s: every slot between the first and
    the last they decided made one job, which ran; none was started twice."""
    import json
    import signal

    from tests.conftest import wait_for
    from tests.orchestrator.test_daemon import Daemon

    project.pipeline(
        "p", {"t": {}}, schedules={"digest": {"cron": "* * * * * */2", "seed": SEED, "overlap": "queue"}}
    )
    daemons = [Daemon(project), Daemon(project)]
    try:
        wait_for(lambda: len(list((project.data / "complete").glob("digest-*"))) >= 4, timeout=120)
    finally:
        for d in daemons:
            d.proc.send_signal(signal.SIGTERM)
        for d in daemons:
            assert d.wait(60) == 0
    slots = project.data / "schedules" / "digest" / "slots"
    records = [json.loads(p.read_text()) for p in sorted(slots.glob("*.json"))]
    keys = [p.stem for p in sorted(slots.glob("*.json"))]
    times = [datetime.strptime(k, "%Y%m%dT%H%M%SZ") for k in keys]
    assert all((b - a).total_seconds() == 2 for a, b in itertools.pairwise(times)), keys
    assert {r["by"] for r in records} <= {n for d in daemons for n in [_name(d)]}
    jobs = [r["job"] for r in records if r["action"] in ("started", "queued")]
    assert len(jobs) == len(set(jobs)) >= 4
    done = {p.name for p in (project.data / "complete").glob("digest-*")}
    for job in jobs:  # each slot's job exists once, in one place
        places = [
            p
            for p in ("pending", "current", "complete", "failed", "rejected")
            if (project.data / p / job).exists()
        ]
        assert len(places) <= 1, (job, places)
    assert not list((project.data / "rejected").iterdir()), "no slot's seed was refused as a duplicate"
    assert done <= set(jobs)


def _name(daemon: Any) -> str:
    import re

    found = re.search(r"as (\S+) \(", daemon.output())
    return found[1] if found else "?"
