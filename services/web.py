"""HTTP plumbing shared by the gateway and the sandbox: the error body, field locations for
422s, the streaming body-size limit and the bearer-token check. One copy, so the services agree.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from pydantic import SecretStr
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATUS_CODES = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}


class RequestTooLarge(Exception):
    """A request over a configured limit; `field` names the offending part."""

    def __init__(self, field: str, detail: str) -> None:
        self.field = field
        super().__init__(f"{field}: {detail}")


def error_response(status_code: int, code: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """Every error body: a stable `code` and a `detail` saying what to change."""
    return JSONResponse(status_code=status_code, content={"code": code, "detail": detail}, headers=headers)


def field_location(loc: tuple[int | str, ...]) -> str:
    """`("body", "items", 3, "completion")` -> `items[3].completion`.

    Drops the leading source (`body`, `query`, ...) and pydantic's union-member tags
    (`function-after[...]`, `list[str]`), which name validators, not fields.
    """
    if loc and loc[0] in ("body", "query", "path", "header"):
        loc = loc[1:]
    out = ""
    for part in loc:
        if isinstance(part, str) and ("[" in part or part.startswith("function-")):
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out if out and not out.startswith("[") else "body" + out


def http_error_code(status_code: int) -> str:
    return STATUS_CODES.get(status_code, "http_error")


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    messages = []
    for error in exc.errors()[:20]:
        message = str(error["msg"]).removeprefix("Value error, ")
        location = field_location(tuple(error["loc"]))
        # request-level validators name their fields themselves ("tests: ...")
        messages.append(message if location == "body" and ":" in message else f"{location}: {message}")
    return error_response(422, "invalid_request", "; ".join(messages))


async def _too_large(request: Request, exc: RequestTooLarge) -> JSONResponse:
    return error_response(413, "request_too_large", str(exc))


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    return error_response(exc.status_code, http_error_code(exc.status_code), str(exc.detail), getattr(exc, "headers", None))


def install_common_error_handlers(app: FastAPI) -> None:
    """The handlers every service shares: 422 naming the field, 413 for a limit, HTTP errors in our body."""
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestTooLarge, _too_large)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]


class BodySizeLimit:
    """ASGI middleware: refuse bodies over `max_body_bytes` with 413, counting bytes as they arrive.

    Checks `Content-Length` up front and the streamed size as well (chunked uploads declare none).
    Past the limit it answers 413 itself and tells the app the client left, so an oversized body is
    never buffered whole; whatever the app then tries to send is dropped. `setting` names the
    variable that raises the limit, for the error message.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int, setting: str) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.setting = setting

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._refuse(send)
            return
        received, refused = 0, False

        async def limited_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    refused = True
                    await self._refuse(send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not refused:
                raise

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"code": "request_too_large",
                           "detail": f"request body: over {self.max_body_bytes} bytes ({self.setting})"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def bearer_token_check(setting: str) -> Callable[[Request], None]:
    """A dependency: 401 unless the request carries `app.state.settings.api_token` (when one is set)."""

    def require_token(request: Request) -> None:
        token: SecretStr | None = request.app.state.settings.api_token
        if token is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(given.encode(), token.get_secret_value().encode()):
            raise HTTPException(401, f"missing or wrong bearer token: send `Authorization: Bearer <{setting}>`",
                                headers={"WWW-Authenticate": "Bearer"})

    return require_token
