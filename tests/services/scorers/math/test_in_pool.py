"""The math scorer inside the real killable pool: pathological answers come back `unscorable` from
the guards, long before the deadline, with no worker killed, and ordinary items alongside are graded."""

from __future__ import annotations

import asyncio

from rewardstack.services.scorers.math import MathParams, MathScorer
from rewardstack.services.scorers.types import Sample, Status
from rewardstack.services.workers.pool import Call, ScorerPool

PATHOLOGICAL = [
    r"\boxed{9^{9^{9^9}}}",
    r"\boxed{(10^8)!}",
    "\\boxed{" + "9" * 100_000 + "}",
    "\\boxed{" + "{" * 5000 + "1" + "}" * 5000 + "}",
    r"\boxed{2^{2^{2^{2^{2^2}}}}}",
]


def test_pathological_inputs_are_unscorable_without_a_kill() -> None:
    async def main() -> None:
        async with ScorerPool(1) as pool:
            scorer, params = MathScorer(), MathParams()
            calls = [Call(scorer, (Sample(c, "1"), params), 10.0) for c in PATHOLOGICAL]
            calls.append(Call(scorer, (Sample(r"so \boxed{\frac{1}{2}}", "0.5"), params), 10.0))
            results = await asyncio.gather(*pool.submit(calls))
            assert [r.status for r in results[:-1]] == [Status.UNSCORABLE] * len(PATHOLOGICAL)
            assert all("refused" in r.detail for r in results[:-1])
            assert results[-1].value == 1.0
            assert pool.stats().timeouts == 0 and pool.stats().restarts == 0

    asyncio.run(main())
