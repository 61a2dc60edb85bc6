"""`create_app(settings)`: the gateway's FastAPI app. Nothing heavy happens at import.

The lifespan opens, and closes in reverse order, everything the routes share: the worker pool,
the scorers that call other services (sandbox, models), and the registry over all of them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from rewardstack.services.gateway.errors import install_error_handlers
from rewardstack.services.gateway.limits import BodySizeLimit
from rewardstack.services.gateway.metrics import GatewayMetrics
from rewardstack.services.gateway.routes import health, openrlhf, score, scorers
from rewardstack.services.scorers.builtin import SERVICE_SCORER_NAMES, builtin_cpu_scorers
from rewardstack.services.scorers.code import open_code_scorer
from rewardstack.services.scorers.judge.hybrid import pooled_with_judge
from rewardstack.services.scorers.judge.scorer import open_judge_scorer
from rewardstack.services.scorers.neural import open_neural_scorers
from rewardstack.services.scorers.registry import ScorerRegistry
from rewardstack.services.scorers.types import CpuScorer
from rewardstack.services.settings import Settings
from rewardstack.services.workers.pool import ScorerPool

log = logging.getLogger(__name__)

WORKER_PRELOAD = ["rewardstack.services.scorers.preload"]


def create_app(settings: Settings | None = None, *, extra_cpu_scorers: Sequence[CpuScorer] = ()) -> FastAPI:
    """Build the gateway. `extra_cpu_scorers` adds your own pure scorers next to the built-in ones."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.binds_beyond_loopback and settings.api_token is None:
            log.warning("serving on %s without REWARDSTACK_API_TOKEN: anyone who can reach it can use it", settings.host)
        known = [s.name for s in builtin_cpu_scorers()] + list(SERVICE_SCORER_NAMES) + [s.name for s in extra_cpu_scorers]
        unknown = (settings.enabled_scorer_names or frozenset()) - set(known)
        if unknown:  # a typo must not quietly serve less than asked
            raise ValueError(f"REWARDSTACK_ENABLED_SCORERS names unknown scorers {sorted(unknown)}; known: {', '.join(known)}")
        async with AsyncExitStack() as stack:
            pool = await stack.enter_async_context(
                ScorerPool(
                    settings.scorer_workers,
                    max_tasks_per_worker=settings.worker_max_tasks,
                    max_memory_mb=settings.worker_max_memory_mb,
                    max_queued_calls=settings.max_queued_calls,
                    preload=WORKER_PRELOAD + sorted({type(s).__module__ for s in extra_cpu_scorers}),
                )
            )
            cpu_scorers = [s for s in builtin_cpu_scorers() if settings.serves(s.name)] + list(extra_cpu_scorers)
            judge = await stack.enter_async_context(open_judge_scorer(settings))  # None without REWARDSTACK_JUDGE_URL
            registry = ScorerRegistry(pooled_with_judge(s, pool, judge) for s in cpu_scorers)
            if judge is not None and settings.serves("judge"):
                registry.register(judge)
            if settings.serves("code"):
                registry.register(await stack.enter_async_context(open_code_scorer(settings)))
            if settings.serves("helpfulness") or settings.serves("safety"):
                for scorer in await stack.enter_async_context(open_neural_scorers(settings)):
                    if settings.serves(scorer.name):
                        registry.register(scorer)
            app.state.pool, app.state.registry = pool, registry
            yield
            # leaving the stack closes the service scorers' clients, then kills the workers

    app = FastAPI(
        title="rewardstack gateway",
        version="0.1.0",
        summary="Rewards for RL of reasoning models: math, code, format, language, length, repetition, neural.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = GatewayMetrics(lambda: app.state.pool.stats() if hasattr(app.state, "pool") else None)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_body_bytes=settings.max_body_bytes, setting="REWARDSTACK_MAX_BODY_BYTES")
    for router in (score.router, scorers.router, health.router, openrlhf.router):
        app.include_router(router)
    return app
