"""The gateway's own failures, as HTTP errors with a stable `code` and a `detail` saying what to change.

The candidate's failures (a wrong answer, code that times out) are never here: they are a 200
with a status per component. One handler per domain exception.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.scorers.registry import UnknownScorer
from services.workers.pool import PoolClosed, PoolSaturated

RETRY_AFTER_S = 1


class RequestTooLarge(Exception):
    """A request over a configured limit; `field` names the offending part."""

    def __init__(self, field: str, detail: str) -> None:
        self.field = field
        super().__init__(f"{field}: {detail}")


class InvalidRequest(Exception):
    """A request that parses but cannot be served as asked (bad scorer params, all weights zero)."""

    def __init__(self, field: str, detail: str) -> None:
        self.field = field
        super().__init__(f"{field}: {detail}")


def _error(status_code: int, code: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status_code, content={"code": code, "detail": detail}, headers=headers)


def _location(loc: tuple[int | str, ...]) -> str:
    """`("body", "items", 3, "completion")` -> `items[3].completion`."""
    if loc and loc[0] in ("body", "query", "path", "header"):
        loc = loc[1:]  # where the value came from, not a field name
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    messages = [f"{_location(tuple(e['loc']))}: {e['msg']}" for e in exc.errors()[:20]]
    return _error(422, "invalid_request", "; ".join(messages))


async def _unknown_scorer(request: Request, exc: UnknownScorer) -> JSONResponse:
    return _error(422, "unknown_scorer", f"scorers.{exc.scorer_id}: no such scorer; known: {', '.join(exc.known)}")


async def _too_large(request: Request, exc: RequestTooLarge) -> JSONResponse:
    return _error(413, "request_too_large", str(exc))


async def _invalid(request: Request, exc: InvalidRequest) -> JSONResponse:
    return _error(422, "invalid_request", str(exc))


async def _saturated(request: Request, exc: PoolSaturated) -> JSONResponse:
    return _error(503, "overloaded", f"scorer queue is full ({exc}); retry later", {"Retry-After": str(RETRY_AFTER_S)})


async def _closed(request: Request, exc: PoolClosed) -> JSONResponse:
    return _error(503, "shutting_down", "the gateway is shutting down; retry on another replica", {"Retry-After": str(RETRY_AFTER_S)})


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}.get(
        exc.status_code, "http_error"
    )
    return _error(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(UnknownScorer, _unknown_scorer)  # type: ignore[arg-type]
    app.add_exception_handler(RequestTooLarge, _too_large)  # type: ignore[arg-type]
    app.add_exception_handler(InvalidRequest, _invalid)  # type: ignore[arg-type]
    app.add_exception_handler(PoolSaturated, _saturated)  # type: ignore[arg-type]
    app.add_exception_handler(PoolClosed, _closed)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
