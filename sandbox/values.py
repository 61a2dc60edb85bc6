"""Plain Python values across the sandbox boundary: a tagged JSON codec and the strict comparison.

Standard library only: the harness imports it inside the sandbox. A value crosses as JSON where
JSON has the type (None, bool, int, float, str, list) and as a one-key object naming the type
otherwise (`{"tuple": [...]}`, `{"set": [...]}`, `{"frozenset": [...]}`, `{"dict": [[k, v], ...]}`,
`{"complex": [re, im]}`, `{"bytes": "hex"}`), so `(1, 2)` and `[1, 2]` stay different, as they are
to Python's `==`. Subclasses of these types (Counter, OrderedDict, a namedtuple, an `int` whose
`__eq__` always answers True) cross as their base type's real content, read through the base
type's own methods: an object cannot choose how it compares, because it never reaches the
comparison. Anything else (a class of the program's own) is refused with TypeError.
"""

from __future__ import annotations

import cmath
import math
from typing import Any

Tolerance = tuple[float, float]  # (rel_tol, abs_tol) as math.isclose takes them


def encode(value: Any) -> Any:
    """The JSON-ready form of a plain value; TypeError for any other object."""
    if value is None or value is True or value is False:
        return value
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, list):
        return [encode(v) for v in list.__iter__(value)]
    if isinstance(value, tuple):
        return {"tuple": [encode(v) for v in tuple.__iter__(value)]}
    if isinstance(value, dict):
        return {"dict": [[encode(k), encode(v)] for k, v in dict.items(value)]}
    if isinstance(value, frozenset):
        return {"frozenset": [encode(v) for v in frozenset.__iter__(value)]}
    if isinstance(value, set):
        return {"set": [encode(v) for v in set.__iter__(value)]}
    if isinstance(value, complex):
        return {"complex": [complex.real.__get__(value), complex.imag.__get__(value)]}
    if isinstance(value, (bytes, bytearray)):
        return {"bytes": bytes(value).hex()}
    raise TypeError(f"a {type(value).__name__} is not a plain value (None, bool, int, float, complex, str, bytes, list, tuple, dict, set)")


def decode(data: Any) -> Any:
    """The value `encode` wrote; ValueError (or TypeError: an unhashable key) for anything else."""
    if data is None or isinstance(data, (bool, int, float, str)):
        return data
    if isinstance(data, list):
        return [decode(v) for v in data]
    if isinstance(data, dict) and len(data) == 1:
        (tag, body), = data.items()
        if tag == "bytes" and isinstance(body, str):
            return bytes.fromhex(body)
        if isinstance(body, list):
            if tag == "tuple":
                return tuple(decode(v) for v in body)
            if tag == "set":
                return {decode(v) for v in body}
            if tag == "frozenset":
                return frozenset(decode(v) for v in body)
            if tag == "dict" and all(isinstance(p, list) and len(p) == 2 for p in body):
                return {decode(k): decode(v) for k, v in body}
            if tag == "complex" and len(body) == 2 and all(type(p) in (int, float) for p in body):
                return complex(body[0], body[1])
    raise ValueError(f"not an encoded value: {str(data)[:80]}")


def _close(actual: complex, expected: complex, tolerance: Tolerance | None) -> bool:
    if actual == expected or tolerance is None:
        return actual == expected
    rel_tol, abs_tol = tolerance
    if isinstance(actual, complex) or isinstance(expected, complex):
        return cmath.isclose(actual, expected, rel_tol=rel_tol, abs_tol=abs_tol)
    return math.isclose(actual, expected, rel_tol=rel_tol, abs_tol=abs_tol)


def same(actual: Any, expected: Any, tolerance: Tolerance | None = None) -> bool:
    """Strict equality of plain values: exact types (`bool` is not `int`, a tuple is not a list);
    floats equal as Python compares them unless the test asks for a `tolerance` (relative and
    absolute, as `math.isclose`), and then only where `expected` is a float (or complex), so an
    answer of 0 is never close to a tiny expected value by default; an `int` expected takes an
    equal float (`2.0` for `2`, as JSON writers emit it) but no tolerance. Sets compare by
    Python's `==` (their elements are hashable plain values)."""
    want, got = type(expected), type(actual)
    if want is float:
        return got in (int, float) and _close(actual, expected, tolerance)
    if want is complex:
        return got in (int, float, complex) and _close(actual, expected, tolerance)
    if want is int:
        return (got is int or got is float) and actual == expected
    if want in (list, tuple):
        return got is want and len(actual) == len(expected) and all(same(a, e, tolerance) for a, e in zip(actual, expected))
    if want is dict:
        return got is dict and actual.keys() == expected.keys() and all(same(actual[k], expected[k], tolerance) for k in expected)
    if want in (set, frozenset):
        return got in (set, frozenset) and actual == expected
    if want in (bool, str, bytes, type(None)):
        return got is want and actual == expected
    return False
