"""`--keep-if`: a small, safe expression language over one item's component values and statuses.

`math == 1 and readability == 1 and language >= 0.95` is parsed with Python's own parser, checked
against a whitelist of node types and names before anything runs, and evaluated by walking the
tree (never `eval`). When an item fails, the rule says which names to blame, so `select`'s report
can count drop reasons per scorer.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from typing import Any

from rewardstack.services.contract import ItemResult, Status

__all__ = ["KeepRule"]


class KeepRule:
    """A `--keep-if` expression, checked against a whitelist before it ever runs.

    Names: a scorer's name is its value (None unless its status is `ok`), `NAME.status` its
    status (`"ok"`, `"unscorable"`, `"timeout"`, `"error"`), `reward` the item's combined reward,
    `status` the item's status. Operators: `and`, `or`, `not`, comparisons (`==`, `<`, `in`, ...),
    numbers, strings, `None`. An ordering comparison with None is false. Nothing else is allowed:
    no calls, no attributes but `.status`, no arithmetic.
    """

    _COMPARE = {
        ast.Eq: lambda a, b: a == b,
        ast.NotEq: lambda a, b: a != b,
        ast.Lt: lambda a, b: a < b,
        ast.LtE: lambda a, b: a <= b,
        ast.Gt: lambda a, b: a > b,
        ast.GtE: lambda a, b: a >= b,
        ast.In: lambda a, b: a in b,
        ast.NotIn: lambda a, b: a not in b,
    }

    def __init__(self, expression: str, scorers: Iterable[str]) -> None:
        self.expression = expression
        self.scorers = frozenset(scorers)
        try:
            tree = ast.parse(expression.strip(), mode="eval")
        except SyntaxError as exc:
            raise ValueError(f"keep-if: {expression!r} is not an expression ({exc.msg})") from None
        self._root = tree.body
        for node in ast.walk(self._root):
            self._allow(node)
        # the names under each node, computed once: a failing item is blamed without walking the tree
        self._names = {id(node): _names(node) for node in ast.walk(self._root)}

    def _allow(self, node: ast.AST) -> None:
        allowed = (ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd, ast.Compare,
                   ast.Name, ast.Load, ast.Attribute, ast.Constant, ast.Tuple, ast.List, *self._COMPARE)
        if not isinstance(node, allowed):
            raise ValueError(f"keep-if: {ast.unparse(node) if isinstance(node, ast.expr) else type(node).__name__!r} "
                             "is not allowed; use scorer names, .status, comparisons, and/or/not, numbers and strings")
        if isinstance(node, ast.Name) and node.id not in self.scorers | {"reward", "status"}:
            raise ValueError(f"keep-if: {node.id!r} is not a scorer of this run; names: {', '.join(sorted(self.scorers))}, reward, status")
        if isinstance(node, ast.Attribute) and not (isinstance(node.value, ast.Name) and node.value.id in self.scorers and node.attr == "status"):
            raise ValueError(f"keep-if: {ast.unparse(node)!r}: only SCORER.status is allowed")
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float, str, type(None))):
            raise ValueError(f"keep-if: constant {node.value!r} is not a number, string or None")

    def __call__(self, result: ItemResult) -> tuple[bool, list[str]]:
        """Whether `result` passes, and when it does not, the names to blame (scorers, `reward`, `status`)."""
        return self._truth(self._root, result)

    def _truth(self, node: ast.expr, result: ItemResult) -> tuple[bool, list[str]]:
        if isinstance(node, ast.BoolOp):
            parts = [self._truth(value, result) for value in node.values]
            passed = all(p for p, _ in parts) if isinstance(node.op, ast.And) else any(p for p, _ in parts)
            return passed, [] if passed else list(dict.fromkeys(n for p, names in parts if not p for n in names))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            inner, _ = self._truth(node.operand, result)
            return (not inner), [] if not inner else self._names[id(node.operand)]
        if isinstance(node, ast.Compare):
            left = self._value(node.left, result)
            for op, right_node in zip(node.ops, node.comparators):
                right = self._value(right_node, result)
                ordering = not isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn))
                try:
                    holds = not (ordering and (left is None or right is None)) and bool(self._COMPARE[type(op)](left, right))
                except TypeError:  # "ok" < 1: not comparable, so not true
                    holds = False
                if not holds:
                    return False, self._names[id(node)]
                left = right
            return True, []
        passed = bool(self._value(node, result))
        return passed, [] if passed else self._names[id(node)]

    def _value(self, node: ast.expr, result: ItemResult) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.UnaryOp):
            value = self._value(node.operand, result)
            if not isinstance(value, (int, float)):
                return None
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, (ast.Tuple, ast.List)):
            return tuple(self._value(e, result) for e in node.elts)
        if isinstance(node, ast.Attribute):
            assert isinstance(node.value, ast.Name)
            return result.components[node.value.id].status.value
        if isinstance(node, ast.Name):
            if node.id == "reward":
                return result.reward
            if node.id == "status":
                return result.status.value
            component = result.components[node.id]
            return component.value if component.status is Status.OK else None
        return self._truth(node, result)[0]


def _names(node: ast.AST) -> list[str]:
    return list(dict.fromkeys(n.id for n in ast.walk(node) if isinstance(n, ast.Name)))
