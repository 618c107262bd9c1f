"""One rule for a seed, whichever way it comes in: the same limits and the same reasons from the drop
folder, ``pop run``, ``pop submit``, ``pop batch``, ``pop_nb.run`` and the API (tested in
tests/server/test_trust.py)."""

from __future__ import annotations

import json

import pytest

from pop_nb.errors import SeedError, SeedTooLarge
from pop_nb.models.seed import MAX_SEED_BYTES, loads_seed, parse_seed
from tests.conftest import Project, pop

BIG = {"data": {"text": "y" * MAX_SEED_BYTES}}


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (BIG, "too_large"),
        ({"data": {"deep": json.loads("[" * 70 + "]" * 70)}}, "too_deep"),
        ([1, 2], "invalid_seed"),
        ({"pipeline": "other", "data": {}}, "invalid_seed"),
        ({"data": {}, "budget": 3}, "invalid_seed"),
        ({"data": {"x": float("nan")}}, "invalid_seed"),  # NaN and infinity read by Python are not JSON
        (json.loads('{"data": {"x": 1e999}}'), "invalid_seed"),
    ],
)
def test_the_seed_rule_gives_one_reason_for_each_fault(value: object, reason: str) -> None:
    with pytest.raises(SeedError) as caught:
        parse_seed(value, "the seed", "tiny")
    assert caught.value.reason == reason


def test_size_is_the_bytes_as_given_or_the_value_as_compact_json() -> None:
    assert parse_seed({"data": {"text": "y" * (MAX_SEED_BYTES - 100)}}, "s", "tiny").pipeline == "tiny"
    spaced = json.dumps({"data": {"text": "y" * (MAX_SEED_BYTES - 100)}}, indent=40).encode() + b" " * 200
    with pytest.raises(SeedTooLarge):  # the same value, spelt in more bytes than the limit
        loads_seed(spaced, "seed.json")
    with pytest.raises(SeedTooLarge, match=r"the seed is \d+ bytes, over the 1048576-byte limit"):
        parse_seed(BIG, "the seed", "tiny")


def test_every_front_end_refuses_a_big_seed_with_the_same_words(project: Project) -> None:
    import pop_nb

    project.pipeline("tiny", {"a": {}})
    seed_file = project.root / "big.json"
    seed_file.write_text(json.dumps(BIG))
    words = "-byte limit for seeds"
    with pytest.raises(SeedTooLarge, match=words):
        pop_nb.run("tiny", BIG["data"], root=project.root)
    with pytest.raises(SeedTooLarge, match=words):
        pop_nb.run("tiny", seed=seed_file, root=project.root)
    for command in (("run", "tiny", "--seed", str(seed_file)), ("submit", "tiny", "--seed", str(seed_file))):
        done = pop(*command)
        assert done.returncode == 2 and words in done.stderr, (command, done.stderr)
    batch = pop("batch", "tiny", "--glob", str(seed_file), "--json")
    assert (
        words
        in (project.data / "batches").joinpath(json.loads(batch.stdout)["name"], "manifest.jsonl").read_text()
    )
    assert not any(project.data.glob("current/*")) and not any(project.data.glob("pending/*"))  # nothing made
