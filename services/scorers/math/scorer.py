r"""The `math` scorer: is the completion's final answer equivalent to the gold answer?"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, ClassVar, Literal

from pydantic import Field

from rewardstack.services.scorers.types import CpuScorer, Params, Sample, Scored, prompt_prefills_think

from .compare import Tolerance, equivalent
from .extract import extract_answers, gold_text
from .guards import refusal
from .normalize import normalize
from .parse import ParseError, parse_answer
from .types import Answer, Seq

__all__ = ["MathParams", "MathScorer", "judge_answer"]



class MathParams(Params):
    """Where the answer may be, and how strictly decimals compare."""

    answer_tag_only: bool = Field(
        default=False, description="Count only an answer inside <answer>...</answer>; anything else scores 0."
    )
    last_number_fallback: bool = Field(
        default=False, description="With no boxed answer, <answer> block or final-answer phrase, take the last number."
    )
    last_math_fallback: bool = Field(
        default=False,
        description="With no boxed answer, <answer> block or final-answer phrase, take the last formula ($...$, \\[...\\]); "
        "Math-Verify's default. Off by default: an unmarked answer is the policy's to mark.",
    )
    multiple_answers: Literal["all_must_match", "last"] = Field(
        default="all_must_match",
        description="Several different boxed answers: 'all_must_match' scores 1 only if every one is right; 'last' "
        "grades the last.",
    )
    rel_tol: float = Field(
        default=1e-6,
        gt=0,
        le=0.1,
        description="The least relative agreement of a decimal answer with an exact gold; it must also be right to "
        "its own last written place (docs/math.md, 'Decimal policy').",
    )
    max_answer_chars: int = Field(default=1000, ge=16, le=20_000, description="Longer answers are unscorable.")
    decimal_comma: bool = Field(
        default=False,
        description="Read `3,5` and `0,111` as decimals (a locale that writes a decimal comma). `1,000` stays one "
        "thousand. Off: a comma is a list separator or a thousands separator.",
    )
    think_prefilled: bool | None = Field(
        default=None,
        description="The prompt pre-fills <think>, so a completion that never writes </think> has no answer. "
        "None: detected from the prompt (it ends with <think>).",
    )


class MathScorer(CpuScorer):
    r"""Final-answer equivalence to the gold answer, by typed comparison.

    Scale: 1.0 when the final answer (after any `<think>` block: the `\boxed{}`s, the `<answer>`
    block, a "final answer is" phrase, GSM8K's `#### N`, a completion that is only the answer, or
    optionally the last formula / number) is equivalent to `reference`; 0.0 when it is not, when no
    answer is found, when it is empty, when a pre-filled `<think>` never closes, or when the answer
    hedges: several different boxes (unless `multiple_answers="last"`), several `<answer>` blocks,
    "or the answer is". `unscorable` (no value) when the gold is missing or unparseable, or when an
    answer is refused by the guards (too long, nested too deep, a power tower, a value too big).

    >>> MathScorer()(Sample(r"so \boxed{\frac{1}{2}}", "0.5"), MathParams()).value
    1.0
    """

    name: ClassVar[str] = "math"
    version: ClassVar[int] = 2
    Params: ClassVar[type[MathParams]] = MathParams

    def __call__(self, sample: Sample, params: Any) -> Scored:
        p = _params(params)
        parsed = _gold(sample.reference, p)
        if isinstance(parsed, Scored):
            return parsed
        gold, gold_raw = parsed
        prefilled = p.think_prefilled
        if prefilled is None:
            prefilled = prompt_prefills_think(sample.prompt)
        found = extract_answers(
            sample.completion,
            answer_tag_only=p.answer_tag_only,
            last_number=p.last_number_fallback,
            last_math=p.last_math_fallback,
            think_prefilled=prefilled,
        )
        if not found.answers:
            return Scored.ok(0.0, f"no answer: {found.reason}")
        candidates = _distinct(found.answers)
        if p.multiple_answers == "last":
            candidates = candidates[-1:]
        elif len(candidates) > 1 and found.source == "boxed" and isinstance(gold, Seq) and len(gold.items) == len(candidates):
            # `\boxed{1}, \boxed{2}, \boxed{3}` for the gold `\{1,2,3\}`: one answer split over boxes.
            # Only when the gold is itself a list of that many items: a hedge on a single value stays wrong.
            candidates = [", ".join(f"{{{c}}}" for c in candidates)]
        verdicts: list[bool] = []
        if p.decimal_comma:
            candidates = [_decimal_commas(c) for c in candidates]
        for text in candidates:
            verdict = _grade(gold, gold_raw, text, p, f" ({found.source})")
            if isinstance(verdict, Scored):
                return verdict
            verdicts.append(verdict)
        shown = _short(candidates[-1])
        if len(candidates) > 1:
            if all(verdicts):
                return Scored.ok(1.0, f"correct: {len(candidates)} {found.source} answers, all equivalent to the gold")
            return Scored.ok(0.0, f"incorrect: {len(candidates)} different {found.source} answers, not all equivalent")
        if verdicts[0]:
            return Scored.ok(1.0, f"correct ({found.source}): {shown}")
        return Scored.ok(0.0, f"incorrect ({found.source}): {shown} vs gold {_short(gold_raw)}")


def judge_answer(reference: object, answer: str, params: Any = None) -> Scored:
    """One already-extracted answer against the gold, without looking for it in a completion.

    For equivalence suites that test the comparison alone (NeMo-Skills' `math_equal`, hendrycks'
    `is_equiv`); the scorer itself always goes through extraction.
    """
    p = _params(params)
    parsed = _gold(reference, p)
    if isinstance(parsed, Scored):
        return parsed
    gold, gold_raw = parsed
    if p.decimal_comma:
        answer = _decimal_commas(answer)
    verdict = _grade(gold, gold_raw, answer, p, "")
    if isinstance(verdict, Scored):
        return verdict
    return Scored.ok(1.0 if verdict else 0.0, f"{'correct' if verdict else 'incorrect'}: {_short(answer)}")


# `3,5`, `1000,99`, `0,111`: one comma followed by other than exactly three digits, or after a lone 0
_DECIMAL_COMMA = re.compile(r"(?<![\d,.])(\d+),(\d{1,2}|\d{4,})(?![\d,])|(?<![\d,.])0,(\d+)(?![\d,])")


def _decimal_commas(text: str) -> str:
    return _DECIMAL_COMMA.sub(lambda m: f"{m.group(1)}.{m.group(2)}" if m.group(1) else f"0.{m.group(3)}", text)


def _gold(reference: object, p: MathParams) -> tuple[Answer, str] | Scored:
    """The parsed gold and its text (decimal commas read when asked), or why the item is unscorable."""
    gold_raw = gold_text(reference)
    if gold_raw is None:
        return Scored.unscorable("no gold answer in `reference`")
    if p.decimal_comma:
        gold_raw = _decimal_commas(gold_raw)
    gold = _parse_gold(gold_raw, p.max_answer_chars)
    if isinstance(gold, str):
        return Scored.unscorable(gold)
    return gold, gold_raw


def _grade(gold: Answer, gold_raw: str, answer: str, p: MathParams, source: str) -> bool | Scored:
    """One answer against the gold: equivalent or not, 0.0 for an empty one, unscorable when refused."""
    if not answer.strip():
        return Scored.ok(0.0, f"empty answer{source}")
    why = refusal(answer, max_chars=p.max_answer_chars)
    if why:
        return Scored.unscorable(f"answer refused: {why}")
    return _judge(gold, gold_raw, answer, Tolerance(p.rel_tol))


def _params(params: Any) -> MathParams:
    if isinstance(params, MathParams):
        return params
    return MathParams.model_validate(params or {})


def _distinct(answers: tuple[str, ...]) -> list[str]:
    """Answers differing only in LaTeX spelling (`\\dfrac` vs `\\frac`) count once."""
    seen: dict[str, str] = {}
    for text in answers:
        seen.setdefault(normalize(text), text)
    return list(seen.values())


@lru_cache(maxsize=4096)
def _parse_gold(text: str, max_chars: int) -> Answer | str:
    """The parsed gold, or why it cannot be used. Cached: a GRPO group shares one gold."""
    why = refusal(text, max_chars=max(max_chars, 20_000))
    if why:
        return f"gold refused: {why}"
    try:
        return parse_answer(text)
    except (ParseError, ValueError) as exc:
        return f"gold unparseable: {exc}"


def _judge(gold: Answer, gold_raw: str, text: str, tol: Tolerance) -> bool | Scored:
    """Parse and compare one answer. An answer sympy cannot read is wrong only if its text differs from the gold's."""
    try:
        answer = parse_answer(text)
    except (ParseError, ValueError):
        return normalize(text).replace(" ", "") == normalize(gold_raw).replace(" ", "")
    try:
        return equivalent(gold, answer, tol)
    except MemoryError:
        raise
    except Exception as exc:  # sympy internals on a model's answer: neither a verdict nor our outage
        return Scored.unscorable(f"could not compare {_short(text)}: {type(exc).__name__}: {str(exc)[:80]}")


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
