"""The query behind ``pop costs``: LLM use summed per grouping (pipeline, task, stage, model, day, job)
over the ``call_totals`` view. Plain SQL text, so the CLI, the snapshot's rollup and the notebooks'
:func:`~pop_nb.analytics.costs.costs` ask the same question."""

from __future__ import annotations

import bisect
import itertools
import json
from typing import Any

GROUPINGS: dict[str, str] = {
    "pipeline": "pipeline",
    "task": "pipeline || '/' || task",
    "stage": "pipeline || '/' || task || '/' || stage",
    "model": "model",
    "day": "day",
    "job": "job",
}


# The columns of `pop costs` after ``key``, in order: sums over call_totals (money rounded to 1e-9 USD).
COLUMNS = (
    "calls",
    "attempts",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cost_usd",
    "cache_hits",
    "saved_usd",
    "unpriced_calls",
)
MONEY = ("cost_usd", "saved_usd")


def costs_sql(by: str, where: str = "", rounded: bool = True) -> str:
    """The query itself (``Analytics.query`` runs it without pandas, for the CLI); ``where`` narrows
    the calls it sums (the snapshot's rollup: its own jobs). ``rounded=False``: money as summed, in the
    same order, for sums that are added to or taken from (:class:`CostRows` rounds what it gives)."""
    if by not in GROUPINGS:
        raise ValueError(f"cannot group costs by {by!r}; use one of {', '.join(GROUPINGS)}")
    money = "round(sum({c}), 9)" if rounded else "sum({c})"
    sums = ", ".join(
        f"{money.format(c=c)} AS {c}" if c in MONEY else f"sum({c})::BIGINT AS {c}" for c in COLUMNS
    )
    return f"""
        SELECT coalesce({GROUPINGS[by]}, '(none)') AS key, {sums}
        FROM call_totals {where} GROUP BY 1 ORDER BY round(sum(cost_usd), 9) DESC, key
    """


def _cents(value: float) -> float:
    """Money as ``pop costs`` gives it: to 1e-9 USD (and never -0.0, which a sum taken off can leave)."""
    return round(value, 9) + 0.0


class CostRows:
    """Rows of :func:`costs_sql` as columns (``key`` and :data:`COLUMNS`, in the query's order): ``pop
    costs --by job`` over 100,000 jobs prints 50 rows and a total, and never makes the other 99,950 rows
    into objects (74 ms) or walks them in Python. Money is kept as summed (rows of the query with
    ``rounded=False``, so rows added or taken off are rounded once, as the query over all would) and
    given rounded."""

    NAMES = ("key", *COLUMNS)
    KINDS: dict[str, tuple[type, ...] | None] = {"key": (str,), **{c: (int, float) for c in COLUMNS}}

    def __init__(self, columns: dict[str, list[Any]]) -> None:
        self.columns = columns

    @classmethod
    def of(cls, rows: list[dict[str, Any]]) -> CostRows:
        return cls({name: [row[name] for row in rows] for name in cls.NAMES})

    @classmethod
    def parse(cls, text: str) -> CostRows | None:
        """The rows kept as JSON columns (the snapshot's cost rollup), if they are as costs_sql returns
        them: a key (text) and every column a number, all as long; else None (a cache never decides
        alone: DuckDB answers)."""
        from pop_nb.safejson import columns, loads

        try:
            found = columns(loads(text), cls.KINDS)
        except ValueError:
            return None
        return cls(found) if found is not None else None

    def __len__(self) -> int:
        return len(self.columns["key"])

    def dicts(self, start: int = 0, stop: int | None = None) -> list[dict[str, Any]]:
        """Rows ``start:stop`` as dicts (JSON-ready)."""
        sliced = [self.columns[name][start:stop] for name in self.NAMES]
        for n, name in enumerate(self.NAMES):
            if name in MONEY:
                sliced[n] = list(map(_cents, sliced[n]))
        return list(map(dict, map(zip, itertools.repeat(self.NAMES), zip(*sliced, strict=True))))

    def sum(self, column: str, start: int = 0) -> float:
        """The column's sum from row ``start`` on (money as summed, then rounded: the rows' total as the
        query over their calls would give it)."""
        total: float = sum(self.columns[column][start:] if start else self.columns[column])
        return _cents(total) if column in MONEY else total  # an int for a count

    def to_json(self) -> str:
        """The rows as JSON columns (what :meth:`parse` reads; the snapshot's cost rollup)."""
        return json.dumps(self.columns, separators=(",", ":"))

    def add(self, more: list[dict[str, Any]]) -> CostRows:
        """These rows and ``more`` (rows of the same query over other jobs: the few open ones), as one
        query over all of them would give: every column summed by key, the same order.
        Rows whose key is not in ``more`` are taken as they are; each of ``more``'s, summed with the row
        of its key here if there is one, is put where it sorts (nothing is sorted again)."""
        merged = self._merged(more, 1)
        assert merged is not None  # only a subtraction can fail
        return merged

    def less(self, some: list[dict[str, Any]]) -> CostRows | None:
        """These rows without ``some`` (rows of the same query over some of the jobs these are for): as
        the query over the other jobs would give; a key none of them called is gone. None when ``some``
        is not part of these rows (a key not here, or more than here: they are not what it says)."""
        return self._merged(some, -1)

    def _merged(self, more: list[dict[str, Any]], sign: int) -> CostRows | None:
        if not more:
            return self
        added = {row["key"]: dict(row) for row in more}  # a query's rows: one per key
        keys = self.columns["key"]
        hits = [i for i, key in enumerate(keys) if key in added]
        if sign < 0 and len(hits) != len(added):
            return None
        for i in hits:
            total = added[keys[i]]
            for column in COLUMNS:
                total[column] = self.columns[column][i] + sign * total[column]
        if sign < 0:
            if any(total[c] < 0 for total in added.values() for c in COLUMNS if c not in MONEY):
                return None
            added = {key: total for key, total in added.items() if total["attempts"] > 0}
        kept = self.columns
        if hits:  # without the rows summed: the runs of rows between them
            bounds = list(zip([0, *(i + 1 for i in hits)], [*hits, len(keys)], strict=True))
            kept = {name: list(itertools.chain.from_iterable(col[a:b] for a, b in bounds))
                    for name, col in kept.items()}  # fmt: skip
        order = _Order(kept["cost_usd"], kept["key"])
        sort_keys = [(-_cents(row["cost_usd"]), row["key"]) for row in added.values()]
        places = sorted((bisect.bisect_right(order, sort_key), *sort_key) for sort_key in sort_keys)
        merged = {}
        for name, col in kept.items():
            out, done = [], 0
            for place, _, key in places:
                out += col[done:place]
                out.append(added[key][name])
                done = place
            out += col[done:]
            merged[name] = out
        return CostRows(merged)


class _Order:
    """The rows' sort keys, (-cost as given, key), as a sequence for :func:`bisect.bisect_right` (no list
    made)."""

    def __init__(self, cost: list[float], key: list[str]) -> None:
        self.cost, self.key = cost, key

    def __len__(self) -> int:
        return len(self.key)

    def __getitem__(self, i: int) -> tuple[float, str]:
        return -_cents(self.cost[i]), self.key[i]
