r"""A token count for text whose real count the trainer did not send: an upper bound, never an under-count.

The `length` scorer needs tokens; only the trainer knows them exactly (`metadata.completion_tokens`).
The old estimate, one token per four bytes, under-counted what a policy can write: Qwen2's
tokenizer gives every digit its own token, so a digit-heavy completion reached `max_length`
real tokens at a quarter of the estimate, and escaped the overlong punishment.

This estimate follows how byte-level BPE tokenizers (Qwen2/2.5/3, Llama 3, DeepSeek V3, GPT-4's
cl100k) cut text before merging: their pre-tokenizer splits text into pieces no token crosses,
so the count is a sum over pieces, each bounded from above:

- a digit: 1 token (Qwen2 splits digits one by one; Llama 3 groups up to three);
- a character of a script written without spaces (Han, kana, Hangul, Thai, Lao, Khmer,
  Myanmar, Tibetan): 1 token;
- a run of letters of another script (a word): ceil(UTF-8 bytes / 3) tokens, so an English word of
  up to three letters is one token, of four to six two; real vocabularies hold most common English
  words whole, so this over-counts English prose. This is the one class the bound is not strict
  for: a word made of rare letter sequences can need more;
- any other character (punctuation, symbols, invisible and control characters): its UTF-8 bytes,
  a strict bound, since a byte-level token holds at least one byte;
- whitespace: one token per character, except one plain space before a word or punctuation,
  which the pre-tokenizer joins to what follows (a space before a digit is its own piece).

The tests check the bound against hand-made worst cases of each class (tests/services/scorers/
adversarial/test_length.py); no real tokenizer is available offline to compare with.
"""

from __future__ import annotations

import functools
import unicodedata

import regex

__all__ = ["estimate_tokens"]

_UNSPACED_SCRIPTS = frozenset(
    "CJK HIRAGANA KATAKANA HANGUL THAI LAO KHMER MYANMAR TIBETAN IDEOGRAPHIC KATAKANA-HIRAGANA".split()
)
_BYTES_PER_WORD_TOKEN = 3
_PIECE = regex.compile(
    r"(?P<digits>\p{N}+)"
    r"|(?P<word>[\p{L}\p{M}]+)"
    r"|(?P<joined> (?=[^\s\p{N}]))"
    r"|(?P<space>\s)"
    r"|(?P<other>.)",
    regex.V1 | regex.DOTALL,
)


def estimate_tokens(text: str) -> int:
    """An upper bound on the tokens a byte-level BPE tokenizer makes of `text` (see the module docstring)."""
    total = 0
    for piece in _PIECE.finditer(text):
        kind = piece.lastgroup
        if kind == "digits":
            total += len(piece.group())
        elif kind == "word":
            total += _word_tokens(piece.group())
        elif kind == "space":
            total += 1
        elif kind == "other":
            total += len(piece.group().encode("utf-8", "surrogatepass"))
    return total


def _word_tokens(word: str) -> int:
    """Tokens of one run of letters: one per character of an unspaced script, else ceil(bytes / 3) per script run."""
    total = 0
    run = bytearray()
    for char in word:
        if _script(char) in _UNSPACED_SCRIPTS:
            total += 1 + _ceil_div(len(run), _BYTES_PER_WORD_TOKEN)
            run.clear()
        else:
            run += char.encode("utf-8", "surrogatepass")
    return total + _ceil_div(len(run), _BYTES_PER_WORD_TOKEN)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@functools.lru_cache(maxsize=4096)
def _script(char: str) -> str:
    """The first word of the character's Unicode name (`CJK`, `THAI`, `LATIN`, ...), past width prefixes."""
    parts = unicodedata.name(char, "UNKNOWN").split()
    if parts[0] in ("FULLWIDTH", "HALFWIDTH") and len(parts) > 1:
        return parts[1]
    return parts[0]
