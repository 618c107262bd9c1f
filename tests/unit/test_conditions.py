import pytest

from pop_nb.errors import ConditionError
from pop_nb.pipeline.conditions import Condition

NS = {
    "inputs": {"research": {"confidence": 0.7, "tags": ["a", "b"], "name": "Report"}},
    "seed": {"region": "EU"},
    "config": {"min": 0.5},
}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("inputs['research']['confidence'] >= 0.5", True),
        ("inputs['research']['confidence'] >= config['min'] and seed['region'] == 'US'", False),
        ("len(inputs['research']['tags']) == 2 or False", True),
        ("'b' in inputs['research']['tags'] and 'z' not in inputs['research']['tags']", True),
        ("inputs['research'].get('missing', 1) > 0", True),
        ("inputs['research']['name'].lower().startswith('rep')", True),
        ("not (0.1 < inputs['research']['confidence'] < 0.6)", True),
        ("max([1, 2, 3]) - 1 == 2 if seed['region'] == 'EU' else False", True),
    ],
)
def test_allowed_expressions_evaluate(source: str, expected: bool) -> None:
    assert Condition(source).evaluate(NS) is expected


@pytest.mark.parametrize(
    "source",
    [
        "__import__('os').system('id')",
        "inputs.__class__",
        "().__class__.__bases__[0].__subclasses__()",
        "open('/etc/passwd').read()",
        "[x for x in inputs]",
        "(lambda: 1)()",
        "exec('1')",
        "globals()",
        "os",
        "inputs['a'].__getitem__('b')",
        "'x' * 10**9",
        "{**inputs}",
    ],
)
def test_unsafe_or_unsupported_expressions_are_refused(source: str) -> None:
    with pytest.raises(ConditionError):
        Condition(source).evaluate(NS)


def test_syntax_errors_are_refused_at_parse_time() -> None:
    with pytest.raises(ConditionError, match="does not parse"):
        Condition("inputs['a'] >=")


def test_evaluation_error_names_the_condition() -> None:
    with pytest.raises(ConditionError, match=r"KeyError.*nope"):
        Condition("inputs['nope']['x'] > 1").evaluate(NS)
