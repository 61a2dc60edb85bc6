"""`create_model_app(settings)`: the model server's FastAPI app (`rewardstack models`).

    GET  /health                   liveness, and the names of the loaded models
    GET  /v1/models                each model's kind, device, dtype, window and score scale
    POST /v1/models/{name}/score   {"items": [{"prompt", "response"}]} -> one outcome per item

Models load in the lifespan (nothing heavy at import). Errors are ours, never a score: an
unknown model is a 404, a failed forward pass a 500 with code `model_error`, which the gateway's
scorers report as status `error`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from services.contract import ErrorBody
from services.model_server.config import ModelServerSettings, ModelSpec
from services.model_server.schema import ModelList, ModelRequest, ModelResponse
from services.model_server.served import ServedModels, UnknownModel

log = logging.getLogger(__name__)


class ModelFailed(RuntimeError):
    """A forward pass failed: our infrastructure's fault, answered with a 500."""


class RequestTooLarge(ValueError):
    def __init__(self, field: str, detail: str) -> None:
        self.field, self.detail = field, detail
        super().__init__(detail)


def _served(request: Request) -> ServedModels:
    return request.app.state.models


ServedDep = Annotated[ServedModels, Depends(_served)]
router = APIRouter(tags=["models"])


@router.get("/health")
async def health(models: ServedDep) -> dict[str, object]:
    return {"status": "ok", "models": models.names()}


@router.get("/v1/models", response_model=ModelList)
async def list_models(models: ServedDep) -> ModelList:
    return ModelList(models=models.info())


@router.post("/v1/models/{name}/score", response_model=ModelResponse, responses={404: {"model": ErrorBody}, 500: {"model": ErrorBody}})
async def score(name: str, body: ModelRequest, request: Request, models: ServedDep) -> ModelResponse:
    settings: ModelServerSettings = request.app.state.settings
    if len(body.items) > settings.max_items_per_request:
        raise RequestTooLarge("items", f"items: {len(body.items)} items; at most {settings.max_items_per_request} per request")
    for i, item in enumerate(body.items):
        if len(item.response) > settings.max_response_chars:
            raise RequestTooLarge(f"items.{i}.response", f"items.{i}.response: {len(item.response)} characters; at most {settings.max_response_chars}")
    try:
        results = await models.score(name, body.items)
    except RuntimeError as exc:
        raise ModelFailed(str(exc)) from exc
    return ModelResponse(model=name, results=results)


def _install_error_handlers(app: FastAPI) -> None:
    async def unknown_model(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(status_code=404, content=ErrorBody(code="unknown_model", detail=str(exc)).model_dump())

    async def too_large(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestTooLarge)
        return JSONResponse(status_code=413, content=ErrorBody(code="request_too_large", detail=exc.detail).model_dump())

    async def model_failed(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(status_code=500, content=ErrorBody(code="model_error", detail=str(exc)).model_dump())

    app.add_exception_handler(UnknownModel, unknown_model)
    app.add_exception_handler(RequestTooLarge, too_large)
    app.add_exception_handler(ModelFailed, model_failed)


def create_model_app(settings: ModelServerSettings | None = None, *, specs: Mapping[str, ModelSpec] | None = None) -> FastAPI:
    """Build the model server. `specs` overrides the models from `settings` (tests, embedding)."""
    settings = settings or ModelServerSettings()
    chosen = dict(specs) if specs is not None else settings.models()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with ServedModels.open(chosen) as models:
            app.state.models = models
            log.info("serving models: %s", ", ".join(f"{i.name} ({i.kind}, {i.device}, {i.dtype})" for i in models.info()))
            yield

    app = FastAPI(title="rewardstack model server", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    _install_error_handlers(app)
    app.include_router(router)
    return app
