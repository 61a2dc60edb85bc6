"""The sandbox HTTP service: `create_sandbox_app(settings)`.

Stateless apart from warm executors and a cache, so replicas scale behind a load balancer.
Two kinds of failure, as in the gateway: the program's (wrong answer, time limit, ...) are a 200
with a verdict; the request's or ours are HTTP errors with a stable `code` and a `detail`:
422 invalid request (the field named), 413 body too large, 429 queue full (`Retry-After`),
503 not ready. An executor failure during a test is the verdict `sandbox_error` in a 200, so the
other tests' verdicts still arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import TypeVar

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from rewardstack.sandbox.executors import ExecutorFailed, ExecutorPool, PoolSaturated
from rewardstack.sandbox.metrics import SandboxMetrics
from rewardstack.sandbox.models import ErrorBody, JudgeRequest, JudgeResult, LimitsInfo, RunRequest, RunResult
from rewardstack.sandbox.runner import InvalidRequest, Runner
from rewardstack.sandbox.settings import SandboxSettings
from rewardstack.services.web import (
    BodySizeLimit,
    RequestTooLarge,
    bearer_token_check,
    error_response,
    install_common_error_handlers,
)


log = logging.getLogger(__name__)
T = TypeVar("T")


require_token = bearer_token_check("REWARDSTACK_SANDBOX_API_TOKEN")


def _check_sizes(settings: SandboxSettings, code: str, stdins: list[str], tests: int) -> None:
    if len(code) > settings.max_code_chars:
        raise RequestTooLarge("code", f"{len(code)} characters; at most {settings.max_code_chars}")
    if tests > settings.max_tests:
        raise RequestTooLarge("tests", f"{tests} tests; at most {settings.max_tests}")
    for index, stdin in enumerate(stdins):
        size = len(stdin.encode())
        if size > settings.max_stdin_bytes:
            where = "stdin" if tests == 0 else f"tests[{index}].input"
            raise RequestTooLarge(where, f"{size} bytes; at most {settings.max_stdin_bytes}")


DISCONNECT_POLL_S = 0.2


async def _unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Await `work`, but cancel it as soon as the caller goes away: its runs stop at once and
    their slots are reused (the executors are not restarted)."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
            if done:
                return task.result()
            if await request.is_disconnected():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                raise ClientDisconnected()
    finally:
        if not task.done():
            task.cancel()


class ClientDisconnected(Exception):
    """The caller closed the connection before the answer; nobody reads the reply."""


def _routes() -> APIRouter:
    router = APIRouter()

    @router.post("/v1/run", response_model=RunResult, responses={422: {"model": ErrorBody}, 429: {"model": ErrorBody}},
                 tags=["sandbox"], dependencies=[Depends(require_token)])
    async def run(body: RunRequest, request: Request) -> RunResult:
        """Run one program on one stdin; report how it ended and what it printed."""
        _check_sizes(request.app.state.settings, body.code, [body.stdin], 0)
        return await _unless_disconnected(request, request.app.state.runner.run(body))

    @router.post("/v1/judge", response_model=JudgeResult, responses={422: {"model": ErrorBody}, 429: {"model": ErrorBody}},
                 tags=["sandbox"], dependencies=[Depends(require_token)])
    async def judge(body: JudgeRequest, request: Request) -> JudgeResult:
        """Judge one program on many tests, compiled once; one verdict per test and overall."""
        stdins = [t.input for t in body.tests if hasattr(t, "input")]
        _check_sizes(request.app.state.settings, body.code, stdins, len(body.tests))
        return await _unless_disconnected(request, request.app.state.runner.judge(body))

    @router.get("/v1/limits", response_model=LimitsInfo, tags=["sandbox"], dependencies=[Depends(require_token)])
    async def limits(request: Request) -> LimitsInfo:
        """Defaults and ceilings of the per-run limits, and the slots: what a caller needs to
        derive its own deadline for a request (the gateway's `code` scorer does)."""
        s: SandboxSettings = request.app.state.settings
        return LimitsInfo(slots=s.slots, default_cpu_s=s.default_cpu_s, default_wall_s=s.default_wall_s,
                          default_memory_mb=s.default_memory_mb, max_cpu_s=s.max_cpu_s, max_wall_s=s.max_wall_s,
                          max_memory_mb=s.max_memory_mb, compile_cpu_s=s.compile_cpu_s, compile_wall_s=s.compile_wall_s,
                          max_queued_runs=s.max_queued_runs)

    @router.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @router.get("/readyz", tags=["health"])
    async def readyz(request: Request) -> JSONResponse:
        """Readiness: every executor slot is up (503 while starting or restarting)."""
        pool: ExecutorPool = request.app.state.pool
        body = {"slots": pool.settings.slots, "alive": pool.alive, "waiting": pool.waiting,
                "seccomp": pool.seccomp, "backend": pool.settings.backend, "cgroup": pool.cgroup_version}
        ready = pool.started and pool.alive == pool.settings.slots
        return JSONResponse(status_code=200 if ready else 503, content=dict(body, status="ready" if ready else "not_ready"))

    @router.get("/metrics", tags=["health"])
    async def metrics(request: Request) -> PlainTextResponse:
        m: SandboxMetrics = request.app.state.metrics
        pool: ExecutorPool = request.app.state.pool
        m.waiting.set(pool.waiting)
        m.running.set(pool.running)
        m.slots_alive.set(pool.alive)
        return PlainTextResponse(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)

    return router


def _install_error_handlers(app: FastAPI) -> None:
    install_common_error_handlers(app)

    async def invalid_request(request: Request, exc: InvalidRequest) -> JSONResponse:
        return error_response(422, "invalid_request", str(exc))

    async def saturated(request: Request, exc: PoolSaturated) -> JSONResponse:
        request.app.state.metrics.rejected.inc()
        return error_response(429, "overloaded", f"{exc}; retry after {exc.retry_after_s} s or on another replica",
                      {"Retry-After": str(exc.retry_after_s)})

    async def executor_failed(request: Request, exc: ExecutorFailed) -> JSONResponse:
        return error_response(503, "sandbox_unavailable", str(exc), {"Retry-After": "1"})

    async def disconnected(request: Request, exc: ClientDisconnected) -> JSONResponse:
        return error_response(499, "client_disconnected", "the caller went away; the request's runs were stopped")

    app.add_exception_handler(ClientDisconnected, disconnected)  # type: ignore[arg-type]
    app.add_exception_handler(InvalidRequest, invalid_request)  # type: ignore[arg-type]
    app.add_exception_handler(PoolSaturated, saturated)  # type: ignore[arg-type]
    app.add_exception_handler(ExecutorFailed, executor_failed)  # type: ignore[arg-type]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: SandboxSettings = app.state.settings
    if settings.binds_beyond_loopback and settings.api_token is None:
        log.warning("sandbox serving on %s without REWARDSTACK_SANDBOX_API_TOKEN: anyone who can reach it can run code",
                    settings.host)
    pool = ExecutorPool(settings)
    app.state.pool = pool
    app.state.metrics.executor_restarts = lambda: pool.restarts
    app.state.runner = Runner(settings, pool, app.state.metrics)
    try:
        await pool.start()
        yield
    finally:
        await pool.close()


def create_sandbox_app(settings: SandboxSettings) -> FastAPI:
    """The sandbox service; executors start in the lifespan, one per slot."""
    app = FastAPI(title="rewardstack sandbox", version="1", lifespan=lifespan,
                  summary="Isolated code execution and test judging for RL rewards.")
    app.state.settings = settings
    app.state.metrics = SandboxMetrics()
    app.include_router(_routes())
    _install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_body_bytes=settings.max_body_bytes, setting="REWARDSTACK_SANDBOX_MAX_BODY_BYTES")
    return app


__all__ = ["create_sandbox_app"]
