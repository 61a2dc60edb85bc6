"""`create_model_app(settings)`: the model server's FastAPI app (`rewardstack models`).

    GET  /healthz                  liveness: the process answers (503 only once loading has failed)
    GET  /readyz                   200 once the models are loaded, 503 while loading or after a failed load
    GET  /metrics                  Prometheus: requests, items, forward passes, tokens, queue depth
    GET  /v1/models                each model's kind, device, dtype, window and score scale
    POST /v1/models/{name}/score   {"items": [{"prompt", "response"}]} -> one outcome per item

Models load in a background task started by the lifespan, so the server answers probes while a
multi-gigabyte model loads (a liveness probe never kills a slow start; readiness keeps traffic
away until it is done). The /v1 routes need `Authorization: Bearer <REWARDSTACK_MODELS_API_TOKEN>`
when that is set; the probes and /metrics stay open. HTTP plumbing (error body, field locations,
body-size limit, bearer check) is `rewardstack.services.web`, shared with the gateway and the sandbox.

Errors are ours, never a score: an unknown model is a 404, models still loading a 503, a failed
forward pass a 500 with code `model_error`, a request past `request_deadline_s` (default 60 s) a
503 with code `deadline_exceeded`; the gateway's scorers report all of them as `error`.

Bounds, so no single request holds the server: the body limit (`max_body_bytes`), items per
request, response characters, every item cut to what its model reads before tokenizing
(`served.cap_characters`), and the per-request deadline. Measured with the embedded models: a
60 MB prompt is answered in 3.5-5 s (it was cut to its last 32,768 characters before tokenizing;
uncut, tokenizing it held the server for minutes), resident memory is back within 20 MB of its
baseline after it, and the next request takes as long as before it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from rewardstack.services.contract import ErrorBody
from rewardstack.services.model_server.config import ModelServerSettings, ModelSpec
from rewardstack.services.model_server.metrics import ModelServerMetrics
from rewardstack.services.model_server.schema import ModelList, ModelRequest, ModelResponse
from rewardstack.services.model_server.served import ServedModels, UnknownModel
from rewardstack.services.web import BodySizeLimit, RequestTooLarge, bearer_token_check, error_response, install_common_error_handlers

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5
require_token = bearer_token_check("REWARDSTACK_MODELS_API_TOKEN")


class ModelFailed(RuntimeError):
    """A forward pass failed: our infrastructure's fault, answered with a 500."""


class ModelsNotReady(RuntimeError):
    """The models are still loading, or failed to load: 503, try another replica."""


class DeadlineExceeded(RuntimeError):
    """A request ran past `request_deadline_s`: 503, the server was overloaded; its work was dropped."""


class LoadState:
    """Where loading stands: `models` once loaded, `error` once it failed, neither while loading."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.models: ServedModels | None = None
        self.error: str | None = None

    @property
    def status(self) -> str:
        return "ready" if self.models is not None else ("failed" if self.error is not None else "loading")


def _served(request: Request) -> ServedModels:
    state: LoadState = request.app.state.load
    if state.models is None:
        raise ModelsNotReady(f"models {state.status}" + (f": {state.error}" if state.error else "; retry shortly"))
    return state.models


ServedDep = Annotated[ServedModels, Depends(_served)]
router = APIRouter()


@router.get("/healthz", tags=["health"])
async def healthz(request: Request) -> JSONResponse:
    """Alive unless loading failed: a process that can never become ready should be restarted."""
    state: LoadState = request.app.state.load
    if state.error is not None:
        return JSONResponse({"status": "failed", "detail": state.error}, status_code=503)
    return JSONResponse({"status": "ok"})


@router.get("/readyz", tags=["health"])
async def readyz(request: Request) -> JSONResponse:
    """Ready once every configured model is loaded; 503 while loading or after a failed load."""
    state: LoadState = request.app.state.load
    body: dict[str, object] = {"status": state.status, "models": state.names}
    if state.error is not None:
        body["detail"] = state.error
    return JSONResponse(body, status_code=200 if state.models is not None else 503)


@router.get("/metrics", tags=["health"])
async def metrics(request: Request) -> Response:
    return Response(request.app.state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get("/v1/models", response_model=ModelList, tags=["models"], dependencies=[Depends(require_token)])
async def list_models(models: ServedDep) -> ModelList:
    return ModelList(models=models.info())


@router.post(
    "/v1/models/{name}/score", response_model=ModelResponse, tags=["models"], dependencies=[Depends(require_token)],
    responses={401: {"model": ErrorBody}, 404: {"model": ErrorBody}, 413: {"model": ErrorBody}, 500: {"model": ErrorBody}, 503: {"model": ErrorBody}},
)
async def score(name: str, body: ModelRequest, request: Request, models: ServedDep) -> ModelResponse:
    settings: ModelServerSettings = request.app.state.settings
    m: ModelServerMetrics = request.app.state.metrics
    if name not in models.backends:
        raise UnknownModel(name, models.names())
    try:
        _check_sizes(settings, body)
    except RequestTooLarge:
        m.requests.labels(name, "too_large").inc()
        raise
    try:
        async with asyncio.timeout(settings.request_deadline_s):  # cancelling drops the queued items
            results = await models.score(name, body.items)
    except TimeoutError as exc:
        m.requests.labels(name, "deadline").inc()
        raise DeadlineExceeded(
            f"{len(body.items)} items not scored by {name!r} within {settings.request_deadline_s:g} s "
            "(REWARDSTACK_MODELS_REQUEST_DEADLINE_S); the server is overloaded") from exc
    except RuntimeError as exc:
        m.requests.labels(name, "error").inc()
        m.items.labels(name, "error").inc(len(body.items))
        raise ModelFailed(str(exc)) from exc
    m.requests.labels(name, "ok").inc()
    for result in results:
        m.items.labels(name, result.status.value).inc()
    return ModelResponse(model=name, results=results)


def _check_sizes(settings: ModelServerSettings, body: ModelRequest) -> None:
    if len(body.items) > settings.max_items_per_request:
        raise RequestTooLarge("items", f"{len(body.items)} items; at most {settings.max_items_per_request} per request")
    for i, item in enumerate(body.items):
        if len(item.response) > settings.max_response_chars:
            raise RequestTooLarge(f"items[{i}].response", f"{len(item.response)} characters; at most {settings.max_response_chars}")


def _install_error_handlers(app: FastAPI) -> None:
    install_common_error_handlers(app)

    async def unknown_model(request: Request, exc: UnknownModel) -> JSONResponse:
        return error_response(404, "unknown_model", str(exc))

    async def model_failed(request: Request, exc: ModelFailed) -> JSONResponse:
        return error_response(500, "model_error", str(exc))

    async def not_ready(request: Request, exc: ModelsNotReady) -> JSONResponse:
        return error_response(503, "not_ready", str(exc), {"Retry-After": str(RETRY_AFTER_S)})

    async def deadline_exceeded(request: Request, exc: DeadlineExceeded) -> JSONResponse:
        return error_response(503, "deadline_exceeded", str(exc), {"Retry-After": str(RETRY_AFTER_S)})

    app.add_exception_handler(UnknownModel, unknown_model)  # type: ignore[arg-type]
    app.add_exception_handler(ModelFailed, model_failed)  # type: ignore[arg-type]
    app.add_exception_handler(ModelsNotReady, not_ready)  # type: ignore[arg-type]
    app.add_exception_handler(DeadlineExceeded, deadline_exceeded)  # type: ignore[arg-type]


async def _serve_models(app: FastAPI, specs: Mapping[str, ModelSpec], stop: asyncio.Event, on_load_failure: Callable[[], None] | None) -> None:
    """Load the models, publish them in `app.state.load`, hold them until `stop`, then free them."""
    state: LoadState = app.state.load
    metrics: ModelServerMetrics = app.state.metrics
    loaded = False
    try:
        async with ServedModels.open(specs, metrics.pass_observer) as models:
            state.models, loaded = models, True
            log.info("serving models: %s", ", ".join(f"{i.name} ({i.kind}, {i.device}, {i.dtype})" for i in models.info()))
            try:
                await stop.wait()
            finally:
                state.models = None
    except Exception as exc:
        if loaded:
            raise  # a failure while freeing the models, not while loading them
        state.error = f"{type(exc).__name__}: {exc}"
        log.error("loading the models failed: %s", state.error)
        if on_load_failure is not None:
            on_load_failure()


def create_model_app(
    settings: ModelServerSettings | None = None,
    *,
    specs: Mapping[str, ModelSpec] | None = None,
    on_load_failure: Callable[[], None] | None = None,
) -> FastAPI:
    """Build the model server. `specs` overrides the models from `settings` (tests, embedding);
    `on_load_failure` is called once if loading fails (the CLI uses it to stop the server)."""
    settings = settings or ModelServerSettings()
    chosen = dict(specs) if specs is not None else settings.models()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.binds_beyond_loopback and settings.api_token is None:
            log.warning("model server on %s without REWARDSTACK_MODELS_API_TOKEN: keep it on a private network", settings.host)
        stop = asyncio.Event()
        loader = asyncio.create_task(_serve_models(app, chosen, stop, on_load_failure), name="load-models")
        try:
            yield
        finally:
            stop.set()
            if app.state.load.status == "loading":
                loader.cancel()  # shutting down mid-load: the loading thread finishes on its own
            try:
                await loader
            except asyncio.CancelledError:
                pass

    app = FastAPI(title="rewardstack model server", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.load = LoadState(list(chosen))
    app.state.metrics = ModelServerMetrics(lambda: app.state.load.models.depths() if app.state.load.models else {})
    _install_error_handlers(app)
    app.include_router(router)
    app.add_middleware(BodySizeLimit, max_body_bytes=settings.max_body_bytes, setting="REWARDSTACK_MODELS_MAX_BODY_BYTES")
    return app
