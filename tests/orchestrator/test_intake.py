"""Seeds dropped in pending/: good ones become jobs, hostile ones land in rejected/ with a reason."""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pop_nb.models.ids import JOB_ID_RE
from pop_nb.orchestrator.intake import MAX_SEED_BYTES, Intake
from tests.conftest import Project, pop

GOOD = {"pipeline": "tiny", "data": {"n": 1}}


def intake_for(project: Project, name: str = "d1") -> Intake:
    settings = project.settings()
    return Intake(settings, settings.data / ".orchestrator" / "claims" / name)


def drop(project: Project, name: str, content: bytes, age_s: float = 10.0) -> Path:
    pending = project.data / "pending"
    pending.mkdir(parents=True, exist_ok=True)
    path = pending / name
    path.write_bytes(content)
    old = time.time() - age_s
    os.utime(path, (old, old))
    return path


def rejection(project: Project, folder: str) -> dict:
    return json.loads((project.data / "rejected" / folder / "rejection.json").read_text())


HOSTILE: list[tuple[str, bytes, str]] = [
    ("broken-seed.json", b'{"pipeline": "tiny", "data": ', "bad_json"),
    ("nopipe-seed.json", b'{"data": {}}', "invalid_seed"),
    ("ghost-seed.json", json.dumps({"pipeline": "ghost"}).encode(), "unknown_pipeline"),
    ("badslug-seed.json", json.dumps({"pipeline": "Not A Slug"}).encode(), "invalid_seed"),
    ("list-seed.json", b"[1, 2, 3]", "invalid_seed"),
    ("keyed-seed.json", json.dumps({**GOOD, "llm": {"api_key": "sk-abcdefgh123"}}).encode(), "invalid_seed"),
    ("bin-seed.json", bytes(range(256)) * 4, "not_utf8"),
    ("huge-seed.json", b'{"pipeline": "tiny", "data": {"x": "' + b"a" * MAX_SEED_BYTES + b'"}}', "too_large"),
    ("has space-seed.json", json.dumps(GOOD).encode(), "bad_id"),
    ("-leading-dash-seed.json", json.dumps(GOOD).encode(), "bad_id"),
    (
        "deep-seed.json",
        b'{"pipeline": "tiny", "data": {"x": ' + b"[" * 10_000 + b"]" * 10_000 + b"}}",
        "too_deep",
    ),
    (
        "deepish-seed.json",
        json.dumps({**GOOD, "data": {"x": [[[[[[[[[[0]]]]]]]]]] * 7}})
        .encode()
        .replace(b"[0]", b"[" * 60 + b"0" + b"]" * 60),
        "too_deep",
    ),
]
# Not seeds: left where they are (a writer's temporary must survive until its own rename).
STRAYS: list[tuple[str, bytes]] = [
    ("notes.txt", b"hello"),
    ("README", b"drop seeds here"),
    ("job1.json", json.dumps(GOOD).encode()),
    ("j3-seed.json.part", b'{"pipeline": "ti'),
]


def test_good_and_hostile_seeds(project: Project) -> None:
    project.pipeline("tiny", {"a": {}})
    for name, content, _ in HOSTILE:
        drop(project, name, content)
    for name, content in STRAYS:
        drop(project, name, content)
    for hidden in (".j4-seed.json", "..-seed.json"):  # a writer's hidden temporary: not even a stray
        drop(project, hidden, json.dumps(GOOD).encode())
    for i in range(3):
        drop(project, f"good-{i}-seed.json", json.dumps(GOOD).encode())
    intake = intake_for(project)
    outcomes = [intake.take(p) for p in intake.pending()]
    assert all(o is not None for o in outcomes)
    jobs = sorted(o.job_id for o in outcomes if o and o.job_id)
    assert jobs == ["good-0", "good-1", "good-2"]
    assert json.loads((project.data / "current" / "good-0" / "seed.json").read_bytes()) == GOOD
    reasons = {o.name: o.reason for o in outcomes if o and o.rejected}
    assert reasons == {name: reason for name, _, reason in HOSTILE}
    for outcome in outcomes:
        if outcome and outcome.rejected:
            kept = project.data / "rejected" / outcome.rejected / "seed.json"
            original = next(c for n, c, _ in HOSTILE if n == outcome.name)
            assert kept.read_bytes() == original  # nothing lost, byte for byte
            why = rejection(project, outcome.rejected)
            assert why["reason"] == outcome.reason and why["message"] and why["rejected_at"]
    assert "sk-abcdefgh123" not in rejection(project, "keyed")["message"]
    assert "Fix: create pipelines/ghost/pipeline.yaml" in rejection(project, "ghost")["message"]
    left = sorted(p.name for p in (project.data / "pending").iterdir())
    assert left == sorted([".j4-seed.json", "..-seed.json", *(name for name, _ in STRAYS)])
    assert intake.strays() == sorted(name for name, _ in STRAYS)
    shown = pop("status").stdout  # and `pop status` says so, with the naming rule
    assert "pending/ holds 4 file(s) that are not seeds, left alone: 'README', 'j3-seed.json.part'" in shown
    assert "A seed is named <id>-seed.json" in shown
    for name, content in STRAYS:
        assert (project.data / "pending" / name).read_bytes() == content
    # an unsafe name never becomes a path: it is filed under a hash of itself
    folders = [p.name for p in (project.data / "rejected").iterdir()]
    assert all(JOB_ID_RE.fullmatch(f) for f in folders) and len(folders) == len(HOSTILE)
    assert sum(f.startswith("seed-") for f in folders) == 2  # "has space", "-leading-dash"


def test_a_name_that_is_not_utf8_is_rejected_with_a_readable_reason(project: Project) -> None:
    project.pipeline("tiny", {"a": {}})
    pending = project.data / "pending"
    pending.mkdir(parents=True)
    raw = os.path.join(os.fsencode(pending), b"raw\xff-seed.json")
    with open(raw, "wb") as fh:
        fh.write(json.dumps(GOOD).encode())
    os.utime(raw, (time.time() - 10, time.time() - 10))
    intake = intake_for(project)
    [path] = intake.pending()
    outcome = intake.take(path)
    assert outcome is not None and outcome.reason == "bad_id"
    why = rejection(project, outcome.rejected)
    assert why["file"] == "raw\\xff-seed.json" and "raw\\xff" in why["message"]
    assert (project.data / "rejected" / outcome.rejected / "seed.json").read_bytes() == json.dumps(
        GOOD
    ).encode()


def test_a_seed_still_being_written_waits_then_is_rejected(project: Project) -> None:
    project.pipeline("tiny", {"a": {}})
    path = drop(project, "slow-seed.json", b'{"pipeline": "ti', age_s=0)
    intake = intake_for(project)
    assert intake.take(path) is None and path.exists()  # left for its writer to finish
    path.write_bytes(json.dumps(GOOD).encode())
    outcome = intake.take(path)
    assert outcome is not None and outcome.job_id == "slow"
    stale = drop(project, "stale-seed.json", b'{"pipeline": "ti', age_s=30)
    assert intake.take(stale).reason == "bad_json"  # given up on


def test_duplicate_ids_are_rejected_not_overwritten(project: Project) -> None:
    project.pipeline("tiny", {"a": {}})
    intake = intake_for(project)
    first = intake.take(drop(project, "same-seed.json", json.dumps(GOOD).encode()))
    second = intake.take(drop(project, "same-seed.json", json.dumps({**GOOD, "name": "other"}).encode()))
    assert first.job_id == "same" and second.reason == "duplicate_id"
    assert json.loads((project.data / "current" / "same" / "seed.json").read_text()) == GOOD


def test_two_intakes_racing_take_each_seed_once(project: Project) -> None:
    project.pipeline("tiny", {"a": {}})
    for i in range(40):
        drop(project, f"r{i}-seed.json", json.dumps(GOOD).encode())
    results: list = []
    intakes = [intake_for(project, "d1"), intake_for(project, "d2")]
    threads = [
        threading.Thread(target=lambda i=i: results.extend(i.take(p) for p in i.pending())) for i in intakes
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    taken = [o.job_id for o in results if o is not None]
    assert sorted(taken) == sorted(f"r{i}" for i in range(40))  # each exactly once
    assert not (project.data / "rejected").exists() or not any((project.data / "rejected").iterdir())


def test_claims_of_a_dead_daemon_go_back_to_pending(project: Project) -> None:
    project.pipeline("tiny", {"a": {}})
    claims = project.data / ".orchestrator" / "claims"
    (claims / "dead-daemon").mkdir(parents=True)
    (claims / "dead-daemon" / "lost-seed.json").write_text(json.dumps(GOOD))
    intake = intake_for(project)
    assert intake.recover_claims(claims, alive={"d1"}) == 1
    assert (project.data / "pending" / "lost-seed.json").exists()


NAME_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.one_of(
        st.text(NAME_CHARS, min_size=1, max_size=60),
        st.text(NAME_CHARS, min_size=1, max_size=60).map(lambda s: s + "-seed.json"),
    ),
    content=st.one_of(
        st.binary(max_size=300),
        st.text(max_size=200).map(str.encode),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3),
            max_leaves=8,
        ).map(lambda v: json.dumps(v).encode()),
    ),
)
def test_fuzzed_seeds_are_all_answered_and_stay_inside_the_data_folder(
    project: Project, name: str, content: bytes
) -> None:
    if name in (".", "..") or len(name.encode()) > 200:
        return
    if not (project.root / "pipelines" / "tiny").exists():
        project.pipeline("tiny", {"a": {}})
    with tempfile.TemporaryDirectory(dir=project.root) as tmp:
        data = Path(tmp) / "data"
        settings_ = project.settings().model_copy(update={"data_dir": data})
        intake = Intake(settings_, data / ".orchestrator" / "claims" / "fuzz")
        path = data / "pending" / name
        try:
            path.write_bytes(content)
        except OSError:
            return  # a name the file system refuses is no seed at all
        old = time.time() - 60
        os.utime(path, (old, old))
        before = set(project.root.iterdir())
        listed = intake.pending()
        if not listed:  # not a seed (hidden, or not *-seed.json): left alone, as a writer's .tmp would be
            assert name.startswith(".") or not name.endswith("-seed.json")
            assert path.read_bytes() == content
            return
        outcome = intake.take(listed[0])
        assert outcome is not None and (outcome.job_id or outcome.reason)
        for written in data.rglob("*"):
            assert written.resolve().is_relative_to(data.resolve())
        assert set(project.root.iterdir()) == before
        if outcome.rejected:
            folder = data / "rejected" / outcome.rejected
            assert (folder / "seed.json").read_bytes() == content
            assert json.loads((folder / "rejection.json").read_text())["reason"] == outcome.reason


def test_a_seed_that_breaks_job_creation_goes_back_to_pending_and_leaves_no_half_job(
    project: Project, monkeypatch
) -> None:
    """A full disk is the data folder's fault, not the seed's: the seed waits in pending/ (byte for
    byte) to be taken again, and the error goes to the daemon, which says so and retries."""
    import pop_nb.pipeline.snapshot

    def disk_full(folder, pipeline):
        raise OSError(28, "No space left on device")

    project.pipeline("tiny", {"a": {}})
    monkeypatch.setattr(pop_nb.pipeline.snapshot, "write_snapshot", disk_full)
    intake = intake_for(project)
    with pytest.raises(OSError, match="No space left on device"):
        intake.take(drop(project, "full-seed.json", json.dumps(GOOD).encode()))
    assert not (project.data / "current" / "full").exists()
    assert not (project.data / "rejected" / "full").exists()
    assert (project.data / "pending" / "full-seed.json").read_bytes() == json.dumps(GOOD).encode()
