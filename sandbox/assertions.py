"""Assert-mode tests turned into calls whose results are checked here, outside the program's process.

A test run in the program's own process can be defeated by the program (an object whose `__eq__`
always answers True, a patched builtin, a forged pass report). So each assert of a test that has
the common shape is converted: the program's process only makes the call and sends back the value
it got, as a plain value (`sandbox/values.py`); the assert's expected side is evaluated here, by
`Check.holds`, and never enters that process. Converted are `assert` statements at the top level
of the test or directly in the body of HumanEval's `def check(candidate)` (called once as
`check(NAME)`) whose expression is built only from:

- calls of the program's functions (a name the test does not bind itself, not a builtin; or
  `candidate`) with literal arguments (`ast.literal_eval`);
- literals; `==`, `!=`, `<`, `<=`, `>`, `>=`, `in`, `not in`, `is`/`is not` None/True/False; `not`,
  `and`, `or`; `+ - * / // %` and unary `-` on numbers; subscripts by a literal;
- the pure builtins in `PURE` applied to those (unless the program redefines the name, as MBPP/126's
  `sum`: then it is a call of the program's function), `math.isclose` / `math.fabs` (after
  `import math`), and `sys.getsizeof` of a literal.

`==` is the strict comparison of `values.same`, the program's value as the actual side. Any other
statement (loops, helper functions, random inputs, asserts on anything else) stays in a script
that the harness runs after the calls in a trusted process apart from the program, with the
request's `test_prelude` (the task's helpers) and proxies of the program's functions it calls
(`Plan.proxied`), whose values cross as plain values. Imports of the test are run before the
calls too (the program's functions may rely on them, as they did when the test shared its scope).
"""

from __future__ import annotations

import ast
import builtins
import copy
import dataclasses
import json
import math
import operator
import re
import sys
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

from rewardstack.sandbox import values

PURE: dict[str, Any] = {
    "abs": abs, "all": all, "any": any, "bool": bool, "float": float, "frozenset": frozenset, "int": int,
    "len": len, "list": list, "max": max, "min": min, "round": round, "set": set, "sorted": sorted,
    "str": str, "sum": sum, "tuple": tuple,
}
MATH: dict[str, Any] = {"isclose": math.isclose, "fabs": math.fabs}
# `sys.getsizeof` of a literal, evaluated here: the runs use this same interpreter by default
# (MBPP/596 compares a function's answer with it; the program imports `sys`, not the test).
SYS: dict[str, Any] = {"getsizeof": sys.getsizeof}
_TOP_LEVEL_NAME = re.compile(r"^(?:async[ \t]+def|def|class)[ \t]+([A-Za-z_]\w*)|^([A-Za-z_]\w*)[ \t]*=(?!=)", re.MULTILINE)
_BUILTIN_NAMES = frozenset(dir(builtins))
_ARITHMETIC = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
               ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod}
_ORDER = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge}
# What a failed evaluation of a check on the program's values raises: the check does not hold.
_FAILURES = (TypeError, ValueError, KeyError, IndexError, ZeroDivisionError, OverflowError, RecursionError, AttributeError)


class NotConvertible(Exception):
    """The statement stays in the script (run apart from the program, with proxies)."""


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Any, ...]
    kwargs: tuple[tuple[str, Any], ...]
    truth: bool = False  # only the value's truth counts (`assert f(x)`, `assert not f(x)`): send bool(value)

    def wire(self) -> dict[str, Any]:
        return {"name": self.name, "args": values.encode(list(self.args)), "kwargs": {k: values.encode(v) for k, v in self.kwargs},
                "truth": self.truth}


# A check's expression, as nested tuples: ("lit", v) | ("value", call index) | ("fn", f, args, kwargs)
# | ("cmp", left, ops, rights) | ("and"/"or", items) | ("not", x) | ("neg", x) | ("bin", op, l, r) | ("sub", x, key)
Node = tuple[Any, ...]


@dataclass(frozen=True)
class Check:
    source: str
    expr: Node

    def holds(self, results: list[Any]) -> bool:
        """Whether the assert holds for the program's values (`results[i]` returned by call i)."""
        try:
            return bool(_evaluate(self.expr, results)[0])
        except _FAILURES:
            return False


@dataclass(frozen=True)
class Plan:
    setup: str  # the test's imports
    calls: tuple[Call, ...]
    checks: tuple[Check, ...]
    script: str | None  # what could not be converted: run in a trusted process of the run, apart from the program
    prelude: str = ""  # the trusted helpers the script may call (the prompt's `poly`), defined before it
    proxied: tuple[str, ...] = ()  # names the script calls in the program's process (the `check(NAME)` target)

    @cached_property
    def payload(self) -> bytes:
        return json.dumps({"setup": self.setup, "calls": [c.wire() for c in self.calls], "script": self.script,
                           "prelude": self.prelude, "proxied": list(self.proxied)}).encode()


def _evaluate(node: Node, results: list[Any]) -> tuple[Any, bool]:
    """(value, whether it derives from the program's values)."""
    kind = node[0]
    if kind == "lit":
        return node[1], False
    if kind == "value":
        return results[node[1]], True
    if kind == "fn":
        evaluated = [_evaluate(a, results) for a in node[2]]
        kwargs = {k: _evaluate(v, results)[0] for k, v in node[3]}
        return node[1](*(v for v, _ in evaluated), **kwargs), any(d for _, d in evaluated)
    if kind == "cmp":
        left, left_derived = _evaluate(node[1], results)
        for op, right_node in zip(node[2], node[3]):
            right, right_derived = _evaluate(right_node, results)
            if not _compare(op, left, left_derived, right, right_derived):
                return False, True
            left, left_derived = right, right_derived
        return True, True
    if kind in ("and", "or"):
        value, derived = None, False
        for item in node[1]:
            value, item_derived = _evaluate(item, results)
            derived = derived or item_derived
            if bool(value) == (kind == "or"):
                break
        return value, derived
    if kind == "not":
        value, derived = _evaluate(node[1], results)
        return not value, derived
    if kind == "neg":
        value, derived = _evaluate(node[1], results)
        return -_number(value), derived
    if kind == "bin":
        left, left_derived = _evaluate(node[2], results)
        right, right_derived = _evaluate(node[3], results)
        return node[1](_number(left), _number(right)), left_derived or right_derived
    if kind == "sub":
        value, derived = _evaluate(node[1], results)
        return value[node[2]], derived
    raise AssertionError(kind)


def _number(value: Any) -> Any:
    """Arithmetic here is on numbers only: `[0] * value` must not build a list the program sized."""
    if type(value) not in (int, float, complex):
        raise TypeError(f"a {type(value).__name__} in arithmetic")
    return value


def _compare(op: type[ast.cmpop], left: Any, left_derived: bool, right: Any, right_derived: bool) -> bool:
    if op in (ast.Eq, ast.NotEq):
        equal = values.same(right, left) if left_derived is False and right_derived else values.same(left, right)
        return equal if op is ast.Eq else not equal
    if op is ast.Is:
        return left is right
    if op is ast.IsNot:
        return left is not right
    if op is ast.In:
        return left in right
    if op is ast.NotIn:
        return left not in right
    return bool(_ORDER[op](left, right))


class _Converter:
    """Builds the Node of one assert expression, collecting its calls of the program's functions."""

    def __init__(self, aliases: dict[str, str], bound: set[str], modules: set[str], calls: list[Call],
                 shadowed: frozenset[str]) -> None:
        self.aliases, self.bound, self.modules = aliases, bound, modules
        self.calls = calls
        self.shadowed = shadowed
        self.found = 0

    def convert_test(self, node: ast.expr) -> Node:
        """The whole assert expression: a bare call, or `not` a call, asks only for the value's truth,
        which the program's process computes (it cannot tell which truth the test wants)."""
        bare = node.operand if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not) else node
        converted = self.convert(bare)
        if converted[0] == "value":
            call = self.calls[converted[1]]
            self.calls[converted[1]] = Call(call.name, call.args, call.kwargs, truth=True)
        return ("not", converted) if bare is not node else converted

    def convert(self, node: ast.expr) -> Node:
        literal = _literal(node)
        if literal is not _NO_LITERAL:
            return ("lit", literal)
        if isinstance(node, ast.Call):
            return self._call(node)
        if isinstance(node, ast.Compare):
            for op in node.ops:
                if type(op) not in (ast.Eq, ast.NotEq, ast.In, ast.NotIn, ast.Is, ast.IsNot, *_ORDER):
                    raise NotConvertible
                if isinstance(op, (ast.Is, ast.IsNot)) and not all(
                        isinstance(c, ast.Constant) and c.value in (None, True, False) for c in node.comparators):
                    raise NotConvertible
            return ("cmp", self.convert(node.left), tuple(type(op) for op in node.ops), tuple(self.convert(c) for c in node.comparators))
        if isinstance(node, ast.BoolOp):
            return ("and" if isinstance(node.op, ast.And) else "or", tuple(self.convert(v) for v in node.values))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
            return ("not" if isinstance(node.op, ast.Not) else "neg", self.convert(node.operand))
        if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
            return ("bin", _ARITHMETIC[type(node.op)], self.convert(node.left), self.convert(node.right))
        if isinstance(node, ast.Subscript):
            key = _literal(node.slice)
            if key is _NO_LITERAL or isinstance(node.slice, ast.Slice):
                raise NotConvertible
            return ("sub", self.convert(node.value), key)
        raise NotConvertible

    def _call(self, node: ast.Call) -> Node:
        func = node.func
        if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
            raise NotConvertible
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "math" \
                and "math" in self.modules and "math" not in self.bound and func.attr in MATH:
            return self._pure(MATH[func.attr], node)
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "sys" \
                and "sys" not in self.bound and func.attr in SYS:
            if any(_literal(a) is _NO_LITERAL for a in node.args) or node.keywords:
                raise NotConvertible
            return self._pure(SYS[func.attr], node)
        if not isinstance(func, ast.Name):
            raise NotConvertible
        name = func.id
        if name in self.aliases:
            name = self.aliases[name]
        elif name in self.bound:
            raise NotConvertible
        elif name in PURE and name not in self.shadowed:
            return self._pure(PURE[name], node)
        elif name in _BUILTIN_NAMES and name not in self.shadowed:
            raise NotConvertible
        args = tuple(_literal(a) for a in node.args)
        kwargs = tuple((k.arg, _literal(k.value)) for k in node.keywords if k.arg is not None)
        if any(a is _NO_LITERAL for a in args) or any(v is _NO_LITERAL for _, v in kwargs):
            raise NotConvertible
        call = Call(name, args, kwargs)
        try:
            call.wire()
        except (TypeError, ValueError, RecursionError):  # e.g. an Ellipsis argument
            raise NotConvertible from None
        self.calls.append(call)
        self.found += 1
        return ("value", len(self.calls) - 1)

    def _pure(self, function: Any, node: ast.Call) -> Node:
        kwargs = tuple((k.arg, self.convert(k.value)) for k in node.keywords)
        return ("fn", function, tuple(self.convert(a) for a in node.args), kwargs)


_NO_LITERAL = object()


def _literal(node: ast.AST) -> Any:
    """The value of a constant expression (literals, and arithmetic on them such as `3 * 19` or
    `'ab' + 'c'`, bounded in size); _NO_LITERAL when the node is anything else."""
    try:
        return _constant(node)
    except (NotConvertible, ValueError, TypeError, ArithmeticError, MemoryError, RecursionError):
        return _NO_LITERAL


_MAX_SIZE = 100_000  # elements of a folded sequence, digits of a folded int


def _bounded(value: Any) -> Any:
    if isinstance(value, (str, bytes, list, tuple)) and len(value) > _MAX_SIZE:
        raise NotConvertible
    if type(value) is int and value.bit_length() > 3 * _MAX_SIZE:
        raise NotConvertible
    return value


def _constant(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant):
        if node.value is Ellipsis:
            raise NotConvertible
        return node.value
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        items = [_constant(e) for e in node.elts]
        return tuple(items) if isinstance(node, ast.Tuple) else items if isinstance(node, ast.List) else set(items)
    if isinstance(node, ast.Dict) and all(k is not None for k in node.keys):
        return {_constant(k): _constant(v) for k, v in zip(node.keys, node.values)}  # type: ignore[arg-type]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return _bounded(-_number(_constant(node.operand)) if isinstance(node.op, ast.USub) else +_number(_constant(node.operand)))
    if isinstance(node, ast.BinOp):
        left, right = _constant(node.left), _constant(node.right)
        if isinstance(node.op, ast.Pow):
            if type(right) is not int or not 0 <= right <= 64 or (type(left) is int and abs(left).bit_length() * right > 3 * _MAX_SIZE):
                raise NotConvertible
            return _number(left) ** right
        if isinstance(node.op, ast.Mult) and (type(left) in (str, list, tuple) or type(right) in (str, list, tuple)):
            count, sequence = (right, left) if type(left) in (str, list, tuple) else (left, right)
            if type(count) is not int or len(sequence) * max(count, 0) > _MAX_SIZE:
                raise NotConvertible
            return sequence * count
        if isinstance(node.op, ast.Add) and type(left) is type(right) and type(left) in (str, list, tuple):
            return _bounded(left + right)
        if type(node.op) in _ARITHMETIC:
            return _bounded(_ARITHMETIC[type(node.op)](_number(left), _number(right)))
    raise NotConvertible


def _bound_names(nodes: list[ast.AST], skip: ast.AST | None = None) -> tuple[set[str], set[str]]:
    """(names the test binds, except by `import math`-style imports and `skip`'s own arguments; modules imported whole)."""
    bound: set[str] = set()
    modules: set[str] = set()
    for node in nodes:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) and node is not skip:
            a = node.args
            bound.update(x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs, *(v for v in (a.vararg, a.kwarg) if v)))
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname is None and "." not in alias.name:
                    modules.add(alias.name)
                else:
                    bound.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            bound.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            bound.update(node.names)
        elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
            bound.add(node.name)
    return bound, modules


def _check_function(tree: ast.Module, nodes: list[ast.AST]) -> tuple[ast.FunctionDef | None, str, str]:
    """HumanEval's shape: `def check(candidate): ...` and one `check(NAME)` at the top level."""
    defs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    invocations = [n.value for n in tree.body if isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)
                   and isinstance(n.value.func, ast.Name) and n.value.func.id in defs]
    if len(invocations) != 1:
        return None, "", ""
    call = invocations[0]
    function = defs[call.func.id]  # type: ignore[attr-defined]
    a = function.args
    if (function.decorator_list or a.posonlyargs or a.kwonlyargs or a.vararg or a.kwarg or a.defaults or len(a.args) != 1
            or call.keywords or len(call.args) != 1 or not isinstance(call.args[0], ast.Name)):
        return None, "", ""
    uses = sum(isinstance(n, ast.Name) and n.id == function.name for n in nodes)
    if uses != 1:
        return None, "", ""
    return function, a.args[0].arg, call.args[0].id


MAX_UNROLL = 100


class _Substitute(ast.NodeTransformer):
    def __init__(self, name: str, value: int) -> None:
        self.name, self.value = name, value

    def visit_Name(self, node: ast.Name) -> ast.expr:
        return ast.copy_location(ast.Constant(self.value), node) if node.id == self.name else node


def _unrolled(statement: ast.stmt, bound: set[str]) -> list[tuple[ast.Assert, str]] | None:
    """`for x in range(<constants>)` of at most MAX_UNROLL steps whose body is only asserts (HumanEval/44):
    each assert once per value of `x`, with the value in place of the name; None for any other statement."""
    if not (isinstance(statement, ast.For) and isinstance(statement.target, ast.Name) and not statement.orelse
            and all(isinstance(s, ast.Assert) for s in statement.body) and isinstance(statement.iter, ast.Call)
            and isinstance(statement.iter.func, ast.Name) and statement.iter.func.id == "range"
            and "range" not in bound and not statement.iter.keywords):
        return None
    limits = [_literal(a) for a in statement.iter.args]
    if not 1 <= len(limits) <= 3 or any(type(v) is not int for v in limits):
        return None
    try:
        steps = range(*limits)
    except ValueError:
        return None
    if len(steps) > MAX_UNROLL:
        return None
    name = statement.target.id
    return [(_Substitute(name, value).visit(copy.deepcopy(a)), f"{name} = {value}") for value in steps for a in statement.body]


def _inert(statement: ast.stmt, check: ast.FunctionDef | None) -> bool:
    """A statement the script does not need once the asserts are gone (imports run in setup)."""
    if isinstance(statement, (ast.Import, ast.ImportFrom, ast.Pass)):
        return True
    if isinstance(statement, ast.Expr) and (isinstance(statement.value, ast.Constant) or (
            isinstance(statement.value, ast.Name) and statement.value.id in _BUILTIN_NAMES)):
        return True  # a docstring, HumanEval/129's bare `print`
    if isinstance(statement, ast.Assert):
        value = _literal(statement.test)
        return value is not _NO_LITERAL and bool(value)
    if isinstance(statement, ast.Assign) and all(isinstance(t, ast.Name) for t in statement.targets):
        return _literal(statement.value) is not _NO_LITERAL
    if check is not None and statement is check:
        return all(_inert(s, None) for s in check.body)
    if check is not None and isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call) \
            and isinstance(statement.value.func, ast.Name) and statement.value.func.id == check.name:
        return all(_inert(s, None) for s in check.body)
    return False


def shadowed_builtins(program: str) -> frozenset[str]:
    """Builtin names the program defines at its top level (MBPP/126's `def sum(a, b)`): a test's
    call of such a name is a call of the program's function, checked here like any other."""
    names = {a or b for a, b in _TOP_LEVEL_NAME.findall(program)}
    return frozenset(names & _BUILTIN_NAMES)


@lru_cache(maxsize=4096)
def plan_for(test: str, shadowed: frozenset[str] = frozenset(), prelude: str = "") -> Plan:
    """The converted form of one assert-mode test (cached: GRPO groups repeat the same tests);
    `shadowed` are the builtins the program redefines (`shadowed_builtins`); `prelude` the
    trusted helpers the test's own statements may call (the request's `test_prelude`)."""
    plan = _converted(test, shadowed)
    if plan.script is None:
        return plan
    return dataclasses.replace(plan, prelude=prelude, proxied=_proxied(test, plan.script, prelude, shadowed))


def _proxied(test: str, script: str, prelude: str, shadowed: frozenset[str]) -> tuple[str, ...]:
    """The names the script calls in the program: those neither it nor the prelude binds (nor a
    builtin the program does not redefine), and the `check(NAME)` target, which the prelude may
    define as the prompt's stub."""
    try:
        tree, original = ast.parse(script), ast.parse(test)
        helpers = list(ast.walk(ast.parse(prelude))) if prelude else []
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return ()  # the trusted process reports the error
    nodes = list(ast.walk(tree))
    bound, modules = _bound_names(nodes + helpers)
    loaded = {n.id for n in nodes if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    free = loaded - bound - modules - (_BUILTIN_NAMES - shadowed)
    _, _, target = _check_function(original, list(ast.walk(original)))
    script_bound, script_modules = _bound_names(nodes)
    if target and target in loaded and target not in script_bound | script_modules:
        free.add(target)
    return tuple(sorted(free))


def _converted(test: str, shadowed: frozenset[str]) -> Plan:
    try:
        tree = ast.parse(test)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return Plan("", (), (), test)  # the program's process reports the error, as before
    nodes = list(ast.walk(tree))
    lines = test.splitlines()
    check, parameter, target = _check_function(tree, nodes)
    bound, modules = _bound_names(nodes, skip=check)
    aliases: dict[str, str] = {}
    if check is not None and parameter not in bound and target not in bound:
        aliases[parameter] = target
    calls: list[Call] = []
    checks: list[Check] = []
    imports: list[ast.stmt] = []

    def convert_assert(statement: ast.Assert, source: str) -> bool:
        converter = _Converter(aliases, bound, modules, calls, shadowed)
        mark = len(calls)
        try:
            expr = converter.convert_test(statement.test)
            if converter.found == 0:
                raise NotConvertible
        except NotConvertible:
            del calls[mark:]
            return False
        checks.append(Check(source, expr))
        return True

    def convert_body(body: list[ast.stmt]) -> list[ast.stmt]:
        kept = []
        for statement in body:
            if isinstance(statement, (ast.Import, ast.ImportFrom)):
                imports.append(statement)
            source = "\n".join(lines[statement.lineno - 1:statement.end_lineno]).strip()
            if isinstance(statement, ast.Assert) and convert_assert(statement, source):
                continue
            unrolled = _unrolled(statement, bound)
            if unrolled is not None:
                calls_mark, checks_mark = len(calls), len(checks)
                if all(convert_assert(a, f"{source} ({where})") for a, where in unrolled):
                    continue
                del calls[calls_mark:], checks[checks_mark:]
            kept.append(statement)
        return kept or [ast.Pass()]

    tree.body = convert_body(tree.body)
    if check is not None and aliases:
        check.body = convert_body(check.body)
    if not checks:
        return Plan("", (), (), test)
    script = None if all(_inert(s, check) for s in tree.body) else ast.unparse(ast.fix_missing_locations(tree))
    setup = ast.unparse(ast.Module(body=imports, type_ignores=[])) if imports else ""
    return Plan(setup, tuple(calls), tuple(checks), script)
