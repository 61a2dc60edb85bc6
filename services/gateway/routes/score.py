"""`POST /v1/score`: one round trip per batch of completions."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from rewardstack.services.contract import ErrorBody, ScoreBatch, ScoreBatchResult
from rewardstack.services.gateway import scoring
from rewardstack.services.gateway.body import JsonBodyRoute
from rewardstack.services.gateway.deps import MetricsDep, PoolDep, RegistryDep, SettingsDep
from rewardstack.services.gateway.limits import require_token

router = APIRouter(prefix="/v1", tags=["score"], dependencies=[Depends(require_token)], route_class=JsonBodyRoute)


@router.post(
    "/score",
    response_model=ScoreBatchResult,
    responses={400: {"model": ErrorBody}, 401: {"model": ErrorBody}, 413: {"model": ErrorBody}, 422: {"model": ErrorBody}, 503: {"model": ErrorBody}},
)
async def score(
    batch: ScoreBatch, registry: RegistryDep, settings: SettingsDep, pool: PoolDep, metrics: MetricsDep
) -> ScoreBatchResult:
    """Score every item with every requested scorer; results keep request order.

    `reward` is the weighted sum of the components when every weighted component is `ok`;
    otherwise it is null and `status` says why (`unscorable`, `timeout`, `error`).
    """
    return await scoring.score(batch, registry, settings, pool, metrics)
