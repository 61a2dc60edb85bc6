"""Request-size limits enforced before any parsing, and the bearer-token check."""

from __future__ import annotations

import json
import secrets

from fastapi import Request
from fastapi.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodySizeLimit:
    """ASGI middleware: refuse bodies over `max_body_bytes` with 413, counting bytes as they arrive.

    Checks `Content-Length` up front and the streamed size as well (chunked uploads declare none),
    so an oversized body is never buffered whole.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._refuse(send, int(declared))
            return
        received = 0
        refused = False

        async def limited_receive() -> Message:
            # Past the limit we answer 413 ourselves and tell the app the client left, so it
            # stops reading; whatever it then tries to send is dropped.
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    refused = True
                    await self._refuse(send, received)
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

    async def _refuse(self, send: Send, size: int) -> None:
        body = json.dumps(
            {"code": "request_too_large", "detail": f"request body: over {self.max_body_bytes} bytes (got at least {size})"}
        ).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def require_token(request: Request) -> None:
    """Dependency: 401 unless the request carries the configured bearer token (when one is set)."""
    token = request.app.state.settings.api_token
    if token is None:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(given.encode(), token.get_secret_value().encode()):
        raise HTTPException(401, "missing or wrong bearer token: send `Authorization: Bearer <REWARDSTACK_API_TOKEN>`",
                            headers={"WWW-Authenticate": "Bearer"})
