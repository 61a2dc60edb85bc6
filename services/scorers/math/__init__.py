"""The `math` scorer: typed final-answer equivalence (extract -> guard -> parse -> compare).

Modules: `extract` (find the answer), `guards` (refuse what would hang sympy), `normalize`
(LaTeX clean-up), `parse` (text -> typed answer, `types`), `symbolic` (the only sympy user),
`compare` (equivalence by type), `scorer` (`MathScorer`, the gateway-facing callable).
"""

from .scorer import MathParams, MathScorer, judge_answer

__all__ = ["MathParams", "MathScorer", "judge_answer"]
