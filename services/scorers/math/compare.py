r"""Compare a typed answer with a typed gold, by the gold's type.

Rules (the "why" behind each is in docs/math.md):
- exact values compare exactly: `\frac{1}{2^{99}}` is not `\frac{1}{2^{98}}`, evaluated with
  40-digit mpmath, never six-decimal floats;
- undefined values (`1/0`, `zoo`, `nan`) equal nothing; a signed infinity only itself;
- a tolerance only from a written precision: a decimal answer must be right to its own last place
  and within `rel_tol` (`0.333333` for `\frac{1}{3}`; not `0.33`, not `123456700.0` for
  `123456789`); a decimal gold accepts an irrational answer that rounds to it (`\pi` for `3.14`);
- free variables: sampled only when the answer adds no symbol and no `\max`/`|x|`-like function
  the gold lacks; otherwise only a symbolic proof counts (`\max(42, x)` is not `42`);
- chains count only when every link agrees (`x = 41 = 42` is wrong);
- words after a number only when they are a unit or the gold's own words (`units.py`);
- shapes must agree: a list never matches a single value (candidate lists are wrong), tuples keep
  order, sets and `\pm` lists are multisets (duplicates count);
- relations compare as relations: `l1 - r1` must be a constant multiple of `l2 - r2` (positive for
  inequalities), so `3x-y+13=0` never equals `3x+4y+14=0`;
- percent and degrees follow the written policy (`25\%` = `25` = `0.25`; `30^\circ` = `\frac{\pi}{6}`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from .parse import ParseError, as_intervals, scalar_expr
from .units import allowed_unit
from .types import (
    Answer,
    BaseNumeral,
    Choice,
    Interval,
    IntervalUnion,
    Matrix,
    Relation,
    Scalar,
    Seq,
    Text,
)

__all__ = ["Tolerance", "equivalent"]

_EXACT_REL = 1e-20  # 40-digit evaluation: exact values agree far below this, different ones far above
_DECIMAL_IN_EXPR_REL = 1e-12  # sympy Floats parsed from `0.1` carry ~15 digits


@dataclass(frozen=True, slots=True)
class Tolerance:
    """`rel_tol`: the least relative agreement a decimal answer needs with an exact gold (it must also
    be right to its own last written place)."""

    rel_tol: float = 1e-6


def equivalent(gold: Answer, answer: Answer, tol: Tolerance) -> bool:
    """Whether `answer` means the same as `gold`; see the module docstring."""
    if isinstance(answer, Relation) and answer.links and not _chain_agrees(answer, tol):
        return False  # `x = 41 = 42`: a chain is graded only when every link agrees
    if isinstance(gold, Choice):
        return _choice_letter(answer) == gold.letter
    if isinstance(gold, Text):
        if isinstance(answer, Scalar):  # `odd`, `yes`: too short to be read as words, parsed as products
            return answer.source.isalpha() and _fold(answer.source) == _fold(gold.text)
        return isinstance(answer, Text) and _fold(answer.text) == _fold(gold.text)
    if isinstance(gold, BaseNumeral):
        if isinstance(answer, BaseNumeral):
            return answer == gold
        return isinstance(answer, Scalar) and answer.exact is not None and answer.source.upper() == gold.digits
    if isinstance(gold, Scalar):
        return _scalar_like(gold, answer, tol)
    if isinstance(gold, Relation):
        return _relation_like(gold, answer, tol)
    if isinstance(gold, Seq):
        return _seq_like(gold, answer, tol)
    if isinstance(gold, (Interval, IntervalUnion)):
        return _sets_equal(gold, answer, tol)
    if isinstance(gold, Matrix):
        return (
            isinstance(answer, Matrix)
            and len(answer.rows) == len(gold.rows)
            and all(_ordered(g, a, tol) for g, a in zip(gold.rows, answer.rows))
        )
    raise TypeError(f"unknown gold type {type(gold).__name__}")


def _fold(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum())


def _choice_letter(answer: Answer) -> str | None:
    if isinstance(answer, Choice):
        return answer.letter
    if isinstance(answer, Scalar) and answer.expr is not None and getattr(answer.expr, "is_Symbol", False):
        name = answer.expr.name.upper()
        return name if name in "ABCDE" and len(name) == 1 else None
    return None


def _scalar_like(gold: Scalar, answer: Answer, tol: Tolerance) -> bool:
    if isinstance(answer, Scalar):
        return scalar_equal(gold, answer, tol)
    if isinstance(answer, Relation) and answer.op == "=":
        rhs = answer.links[-1] if answer.links else Scalar(expr=answer.rhs, source=str(answer.rhs))
        if _is_name(answer.lhs) or (answer.links and not answer.lhs.free_symbols):
            return scalar_equal(gold, rhs, tol)  # `x = 5`; a chain whose links agree (checked above)
        if not answer.lhs.free_symbols and scalar_equal(Scalar(expr=answer.lhs, source=str(answer.lhs)), rhs, tol):
            return scalar_equal(gold, rhs, tol)  # a true worked step, `48/2 = 24`: its result
    if isinstance(answer, Choice) and gold.expr is not None and getattr(gold.expr, "is_Symbol", False):
        return gold.expr.name.upper() == answer.letter
    return False


def _is_name(expr: Any) -> bool:
    """`x` or `f(x)`: the left side of an answer written as an assignment."""
    from sympy.core.function import AppliedUndef

    return bool(getattr(expr, "is_Symbol", False)) or isinstance(expr, AppliedUndef)


def _relation_like(gold: Relation, answer: Answer, tol: Tolerance) -> bool:
    if isinstance(answer, Relation):
        from sympy.core.function import AppliedUndef

        if gold.op == answer.op == "=" and (isinstance(gold.lhs, AppliedUndef) or isinstance(answer.lhs, AppliedUndef)):
            # `f(x) = 2x+1` vs `y = 2x+1`: an undefined function cannot be evaluated; compare the definitions.
            # `f(z) = z` vs `f(x) = x`: the argument is a bound variable, renamed to the gold's.
            a_rhs = answer.rhs
            if isinstance(gold.lhs, AppliedUndef) and isinstance(answer.lhs, AppliedUndef) and gold.lhs.func == answer.lhs.func:
                if len(gold.lhs.args) == len(answer.lhs.args) and all(getattr(a, "is_Symbol", False) for a in answer.lhs.args):
                    a_rhs = a_rhs.xreplace(dict(zip(answer.lhs.args, gold.lhs.args)))
            return _is_name(gold.lhs) and _is_name(answer.lhs) and scalar_equal(
                Scalar(expr=gold.rhs, source=str(gold.rhs)), Scalar(expr=a_rhs, source=str(a_rhs)), tol
            )
        return relation_equal(gold, answer, tol)
    if gold.op == "=" and _is_name(gold.lhs) and isinstance(answer, Scalar):
        return scalar_equal(Scalar(expr=gold.rhs, source=str(gold.rhs)), answer, tol)  # gold `x = 5`
    if gold.op in ("<", "<=", ">", ">="):
        return _sets_equal(gold, answer, tol)
    return False


def _chain_agrees(relation: Relation, tol: Tolerance) -> bool:
    """Every side of an `=` chain after a leading name has the same value (`x = 2+3 = 5`)."""
    links = relation.links[1:] if _is_name(scalar_expr(relation.links[0])) else relation.links
    return all(scalar_equal(a, b, tol) for a, b in zip(links, links[1:]))


def _seq_like(gold: Seq, answer: Answer, tol: Tolerance) -> bool:
    if gold.ratio or (isinstance(answer, Seq) and answer.ratio):
        # `11:21` only as a ratio written the same way: `12:00` is not `1:00`, nor the point `(12, 0)`
        return isinstance(answer, Seq) and gold.ratio and answer.ratio and _ordered(gold.items, answer.items, tol)
    if gold.maybe_interval and isinstance(answer, (Interval, IntervalUnion, Relation)):
        return _sets_equal(gold, answer, tol)
    if not isinstance(answer, Seq):
        return len(gold.items) == 1 and equivalent(gold.items[0], answer, tol)
    if gold.ordered:
        if len(answer.items) != len(gold.items):
            return False
        # a bare list `1, -16, -4, 43` may answer the tuple `(1,-16,-4,43)` in order; a set may not.
        return (answer.ordered or answer.bare) and _ordered(gold.items, answer.items, tol)
    return _multiset(gold.items, answer.items, tol)


def _ordered(gold: Sequence[Answer], answer: Sequence[Answer], tol: Tolerance) -> bool:
    return len(gold) == len(answer) and all(equivalent(g, a, tol) for g, a in zip(gold, answer))


def _multiset(gold: Sequence[Answer], answer: Sequence[Answer], tol: Tolerance) -> bool:
    """Unordered comparison. Multiplicity counts only when the gold repeats an item (a double root):
    then `\{1,1,2\}` is not `\{1,2\}`; otherwise an answer that lists an item twice is read as a set."""
    unused = list(answer)
    if len(answer) > len(gold) and _distinct_items(gold, tol):
        unused = [a for k, a in enumerate(answer) if not any(equivalent(b, a, tol) for b in answer[:k])]
    for g in gold:
        for k, a in enumerate(unused):
            if equivalent(g, a, tol):
                del unused[k]
                break
        else:
            return False
    return not unused


def _distinct_items(items: Sequence[Answer], tol: Tolerance) -> bool:
    return not any(equivalent(a, b, tol) for k, a in enumerate(items) for b in items[k + 1 :])


def _sets_equal(gold: Answer, answer: Answer, tol: Tolerance) -> bool:
    try:
        g, a = as_intervals(gold, "gold"), as_intervals(answer, "answer")
    except ParseError:
        return False
    if len(g.parts) != len(a.parts):
        return False
    g_sorted, a_sorted = _sorted_parts(g.parts), _sorted_parts(a.parts)
    if g_sorted is None or a_sorted is None:
        return False
    for gi, ai in zip(g_sorted, a_sorted):
        if not (scalar_equal(gi.lo, ai.lo, tol) and scalar_equal(gi.hi, ai.hi, tol)):
            return False
        if (gi.lo_closed != ai.lo_closed and not _infinite(gi.lo)) or (
            gi.hi_closed != ai.hi_closed and not _infinite(gi.hi)
        ):
            return False
    return True


def _sorted_parts(parts: Sequence[Interval]) -> list[Interval] | None:
    from .symbolic import EvalError, evaluate

    try:
        keyed = [(float(evaluate(scalar_expr(p.lo), {}).real) if not _infinite(p.lo) else float("-inf"), p) for p in parts]
    except (EvalError, OverflowError):
        return None
    return [p for _, p in sorted(keyed, key=lambda kp: kp[0])]


def _infinite(scalar: Scalar) -> bool:
    return scalar.exact is None and scalar.expr is not None and bool(scalar.expr.has(*_infinities()))


def _infinities() -> tuple[Any, ...]:
    import sympy

    return (sympy.oo, -sympy.oo, sympy.zoo)


def scalar_equal(gold: Scalar, answer: Scalar, tol: Tolerance) -> bool:
    """Equality of two scalars under the percent, degree, decimal and unit policy."""
    if not allowed_unit(answer.unit, gold.unit):
        return False  # `42 \text{ or more}`: words after a number only when they are a unit
    for candidate in _readings(gold, answer):
        if _values_equal(gold, candidate, tol):
            return True
    return False


def _readings(gold: Scalar, answer: Scalar) -> list[Scalar]:
    """The answer as written, plus the re-readings the percent / degree policy allows."""
    readings = [answer]
    if answer.percent and not gold.percent:
        readings.append(_scaled(answer, Fraction(1, 100)))  # `25\%` for gold 0.25
    if gold.percent and not answer.percent:
        readings.append(_scaled(answer, Fraction(100)))  # `0.25` for gold `25\%`
    if gold.degrees != answer.degrees and (gold.degrees or _mentions_pi(gold)):
        import sympy

        factor = 180 / sympy.pi if gold.degrees else sympy.pi / 180  # radians <-> degrees
        readings.append(Scalar(expr=scalar_expr(answer) * factor, decimal_places=answer.decimal_places, source=answer.source))
    return readings


def _mentions_pi(scalar: Scalar) -> bool:
    return scalar.expr is not None and "pi" in str(scalar.expr)


def _scaled(scalar: Scalar, factor: Fraction) -> Scalar:
    if scalar.exact is not None:
        places = None if scalar.decimal_places is None else scalar.decimal_places + (2 if factor < 1 else -2)
        return Scalar(exact=scalar.exact * factor, decimal_places=places, source=scalar.source)
    from .symbolic import from_fraction

    return Scalar(expr=scalar.expr * from_fraction(factor), decimal_places=scalar.decimal_places, source=scalar.source)


def _values_equal(gold: Scalar, answer: Scalar, tol: Tolerance) -> bool:
    if gold.exact is not None and answer.exact is not None:
        return _numbers_agree(gold.exact, answer.exact, gold, answer, tol, answer_rational=True)
    return _symbolic_equal(gold, answer, tol)


def _numbers_agree(g: Any, a: Any, gold: Scalar, answer: Scalar, tol: Tolerance, *, answer_rational: bool) -> bool:
    """The decimal policy on two constant values (`Fraction`s, or mpmath numbers).

    - both exact, or both decimals: equal (`2.50` = `2.5`; `0.54` is not `0.5`);
    - an answer written with `d` decimals, exact gold: within one unit of its own last place *and*
      within `rel_tol` of the gold (`0.333333` for 1/3; not `0.33`, not `123456700.0` for `123456789`);
    - a decimal gold (a rounding, or an exact value): a rational answer must equal it (`0.\overline{3}`
      is not `0.3`); an irrational one must round to it, within half a unit of the gold's last place
      (`\frac{\sqrt{3}}{3}` for `0.577`): the tolerance is the gold's own precision, never wider.
    """
    exact_values = isinstance(g, Fraction) and isinstance(a, Fraction)
    diff = abs(a - g)

    def equal() -> bool:
        return diff == 0 if exact_values else bool(diff <= _EXACT_REL * max(abs(a), abs(g)))

    if gold.is_decimal == answer.is_decimal:
        return equal()
    if answer.is_decimal:
        assert answer.decimal_places is not None
        return bool(diff <= _unit(answer.decimal_places, exact_values) and diff <= _number(tol.rel_tol, exact_values) * abs(g))
    if answer_rational:
        return equal()
    assert gold.decimal_places is not None
    return bool(diff <= _unit(gold.decimal_places, exact_values) / 2)


def _unit(places: int, exact: bool) -> Any:
    """One unit in the last place of a decimal with `places` digits after the point (may be negative)."""
    value = Fraction(1, 10**places) if places >= 0 else Fraction(10 ** (-places))
    return value if exact else _number(value, False)


def _number(value: float | Fraction, exact: bool) -> Any:
    if exact:
        return Fraction(str(value)) if isinstance(value, float) else value
    import mpmath

    frac = Fraction(str(value)) if isinstance(value, float) else value
    return mpmath.mpf(frac.numerator) / frac.denominator


def _undefined(expr: Any) -> bool:
    """`1/0`, `0/0`, `zoo`, `nan`: a value that must never equal anything, itself included."""
    import sympy

    return bool(expr.has(sympy.zoo, sympy.nan))


def _symbolic_equal(gold: Scalar, answer: Scalar, tol: Tolerance) -> bool:
    from .symbolic import EvalError, as_rational, close, evaluate, exact_difference_is_zero, numeric_points

    g_expr, a_expr = scalar_expr(gold), scalar_expr(answer)
    if _undefined(g_expr) or _undefined(a_expr):
        return False
    a_expr = _rename_integer_parameter(g_expr, a_expr)
    if g_expr == a_expr:
        return True
    if _infinite(gold) or _infinite(answer):
        return False  # a signed infinity equals only the same signed infinity (caught just above)
    if not (g_expr.free_symbols or a_expr.free_symbols):
        g_rational, a_rational = as_rational(g_expr), as_rational(a_expr)
        if g_rational is not None and a_rational is not None:
            return _numbers_agree(_fraction(g_rational), _fraction(a_rational), gold, answer, tol, answer_rational=True)
        try:
            g_val, a_val = evaluate(g_expr, {}), evaluate(a_expr, {})
        except EvalError:
            return exact_difference_is_zero(g_expr, a_expr) is True
        return _numbers_agree(g_val, a_val, gold, answer, tol, answer_rational=a_rational is not None)
    if not a_expr.free_symbols <= g_expr.free_symbols or _new_piecewise(g_expr, a_expr):
        # `\max(42, x)` for `42`, `|x|` for `x`: sampling points cannot tell; only a proof can.
        return exact_difference_is_zero(g_expr, a_expr) is True
    # Free symbols: compared at seeded points; a decimal inside an expression must be the exact
    # value (`0.5x` = `x/2`), to the 15 digits a parsed decimal carries.
    rel = _DECIMAL_IN_EXPR_REL if (gold.is_decimal or answer.is_decimal) else _EXACT_REL
    compared = 0
    for point in numeric_points(g_expr, a_expr):
        try:
            g_val, a_val = evaluate(g_expr, point), evaluate(a_expr, point)
        except EvalError:
            continue
        compared += 1
        if not close(g_val, a_val, rel):
            return False
    if compared:
        return True
    return exact_difference_is_zero(g_expr, a_expr) is True


_INTEGER_PARAMETERS = frozenset("k n m j")


def _rename_integer_parameter(gold: Any, answer: Any) -> Any:
    """`n\pi` for `k\pi`: one free integer parameter on each side, written with a different letter."""
    g_free, a_free = gold.free_symbols, answer.free_symbols
    if len(g_free) == len(a_free) == 1 and g_free != a_free:
        (g,), (a,) = g_free, a_free
        if g.name in _INTEGER_PARAMETERS and a.name in _INTEGER_PARAMETERS:
            return answer.xreplace({a: g})
    return answer


def _new_piecewise(gold: Any, answer: Any) -> bool:
    """The answer uses a function that is not smooth (`\max`, `|x|`, `\lfloor`) the gold does not."""
    import sympy

    kinds = (sympy.Max, sympy.Min, sympy.Abs, sympy.Piecewise, sympy.sign, sympy.floor, sympy.ceiling, sympy.Heaviside)
    return any(answer.has(k) and not gold.has(k) for k in kinds)


def _fraction(rational: Any) -> Fraction:
    return Fraction(int(rational.p), int(rational.q))


def relation_equal(gold: Relation, answer: Relation, tol: Tolerance) -> bool:
    """Same relation: `l - r` a constant multiple of the other's (positive for inequalities)."""
    from .symbolic import EvalError, evaluate, numeric_points

    g_op, g_diff = _canonical(gold)
    a_op, a_diff = _canonical(answer)
    if g_op != a_op:
        return False
    points = numeric_points(g_diff, a_diff, count=4)
    ratio = None
    for point in points:
        try:
            g_val, a_val = evaluate(g_diff, point), evaluate(a_diff, point)
        except EvalError:
            continue
        if abs(g_val) == 0 or abs(a_val) == 0:
            if abs(g_val) != abs(a_val) and (abs(g_val) == 0 or abs(a_val) == 0):
                return False
            continue
        r = a_val / g_val
        if ratio is None:
            if g_op != "=" and g_op != "!=" and not (abs(r.imag) == 0 and r.real > 0):
                return False
            ratio = r
        elif abs(r - ratio) > 1e-15 * abs(ratio):
            return False
    return ratio is not None or not (g_diff.free_symbols or a_diff.free_symbols)


def _canonical(relation: Relation) -> tuple[str, Any]:
    """(`op`, `lhs - rhs`) with `<`/`<=` turned into `>`/`>=` by swapping sides."""
    op = relation.op
    if op in ("<", "<="):
        return {"<": ">", "<=": ">="}[op], relation.rhs - relation.lhs
    return op, relation.lhs - relation.rhs
