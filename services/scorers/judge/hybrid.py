"""Hybrid `math`: the rules first, the judge only for what they reject (the TinyV pattern).

Rule-accepted items never reach the judge; items the rules reject or cannot score, with a gold
and one extracted final answer, are asked as a `verify` question. The judge's verdict replaces
the rule's; `detail` keeps both. A judge that fails or cannot be read makes the item `error`,
`timeout` or `unscorable`, never the rule's 0: the rule's rejection is exactly what was in doubt.

Anti-hacking: the judge is shown the extracted answer, the gold and the prompt (dataset text),
never the rest of the completion, so reasoning text cannot address the judge; a long answer
(`judge_max_answer_chars`) is not shown at all, and hedging (several different answers) is
never judged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from rewardstack.services.scorers.math import MathScorer
from rewardstack.services.scorers.math.extract import gold_text
from rewardstack.services.scorers.pooled import PooledScorer
from rewardstack.services.scorers.types import BatchScorer, CpuScorer, Params, Sample, Scored, ScoringContext
from rewardstack.services.workers.pool import ScorerPool

from .rules import JudgeableMath, JudgedMathParams, RuleVerdict, UnjudgedMathParams
from .scorer import JudgeScorer, Question

__all__ = ["HybridMathScorer", "pooled_with_judge"]


class HybridMathScorer(BatchScorer):
    """`math` as served by the gateway: `MathScorer` in the pool, and the judge when asked for."""

    def __init__(self, rules: BatchScorer, judge: JudgeScorer | None) -> None:
        self.rules = rules
        self.judge = judge

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.rules.name

    @property
    def version(self) -> int:  # type: ignore[override]
        return self.rules.version

    @property
    def Params(self) -> type[Params]:  # type: ignore[override]  # noqa: N802 - mirrors the class attribute
        return JudgedMathParams if self.judge is not None else UnjudgedMathParams

    @property
    def description(self) -> str:
        return self.rules.description

    async def score_batch(self, samples: Sequence[Sample], params: Params, context: ScoringContext) -> list[Scored]:
        ruled = await self.rules.score_batch(samples, params, context)
        doubted = [i for i, r in enumerate(ruled) if isinstance(r, RuleVerdict)]
        if not doubted or self.judge is None:
            return [_plain(r) for r in ruled]
        questions = [Question(samples[i].prompt, gold_text(samples[i].reference) or "", ruled[i].answer) for i in doubted]  # type: ignore[attr-defined]
        judged = dict(zip(doubted, await self.judge.verify(questions, context), strict=True))
        return [_combine(r, judged[i]) if i in judged else _plain(r) for i, r in enumerate(ruled)]


def _plain(scored: Scored) -> Scored:
    """A `Scored` without the pool-side answer (which must not leave the gateway)."""
    if isinstance(scored, RuleVerdict):
        return Scored(scored.value, scored.status, scored.detail, scored.latency_ms)
    return scored


def _combine(rule: Scored, judge: Scored) -> Scored:
    """The judge's outcome, with the rule's in the detail, and both latencies."""
    detail = f"rule: {rule.detail}; {judge.detail if judge.detail.startswith('judge') else 'judge: ' + judge.detail}"
    return replace(_plain(judge), detail=detail, latency_ms=rule.latency_ms + judge.latency_ms)


def pooled_with_judge(scorer: CpuScorer, pool: ScorerPool, judge: JudgeScorer | None) -> BatchScorer:
    """How the gateway serves a CPU scorer: in the pool, and `math` with its judge fallback."""
    if isinstance(scorer, MathScorer):
        return HybridMathScorer(PooledScorer(JudgeableMath(), pool), judge)
    return PooledScorer(scorer, pool)
