r"""Refuse answers that would make sympy hang or eat memory, before sympy sees them.

sympy evaluates `9^{9^{9^9}}` or `(10^8)!` eagerly when it builds the expression, holding the GIL,
so no in-process timer can stop it (the worker pool kills the process, but only at the deadline).
These checks are linear scans of the text, and they are deliberately coarse: a refused answer is
`unscorable` (never graded), and no answer in MATH-500 or GSM8K comes near the limits.

Limits (why): length and the number of `^` (the LaTeX parser costs ~10 ms per power, more per
nesting level); brace depth (the LaTeX parser recurses);
digits per number (big-integer arithmetic and printing); power towers deeper than `a^{b^{c}}` and
numeric exponents above 10^4 (`2^{10^6}`); factorials, binomials and the like of anything that is
not a small integer; sums, products, integrals and limits (unbounded work, never a final answer).
"""

from __future__ import annotations

import math
import re

__all__ = ["MAX_BRACE_DEPTH", "MAX_DIGITS", "MAX_EXPONENT", "MAX_FACTORIAL", "MAX_POWERS", "MAX_RESULT_DIGITS", "refusal"]

MAX_BRACE_DEPTH = 8  # sympy's LaTeX parser slows by ~0.1 s per bare level; MATH-500 golds nest 2 deep
MAX_POWERS = 40  # ~10 ms of parsing per `^`; MATH-500's longest polynomial gold has 7
MAX_DIGITS = 400
MAX_EXPONENT = 10_000
MAX_FACTORIAL = 5_000
MAX_RESULT_DIGITS = 20_000  # a power's value: `99^{9999}` has ~20,000 digits; `(5000!)^{9999}` has 1.6e8
_MAX_TOWER = 2  # `a^{b^{c}}` is allowed, `a^{b^{c^{d}}}` is not

_NUMBER = re.compile(r"\d+")
_BIG_OPERATORS = re.compile(r"\\(?:sum|prod|int|iint|oint|lim|Gamma)(?![a-zA-Z])")
_COMBINATORIAL = re.compile(r"\\(?:binom|dbinom|tbinom|choose)(?![a-zA-Z])")


def refusal(text: str, *, max_chars: int) -> str | None:
    """Why `text` must not reach sympy, or None when it is safe to parse."""
    if len(text) > max_chars:
        return f"answer is {len(text)} characters, over the {max_chars} limit"
    depth = deepest = 0
    for c in text:
        if c in "{([":
            depth += 1
            deepest = max(deepest, depth)
        elif c in "})]":
            depth -= 1
    if deepest > MAX_BRACE_DEPTH:
        return f"brackets nest {deepest} deep, over the {MAX_BRACE_DEPTH} limit"
    longest = max((len(m) for m in _NUMBER.findall(text)), default=0)
    if longest > MAX_DIGITS:
        return f"a number has {longest} digits, over the {MAX_DIGITS} limit"
    powers = text.count("^")
    if powers > MAX_POWERS:
        return f"{powers} powers, over the {MAX_POWERS} limit"
    if _BIG_OPERATORS.search(text):
        return "sums, products, integrals, limits and Gamma are not evaluated"
    for why in (_power_refusal(text), _factorial_refusal(text), _binomial_refusal(text), _size_refusal(text)):
        if why:
            return why
    return None


_CLOSERS = {"{": "}", "(": ")"}


def _bracketed(text: str, i: int, opener: str, closer: str) -> tuple[str, int]:
    """The content of the group opened at `i` and the index after its closer (to the end if unclosed)."""
    depth = 0
    for j in range(i, len(text)):
        if text[j] == opener:
            depth += 1
        elif text[j] == closer:
            depth -= 1
            if depth == 0:
                return text[i + 1 : j], j + 1
    return text[i + 1 :], len(text)


def _group_after(text: str, i: int) -> tuple[str, int]:
    """The TeX argument starting at `i` (a braced group, a digit run, or one character) and its end."""
    while i < len(text) and text[i] == " ":
        i += 1
    if i >= len(text):
        return "", i
    if text[i] in _CLOSERS:
        return _bracketed(text, i, text[i], _CLOSERS[text[i]])
    match = _NUMBER.match(text, i)
    if match:
        return match.group(), match.end()
    if text[i] == "\\":
        j = i + 1
        while j < len(text) and text[j].isalpha():
            j += 1
        return text[i:j], j
    return text[i], i + 1


def _tower_height(text: str) -> int:
    """How deeply `^` nests: `2^3` is 1, `2^{3^4}` is 2."""
    best = 0
    i = 0
    while True:
        i = text.find("^", i)
        if i < 0:
            return best
        exponent, end = _group_after(text, i + 1)
        best = max(best, 1 + _tower_height(exponent))
        i = end if end > i else i + 1


def _log10_value(text: str) -> float | None:
    """log10 of a numeric exponent made of digits, `^`, `*`, `\\cdot`, `\\times`, signs; None otherwise."""
    cleaned = text.replace("\\cdot", "*").replace("\\times", "*").replace(" ", "").lstrip("+-")
    if not cleaned or not re.fullmatch(r"[\d^*{}()]+", cleaned):
        return None
    cleaned = cleaned.replace("{", "(").replace("}", ")")
    if "^" in cleaned:
        base, _, rest = cleaned.partition("^")
        base = base.strip("()")
        inner = _log10_value(rest.strip("()"))
        if not base.isdigit() or inner is None:
            return None
        if int(base) <= 1:
            return 0.0
        return 10**inner * math.log10(int(base)) if inner < 300 else math.inf
    total = 0.0
    for factor in cleaned.split("*"):
        factor = factor.strip("()")
        if not factor.isdigit():
            return None
        value = int(factor)
        total += math.log10(value) if value > 0 else 0.0
    return total


def _power_refusal(text: str) -> str | None:
    height = _tower_height(text)
    if height > _MAX_TOWER:
        return f"a power tower {height} high is not evaluated"
    i = 0
    while True:
        i = text.find("^", i)
        if i < 0:
            return None
        exponent, end = _group_after(text, i + 1)
        size = _log10_value(exponent)
        if size is not None and size > math.log10(MAX_EXPONENT):
            return f"exponent {exponent!r} is over {MAX_EXPONENT}"
        if size is None:
            numbers = [int(n) for n in _NUMBER.findall(exponent)]
            if any(n > MAX_EXPONENT for n in numbers):
                return f"exponent {exponent!r} is over {MAX_EXPONENT}"
        i = end if end > i else i + 1


def _factorial_refusal(text: str) -> str | None:
    """Refuse `n!` unless n is a plain integer up to MAX_FACTORIAL or a group with no big numbers or powers."""
    for bang in (m.start() for m in re.finditer("!", text)):
        if text.startswith("\\!", bang - 1):
            continue  # `\!` is a TeX thin negative space, not a factorial
        j = bang
        while j > 0 and text[j - 1] == "!":
            j -= 1
        before = text[:j].rstrip()
        digits = re.search(r"(\d+)$", before)
        if digits:
            if int(digits.group(1)) > MAX_FACTORIAL:
                return f"factorial of {digits.group(1)} is not evaluated"
            continue
        if before.endswith((")", "}")):
            group = _group_before(before)
            numbers = [int(n) for n in _NUMBER.findall(group)]
            if "^" in group or "!" in group or any(n > MAX_FACTORIAL for n in numbers):
                return f"factorial of ({group[:40]}) is not evaluated"
            if before[: len(before) - len(group) - 2].endswith("^"):
                return "a factorial in an exponent is not evaluated"
    return None


def _group_before(text: str) -> str:
    """The bracketed group that ends `text` (which ends with `)` or `}`), without its brackets."""
    depth = 0
    for i in range(len(text) - 1, -1, -1):
        if text[i] in ")}":
            depth += 1
        elif text[i] in "({":
            depth -= 1
            if depth == 0:
                return text[i + 1 : -1]
    return text


def _binomial_refusal(text: str) -> str | None:
    """Refuse `\\binom{n}{k}` when either argument holds a power or a number over MAX_EXPONENT."""
    for match in _COMBINATORIAL.finditer(text):
        first, end = _group_after(text, match.end())
        second, _ = _group_after(text, end)
        for argument in (first, second):
            numbers = [int(n) for n in _NUMBER.findall(argument)]
            if "^" in argument or "!" in argument or any(n > MAX_EXPONENT for n in numbers):
                return "binomial of a large number is not evaluated"
    return None


def _size_refusal(text: str) -> str | None:
    """Refuse a value too big to build: a power whose digits (base digits x exponent) or factorials
    whose digits together exceed MAX_RESULT_DIGITS (`(5000!)^{9999}`, `(10^{400})^{9999}`)."""
    if _factorial_digits(text) > MAX_RESULT_DIGITS * 10:
        return "factorials too large to evaluate"
    i = 0
    while True:
        i = text.find("^", i)
        if i < 0:
            return None
        exponent, end = _group_after(text, i + 1)
        if "!" in exponent:
            return "a factorial in an exponent is not evaluated"
        digits = _digits_upper(_base_before(text[:i]))
        size = _log10_value(exponent)
        if digits and size is not None and (size > 12 or digits * 10**size > MAX_RESULT_DIGITS):
            return f"a power with about {digits * 10 ** min(size, 12):.3g} digits is not evaluated"
        i = end if end > i else i + 1


def _base_before(prefix: str) -> str:
    """The base of the power whose `^` follows `prefix`: a bracketed group, `n!`, a number or a symbol."""
    text = prefix.rstrip()
    bangs = len(text) - len(text.rstrip("!"))
    core = text[: len(text) - bangs].rstrip()
    if core.endswith((")", "}")):
        base = _group_before(core)
    else:
        match = re.search(r"(\d+|\\?[A-Za-z]+)$", core)
        base = match.group(1) if match else ""
    return base + "!" * bangs


def _digits_upper(base: str) -> float:
    """An upper bound on the number of digits of `base`'s value from its numbers, factorials and powers
    (0 when it has none: a symbol's size is not known here)."""
    if "^" in base:
        head, _, rest = base.partition("^")
        exponent, end = _group_after(rest, 0)
        size = _log10_value(exponent)
        inner = _digits_upper(head)
        outer = inner * 10 ** min(size, 12) if size is not None and inner else inner
        return outer + _digits_upper(rest[end:])
    total = float(_factorial_digits(base))
    without_factorials = re.sub(r"\d+\s*!", " ", base)
    return total + sum(len(n) for n in _NUMBER.findall(without_factorials))


def _factorial_digits(text: str) -> float:
    """Digits of every `n!` written with a plain integer n, summed (log10 n! <= n log10 n)."""
    return sum(int(n) * math.log10(int(n)) + 1 for n in re.findall(r"(\d+)\s*!", text) if int(n) > 1)
