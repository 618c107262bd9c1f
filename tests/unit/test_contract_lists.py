"""The lists written by hand beside the models are checked against them: the analytics tables' columns
(each a field of the model whose file it reads, of a matching type, every field either a column or
left out with a reason) and the extension's stage list (the engine's, in its order)."""

from __future__ import annotations

import json
import re
import types
import typing
from typing import Any

import pytest
from pydantic import BaseModel

from pop_nb.analytics.schema import (
    EVENT_COLUMNS,
    METRIC_COLUMNS,
    RUN_COLUMNS,
    SPAN_COLUMNS,
    STATUS_COLUMNS,
    USAGE_COLUMNS,
)
from pop_nb.models.pipeline import STAGES
from pop_nb.models.records import Event, MetricRow, RunRecord, UsageRow
from pop_nb.models.status import JobStatus
from pop_nb.models.trace import SpanRecord
from tests.conftest import REPO

# fields a table leaves out on purpose, and why
LEFT_OUT = {
    "usage": {},
    "events": {},
    "metrics": {},
    "status": {
        "schema_version": "the file's format, not the job's",
        "updated_at": "changes at every write: the jobs table is about the job",
        "trace": "the current run's trace ids: the spans table has every run's spans",
    },
    "spans": {},
    "runs": {},
}
CASES = [
    ("usage", USAGE_COLUMNS, UsageRow),
    ("events", EVENT_COLUMNS, Event),
    ("metrics", METRIC_COLUMNS, MetricRow),
    ("status", STATUS_COLUMNS, JobStatus),
    ("spans", SPAN_COLUMNS, SpanRecord),
    ("runs", RUN_COLUMNS, RunRecord),
]
SQL_TYPES = {
    str: {"VARCHAR", "TIMESTAMP"},
    int: {"INTEGER", "BIGINT"},
    float: {"DOUBLE"},
    bool: {"BOOLEAN"},
}


def _base(annotation: Any) -> Any:
    """``int`` of ``int | None``; a Literal's value type; a model or a mapping is ``dict``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        kinds = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _base(kinds[0]) if len(kinds) == 1 else dict
    if typing.get_origin(annotation) is typing.Literal:
        return type(typing.get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return dict
    return typing.get_origin(annotation) or annotation


@pytest.mark.parametrize(("table", "columns", "model"), CASES, ids=[c[0] for c in CASES])
def test_a_tables_columns_are_its_models_fields(
    table: str, columns: dict[str, str], model: type[BaseModel]
) -> None:
    fields = model.model_fields
    assert sorted(set(columns) - set(fields)) == [], "columns that are no field of the model"
    missing = set(fields) - set(columns) - set(LEFT_OUT[table])
    assert sorted(missing) == [], "fields of the model with no column (add one, or say in LEFT_OUT why not)"
    for name, sql in columns.items():
        kind = _base(fields[name].annotation)
        if kind is dict and sql.startswith(("STRUCT(", "MAP(")):
            _struct_fits(f"{table}.{name}", sql, fields[name].annotation)
            continue
        allowed = SQL_TYPES.get(kind, {"JSON"})
        assert sql in allowed, f"{table}.{name}: {sql} for a {kind}"


def _struct_fits(where: str, sql: str, annotation: Any) -> None:
    """A STRUCT names only fields of its model (at every level); a MAP's values are its dict's values."""
    inner = sql[sql.index("(") + 1 : -1]
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(inner):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(inner[start:i].strip())
            start = i + 1
    parts.append(inner[start:].strip())
    model = _model(annotation)
    if sql.startswith("MAP("):
        key, value = parts
        assert key == "VARCHAR", where
        _struct_fits(f"{where}[]", value, typing.get_args(model)[1])
        return
    assert isinstance(model, type) and issubclass(model, BaseModel), f"{where}: a STRUCT for {model}"
    for part in parts:
        field, sql_type = part.split(" ", 1)
        assert field in model.model_fields, f"{where}.{field}: no field of {model.__name__}"
        if sql_type.startswith(("STRUCT(", "MAP(")):
            _struct_fits(f"{where}.{field}", sql_type, model.model_fields[field].annotation)


def _model(annotation: Any) -> Any:
    """``X`` of ``X | None``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(annotation) if a is not type(None))
    return annotation


def test_the_extensions_stage_list_is_the_engines() -> None:
    grid = (REPO / "extension" / "src" / "grid.ts").read_text()
    listed = re.search(r"export const STAGES = (\[.*?\]);", grid, re.S)
    assert listed is not None
    assert json.loads(listed.group(1).replace("'", '"').replace(",\n]", "\n]")) == list(STAGES)
    short = re.search(r"export const SHORT: Record<string, string> = (\{.*?\});", grid, re.S)
    assert short is not None
    assert re.findall(r"^\s+(\w+):", short.group(1), re.M) == list(STAGES)
