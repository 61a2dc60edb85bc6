"""Liveness, readiness and Prometheus metrics. Open without the token: probes and scrapers call them."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from rewardstack.services.gateway.deps import MetricsDep, PoolDep, RegistryDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(pool: PoolDep, registry: RegistryDep) -> JSONResponse:
    """Ready when at least one scorer worker is alive; 503 otherwise, so a load balancer skips us."""
    stats = pool.stats()
    body = {"status": "ready" if stats.alive else "not ready", "workers_alive": stats.alive,
            "workers": stats.size, "queued_calls": stats.queued_calls, "scorers": registry.names()}
    return JSONResponse(body, status_code=200 if stats.alive else 503)


@router.get("/metrics")
async def metrics(metrics: MetricsDep) -> Response:
    return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
