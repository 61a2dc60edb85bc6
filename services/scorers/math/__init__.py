"""The `math` scorer: typed final-answer equivalence (extract -> guard -> parse -> compare).

Modules: `extract` (find the answer), `guards` (refuse what would hang sympy), `normalize`
(LaTeX repair and clean-up), `parse` (text -> typed answer, `types`), `symbolic` (the only sympy
user), `compare` (equivalence by type), `units` (which words may follow a number), `scorer`
(`MathScorer`, the gateway-facing callable; `judge_answer` for an already-extracted answer).
"""

from .scorer import MathParams, MathScorer, judge_answer

__all__ = ["MathParams", "MathScorer", "judge_answer"]
