"""The gateway's own failures, as HTTP errors with a stable `code` and a `detail` saying what to change.

The candidate's failures (a wrong answer, code that times out) are never here: they are a 200
with a status per component. One handler per domain exception.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from rewardstack.services.gateway.body import install_json_error_handler
from rewardstack.services.scorers.registry import UnknownScorer
from rewardstack.services.web import error_response, install_common_error_handlers
from rewardstack.services.workers.pool import PoolClosed, PoolSaturated

RETRY_AFTER_S = 1


class InvalidRequest(Exception):
    """A request that parses but cannot be served as asked (bad scorer params, all weights zero)."""

    def __init__(self, field: str, detail: str) -> None:
        self.field = field
        super().__init__(f"{field}: {detail}")


async def _unknown_scorer(request: Request, exc: UnknownScorer) -> JSONResponse:
    return error_response(422, "unknown_scorer", f"scorers.{exc.scorer_id}: no such scorer; known: {', '.join(exc.known)}")


async def _invalid(request: Request, exc: InvalidRequest) -> JSONResponse:
    return error_response(422, "invalid_request", str(exc))


async def _saturated(request: Request, exc: PoolSaturated) -> JSONResponse:
    return error_response(503, "overloaded", f"scorer queue is full ({exc}); retry later", {"Retry-After": str(RETRY_AFTER_S)})


async def _closed(request: Request, exc: PoolClosed) -> JSONResponse:
    return error_response(503, "shutting_down", "the gateway is shutting down; retry on another replica", {"Retry-After": str(RETRY_AFTER_S)})


def install_error_handlers(app: FastAPI) -> None:
    install_common_error_handlers(app)
    install_json_error_handler(app)
    app.add_exception_handler(UnknownScorer, _unknown_scorer)  # type: ignore[arg-type]
    app.add_exception_handler(InvalidRequest, _invalid)  # type: ignore[arg-type]
    app.add_exception_handler(PoolSaturated, _saturated)  # type: ignore[arg-type]
    app.add_exception_handler(PoolClosed, _closed)  # type: ignore[arg-type]
