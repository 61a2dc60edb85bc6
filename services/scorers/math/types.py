"""The typed answers the math scorer compares: the gold is parsed once into one of these, then
compared by type (see `compare.py`).

Scalars keep how they were written (`decimal_places`, `percent`, `degrees`) because the policy
depends on it: a relative tolerance only when a decimal appears, percent and degree handling only
when the sign or the mark is there. Exact numbers stay `Fraction`s so plain integers and fractions
never touch sympy; everything else is a sympy expression built lazily by `parse.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Union

__all__ = [
    "Answer",
    "BaseNumeral",
    "Choice",
    "Interval",
    "IntervalUnion",
    "Matrix",
    "Relation",
    "Scalar",
    "Seq",
    "Text",
]


@dataclass(frozen=True)
class Scalar:
    """One number or expression.

    `exact` is set for rationals (the fast path); `expr` holds a sympy expression otherwise.
    `decimal_places` is None unless the value was written with a decimal point (then: how many
    digits after it), which is what switches exact comparison to a tolerance.
    """

    exact: Fraction | None = None
    expr: Any = None
    decimal_places: int | None = None
    percent: bool = False
    degrees: bool = False
    source: str = ""
    unit: str = ""  # trailing words dropped as a unit (`cm`, `square feet`); compare decides if they may stand

    @property
    def is_decimal(self) -> bool:
        return self.decimal_places is not None


@dataclass(frozen=True)
class Seq:
    """Several values: `ordered` for tuples and vectors (`(1,2)`, a one-column matrix), unordered
    for `\\{...\\}` sets, bare comma lists and `\\pm` expansions. Unordered sequences compare as
    multisets: duplicates count (`\\{1,2\\}` is not `\\{1,1,2\\}`).

    `maybe_interval` marks `(a,b)`, which is both a point and an open interval; `bare` marks a
    comma list without brackets, which may answer a tuple in order (a `\\{...\\}` set may not);
    `ratio` marks `a:b`, which only a ratio answers.
    """

    items: tuple[Answer, ...]
    ordered: bool
    maybe_interval: bool = False
    bare: bool = False
    ratio: bool = False  # `11:21`: equals only a ratio written the same way


@dataclass(frozen=True)
class Interval:
    """A real interval; `lo`/`hi` are `Scalar`s (`-oo`/`oo` as sympy infinities)."""

    lo: Scalar
    hi: Scalar
    lo_closed: bool
    hi_closed: bool


@dataclass(frozen=True)
class IntervalUnion:
    """A union of intervals (`\\cup`, `or` between inequalities, set-builder notation)."""

    parts: tuple[Interval, ...]


@dataclass(frozen=True)
class Matrix:
    """A matrix with more than one column (one-column matrices parse as ordered `Seq`s)."""

    rows: tuple[tuple[Scalar, ...], ...]


@dataclass(frozen=True)
class Relation:
    """An equation or inequality, kept as a relation: `op` is one of `=`, `<`, `<=`, `>`, `>=`, `!=`.

    `lhs`/`rhs` are sympy expressions. Compared as relations, never reduced to a constant.
    """

    lhs: Any
    op: str
    rhs: Any
    source: str = ""
    links: tuple[Scalar, ...] = ()  # every side of an `=` chain (`x = 2+3 = 5`); graded only if all agree


@dataclass(frozen=True)
class Text:
    """A word answer (`\\text{Evelyn}`, `even`), compared after case and space folding."""

    text: str


@dataclass(frozen=True)
class Choice:
    """A multiple-choice letter, `(C)` or `\\text{(C)}`."""

    letter: str


@dataclass(frozen=True)
class BaseNumeral:
    """A numeral written in another base, `204_5`: compared digit for digit, base included."""

    digits: str
    base: int


Answer = Union[Scalar, Seq, Interval, IntervalUnion, Matrix, Relation, Text, Choice, BaseNumeral]
