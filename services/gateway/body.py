"""Reading request bodies as JSON: a body that is not JSON we can read is a 400 `invalid_json`.

FastAPI answers malformed JSON with a 422 and anything else it cannot parse (invalid UTF-8,
nesting deep enough to exhaust Python's recursion) with a bare 400 "There was an error parsing
the body". Here the three are one error with one code and a detail that says where: 400 for a
body that is not JSON, 422 (`invalid_request`, naming the field) for JSON that does not fit the
contract. The gateway's routers use `JsonBodyRoute`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from rewardstack.services.web import error_response


class InvalidJson(HTTPException):
    """The body is not UTF-8 JSON. An HTTPException, because FastAPI lets only those out of body parsing."""

    def __init__(self, detail: str) -> None:
        super().__init__(status_code=400, detail=f"body: {detail}")


class _JsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidJson(f"not valid UTF-8 (byte {exc.start}: {body[exc.start:exc.start + 1]!r})") from None
            try:
                self._json = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InvalidJson(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
            except RecursionError:
                raise InvalidJson("JSON nested too deeply to parse") from None
        return self._json


class JsonBodyRoute(APIRoute):
    """An APIRoute whose JSON body errors are `InvalidJson`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            return await handler(_JsonRequest(request.scope, request.receive))

        return route_handler


async def _invalid_json(request: Request, exc: InvalidJson) -> JSONResponse:
    return error_response(400, "invalid_json", str(exc.detail))


def install_json_error_handler(app: FastAPI) -> None:
    app.add_exception_handler(InvalidJson, _invalid_json)  # type: ignore[arg-type]
