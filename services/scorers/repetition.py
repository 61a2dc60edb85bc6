r"""The `repetition` scorer: a repetition penalty against degenerate, looping text.

Two measures of the share of the completion that repeats earlier text; the penalty is the larger,
times `max_penalty`:

1. **word n-grams**, the penalty of "Demystifying Long Chain-of-Thought Reasoning" (arXiv
   2502.03373, appendix C.2) as open-r1 implements it (`get_repetition_penalty_reward` in
   src/open_r1/rewards.py): `1 - distinct n-grams / n-grams` over the lower-cased
   whitespace-split words, each CJK ideograph or kana one word (open-r1 sees a paragraph of
   Chinese as one word and cannot notice it looping).
2. **character n-grams over normalised text**, which loops cannot dodge the ways they dodge the
   first: the text is lower-cased, invisible characters and all whitespace are removed, and every
   run of digits becomes one `0`. Then `1 - distinct / all` over its `char_ngram_size`-character
   windows. A changing counter (`wait 0 wait 1 … wait 399`, `Step 7: let me check again.`),
   plain counting (`1 2 3 … 1499`), loops without spaces (`Letmecheckagain.` x300,
   `\frac{1}{2}+` x400, `.` x5000, Thai or Hangul written without spaces) all normalise to a
   period of a few characters, and every window after the first period is a repeat.

A window of 48 characters is long enough that honest prose rarely repeats one (a phrase of eight
or so words). Measured on reference solutions, the character measure exceeds open-r1's by more
than 0.1 on 4 of 500 MATH-500 solutions (chains such as `\log_2 3 \cdot \log_3 4 \cdot …` and
tables of residues) and 1 of 1,319 GSM8K answers; a test keeps it there. Tables of numbers are
the honest text it penalises: with numbers masked, a table is a loop.
"""

from __future__ import annotations

import re

import regex
from pydantic import Field

from rewardstack.services.scorers.invisible import visible
from rewardstack.services.scorers.types import CpuScorer, Params, Sample, Scored

__all__ = ["RepetitionScorer"]

# One word: a single CJK ideograph or kana, or a run of anything else that is not space.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_WORD = re.compile(rf"[{_CJK}]|[^\s{_CJK}]+")
# Numbers of any script (ASCII, Arabic-Indic, fullwidth, circled, Roman numeral letters) and the
# separators inside them, so a counter or a count normalises to one symbol.
_NUMBER = regex.compile(r"\p{N}+(?:[.,]\p{N}+)*", regex.V1)
_SPACE = regex.compile(r"\s+", regex.V1)


class RepetitionScorer(CpuScorer):
    """Repetition penalty: `max_penalty` times the share of the text that repeats (see the module docstring).

    Scale: `max_penalty` (all of it repeats) to 0.0 (nothing repeats). The share is the larger of
    open-r1's word n-gram share and the character n-gram share of the normalised text (no
    whitespace or invisible characters, lower-case, numbers masked); text shorter than one
    n-gram repeats nothing. Always scorable.

    >>> score = RepetitionScorer()
    >>> score(Sample("the cat sat on the mat"), RepetitionScorer.Params()).value
    0.0
    >>> score(Sample("go go go go go"), RepetitionScorer.Params(ngram_size=2)).value
    -0.75
    >>> score(Sample(" ".join(f"wait {i}" for i in range(400))), RepetitionScorer.Params()).value < -0.95
    True
    """

    name = "repetition"
    version = 2

    class Params(Params):
        ngram_size: int = Field(default=3, ge=1, le=64, description="Words per word n-gram (open-r1's measure).")
        char_ngram_size: int = Field(
            default=48,
            ge=8,
            le=256,
            description=(
                "Characters per window of the normalised text (no spaces, lower-case, numbers masked). "
                "Smaller catches shorter loops and penalises honest stock phrases more."
            ),
        )
        max_penalty: float = Field(
            default=-1.0,
            le=0.0,
            ge=-1e6,
            allow_inf_nan=False,
            description="Value of a completion made only of repeats; must be <= 0.",
        )

    def __call__(self, sample: Sample, params: RepetitionScorer.Params) -> Scored:
        text = visible(sample.completion).lower()
        words, word_share = _word_ngram_share(text, params.ngram_size)
        chars, char_share = _char_ngram_share(text, params.char_ngram_size)
        share = max(word_share, char_share)
        value = share * params.max_penalty + 0.0  # + 0.0 turns -0.0 into 0.0
        detail = (
            f"{word_share:.0%} of {words} {params.ngram_size}-word n-grams repeat; "
            f"{char_share:.0%} of {chars} {params.char_ngram_size}-character windows of the normalised text repeat"
        )
        return Scored.ok(value, detail)


def _word_ngram_share(text: str, n: int) -> tuple[int, float]:
    """open-r1's measure: how many word n-grams, and the share that repeat an earlier one."""
    words = _WORD.findall(text)
    if len(words) < n:
        return 0, 0.0
    ngrams = list(zip(*(words[i:] for i in range(n))))
    return len(ngrams), 1.0 - len(set(ngrams)) / len(ngrams)


def _char_ngram_share(text: str, n: int) -> tuple[int, float]:
    """How many n-character windows the normalised text has, and the share that repeat an earlier one."""
    normalised = _SPACE.sub("", _NUMBER.sub("0", text))
    total = len(normalised) - n + 1
    if total <= 0:
        return 0, 0.0
    distinct = len({normalised[i : i + n] for i in range(total)})
    return total, 1.0 - distinct / total
