"""Task ``condition`` expressions: a small, safe subset of Python, interpreted from the AST (never ``eval``).

Allowed: literals, ``inputs`` / ``seed`` / ``config`` lookups by subscript, comparisons,
``and``/``or``/``not``, arithmetic, ``in``, a few pure builtins (``len``, ``min``, ``max``, ...) and
read-only methods (``.get``, ``.lower``, ...). No other attribute access, no dunders, no imports, no
lambdas.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from typing import Any

from pop_nb.errors import ConditionError

NAMES = ("inputs", "seed", "config")
_FUNCS: dict[str, Callable[..., Any]] = {
    "len": len,
    "min": min,
    "max": max,
    "abs": abs,
    "round": round,
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "sum": sum,
    "any": any,
    "all": all,
}
_METHODS = frozenset(
    {"get", "keys", "values", "items", "lower", "upper", "strip", "startswith", "endswith", "count"}
)
_BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_CMPOPS: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}
_MAX_LENGTH = 1000


class Condition:
    """A parsed, checked condition. Construct once (at compile time); evaluate per job."""

    def __init__(self, source: str) -> None:
        self.source = source
        if len(source) > _MAX_LENGTH:
            raise ConditionError(f"condition is longer than {_MAX_LENGTH} characters")
        try:
            tree = ast.parse(source.strip(), mode="eval")
        except SyntaxError as exc:
            raise ConditionError(f"condition does not parse: {exc.msg} (column {exc.offset})") from None
        _check(tree.body)
        self._tree = tree.body

    def evaluate(self, namespace: Mapping[str, Any]) -> bool:
        try:
            return bool(_Eval(namespace).visit(self._tree))
        except ConditionError:
            raise
        except Exception as exc:  # a missing key or a type mismatch in the user's data
            raise ConditionError(f"condition {self.source!r} failed: {type(exc).__name__}: {exc}") from None


def _check(node: ast.AST) -> None:
    """Refuse anything outside the allowed subset, naming what was found."""
    match node:
        case ast.Constant():
            return
        case ast.Name(id=name):
            if name not in NAMES and name not in ("True", "False", "None"):
                raise ConditionError(f"name {name!r} is not available; use one of {', '.join(NAMES)}")
        case ast.BoolOp(values=values):
            for v in values:
                _check(v)
        case ast.UnaryOp(op=ast.Not() | ast.USub() | ast.UAdd(), operand=operand):
            _check(operand)
        case ast.BinOp(op=op, left=left, right=right) if type(op) in _BINOPS:
            _check(left)
            _check(right)
        case ast.Compare(left=left, comparators=comparators, ops=ops):
            if any(type(op) not in _CMPOPS for op in ops):
                raise ConditionError("unsupported comparison")
            _check(left)
            for c in comparators:
                _check(c)
        case ast.Subscript(value=value, slice=index):
            _check(value)
            _check(index)
        case ast.List(elts=elts) | ast.Tuple(elts=elts) | ast.Set(elts=elts):
            for e in elts:
                _check(e)
        case ast.Dict(keys=keys, values=values):
            for k in keys:
                if k is None:
                    raise ConditionError("dict unpacking is not allowed")
                _check(k)
            for v in values:
                _check(v)
        case ast.IfExp(test=test, body=body, orelse=orelse):
            for part in (test, body, orelse):
                _check(part)
        case ast.Call(func=ast.Name(id=fname), args=args, keywords=[]):
            if fname not in _FUNCS:
                raise ConditionError(f"function {fname!r} is not allowed; allowed: {', '.join(_FUNCS)}")
            for a in args:
                _check(a)
        case ast.Call(func=ast.Attribute(value=value, attr=attr), args=args, keywords=[]):
            if attr not in _METHODS:
                raise ConditionError(
                    f"method {attr!r} is not allowed; allowed: {', '.join(sorted(_METHODS))}"
                )
            _check(value)
            for a in args:
                _check(a)
        case ast.Attribute(attr=attr):
            raise ConditionError(f"attribute access ({attr!r}) is not allowed; use subscripts: x['key']")
        case _:
            raise ConditionError(f"{type(node).__name__} expressions are not allowed in a condition")


class _Eval(ast.NodeVisitor):
    def __init__(self, namespace: Mapping[str, Any]) -> None:
        self.ns = namespace

    def visit_Constant(self, node: ast.Constant) -> Any:
        return node.value

    def visit_Name(self, node: ast.Name) -> Any:
        return self.ns.get(node.id)

    def visit_BoolOp(self, node: ast.BoolOp) -> Any:
        if isinstance(node.op, ast.And):
            result: Any = True
            for v in node.values:
                result = self.visit(v)
                if not result:
                    return result
            return result
        result = False
        for v in node.values:
            result = self.visit(v)
            if result:
                return result
        return result

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Any:
        value = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            return not value
        return -value if isinstance(node.op, ast.USub) else +value

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        left, right = self.visit(node.left), self.visit(node.right)
        if isinstance(node.op, ast.Mult) and any(isinstance(x, str | list | tuple) for x in (left, right)):
            raise ConditionError("repeating sequences with * is not allowed")
        return _BINOPS[type(node.op)](left, right)

    def visit_Compare(self, node: ast.Compare) -> Any:
        left = self.visit(node.left)
        for op, comp in zip(node.ops, node.comparators, strict=True):
            right = self.visit(comp)
            if not _CMPOPS[type(op)](left, right):
                return False
            left = right
        return True

    def visit_Subscript(self, node: ast.Subscript) -> Any:
        return self.visit(node.value)[self.visit(node.slice)]

    def visit_List(self, node: ast.List) -> Any:
        return [self.visit(e) for e in node.elts]

    def visit_Tuple(self, node: ast.Tuple) -> Any:
        return tuple(self.visit(e) for e in node.elts)

    def visit_Set(self, node: ast.Set) -> Any:
        return {self.visit(e) for e in node.elts}

    def visit_Dict(self, node: ast.Dict) -> Any:
        return {self.visit(k): self.visit(v) for k, v in zip(node.keys, node.values, strict=True) if k}

    def visit_IfExp(self, node: ast.IfExp) -> Any:
        return self.visit(node.body) if self.visit(node.test) else self.visit(node.orelse)

    def visit_Call(self, node: ast.Call) -> Any:
        args = [self.visit(a) for a in node.args]
        if isinstance(node.func, ast.Name):
            return _FUNCS[node.func.id](*args)
        assert isinstance(node.func, ast.Attribute)
        target = self.visit(node.func.value)
        if not isinstance(target, dict | str | list):
            raise ConditionError(f"method {node.func.attr!r} is only allowed on dicts, strings and lists")
        return getattr(target, node.func.attr)(*args)

    def generic_visit(self, node: ast.AST) -> Any:  # unreachable after _check; kept as a backstop
        raise ConditionError(f"{type(node).__name__} is not allowed")
