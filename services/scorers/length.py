r"""The `length` scorer: DAPO's soft overlong punishment, or cosine length scaling by correctness.

`overlong` is DAPO's equation 13 (arXiv 2503.14476), as TRL's `get_soft_overlong_punishment`:
0 up to `max_length - cache_length`, then a linear ramp down to -1 at `max_length`, -1 beyond.

`cosine` is the cosine length scaling of "Demystifying Long Chain-of-Thought Reasoning" (arXiv
2502.03373), as open-r1's `get_cosine_scaled_reward`: short correct completions earn most, short
wrong ones lose most. One deliberate difference: open-r1 feeds `length / max_len` into the cosine
unclamped, so past `max_len` the reward swings back up (a correct completion twice as long as
`max_len` earns the top value again); we clamp at `max_length`. And where open-r1 runs Math-Verify
itself, and rewards 1.0 when the gold cannot be parsed, we take correctness from the caller and
refuse to guess: no correctness signal makes the item `unscorable`.

Length is measured in characters, or in tokens: the caller's exact count when the item carries
`metadata.completion_tokens` (the trainer knows it), else an upper bound from
`token_estimate.estimate_tokens` (one token per digit, per character of an unspaced script, per
whitespace character; see that module), so a policy cannot fit more real tokens under the limit
than the estimate admits.

Padding cannot buy a wrong answer a milder cosine penalty: the cosine rewards a wrong completion
more the longer it is (it "kept thinking"), so for a wrong one the length is the smaller of the
length and the length of its content (invisible characters dropped, each whitespace run one space,
a character repeated four or more times once). A correct completion is measured in full: padding
only costs it. Loops of words are the `repetition` scorer's job.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import regex
from pydantic import Field, model_validator

from rewardstack.services.scorers.invisible import visible
from rewardstack.services.scorers.token_estimate import estimate_tokens
from rewardstack.services.scorers.types import CpuScorer, Params, Sample, Scored

__all__ = ["LengthScorer"]

_SPACE_RUN = regex.compile(r"\s+", regex.V1)
_CHARACTER_RUN = regex.compile(r"(.)\1{3,}", regex.V1 | regex.DOTALL)


class LengthScorer(CpuScorer):
    r"""Length shaping: DAPO overlong punishment (`mode=overlong`) or cosine scaling (`mode=cosine`).

    Scale, `overlong`: 0.0 at or below `max_length - cache_length`, falling linearly to -1.0 at
    `max_length`, -1.0 beyond; never positive, always scorable. `cosine`: a correct completion
    earns from `max_value_correct` (length 0) down to `min_value_correct` (length `max_length` or
    more); a wrong one from `min_value_wrong` (length 0) up to `max_value_wrong`, measured without
    its padding (whitespace runs, invisible characters, repeated characters). Correctness comes
    from `metadata.correct` (bool, or 0/1) of the item, else `params.correct`; with neither the
    item is `unscorable`. Also `unscorable`: a `metadata.completion_tokens` that is not a
    non-negative integer. Without that count, tokens are an upper-bound estimate.

    >>> score = LengthScorer()
    >>> score(Sample("x" * 90), LengthScorer.Params(unit="chars", max_length=100, cache_length=20)).value
    -0.5
    >>> cosine = LengthScorer.Params(mode="cosine", unit="chars", max_length=100)
    >>> score(Sample("", metadata={"correct": True}), cosine).value
    1.0
    >>> score(Sample("x" * 100), cosine).status.value
    'unscorable'
    """

    name = "length"
    version = 2

    class Params(Params):
        mode: Literal["overlong", "cosine"] = Field(
            default="overlong",
            description="`overlong`: DAPO soft overlong punishment; `cosine`: cosine length scaling by correctness.",
        )
        unit: Literal["tokens", "chars"] = Field(
            default="tokens",
            description=(
                "`tokens`: metadata.completion_tokens when given, else an upper-bound estimate (one token per digit, "
                "per character of an unspaced script, per whitespace character, ceil(bytes / 3) per word); "
                "`chars`: Unicode code points of the completion."
            ),
        )
        max_length: int = Field(
            default=20480,
            ge=1,
            description=(
                "L_max: overlong reaches -1 here; cosine reaches its far end here. "
                "Set to the trainer's max completion length."
            ),
        )
        cache_length: int | None = Field(
            default=None,
            ge=0,
            description=(
                "L_cache (overlong): the punishment ramps from 0 to -1 over the last cache_length units before "
                "max_length; null: max_length // 5, DAPO's ratio (4096 of 20480)."
            ),
        )
        min_value_wrong: float = Field(
            default=-1.0, allow_inf_nan=False, description="Cosine: a wrong completion of length 0."
        )
        max_value_wrong: float = Field(
            default=-0.5, allow_inf_nan=False, description="Cosine: a wrong completion of max_length."
        )
        min_value_correct: float = Field(
            default=0.5, allow_inf_nan=False, description="Cosine: a correct completion of max_length."
        )
        max_value_correct: float = Field(
            default=1.0, allow_inf_nan=False, description="Cosine: a correct completion of length 0."
        )
        correct: bool | None = Field(
            default=None,
            description="Cosine: correctness for items whose metadata has no `correct`; null: such items are unscorable.",
        )

        @model_validator(mode="after")
        def _ordered(self) -> LengthScorer.Params:
            if self.cache_length is not None and self.cache_length > self.max_length:
                raise ValueError(f"cache_length {self.cache_length} exceeds max_length {self.max_length}")
            if self.min_value_wrong > self.max_value_wrong:
                raise ValueError("min_value_wrong must not exceed max_value_wrong")
            if self.min_value_correct > self.max_value_correct:
                raise ValueError("min_value_correct must not exceed max_value_correct")
            return self

    def __call__(self, sample: Sample, params: LengthScorer.Params) -> Scored:
        length = _length(sample, params.unit)
        if isinstance(length, str):
            return Scored.unscorable(length)
        if params.mode == "overlong":
            return Scored.ok(_overlong(length, params), f"length {length} {params.unit}")
        correct = _correctness(sample.metadata.get("correct"), params.correct)
        if isinstance(correct, str):
            return Scored.unscorable(correct)
        if correct:
            return Scored.ok(_cosine(length, True, params), f"length {length} {params.unit}, correct")
        content = _measure(_unpadded(sample.completion), params.unit)
        detail = f"length {length} {params.unit}, wrong" + (f", {content} without padding" if content < length else "")
        return Scored.ok(_cosine(min(length, content), False, params), detail)


def _length(sample: Sample, unit: str) -> int | str:
    """The completion's length in `unit`, or why it cannot be measured."""
    given: Any = sample.metadata.get("completion_tokens")
    if unit == "chars" or given is None:
        return _measure(sample.completion, unit)
    if isinstance(given, bool) or not isinstance(given, int) or given < 0:
        return f"metadata.completion_tokens must be a non-negative integer, got {given!r}"
    return given


def _measure(text: str, unit: str) -> int:
    """Code points, or the upper-bound token estimate."""
    return len(text) if unit == "chars" else estimate_tokens(text)


def _unpadded(text: str) -> str:
    """The completion's content: invisible characters dropped, whitespace runs one space, long character runs one."""
    return _CHARACTER_RUN.sub(r"\1", _SPACE_RUN.sub(" ", visible(text))).strip()


def _correctness(given: Any, fallback: bool | None) -> bool | str:
    """The item's correctness, or why there is none."""
    if given is None:
        if fallback is None:
            return "cosine mode needs correctness: metadata.correct (true/false) or params.correct"
        return fallback
    if isinstance(given, bool):
        return given
    if isinstance(given, (int, float)) and given in (0, 1):
        return bool(given)
    return f"metadata.correct must be true/false or 0/1, got {given!r}"


def _overlong(length: int, params: LengthScorer.Params) -> float:
    """DAPO eq. 13."""
    cache = params.max_length // 5 if params.cache_length is None else params.cache_length
    free = params.max_length - cache
    if length <= free:
        return 0.0
    if length <= params.max_length:
        return (free - length) / cache
    return -1.0


def _cosine(length: int, correct: bool, params: LengthScorer.Params) -> float:
    """Cosine from the length-0 value to the max_length value, clamped beyond max_length."""
    if correct:
        start, end = params.max_value_correct, params.min_value_correct
    else:
        start, end = params.min_value_wrong, params.max_value_wrong
    progress = min(length / params.max_length, 1.0)
    return end + 0.5 * (start - end) * (1.0 + math.cos(progress * math.pi))
