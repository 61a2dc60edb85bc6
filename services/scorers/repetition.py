"""The `repetition` scorer: an n-gram repetition penalty against degenerate, looping text.

The penalty of "Demystifying Long Chain-of-Thought Reasoning" (arXiv 2502.03373, appendix C.2) as
open-r1 implements it (`get_repetition_penalty_reward` in src/open_r1/rewards.py):
`(1 - unique n-grams / all n-grams) * max_penalty` over the lower-cased whitespace-split words.

One deliberate difference: Chinese, Japanese and Korean-ideograph characters count as one word
each. Text in those scripts has no spaces, so open-r1 sees a whole paragraph as a single word and
cannot notice it looping. Text without such characters gets exactly open-r1's value. (TRL's newer
version counts token ids; we see text, not the trainer's tokens.)
"""

from __future__ import annotations

import re

from pydantic import Field

from rewardstack.services.scorers.types import CpuScorer, Params, Sample, Scored

__all__ = ["RepetitionScorer"]

# One word: a single CJK ideograph or kana, or a run of anything else that is not space.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_WORD = re.compile(rf"[{_CJK}]|[^\s{_CJK}]+")


class RepetitionScorer(CpuScorer):
    """N-gram repetition penalty: `(1 - distinct n-grams / n-grams) * max_penalty`.

    Scale: `max_penalty` (every n-gram a repeat) to 0.0 (no n-gram repeated). A completion with
    fewer words than `ngram_size`, the empty one included, gets 0.0: nothing can repeat. Always
    scorable. Words are lower-cased, split on whitespace; each CJK ideograph or kana is a word.

    >>> score = RepetitionScorer()
    >>> score(Sample("the cat sat on the mat"), RepetitionScorer.Params()).value
    0.0
    >>> score(Sample("go go go go go"), RepetitionScorer.Params(ngram_size=2)).value
    -0.75
    """

    name = "repetition"
    version = 1

    class Params(Params):
        ngram_size: int = Field(default=3, ge=1, le=64, description="Words per n-gram.")
        max_penalty: float = Field(
            default=-1.0,
            le=0.0,
            ge=-1e6,
            allow_inf_nan=False,
            description="Value of a completion made only of repeats; must be <= 0.",
        )

    def __call__(self, sample: Sample, params: RepetitionScorer.Params) -> Scored:
        words = _WORD.findall(sample.completion.lower())
        n = params.ngram_size
        if len(words) < n:
            return Scored.ok(0.0, f"{len(words)} words, fewer than ngram_size {n}")
        ngrams = list(zip(*(words[i:] for i in range(n))))
        distinct = len(set(ngrams))
        repeated = 1.0 - distinct / len(ngrams)
        value = repeated * params.max_penalty + 0.0  # + 0.0 turns -0.0 into 0.0
        return Scored.ok(value, f"{len(ngrams) - distinct} of {len(ngrams)} {n}-grams repeat")
