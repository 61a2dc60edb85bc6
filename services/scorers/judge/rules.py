"""The pool side of hybrid `math`: the rule verdict, plus the answer a judge may be shown.

Runs in the worker pool like `MathScorer` (pure, no network), and returns its verdict unchanged;
with `judge: true` an item the rules did not accept also carries its one final answer, which the
gateway side (`hybrid.py`) shows the judge. Which items qualify is the TinyV rule: the rules say
not equivalent or unscorable, there is a gold, and exactly one final answer was extracted.
Kept in its own module so the worker imports no HTTP client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import Field, field_validator

from rewardstack.services.scorers.math import MathParams, MathScorer
from rewardstack.services.scorers.math.extract import gold_text
from rewardstack.services.scorers.types import CpuScorer, Sample, Scored, Status

from .answers import judgeable_answer

__all__ = ["JudgeableMath", "JudgedMathParams", "RuleVerdict", "UnjudgedMathParams"]


class JudgedMathParams(MathParams):
    """`math`'s parameters, and whether a judge may overrule a rejection."""

    judge: bool = Field(
        default=False,
        description="Ask the `judge` when the rules say not equivalent or unscorable and one final answer was found; the "
        "judge sees only that answer, the gold and the prompt, and its verdict replaces the rule's (both in `detail`).",
    )
    judge_max_answer_chars: int = Field(
        default=300, ge=1, le=5000, description="Longer answers are not shown to the judge; the rule verdict stands."
    )


class UnjudgedMathParams(JudgedMathParams):
    """The same on a gateway without a judge: `judge: true` is refused (422) rather than ignored."""

    @field_validator("judge")
    @classmethod
    def _no_judge_here(cls, value: bool) -> bool:
        if value:
            raise ValueError("this gateway has no judge: set REWARDSTACK_JUDGE_URL and REWARDSTACK_JUDGE_MODEL")
        return value


@dataclass(frozen=True, slots=True)
class RuleVerdict(Scored):
    """A rule verdict the judge may overrule, with the answer to show it."""

    answer: str = ""


class JudgeableMath(CpuScorer):
    """`MathScorer`, marking the items a judge should see when `judge` is on."""

    name: ClassVar[str] = MathScorer.name
    version: ClassVar[int] = MathScorer.version
    Params: ClassVar[type[JudgedMathParams]] = JudgedMathParams

    def __call__(self, sample: Sample, params: Any) -> Scored:
        p = params if isinstance(params, JudgedMathParams) else JudgedMathParams.model_validate(params or {})
        rule = MathScorer()(sample, p)
        if not p.judge or not _doubtful(rule):
            return rule
        if gold_text(sample.reference) is None:
            return rule
        found = judgeable_answer(
            sample.completion, prompt=sample.prompt, answer_tag_only=p.answer_tag_only,
            last_number=p.last_number_fallback, last_math=p.last_math_fallback,
            think_prefilled=p.think_prefilled, multiple_answers=p.multiple_answers,
        )  # fmt: skip
        if found.answer is None:
            return rule
        if len(found.answer) > p.judge_max_answer_chars:
            return Scored(rule.value, rule.status, f"{rule.detail}; judge not asked: answer longer than {p.judge_max_answer_chars} characters")
        return RuleVerdict(rule.value, rule.status, rule.detail, answer=found.answer)


def _doubtful(rule: Scored) -> bool:
    """Whether the rules graded one answer and rejected it, or could not grade what they found.

    A 0 for anything else (no answer, an empty one, a hedge, an unclosed pre-filled `<think>`)
    stands: those are the policy's faults, not a form the rules failed to read. Read from the
    rule's own wording, so that the judge is never asked about an answer the rules did not grade;
    if that wording changes, the judge is asked less, never more (the hybrid tests then fail).
    """
    if rule.status is Status.UNSCORABLE:
        return True
    return rule.status is Status.OK and rule.value == 0.0 and rule.detail.startswith("incorrect (")
