"""A small client for OpenAI-compatible `/v1/chat/completions` servers (vLLM, SGLang, llama.cpp).

Several servers may be given; a request goes to the one that answered last and moves to the next
on an infrastructure failure: refused or dropped connection, 5xx, 429, or a body that is not a
chat completion. That is the only retrying, and it is bounded (`max_attempts` in all). The client
does not retry:

- a read timeout: the server took the request and is slow, so another attempt would only spend
  the batch's deadline twice; it raises `JudgeTimeout`;
- another 4xx: our request is wrong for that server (unknown model name, bad token), which no
  retry fixes; it raises `JudgeUnavailable` with the server's message.

A server that refuses `response_format` (a 400 naming it) is asked again without it, and
remembered, so the prompt's own format instructions carry the request from then on.

At most `max_concurrency` requests are in flight from this client, over all its servers; the
rest wait their turn. Broken or slow servers are never reported as a verdict: the caller turns
`JudgeUnavailable` into status `error` and `JudgeTimeout` into `timeout`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

CONNECT_TIMEOUT_S = 5.0
_RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class JudgeUnavailable(RuntimeError):
    """No server gave an answer: unreachable, failing, misconfigured, or answered garbage."""


class JudgeTimeout(RuntimeError):
    """A server took the request but did not answer in time."""


@dataclass(frozen=True)
class ChatReply:
    """The first choice's text (`""` when the server sent none), and why generation stopped."""

    content: str
    finish_reason: str | None


class ChatClient:
    """Chat completions with failover between `urls`, a concurrency bound and a bearer token."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        model: str,
        api_token: SecretStr | None = None,
        timeout_s: float = 60.0,
        max_concurrency: int = 16,
        max_attempts: int | None = None,
        max_tokens: int = 512,
        temperature: float = 0.0,
        structured_output: bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """`max_attempts` defaults to two rounds over the servers."""
        if not urls:
            raise ValueError("at least one judge URL is needed")
        self.urls = [u.rstrip("/") for u in urls]
        self.model = model
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.max_attempts = max_attempts or 2 * len(self.urls)
        self._structured = {url: structured_output for url in self.urls}
        self._preferred = 0
        self._slots = asyncio.Semaphore(max_concurrency)
        headers = {"Authorization": f"Bearer {api_token.get_secret_value()}"} if api_token is not None else {}
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s, connect=min(CONNECT_TIMEOUT_S, timeout_s)),
            limits=httpx.Limits(max_connections=max_concurrency, max_keepalive_connections=max_concurrency),
            headers=headers,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def complete(self, messages: list[dict[str, str]], schema: dict[str, Any]) -> ChatReply:
        """The judge's reply to `messages`, asking for JSON matching `schema` where the server can."""
        async with self._slots:
            failures: list[str] = []
            start = self._preferred
            for attempt in range(self.max_attempts):
                index = (start + attempt) % len(self.urls)
                url = self.urls[index]
                try:
                    reply = await self._post(url, messages, schema)
                except _Retryable as exc:
                    failures.append(f"{url}: {exc}")
                    if len(failures) >= len(self.urls):
                        await asyncio.sleep(min(0.1 * attempt, 1.0))  # every server failed once: let them breathe
                    continue
                self._preferred = index
                return reply
            raise JudgeUnavailable(f"no judge server answered after {self.max_attempts} attempts: " + "; ".join(failures[-3:]))

    async def _post(self, url: str, messages: list[dict[str, str]], schema: dict[str, Any]) -> ChatReply:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "stream": False,
        }
        if self._structured[url]:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "verdict", "schema": schema, "strict": True},
            }
        response = await self._send(url, body)
        if response.status_code in (400, 422) and "response_format" in body and "response_format" in response.text:
            self._structured[url] = False  # this server cannot constrain its output; the prompt asks instead
            del body["response_format"]
            response = await self._send(url, body)
        if response.status_code in _RETRYABLE_STATUS:
            raise _Retryable(f"HTTP {response.status_code}: {response.text[:200]}")
        if response.status_code != 200:
            raise JudgeUnavailable(f"{url} answered HTTP {response.status_code}: {response.text[:300]}")
        return _read(response)

    async def _send(self, url: str, body: dict[str, Any]) -> httpx.Response:
        try:
            return await self._http.post(f"{url}/v1/chat/completions", json=body)
        except (httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout) as exc:
            raise JudgeTimeout(f"{url} did not answer within {self._http.timeout.read} s") from exc
        except httpx.HTTPError as exc:  # connect errors and timeouts, dropped connections, protocol errors
            raise _Retryable(f"{type(exc).__name__}: {exc}") from exc


class _Retryable(Exception):
    """An infrastructure failure of one server; another server or a later attempt may succeed."""


def _read(response: httpx.Response) -> ChatReply:
    try:
        choice = response.json()["choices"][0]
        message = choice["message"]
        content = message.get("content") or ""
        if not isinstance(content, str):
            raise TypeError(f"content is {type(content).__name__}")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise _Retryable(f"not a chat completion ({type(exc).__name__}: {exc}): {response.text[:200]}") from None
    return ChatReply(content=content, finish_reason=choice.get("finish_reason"))
