r"""The only module that touches sympy: LaTeX leaf to expression, and numeric evaluation.

Imported lazily by `parse.py` / `compare.py`, so plain numbers (the GSM8K case) never load sympy.
Nothing here sets a timer: the caller has passed `guards.refusal` first and the worker pool
enforces the deadline from outside.
"""

from __future__ import annotations

import random
from fractions import Fraction
from typing import Any

import mpmath
import sympy
from latex2sympy2_extended import latex2sympy

__all__ = ["EvalError", "as_rational", "close", "evaluate", "exact_difference_is_zero", "from_fraction", "numeric_points", "to_sympy", "warm_up"]

_DIGITS = 40


class EvalError(Exception):
    """An expression could not be turned into a number."""


def to_sympy(latex: str) -> Any:
    """Parse one LaTeX leaf (no commas, relations or `\\pm` at top level) into a sympy expression.

    Raises ValueError when the text is not LaTeX math. `i` is read as the imaginary unit.
    """
    try:
        expr = latex2sympy(latex, normalization_config=None)
    except Exception as exc:  # the ANTLR parser raises bare Exception subclasses
        raise ValueError(f"not parseable as LaTeX: {latex[:60]!r}") from exc
    if not isinstance(expr, sympy.Basic):
        raise ValueError(f"not an expression: {latex[:60]!r}")
    if isinstance(expr, (sympy.Tuple, sympy.Set, sympy.MatrixBase)) or getattr(expr, "is_Relational", False):
        raise ValueError(f"not a single expression: {latex[:60]!r}")
    imaginary = [s for s in expr.free_symbols if s.name == "i"]
    if imaginary:
        expr = expr.subs(imaginary[0], sympy.I)
    return expr


def warm_up() -> None:
    """Build the LaTeX parser and touch sympy's evaluator once (~0.5 s): call it where workers are
    forked from, so the first non-trivial answer in each worker is not the slow one."""
    expr = to_sympy("\\frac{\\sqrt{2}}{2}+x")
    evaluate(expr, numeric_points(expr)[0])


def from_fraction(value: Fraction) -> Any:
    return sympy.Rational(value.numerator, value.denominator)


def numeric_points(*exprs: Any, count: int = 3) -> list[dict[Any, Any]]:
    """`count` substitutions of small positive rationals for the free symbols of `exprs`.

    Seeded by the symbol names, so the scorer stays a pure function; positive values keep
    `sqrt(x^2) = x` and logarithms real.
    """
    symbols = sorted(set().union(*(e.free_symbols for e in exprs)), key=lambda s: s.name)
    if not symbols:
        return [{}]
    rng = random.Random(",".join(s.name for s in symbols))
    return [
        {s: sympy.Rational(rng.randint(50, 290), rng.randint(97, 131)) for s in symbols} for _ in range(count)
    ]


def evaluate(expr: Any, point: dict[Any, Any]) -> Any:
    """The value of `expr` at `point` as an mpmath complex, to ~40 digits; EvalError if not finite.

    mpmath, not floats: `1/2004!` underflows a double to 0 and would then equal `1/2006!`.
    """
    try:
        value = sympy.N(expr.subs(point) if point else expr, _DIGITS)
        real, imag = value.as_real_imag()
        if not (real.is_Number and imag.is_Number):
            raise EvalError(f"not a number: {str(value)[:60]}")
        result = mpmath.mpc(_mpf(real), _mpf(imag))
    except (TypeError, ValueError, ZeroDivisionError, OverflowError, AttributeError) as exc:
        raise EvalError(str(exc)[:80]) from exc
    if not mpmath.isfinite(result):
        raise EvalError("not finite")
    return result


def _mpf(number: Any) -> Any:
    return mpmath.mpf(0) if number.is_zero else mpmath.mpf(sympy.Float(number, _DIGITS)._mpf_)


def close(a: Any, b: Any, rel_tol: float) -> bool:
    """`a` equals `b` within `rel_tol` of the larger magnitude (both mpmath numbers)."""
    with mpmath.workdps(_DIGITS + 5):
        scale = max(abs(a), abs(b))
        return bool(abs(a - b) <= rel_tol * scale)


def as_rational(expr: Any) -> Any:
    """`expr` evaluated to an exact sympy Rational when it is one (`2^{100}+1`, `\\frac{1}{2004!}`), else None.

    Exact comparison of rationals: 40-digit evaluation cannot tell `10^{100}+1` from `10^{100}`.
    """
    if expr.free_symbols or expr.has(sympy.Float):
        return None
    try:
        value = expr.doit()
    except (TypeError, ValueError, ZeroDivisionError, AttributeError):
        return None
    return value if value.is_Rational else None


def exact_difference_is_zero(a: Any, b: Any) -> bool | None:
    """True/False when sympy can decide `a - b == 0` cheaply, None when it cannot."""
    try:
        diff = sympy.simplify(a - b) if sympy.count_ops(a - b) < 60 else sympy.expand(a - b)
    except (TypeError, ValueError, ZeroDivisionError, RecursionError):
        return None
    if diff == 0:
        return True
    if diff.is_number and diff.is_zero is False:
        return False
    return None
