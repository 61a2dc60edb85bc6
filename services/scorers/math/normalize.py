r"""Text-level clean-up of an answer before it is parsed: one job, no sympy.

What goes: math delimiters, `\left`/`\right` and sizing commands, spacing commands, bold, the
`\dfrac`/`\tfrac` variants, thousands separators (`10{,}000`, `11,\!111`, `10\,000`), unicode forms
(`°`, `π`, `√`, `≤`, `−`, `×`, `∞`, `∪`). What is rewritten: TeX shorthands sympy's LaTeX parser
rejects (`\frac34`, `\frac9{19}`, `\sqrt2`, `\sqrt(2)`), relation commands to ASCII (`\le` -> `<=`).
Units, percent and degree marks are *not* removed here: they carry meaning the parser records.
"""

from __future__ import annotations

import re

__all__ = ["normalize"]

_UNICODE = {
    "\u2212": "-", "\u2013": "-", "\u00d7": "\\times ", "\u22c5": "\\cdot ", "\u00b7": "\\cdot ",
    "\u03c0": "\\pi ", "\u221e": "\\infty ", "\u221a": "\\sqrt", "\u2264": "<=", "\u2265": ">=",
    "\u2260": "!=", "\u222a": "\\cup ", "\u2229": "\\cap ", "\u00b0": "^\\circ", "\u00bd": "1/2",
    "\u00bc": "1/4", "\u00be": "3/4", "\u2208": "\\in ", "\u00b1": "\\pm ", "\uff0c": ",",
    "\u2205": "\\emptyset ", "\u211d": "(-\\infty,\\infty)",
}
_REALS = re.compile(r"\\mathbb\s*\{?\s*R\s*\}?")
_DROP = re.compile(
    r"\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big|bigg|Bigg|displaystyle|textstyle|limits|nolimits)(?![a-zA-Z])"
)
_SPACES = re.compile(r"(?<!\\)\\[,;:! ]|\\quad|\\qquad|~")
_THOUSANDS = re.compile(r"(?<=\d)(?:\{,\}|,\\!|(?<!\\)\\,|,\\ |(?<!\\)\\ ) ?(?=\d{3}(?!\d))")
# `\textbf{meters}`, `\mathrm{cm}`, `\textnormal{ miles}`: words in a font command are text (units);
# one letter (`\mathrm{e}`, `\mathrm{d}`) stays math.
_FONT_WORDS = re.compile(r"\\(?:textbf|textnormal|textit|textrm|textup|mathrm|mathbf|mathit|mbox)\s*\{(\s*[A-Za-z][A-Za-z .]*[A-Za-z.]\s*)\}")
_ORDINAL = re.compile(r"(?<=\d)\s*(?:\^\s*\{?\s*\\text\{\s*(?:th|st|nd|rd)\s*\}\s*\}?|(?:th|st|nd|rd)\b)")
_BOLD_COMMANDS = re.compile(r"\\(?:mathbf|textbf|boldsymbol|bm|mathrm|mathit|operatorname\*?|rm)\s*(?=\{)")
_FRAC_SHORT = re.compile(r"\\frac\s*(\d)\s*(\d)")
_FRAC_HALF = re.compile(r"\\frac\s*(\d)\s*(?=\{)")
_FRAC_TAIL = re.compile(r"\\frac(\{[^{}]*\})\s*(\d)")
_SQRT_SHORT = re.compile(r"\\sqrt\s*(\d+|[a-zA-Z])(?![a-zA-Z{])")
_SQRT_PAREN = re.compile(r"\\sqrt\s*\(([^()]*)\)")
_RELATIONS = (
    (re.compile(r"\\(?:leqslant|leq|le)(?![a-zA-Z])"), "<="),
    (re.compile(r"\\(?:geqslant|geq|ge)(?![a-zA-Z])"), ">="),
    (re.compile(r"\\(?:neq|ne)(?![a-zA-Z])"), "!="),
    (re.compile(r"\\lt(?![a-zA-Z])"), "<"),
    (re.compile(r"\\gt(?![a-zA-Z])"), ">"),
)


# Control characters a data set produced from `\t`, `\f`, `\b`, `\r`, `\v`, `\a` written in a
# non-raw Python string: `\frac` stored as form feed + `rac`. Only before letters.
_CONTROL_ESCAPES = {"\t": "\\t", "\f": "\\f", "\b": "\\b", "\r": "\\r", "\v": "\\v", "\a": "\\a"}
_CONTROL_BEFORE_LETTER = re.compile("([\t\f\b\r\v\a])(?=[a-zA-Z]{2})")
_DOUBLED_BACKSLASH = re.compile(r"(?<!\\)\\\\(?=[a-zA-Z]{2})")  # `\\frac` stored with its escape doubled
_DOTS = re.compile(r"\\(?:ldots|cdots|dots|dotsc|dotsb)(?![a-zA-Z])|\.\.\.|\u2026")
_SUP = re.compile(r"<sup>(.*?)</sup>", re.IGNORECASE)


def repair(text: str) -> str:
    r"""Undo the ways data sets break LaTeX: control characters for `\t`/`\f`/..., doubled
    backslashes before a command, a trailing lone backslash, HTML `<sup>`."""
    s = _CONTROL_BEFORE_LETTER.sub(lambda m: _CONTROL_ESCAPES[m.group(1)], text)
    s = _DOUBLED_BACKSLASH.sub(r"\\", s)
    s = _SUP.sub(r"^{\1}", s)
    if s.endswith("\\") and not s.endswith("\\\\"):
        s = s[:-1]
    return s


def normalize(text: str) -> str:
    r"""Clean `text` for parsing; see the module docstring.

    >>> normalize(r"$\dfrac 34$")
    '\\frac{3}{4}'
    >>> normalize(r"10{,}000")
    '10000'
    """
    s = repair(text)
    for old, new in _UNICODE.items():
        if old in s:
            s = s.replace(old, new)
    s = s.replace("\\$", "\\dollar ").replace("$", "").replace("\\dollar ", "\\$")
    s = s.replace("\\(", "").replace("\\)", "").replace("\\[", "").replace("\\]", "")
    s = _DROP.sub("", s)
    s = s.replace("\\{", "\\lbrace ").replace("\\}", "\\rbrace ")
    s = _THOUSANDS.sub("", s)
    s = _SPACES.sub(" ", s)
    s = s.replace("\\lbrace ", "\\{").replace("\\rbrace ", "\\}")
    s = re.sub(r"\*\*(.+?)\*\*", r"\1", s)
    s = _FONT_WORDS.sub(r"\\text{\1}", s)
    s = _ORDINAL.sub("", s)
    s = _BOLD_COMMANDS.sub("", s)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("\\cfrac", "\\frac")
    s = _FRAC_SHORT.sub(r"\\frac{\1}{\2}", s)
    s = _FRAC_HALF.sub(r"\\frac{\1}", s)
    s = _FRAC_TAIL.sub(r"\\frac\1{\2}", s)
    s = _SQRT_PAREN.sub(r"\\sqrt{\1}", s)
    s = _SQRT_SHORT.sub(r"\\sqrt{\1}", s)
    for pattern, ascii_op in _RELATIONS:
        s = pattern.sub(ascii_op, s)
    s = _DOTS.sub(r"\\ldots ", s)
    s = s.replace("\\%", "%").replace("\\degree", "^\\circ").replace("\\varnothing", "\\emptyset")
    s = _REALS.sub(lambda _: "(-\\infty,\\infty)", s)
    s = re.sub(r"\s+", " ", s).strip()
    return s.rstrip(".").strip()
