"""Score a batch: check limits, resolve scorers and params, run every scorer on every item, combine.

Kept apart from the HTTP route so other front doors (OpenRLHF's `/get_reward`) share it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from rewardstack.services.contract import ComponentResult, ItemResult, ScoreBatch, ScoreBatchResult, ScoreItem, Status
from rewardstack.services.gateway.errors import InvalidRequest
from rewardstack.services.web import RequestTooLarge
from rewardstack.services.gateway.metrics import GatewayMetrics
from rewardstack.services.scorers.registry import ScorerRegistry
from rewardstack.services.scorers.types import BatchScorer, Params, Sample, Scored, ScoringContext
from rewardstack.services.settings import Settings
from rewardstack.services.workers.pool import PoolSaturated, ScorerPool

log = logging.getLogger(__name__)

# When an item is not ok, the worst weighted component names its status.
_SEVERITY = {Status.OK: 0, Status.UNSCORABLE: 1, Status.TIMEOUT: 2, Status.ERROR: 3}


def check_limits(batch: ScoreBatch, settings: Settings) -> None:
    if len(batch.items) > settings.max_items_per_request:
        raise RequestTooLarge("items", f"{len(batch.items)} items; the limit is {settings.max_items_per_request} per request")
    for index, item in enumerate(batch.items):
        if len(item.completion) > settings.max_completion_chars:
            raise RequestTooLarge(
                f"items[{index}].completion",
                f"{len(item.completion)} characters; the limit is {settings.max_completion_chars}",
            )


def resolve_scorers(batch: ScoreBatch, registry: ScorerRegistry) -> list[tuple[BatchScorer, float, Params]]:
    resolved = []
    for name, spec in batch.scorers.items():
        scorer = registry.get(name)
        try:
            params = scorer.Params.model_validate(spec.params)
        except ValidationError as exc:
            first, *rest = exc.errors()
            field = f"scorers.{name}.params.{'.'.join(str(p) for p in first['loc'])}".rstrip(".")
            more = "".join(f"; scorers.{name}.params.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in rest)
            raise InvalidRequest(field, first["msg"] + more) from None
        resolved.append((scorer, spec.weight, params))
    if all(weight == 0 for _, weight, _ in resolved):
        raise InvalidRequest("scorers", "every scorer has weight 0; give at least one a non-zero weight")
    return resolved


def prompt_text(prompt: str | list[dict[str, Any]] | None) -> str | None:
    """Chat messages flattened to their contents, one per paragraph."""
    if prompt is None or isinstance(prompt, str):
        return prompt
    return "\n\n".join(str(message.get("content", "")) for message in prompt)


def to_sample(item: ScoreItem) -> Sample:
    return Sample(
        completion=item.completion,
        reference=item.reference,
        prompt=prompt_text(item.prompt),
        task=item.task,
        metadata=item.metadata,
    )


async def _run_scorer(scorer: BatchScorer, samples: Sequence[Sample], params: Params, context: ScoringContext) -> list[Scored]:
    """One scorer over the batch; an unexpected failure marks every item `error`, never a number."""
    try:
        results = await scorer.score_batch(samples, params, context)
    except PoolSaturated:
        raise
    except Exception as exc:
        log.exception("scorer %s failed on a batch", scorer.name)
        return [Scored.error(f"scorer {scorer.name} failed: {type(exc).__name__}: {exc}")] * len(samples)
    if len(results) != len(samples):
        return [Scored.error(f"scorer {scorer.name} returned {len(results)} results for {len(samples)} items")] * len(samples)
    return results


def combine(components: dict[str, Scored], weights: dict[str, float]) -> tuple[float | None, Status]:
    """The weighted sum when every weighted component is ok; else None and the worst status."""
    weighted = [name for name, weight in weights.items() if weight != 0]
    worst = max((components[name].status for name in weighted), key=_SEVERITY.__getitem__)
    if worst is not Status.OK:
        return None, worst
    return sum(weights[name] * components[name].value for name in weighted), Status.OK  # type: ignore[operator]


async def score(
    batch: ScoreBatch, registry: ScorerRegistry, settings: Settings, pool: ScorerPool, metrics: GatewayMetrics
) -> ScoreBatchResult:
    check_limits(batch, settings)
    resolved = resolve_scorers(batch, registry)
    samples = [to_sample(item) for item in batch.items]
    loop = asyncio.get_running_loop()
    context = ScoringContext(
        task_deadline_s=settings.task_deadline_s,
        batch_deadline=None if batch.deadline_s is None else loop.time() + batch.deadline_s,
        owner=pool.new_owner(),
    )
    per_scorer = await asyncio.gather(*(_run_scorer(s, samples, p, context) for s, _, p in resolved))
    weights = {scorer.name: weight for scorer, weight, _ in resolved}
    results = []
    for index, item in enumerate(batch.items):
        components = {scorer.name: per_scorer[k][index] for k, (scorer, _, _) in enumerate(resolved)}
        reward, status = combine(components, weights)
        results.append(
            ItemResult(
                id=item.id if item.id is not None else str(index),
                reward=reward,
                status=status,
                components={
                    name: ComponentResult(value=c.value, status=c.status, detail=c.detail, latency_ms=round(c.latency_ms, 3))
                    for name, c in components.items()
                },
            )
        )
        for name, c in components.items():
            metrics.scorer_latency.labels(name).observe(c.latency_ms / 1000)
            metrics.scorer_outcomes.labels(name, c.status.value).inc()
        metrics.items.labels(status.value).inc()
    metrics.requests.inc()
    return ScoreBatchResult(results=results, versions={s.name: s.versioned_name for s, _, _ in resolved})
