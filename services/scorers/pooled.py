"""`PooledScorer`: runs a pure `CpuScorer` for a batch in the killable worker pool.

Items are sent in small jobs (one IPC round trip for several items) while every call keeps its
own deadline. Pool failures become statuses, never numbers: a killed call is `timeout`, a crash
or a scorer exception is `error`, a MemoryError under the worker's limit is `unscorable`.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from rewardstack.services.scorers.types import BatchScorer, CpuScorer, Params, Sample, Scored, ScoringContext
from rewardstack.services.workers.pool import (
    Call,
    PoolClosed,
    ScorerPool,
    TaskFailed,
    TaskTimeout,
    WorkerCrashed,
    WorkerOutOfMemory,
)

MAX_CALLS_PER_JOB = 16


def score_in_worker(scorer: CpuScorer, sample: Sample, params: Params) -> Scored:
    """Runs inside the worker: one scorer call, timed."""
    started = time.perf_counter()
    scored = scorer(sample, params)
    return replace(scored, latency_ms=(time.perf_counter() - started) * 1000)


def _pool_failure(exc: BaseException, deadline_s: float) -> Scored:
    if isinstance(exc, TaskTimeout):
        return replace(Scored.timeout(str(exc)), latency_ms=deadline_s * 1000)
    if isinstance(exc, WorkerOutOfMemory):
        return Scored.unscorable("the scorer ran out of memory on this input")
    if isinstance(exc, TaskFailed):
        return Scored.error(f"scorer raised {exc}")
    if isinstance(exc, (WorkerCrashed, PoolClosed)):
        return Scored.error(str(exc))
    return Scored.error(f"{type(exc).__name__}: {exc}")


def _silence(future: asyncio.Future[Any]) -> None:
    """Retrieve an abandoned future's exception so asyncio does not log it as unhandled."""
    if not future.cancelled():
        future.exception()


class PooledScorer(BatchScorer):
    """Adapts a `CpuScorer` to the gateway's batch interface, running it in `pool`."""

    def __init__(self, scorer: CpuScorer, pool: ScorerPool) -> None:
        self.scorer = scorer
        self.pool = pool

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.scorer.name

    @property
    def version(self) -> int:  # type: ignore[override]
        return self.scorer.version

    @property
    def Params(self) -> type[Params]:  # type: ignore[override]  # noqa: N802 - mirrors the class attribute
        return self.scorer.Params

    @property
    def description(self) -> str:
        return (type(self.scorer).__doc__ or "").strip()

    async def score_batch(self, samples: Sequence[Sample], params: Params, context: ScoringContext) -> list[Scored]:
        deadline_s = context.task_deadline_s
        calls = [Call(score_in_worker, (self.scorer, sample, params), deadline_s) for sample in samples]
        # Small jobs: few IPC round trips, yet enough jobs to keep every worker busy to the end.
        per_job = max(1, min(MAX_CALLS_PER_JOB, math.ceil(len(calls) / (2 * self.pool.size))))
        self.pool.check_capacity(len(calls))
        futures: list[asyncio.Future[Any]] = []
        for start in range(0, len(calls), per_job):
            futures += self.pool.submit(
                calls[start : start + per_job], owner=context.owner, start_by=context.batch_deadline
            )
        remaining = None
        if context.batch_deadline is not None:
            remaining = max(0.0, context.batch_deadline - asyncio.get_running_loop().time())
        if futures:
            await asyncio.wait(futures, timeout=remaining)
        results: list[Scored] = []
        for future in futures:
            if not future.done():
                future.add_done_callback(_silence)
                results.append(Scored.timeout("the batch deadline passed before this item was scored"))
            elif (exc := future.exception()) is not None:
                results.append(_pool_failure(exc, deadline_s))
            else:
                results.append(future.result())
        return results
