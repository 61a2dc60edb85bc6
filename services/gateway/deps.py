"""FastAPI dependencies as `Annotated` aliases: routes read shared objects from `app.state` through these."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from rewardstack.services.gateway.metrics import GatewayMetrics
from rewardstack.services.scorers.registry import ScorerRegistry
from rewardstack.services.settings import Settings
from rewardstack.services.workers.pool import ScorerPool


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _registry(request: Request) -> ScorerRegistry:
    return request.app.state.registry


def _pool(request: Request) -> ScorerPool:
    return request.app.state.pool


def _metrics(request: Request) -> GatewayMetrics:
    return request.app.state.metrics


SettingsDep = Annotated[Settings, Depends(_settings)]
RegistryDep = Annotated[ScorerRegistry, Depends(_registry)]
PoolDep = Annotated[ScorerPool, Depends(_pool)]
MetricsDep = Annotated[GatewayMetrics, Depends(_metrics)]
