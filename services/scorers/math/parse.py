r"""Parse an answer string into a typed answer (`types.py`).

Structure is read here, by scanning brackets at depth 0 (never by regexes over nested text);
only leaves go to sympy, and only after `guards.refusal` has passed on the whole answer. Plain
integers, decimals, fractions, mixed numbers, scientific notation and thousands separators are
parsed into `Fraction`s without sympy: the fast path every GSM8K answer takes.

Reading order: multiple-choice letter, word answer, `\pm` lists, set-builder notation, `x \in S`,
`\cup` unions, "or"/"and" lists, matrices, bracketed tuples/intervals/sets, top-level comma lists,
relations (`=`, `<`, `<=`, ...), then a scalar with its percent/degree/unit marks.
"""

from __future__ import annotations

import re
from fractions import Fraction

from .normalize import normalize
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

__all__ = ["ParseError", "as_intervals", "parse_answer", "parse_scalar", "scalar_expr", "split_top"]


class ParseError(ValueError):
    """The text is not an answer we can read."""


_OPEN, _CLOSE = "{([", "})]"
_CHOICE = re.compile(r"\(?([A-E])\)?")
_CHOICE_LEADING = re.compile(r"(?:\\text\{)?\{?\s*\(([A-E])\)")
_CHOICE_ANYWHERE = re.compile(r"\(([A-E])\)")
_TEXT_ONLY = re.compile(r"\\(?:text|textrm|mbox|textit|textsf)\{([^{}]*)\}")
_WORDS = re.compile(r"[A-Za-z][A-Za-z' -]*[A-Za-z]")
_INT = re.compile(r"[+-]?\d+")
_DECIMAL = re.compile(r"([+-]?)(\d*)\.(\d+)|([+-]?)(\d+)\.")
_THOUSANDS = re.compile(r"([+-]?\d{1,3}(?:,\d{3})+)(\.\d+)?")
_FRAC = re.compile(r"([+-]?)\\frac\{([+-]?\d+)\}\{([+-]?\d+)\}")
_SLASH = re.compile(r"([+-]?\d+)\s*/\s*(\d+)")
_MIXED = re.compile(r"([+-]?)(\d+)\s*\\frac\{(\d+)\}\{(\d+)\}")
_SCI_TEX = re.compile(r"([+-]?\d+(?:\.\d+)?)\s*(?:\\times|\\cdot|\*|x)\s*10\s*\^\s*\{?\s*([+-]?\d+)\s*\}?")
_SCI_E = re.compile(r"([+-]?\d+(?:\.\d+)?)[eE]([+-]?\d+)")
_BASE = re.compile(r"([0-9A-Fa-f]+)_\{?(\d+)\}?")
_DEGREE = re.compile(r"\s*(?:\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|\^\s*o\b|\s*degrees?\b)\s*$")
_PERCENT = re.compile(r"\s*(?:%|\s*percent\b|\s*pct\b|\\text\{\s*(?:percent|pct)\s*\})\s*$")
_UNIT_TEXT = re.compile(r"\s*\\(?:text|mbox|textrm|mathrm)\{\s*[A-Za-z][A-Za-z .]*\}(?:\s*\^\s*\{?[23]\}?)?\s*$")
_UNIT_WORD = re.compile(r"(?<=[\d}\s])\s*[A-Za-z]{2,}(?:\s+[A-Za-z]{2,}){0,2}(?:\s*\^\s*\{?[23]\}?)?\s*$")
_CURRENCY = re.compile(r"^\s*(?:\\\$|\$|\\text\{\\\$\}|USD|Rs\.?|€|£)\s*")
_CONNECTIVE = re.compile(
    r"\s*(?:\\text\{\s*(?:or|and)\s*\}|(?:\\q?quad)?\s*\b(?:or|and)\b|\\vee|\\lor"
    r"|(?<=[\d)}])or(?=[A-Z(\\]))\s*"  # also `1orW(x)`: an "or" glued between a value and the next
)
_MATRIX = re.compile(r"\\begin\{([pbvBV]?matrix|array)\}(?:\{[^{}]*\})?(.*?)\\end\{\1\}", re.DOTALL)
_BRACKETED_MATRIX = re.compile(r"[\[(]\s*(\\begin\{.*\\end\{[a-zA-Z]*\})\s*[\])]", re.DOTALL)
_REPEATING = re.compile(r"([+-]?)(\d*)\.(\d*)\\(?:overline|bar)\{(\d+)\}")
_RELATION_OPS = ("<=", ">=", "!=", "=", "<", ">")
_IDENT = r"(?:[A-Za-z](?:_\{?[A-Za-z0-9]+\}?)?|\\[a-zA-Z]+(?:_\{?[A-Za-z0-9]+\}?)?)"
_LABEL = (
    rf"\(\s*{_IDENT}(?:\s*,\s*{_IDENT})+\s*\)"  # (x,y), (p,q,r)
    rf"|{_IDENT}(?:\s*:\s*{_IDENT})+"  # V_1:V_2, S_{MBCN}:S
    r"|[A-Z]{2,}(?:_\{?[A-Za-z0-9]+\}?)?"  # AB, CD: segments and areas
    r"|\\frac\{[A-Z]{1,4}\}\{[A-Z]{1,4}\}"  # \frac{NO}{BO}
    r"|\|[A-Z]{1,4}\||\\[lv]?vert\s*[A-Z]{1,4}\s*\\[rv]?vert"  # |AB|
    r"|[A-Z][a-z]{2,}(?: [a-z]+)?|\\text\{\s*[A-Za-z][A-Za-z ]*\}"  # Maximum, \text{area}
)
# A value written as `label = value` where the label is a name for the answer, not an equation in it
_LABELLED = re.compile(rf"\s*({_LABEL})\s*=\s*([^=]+)")
_ABS_NAME = re.compile(rf"\s*\|\s*{_IDENT}\s*\|\s*")
_NAMED_STRUCTURE = re.compile(rf"\s*{_IDENT}\s*=\s*((?:[(\[]|\\\{{|\\langle)[^=<>]*)")
_SET_BUILDER = re.compile(r"\\\{\s*([a-z])\s*(?:\\mid|\||:)\s*(.+)\\\}")
_IN_SET = re.compile(r"^[a-z]\s*\\in\s*(.+)$")


def parse_answer(text: str) -> Answer:
    """Parse a (guarded) answer string; raises ParseError when nothing can be read.

    >>> parse_answer("1,000").exact
    Fraction(1000, 1)
    """
    s = normalize(text)
    if not s:
        raise ParseError("empty answer")
    return _parse(s)


def _parse(s: str) -> Answer:
    s = _strip_outer_braces(s.strip())
    if not s:
        raise ParseError("empty answer")
    if "\\approx" in s:
        return _approximation(s)
    named = _NAMED_STRUCTURE.fullmatch(s)
    if named:
        return _parse(named.group(1))  # `D = (0, 1)`, `S = \{1, 2\}`: a name for a tuple, set or interval
    labelled = _LABELLED.fullmatch(s)
    if labelled and not any(op in labelled.group(2) for op in "<>="):
        return _parse(labelled.group(2))  # `(x,y) = (1,2)`, `AB = 4`, `V_1:V_2 = 11:21`: the value
    choice = _choice(s)
    if choice:
        return choice
    spelled = _number_from_words(s.lower()) if _SPELLED.fullmatch(s) else None
    if spelled is not None:
        return Scalar(exact=Fraction(spelled), source=s)  # `five`, `twenty-one`
    words = _word_answer(s)
    if words is not None:
        number = _number_from_words(words.text)
        return words if number is None else Scalar(exact=Fraction(number), source=s)
    builder = _SET_BUILDER.fullmatch(s)
    if builder and "\\}" not in builder.group(2):
        return as_intervals(_parse(builder.group(2)), s)
    in_set = _IN_SET.match(s)
    if in_set:
        return _parse(in_set.group(1))
    parts = split_top(s, "\\cup")
    if len(parts) > 1:
        return IntervalUnion(tuple(i for p in parts for i in as_intervals(_parse(p), p).parts))
    parts = _split_connective(s)
    if len(parts) > 1:
        items = tuple(_parse(p) for p in parts)
        # `21, 16 \text{ or } 11`: the list is flat
        items = tuple(x for i in items for x in (i.items if isinstance(i, Seq) and i.bare else (i,)))
        if all(isinstance(i, (Relation, Interval, IntervalUnion)) for i in items):
            try:
                return IntervalUnion(tuple(iv for i in items for iv in as_intervals(i, s).parts))
            except ParseError:
                pass
        return Seq(items, ordered=False)
    if s == "\\emptyset":
        return Seq((), ordered=False)
    bracketed = _BRACKETED_MATRIX.fullmatch(s)
    if bracketed:
        s = bracketed.group(1)  # `\\left[\\begin{array}...\\end{array}\\right]`
    matrix = _MATRIX.fullmatch(s)
    if matrix:
        return _matrix(matrix.group(2))
    wrapped = _wrapped(s)
    if wrapped is not None:
        return wrapped
    if ";" in s and "=" in s:
        rows = _assignment_rows(s)
        if rows is not None:
            return rows
    parts = split_top(s, ",") if "," in s else [s]
    if len(parts) == 1 and ";" in s:
        parts = split_top(s, ";")
    if len(parts) > 1:
        items = tuple(_parse(p) for p in parts if p.strip())
        # `1, \pm 2`: a `\pm` item adds its two values to the list
        return Seq(tuple(x for i in items for x in (i.items if isinstance(i, Seq) and i.bare else (i,))), ordered=False, bare=True)
    relation = _relation(s)
    if relation is not None:
        return relation
    ratio = split_top(s, ":")
    if len(ratio) > 1:
        return Seq(tuple(parse_scalar(p) for p in ratio), ordered=True, ratio=True)
    if "\\pm" in s or "\\mp" in s:
        return _plus_minus(s)
    base = _BASE.fullmatch(s)
    if base and 2 <= int(base.group(2)) <= 36 and all(int(d, 36) < int(base.group(2)) for d in base.group(1)):
        return BaseNumeral(base.group(1).upper(), int(base.group(2)))
    return parse_scalar(s)


def split_top(s: str, sep: str, *, thousands: bool = True) -> list[str]:
    """Split `s` on `sep` where no bracket is open (`{([` ... `})]`, mismatched pairs allowed).

    With `thousands`, a comma inside `1,000` does not split (inside brackets, `(12,102)`, it does).
    """
    parts: list[str] = []
    depth = 0
    start = 0
    i = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c == "\\" and not s.startswith(sep, i):
            i += 2 if i + 1 < n and not s[i + 1].isalpha() else 1
            continue
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth = max(depth - 1, 0)
        elif depth == 0 and s.startswith(sep, i):
            if sep == "," and thousands and _is_thousands_comma(s, i):
                i += 1
                continue
            parts.append(s[start:i])
            i += len(sep)
            start = i
            continue
        i += 1
    parts.append(s[start:])
    return [p.strip() for p in parts]


def _is_thousands_comma(s: str, i: int) -> bool:
    """`1,000` (no space, groups of three) is one number, not a list."""
    return (
        i > 0
        and s[i - 1].isdigit()
        and re.match(r"\d{3}(?!\d)", s[i + 1 :]) is not None
        and re.search(r"(?:^|[^\d.])\d{1,3}(?:,\d{3})*$", s[:i]) is not None
    )


def _strip_outer_braces(s: str) -> str:
    while s.startswith("{") and s.endswith("}") and _matching(s, 0) == len(s) - 1:
        s = s[1:-1].strip()
    return s


def _matching(s: str, open_at: int) -> int:
    """Index of the bracket closing the one at `open_at` (any bracket kind), or -1."""
    depth = 0
    i = open_at
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s) and s[i + 1] in "{}":
            i += 2
            continue
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _choice(s: str) -> Choice | None:
    """`C`, `(C)`, `\\text{(C)}`, and `(C) 5` (letter then its value) when only one letter is named."""
    inner = _TEXT_ONLY.fullmatch(s)
    candidate = inner.group(1).strip() if inner else s
    match = _CHOICE.fullmatch(candidate)
    if match:
        return Choice(match.group(1))
    leading = _CHOICE_LEADING.match(s)
    if leading and len(set(_CHOICE_ANYWHERE.findall(s))) == 1 and not _CONNECTIVE.search(s):
        return Choice(leading.group(1))
    return None


def _word_answer(s: str) -> Text | None:
    r"""`\text{Evelyn}`, `even`, `\text{no solution}`: letters only, not a math expression."""
    inner = _TEXT_ONLY.fullmatch(s)
    candidate = inner.group(1).strip() if inner else s
    if _WORDS.fullmatch(candidate) and (inner or len(candidate.replace(" ", "")) > 3 and " " in candidate or _is_word(candidate)):
        return Text(" ".join(candidate.lower().split()))
    return None


_SPELLED = re.compile(r"[A-Za-z][A-Za-z -]*")
_SMALL_NUMBERS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen"
).split()
_TENS = {w: 10 * k for k, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if k >= 2}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6}


def _number_from_words(text: str) -> int | None:
    """`five`, `twenty-one`, `three hundred and twelve`: the number a text answer spells, or None."""
    words = text.replace("-", " ").split()
    if not words:
        return None
    total = current = 0
    for word in words:
        if word in _SMALL_NUMBERS:
            current += _SMALL_NUMBERS.index(word)
        elif word in _TENS:
            current += _TENS[word]
        elif word == "hundred" and current:
            current *= 100
        elif word in ("thousand", "million") and current:
            total += current * _SCALES[word]
            current = 0
        elif word != "and" or word is words[0]:
            return None
    return total + current


def _is_word(s: str) -> bool:
    """A single English-looking word of 4+ letters (`even`, `east`), not a product of symbols."""
    return len(s) >= 4 and s.isalpha() and any(v in s.lower() for v in "aeiouy")


def _split_connective(s: str) -> list[str]:
    r"""Split on top-level "or"/"and"/`\text{ or }` (candidate lists and unions of inequalities)."""
    marked = _CONNECTIVE.sub(" \x00 ", s)
    if "\x00" not in marked:
        return [s]
    parts = [p.strip() for p in split_top(marked, "\x00")]
    return [p for p in parts if p] if len(parts) > 1 else [s]


def _matrix(body: str) -> Answer:
    rows = [r for r in (row.strip() for row in body.split("\\\\")) if r]
    cells = [tuple(parse_scalar(_strip_outer_braces(c.strip())) for c in row.split("&")) for row in rows]
    if not cells:
        raise ParseError("empty matrix")
    if len({len(r) for r in cells}) != 1:
        raise ParseError("ragged matrix")
    if len(cells[0]) == 1:
        return Seq(tuple(r[0] for r in cells), ordered=True)
    if len(cells) == 1:
        return Seq(cells[0], ordered=True)
    return Matrix(tuple(cells))


def _wrapped(s: str) -> Answer | None:
    r"""`(a,b)`, `[a,b)`, `(a,b,c)`, `\{a,b\}`, `\langle a,b\rangle`; None when `s` is not bracketed whole."""
    if s.startswith("\\{") and s.endswith("\\}"):
        inner = s[2:-2].strip()
        items = tuple(_parse(p) for p in split_top(inner, ",", thousands=False) if p) if inner else ()
        return Seq(items, ordered=False)
    if s.startswith("\\langle") and s.endswith("\\rangle"):
        inner = s[len("\\langle") : -len("\\rangle")]
        return Seq(tuple(_parse(p) for p in split_top(inner, ",", thousands=False)), ordered=True)
    if not s or s[0] not in "([" or s[-1] not in ")]" or _matching(s, 0) != len(s) - 1:
        return None
    parts = split_top(s[1:-1], ",", thousands=False)
    if len(parts) < 2 and ";" in s:
        parts = split_top(s[1:-1], ";")  # `(0;-2;6)`
    if len(parts) < 2:
        if s[0] == "(":
            return None  # `(x+1)`: a parenthesised expression
        raise ParseError(f"one-element bracket: {s[:40]!r}")
    if len(parts) == 2 and (s[0] == "[" or s[-1] == "]"):
        return Interval(parse_scalar(parts[0]), parse_scalar(parts[1]), s[0] == "[", s[-1] == "]")
    items = tuple(_parse(p) for p in parts)
    return Seq(items, ordered=True, maybe_interval=len(parts) == 2 and s[0] == "(" and s[-1] == ")")


def _relation(s: str) -> Answer | None:
    """`y = 2x+3`, `x < 2`, `-2 <= x < 3` (a chain becomes an interval); None when no relation."""
    pieces: list[str] = []
    ops: list[str] = []
    depth = 0
    start = 0
    i = 0
    while i < len(s):
        c = s[i]
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth = max(depth - 1, 0)
        elif depth == 0 and c in "<>=!":
            op = next((o for o in _RELATION_OPS if s.startswith(o, i)), None)
            if op:
                pieces.append(s[start:i])
                ops.append(op)
                i += len(op)
                start = i
                continue
        i += 1
    if not ops:
        return None
    pieces.append(s[start:])
    if any(not p.strip() for p in pieces):
        raise ParseError(f"incomplete relation: {s[:40]!r}")
    if ops == ["="] and re.fullmatch(r"[A-Za-z]", pieces[0].strip()) and ("\\pm" in pieces[1] or "\\mp" in pieces[1]):
        return _plus_minus(pieces[1].strip())  # `x = \pm 2`: the roots
    # `3 < x <= 4`, `3 < \lambda \le 4`, `0 < f(x) < 1`: the interval the chain describes
    if len(ops) == 2 and set(ops) <= {"<", "<="} and _ABS_NAME.fullmatch(pieces[1]):
        return _abs_between(pieces[0], pieces[2], ops)
    variable_between = len(ops) == 2 and re.fullmatch(rf"\s*{_IDENT}(?:\([a-z]\))?\s*", pieces[1]) is not None
    if variable_between and set(ops) <= {"<", "<="}:
        return Interval(parse_scalar(pieces[0]), parse_scalar(pieces[2]), ops[0] == "<=", ops[1] == "<=")
    if variable_between and set(ops) <= {">", ">="}:
        return Interval(parse_scalar(pieces[2]), parse_scalar(pieces[0]), ops[1] == ">=", ops[0] == ">=")
    if len(ops) == 1:
        return Relation(_to_expr(pieces[0]), ops[0], _to_expr(pieces[-1]), source=s)
    if all(o == "=" for o in ops):
        # `x = 2 + 3 = 5`: a worked chain; its ends are the relation, graded only if every link agrees.
        links = tuple(parse_scalar(p) for p in pieces)
        return Relation(scalar_expr(links[0]), "=", scalar_expr(links[-1]), source=s, links=links)
    raise ParseError(f"relation chain not understood: {s[:40]!r}")


def _abs_between(lo_text: str, hi_text: str, ops: list[str]) -> IntervalUnion:
    """`1 \le |z| \le \frac{3}{2}`: the two intervals `[-3/2, -1] \cup [1, 3/2]` (one when the lower bound is 0)."""
    lo, hi = parse_scalar(lo_text), parse_scalar(hi_text)
    if lo.exact is None or lo.exact < 0:
        raise ParseError(f"|x| between a bound that is not a non-negative number: {lo_text[:40]!r}")
    lo_closed, hi_closed = ops[0] == "<=", ops[1] == "<="
    neg_hi = Scalar(expr=-scalar_expr(hi), source=f"-({hi.source})") if hi.exact is None else Scalar(exact=-hi.exact, source=f"-{hi.source}")
    if lo.exact == 0 and lo_closed:
        return IntervalUnion((Interval(neg_hi, hi, hi_closed, hi_closed),))
    neg_lo = Scalar(exact=-lo.exact, source=f"-{lo.source}")
    return IntervalUnion((Interval(neg_hi, neg_lo, hi_closed, lo_closed), Interval(lo, hi, lo_closed, hi_closed)))


def _assignment_rows(s: str) -> Seq | None:
    """`p=5,q=2;p=7,q=2`: solutions as rows of assignments, read as the tuples `(5,2),(7,2)`."""
    rows = split_top(s, ";")
    tuples = []
    for row in rows:
        cells = split_top(row, ",", thousands=False)
        values = [re.fullmatch(rf"\s*{_IDENT}\s*=\s*([^=<>]+)", c) for c in cells]
        if len(cells) < 2 or not all(values):
            return None
        tuples.append(Seq(tuple(_parse(v.group(1)) for v in values if v), ordered=True))
    return Seq(tuple(tuples), ordered=False)


def _approximation(s: str) -> Answer:
    r"""`\frac{\sqrt{3}}{3} \approx 0.577`: the exact value, when the decimal is its rounding.

    Anything else with `\approx` is unparseable: an approximation alone is not the answer, and a
    chain whose links disagree (`41 \approx 42.0`) must not be graded by either end.
    """
    parts = split_top(s, "\\approx")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise ParseError(f"an approximation is not an answer: {s[:40]!r}")
    exact, approx = parse_scalar(parts[0]), parse_scalar(parts[1])
    if exact.is_decimal or approx.decimal_places is None:
        raise ParseError(f"`\\approx` between non-decimals: {s[:40]!r}")
    from .symbolic import EvalError, evaluate

    try:
        value = evaluate(scalar_expr(exact), {})
    except EvalError as exc:
        raise ParseError(f"`\\approx` with a value that cannot be evaluated: {s[:40]!r}") from exc
    assert approx.exact is not None
    places = approx.decimal_places
    if abs(value - float(approx.exact)) > 10.0**-places:  # one unit in its last place: rounded or truncated
        raise ParseError(f"`\\approx` chain whose links disagree: {s[:40]!r}")
    return exact


def _to_expr(piece: str) -> object:
    return scalar_expr(parse_scalar(piece))


def scalar_expr(scalar: Scalar) -> object:
    """The scalar as a sympy expression (built on demand: the fast path never needs one)."""
    if scalar.expr is not None:
        return scalar.expr
    from .symbolic import from_fraction

    assert scalar.exact is not None
    return from_fraction(scalar.exact)


def as_intervals(answer: Answer, source: str) -> IntervalUnion:
    """Read an answer as a subset of the reals (an interval, an inequality in one variable)."""
    if isinstance(answer, IntervalUnion):
        return answer
    if isinstance(answer, Interval):
        return IntervalUnion((answer,))
    if isinstance(answer, Seq) and answer.maybe_interval:
        lo, hi = answer.items
        if isinstance(lo, Scalar) and isinstance(hi, Scalar):
            return IntervalUnion((Interval(lo, hi, False, False),))
    if isinstance(answer, Seq) and not answer.ordered and not answer.bare and all(isinstance(i, Scalar) for i in answer.items):
        # `\{-1\} \cup [0,7)`: a finite set of points joins a union as closed one-point intervals
        return IntervalUnion(tuple(Interval(i, i, True, True) for i in answer.items if isinstance(i, Scalar)))
    if isinstance(answer, Relation) and answer.op in ("<", "<=", ">", ">="):
        import sympy

        lhs, rhs, op = answer.lhs, answer.rhs, answer.op
        if not (isinstance(lhs, sympy.Symbol) and rhs.is_number):
            lhs, rhs, op = rhs, lhs, {"<": ">", "<=": ">=", ">": "<", ">=": "<="}[op]
        if isinstance(lhs, sympy.Symbol) and rhs.is_number:
            bound = Scalar(expr=rhs, source=str(rhs))
            if op in ("<", "<="):
                return IntervalUnion((Interval(Scalar(expr=-sympy.oo), bound, False, op == "<="),))
            return IntervalUnion((Interval(bound, Scalar(expr=sympy.oo), op == ">=", False),))
    raise ParseError(f"not a set of reals: {source[:40]!r}")


def _plus_minus(s: str) -> Seq:
    r"""`a \pm b` -> the multiset {a+b, a-b}, also inside a fraction or a list item
    (`\frac{-1 \pm \sqrt{13}}{4}`): each sign is read as `+` and as `-` where it stands.
    At most two signs: each doubles the list."""
    signs = s.count("\\pm") + s.count("\\mp")
    if signs > 2:
        raise ParseError("more than two \\pm signs in one value")
    readings = [s]
    for _ in range(signs):
        readings = [r2 for r in readings for r2 in _both_signs(r)]
    return Seq(tuple(_parse(r) for r in readings), ordered=False, bare=True)


def _both_signs(s: str) -> list[str]:
    at = min(i for i in (s.find("\\pm"), s.find("\\mp")) if i >= 0)
    head, tail = s[:at].rstrip(), s[at + 3 :].lstrip()
    if not tail:
        raise ParseError("nothing after \\pm")
    if not head or head.endswith(("{", "(", "[", ",")):
        return [f"{head}{tail}", f"{head}-{tail}"] if not tail.startswith("-") else [f"{head}{tail}", f"{head}{tail[1:]}"]
    return [f"{head}+{tail}", f"{head}-{tail}"]


def parse_scalar(text: str) -> Scalar:
    """One number or expression with its percent / degree / unit / currency marks recorded."""
    s = _strip_outer_braces(text.strip())
    percent = degrees = False
    units: list[str] = []
    s = _CURRENCY.sub("", s)
    for _ in range(3):
        before = s
        if _PERCENT.search(s):
            s, percent = _PERCENT.sub("", s), True
        if _DEGREE.search(s):
            s, degrees = _DEGREE.sub("", s), True
        unit_text = _UNIT_TEXT.search(s)
        if unit_text and s[: unit_text.start()].strip():  # `\text{e}` alone is the value, not a unit
            units.insert(0, re.sub(r"\\[a-z]+|[{}^\d]", " ", unit_text.group()))
            s = s[: unit_text.start()].strip()
        if s == before:
            break
    s = _strip_outer_braces(s.strip())
    if not s:
        raise ParseError("no number")
    exact, places = _fast_number(s)
    unit = _UNIT_WORD.search(s) if exact is None else None
    if unit and all(_is_unit_word(w) for w in re.findall(r"[A-Za-z]+", unit.group())):
        stripped = s[: unit.start()].strip()
        exact, places = _fast_number(stripped)
        if exact is not None:
            units.insert(0, re.sub(r"[{}^\d]", " ", unit.group()))
            s = stripped
    unit_words = " ".join(" ".join(units).split())
    if exact is not None:
        return Scalar(exact=exact, decimal_places=places, percent=percent, degrees=degrees, source=s, unit=unit_words)
    if _SIDE_BY_SIDE.search(s):
        raise ParseError(f"numbers side by side are not one value: {s[:40]!r}")  # `6 7`, `41\ 42`
    from .symbolic import to_sympy

    expr = to_sympy(_latexify(s))
    places = _decimal_places(s)
    return Scalar(expr=expr, decimal_places=places, percent=percent, degrees=degrees, source=s, unit=unit_words)


_UNIT_ABBREVIATIONS = frozenset(
    "cm mm km kg mg ft yd mi hr hrs min sec ml oz lb lbs mph kph sq cu cc kb mb gb usd".split()
)
_NOT_UNITS = frozenset("pi inf infinity sqrt and or".split())


def _is_unit_word(word: str) -> bool:
    """`cm`, `inches`, `dollars`: a unit to drop; `pi`, `xy`, `ab` are math and stay."""
    w = word.lower()
    if w in _NOT_UNITS:
        return False
    return w in _UNIT_ABBREVIATIONS or (len(w) >= 3 and any(v in w for v in "aeiouy"))


_SPACED_THOUSANDS = re.compile(r"[+-]?\s*\d{1,3}(?: \d{3})+(?:\.\d+)?|[^\d]*|.*[^\d ].*")
_SIDE_BY_SIDE = re.compile(r"(?:^|[^_^\d.])\d+(?:\.\d+)?\s+\d")  # not `\log_2 8`
# latex2sympy reads `2(3)` and `(6)(7)` as mixed numbers (5, 13): make the product explicit.
_IMPLICIT_PRODUCT = re.compile(r"(?<![\^_\d.])(\d+(?:\.\d+)?)\s*(?=\()|(?<=\))\s*(?=\()")  # not `\tan^2(y)`


# `\cot t \cdot \ln(\cos t)`: the parser would read cot(t ln(cos t)); a one-letter argument is bracketed
_BARE_FUNCTION_ARGUMENT = re.compile(
    r"\\(sin|cos|tan|cot|sec|csc|ln|log|exp|arcsin|arccos|arctan)(\^\{?\d\}?)?\s*([a-zA-Z0-9])(?![a-zA-Z0-9{(_^])"
)


def _latexify(s: str) -> str:
    """Plain-text spellings sympy's LaTeX grammar lacks: `sqrt(2)`, `pi`, `inf`; explicit products."""
    s = _BARE_FUNCTION_ARGUMENT.sub(r"\\\1\2(\3)", s)
    s = _IMPLICIT_PRODUCT.sub(lambda m: f"{m.group(1) or ''} \\cdot ", s)
    s = re.sub(r"(?<![\\a-zA-Z])sqrt\s*\(([^()]*)\)", r"\\sqrt{\1}", s)
    s = re.sub(r"(?<![\\a-zA-Z])pi(?![a-zA-Z])", r"\\pi ", s)
    s = re.sub(r"(?<![\\a-zA-Z])(?:infinity|inf)(?![a-zA-Z])", r"\\infty ", s)
    s = re.sub(r"\\text\{([^{}]*)\}", r"\1", s)
    return s


def _decimal_places(s: str) -> int | None:
    places = [len(m.group(1)) for m in re.finditer(r"\d*\.(\d+)", s)]
    return max(places) if places else None


def _fast_number(s: str) -> tuple[Fraction | None, int | None]:
    """Exact value and decimal places of a plain number, or (None, None): no sympy involved."""
    if " " in s.strip() and not _SPACED_THOUSANDS.fullmatch(s.strip()):
        return None, None  # `6 7` is not 67; `1 000` is 1000
    t = s.replace(" ", "")
    if _INT.fullmatch(t):
        return Fraction(int(t)), None
    match = _DECIMAL.fullmatch(t)
    if match:
        if match.group(3) is not None:
            sign, whole, frac = match.group(1), match.group(2) or "0", match.group(3)
        else:
            sign, whole, frac = match.group(4), match.group(5), ""
        value = Fraction(int(whole + frac), 10 ** len(frac))
        return (-value if sign == "-" else value), len(frac)
    match = _THOUSANDS.fullmatch(t)
    if match:
        value, places = _fast_number(match.group(1).replace(",", "") + (match.group(2) or ""))
        return value, places
    match = _FRAC.fullmatch(t)
    if match and int(match.group(3)) != 0:
        value = Fraction(int(match.group(2)), int(match.group(3)))
        return (-value if match.group(1) == "-" else value), None
    match = _SLASH.fullmatch(t)
    if match and int(match.group(2)) != 0:
        return Fraction(int(match.group(1)), int(match.group(2))), None
    match = _MIXED.fullmatch(t)
    if match and int(match.group(4)) != 0:
        value = int(match.group(2)) + Fraction(int(match.group(3)), int(match.group(4)))
        return (-value if match.group(1) == "-" else value), None
    match = _REPEATING.fullmatch(t)
    if match:  # 0.1\overline{36} = (136 - 1) / 990
        sign, whole, fixed, period = match.groups()
        head = int((whole or "0") + fixed)
        value = Fraction(int((whole or "0") + fixed + period) - head, 10 ** len(fixed) * (10 ** len(period) - 1))
        return (-value if sign == "-" else value), None
    match = _SCI_TEX.fullmatch(t) or _SCI_E.fullmatch(t)
    if match and abs(int(match.group(2))) <= 400:
        mantissa, places = _fast_number(match.group(1))
        if mantissa is not None:
            exponent = int(match.group(2))
            # `6.02\times10^{23}` is known to the hundredth of 10^23: places may go negative.
            return mantissa * Fraction(10) ** exponent, (None if places is None else places - exponent)
    return None, None
