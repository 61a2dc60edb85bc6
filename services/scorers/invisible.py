r"""Characters that show nothing: what a rule scorer must not mistake for content or for layout.

A policy can pad, split or hide with characters a reader never sees: zero-width spaces and joiners
(U+200B-U+200D, U+2060, U+FEFF), bidi controls, soft hyphens, variation selectors, blank "letters"
(Hangul fillers U+3164, U+115F, U+1160, U+FFA0; the Braille blank U+2800) and C0/C1 control
characters. Python's `str.strip()` and `str.isspace()` treat some controls (U+001C-U+001F, U+0085)
as whitespace and the rest as text, so each scorer asks here instead:

- `visible(text)`: the text without invisible characters, for judging content (an answer of only
  U+200B is empty; `wait\u200b wait` is a repeat);
- `is_blank(text)`: nothing visible at all;
- `is_layout_space(text)`: only the spacing a template allows between blocks (space, tab, CR, LF
  and Unicode space separators); a control character or an invisible one is text there.
"""

from __future__ import annotations

import regex

__all__ = ["INVISIBLE_CLASS", "is_blank", "is_layout_space", "visible"]

# Format (Cf) and control (Cc) characters except tab, LF, CR; blank letters and symbols; variation
# selectors, the combining grapheme joiner, Mongolian free variation selectors and Khmer
# invisible vowels (marks that draw nothing).
INVISIBLE_CLASS = (
    r"[[\p{Cf}\p{Cc}--[\t\n\r]]\u115f\u1160\u2800\u3164\uffa0\u034f\u180b-\u180d\u17b4\u17b5"
    r"\ufe00-\ufe0f\U000e0100-\U000e01ef]"
)
_INVISIBLE = regex.compile(INVISIBLE_CLASS, regex.V1)
_BLANK = regex.compile(rf"(?:\s|{INVISIBLE_CLASS})*", regex.V1)
_LAYOUT_SPACE = regex.compile(r"[ \t\n\r\p{Zs}\p{Zl}\p{Zp}]*", regex.V1)


def visible(text: str) -> str:
    """`text` with every invisible character removed (whitespace is kept)."""
    return _INVISIBLE.sub("", text)


def is_blank(text: str) -> bool:
    """True when `text` shows nothing: only whitespace and invisible characters."""
    return _BLANK.fullmatch(text) is not None


def is_layout_space(text: str) -> bool:
    """True when `text` is only spacing (space, tab, CR, LF, Unicode space separators); controls are text."""
    return _LAYOUT_SPACE.fullmatch(text) is not None
