"""The one guard every hostile JSON goes through: depth counted outside strings, escaped quotes or not."""

from __future__ import annotations

import json

import pytest

from pop_nb.safejson import MAX_NESTING, loads, nesting_over

DEEP = MAX_NESTING + 1


@pytest.mark.parametrize(
    ("doc", "over"),
    [
        (b"[" * DEEP + b"]" * DEEP, True),
        (b"[" * MAX_NESTING + b"]" * MAX_NESTING, False),
        (b"[" + b",".join([b'"[[[["'] * 600) + b"]", False),  # brackets in strings are text
        (json.dumps([{"k": "]" * 900}, [[["x"]]]] * 300).encode(), False),  # a closing run can't hide depth
        (json.dumps({"k": '"' + "[" * 700}).encode(), False),  # an escaped quote, then brackets in text
        (json.dumps({'a\\"': '"]]]'}).encode()[:-1] + b"," + b"[" * DEEP + b"]" * DEEP + b"}", True),
        (json.dumps([{"key": f"job-{i}", "cost": i} for i in range(5000)]).encode(), False),
    ],
)
def test_depth_is_counted_outside_strings(doc: bytes, over: bool) -> None:
    assert nesting_over(doc) is over
    if over:
        with pytest.raises(ValueError, match="nested too deep"):
            loads(doc)
