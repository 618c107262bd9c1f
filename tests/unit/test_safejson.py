"""The one guard every hostile JSON goes through: depth counted outside strings, escaped quotes or not."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pop_nb.safejson import MAX_NESTING, columns, loads, nesting_over

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
        (b'{"k": "line\\n", "x": ' + b"[" * DEEP + b"]" * DEEP + b"}", True),  # an escape, then depth
        (b'{"k": "a\\\\", "x": ' + b"[" * DEEP + b"]" * DEEP + b"}", True),  # an escaped backslash
        (b'["a", "' + b"[" * DEEP + b'"]', False),  # brackets in a string, no backslash anywhere
    ],
)
def test_depth_is_counted_outside_strings(doc: bytes, over: bool) -> None:
    assert nesting_over(doc) is over
    if over:
        with pytest.raises(ValueError, match="nested too deep"):
            loads(doc)


def by_hand(data: bytes) -> tuple[int, bool]:
    """The depth of arrays and objects outside strings, one character at a time; whether the text ends
    inside a string."""
    depth = peak = 0
    in_string = escaped = False
    for byte in data:
        char = chr(byte)
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            peak = max(peak, depth)
        elif char in "]}":
            depth -= 1
    return peak, in_string


@settings(max_examples=600, deadline=None)
@given(st.text(alphabet='[]{}"\\an,: ', max_size=80), st.integers(min_value=0, max_value=6))
def test_the_depth_is_never_under_the_count_one_character_at_a_time(doc: str, limit: int) -> None:
    """Never under the count by hand (that could let a deep text through); over it only for a text that
    ends inside a string (no JSON: a pattern keeps counting in it)."""
    data = doc.encode()
    depth, open_string = by_hand(data)
    if depth > limit:
        assert nesting_over(data, limit)
    if not open_string:
        assert nesting_over(data, limit) is (depth > limit)


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none() | st.text(alphabet='[]{}"\\ab\n'),
        lambda kids: st.lists(kids) | st.dictionaries(st.text(alphabet='[]"\\a'), kids),
        max_leaves=30,
    )
)
def test_the_depth_of_any_json_is_its_depth(value: object) -> None:
    data = json.dumps(value).encode()
    for limit in range(0, 8):
        assert nesting_over(data, limit) is (by_hand(data)[0] > limit)


def test_columns_are_an_object_of_lists_as_long_each_of_its_kinds() -> None:
    kinds = {"name": (str,), "n": (int,), "any": None}
    good = {"name": ["a", "b"], "n": [1, 2], "any": [None, [1]]}
    assert columns(good, kinds) is good
    assert columns({"name": [], "n": [], "any": []}, kinds) is not None
    for bad in (
        [good],
        {**good, "more": [1, 2]},
        {k: v for k, v in good.items() if k != "any"},
        {**good, "n": [1]},
        {**good, "n": [1, True]},  # a bool is no int
        {**good, "n": [1, 2.0]},
        {**good, "name": ["a", None]},
        {**good, "n": "12"},
    ):
        assert columns(bad, kinds) is None, bad
