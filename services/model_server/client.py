"""How the gateway's neural scorers reach the models: over HTTP, or in-process (the embedded default).

Both clients raise `ModelUnavailable` for anything that is our fault (server down, 5xx, bad
response, failed pass), which the scorers turn into status `error`: a model outage is never a
reward of 0. `ModelRejected`, its subclass, is a 4xx: the server is up and refused this request,
so the gateway's circuit breaker does not count it as an outage.

The HTTP client sends at most `max_prompt_chars` of each prompt, its end (the server would cut
the prompt from the left anyway): one 60 MB prompt in a batch would otherwise cost a 60 MB body,
its parsing on the model server and the memory of both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import httpx
from pydantic import SecretStr, ValidationError

from rewardstack.services.model_server.schema import ModelItem, ModelOutcome, ModelRequest, ModelResponse
from rewardstack.services.model_server.served import ServedModels

DEFAULT_TIMEOUT = httpx.Timeout(5.0, read=300.0)  # read: a big GRPO batch on a busy model
# Prompt characters sent, kept from the end: past what a 16k-token window reads at the model
# server's 16 characters per token (`served.CHARS_PER_TOKEN`), so the cut never removes text it reads.
MAX_PROMPT_CHARS = 16_384 * 16


class ModelUnavailable(RuntimeError):
    """The model could not score: unreachable, failed, or answered something unreadable."""


class ModelRejected(ModelUnavailable):
    """The model server refused the request (4xx): it is up, the request is at fault."""


class ModelClient(Protocol):
    async def score(self, model: str, items: Sequence[ModelItem]) -> list[ModelOutcome]: ...


class HttpModelClient:
    """`POST {base_url}/v1/models/{model}/score`, one round trip per scorer batch."""

    def __init__(
        self,
        base_url: str,
        *,
        api_token: SecretStr | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        max_prompt_chars: int = MAX_PROMPT_CHARS,
    ) -> None:
        """`api_token`: sent as `Authorization: Bearer` (the server's REWARDSTACK_MODELS_API_TOKEN)."""
        self.max_prompt_chars = max_prompt_chars
        headers = {"Authorization": f"Bearer {api_token.get_secret_value()}"} if api_token is not None else {}
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport, headers=headers)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def score(self, model: str, items: Sequence[ModelItem]) -> list[ModelOutcome]:
        body = ModelRequest(items=[self._capped(item) for item in items]).model_dump(mode="json")
        try:
            response = await self._http.post(f"/v1/models/{model}/score", json=body)
        except httpx.HTTPError as exc:
            raise ModelUnavailable(f"model server {self._http.base_url}: {type(exc).__name__}: {exc}") from exc
        if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
            raise ModelRejected(f"model server answered {response.status_code} for {model!r} (the request was refused): {response.text[:500]}")
        if response.status_code != 200:
            raise ModelUnavailable(f"model server answered {response.status_code} for {model!r}: {response.text[:500]}")
        try:
            results = ModelResponse.model_validate_json(response.content).results
        except ValidationError as exc:
            raise ModelUnavailable(f"model server sent an unreadable response: {exc}") from exc
        if len(results) != len(items):
            raise ModelUnavailable(f"model server returned {len(results)} results for {len(items)} items")
        return results

    def _capped(self, item: ModelItem) -> ModelItem:
        if item.prompt is None or len(item.prompt) <= self.max_prompt_chars:
            return item
        return ModelItem(prompt=item.prompt[-self.max_prompt_chars:], response=item.response)


class LocalModelClient:
    """The same calls on models loaded in this process (no model server configured)."""

    def __init__(self, models: ServedModels) -> None:
        self.models = models

    async def score(self, model: str, items: Sequence[ModelItem]) -> list[ModelOutcome]:
        try:
            return await self.models.score(model, items)
        except (LookupError, RuntimeError) as exc:
            raise ModelUnavailable(str(exc)) from exc
