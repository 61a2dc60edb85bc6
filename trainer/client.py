"""`RewardClient` and `AsyncRewardClient`: one call scores a batch on the reward stack.

Twins over one base: `_ClientBase` holds everything that is not I/O (building and chunking the
request, choosing the URL, deciding whether and when to retry, reading the answer, applying the
policy for items that are not `ok`); the sync and async clients add only the sending.

What a call does:
- splits the batch into chunks of `chunk_size` items, sent concurrently, at most
  `max_concurrency` at a time, and stitches the results back in request order;
- spreads chunks over the URLs round-robin; a URL that fails is skipped for `cooldown_s`
  (or its `Retry-After`) and the chunk fails over to the next URL at once;
- retries only infrastructure failures (connection errors, timeouts, 408, 429, 5xx) with
  exponential backoff and full jitter once every URL has failed, never waiting less than the
  server's `Retry-After`; a 4xx is the request's fault and is raised at once;
- sends the call's remaining time as `deadline_s`, so the server answers items it could not
  finish as `timeout` rather than the client giving up on the whole batch.

Clients pickle (TRL may run reward functions in a spawned process): the HTTP connection pool is
left behind and reopened lazily on first use after unpickling.

Only httpx, pydantic and `rewardstack.services.contract` are imported: the client works with the base install.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import math
import os
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import httpx
from pydantic import ValidationError

from rewardstack.services.contract import (
    ScoreBatch,
    ScoreBatchResult,
    ScoreItem,
    ScorerList,
    ScorerRequest,
    Status,
    parse_scorer_spec,
)
from rewardstack.errors import (
    ItemNotScored,
    RequestRejected,
    ServerError,
    ServiceTimeout,
    ServiceUnavailable,
    ServiceUnreachable,
    TransportError,
)

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUT",
    "AsyncRewardClient",
    "OnUnscored",
    "RetryPolicy",
    "RewardClient",
    "shared_client",
]

DEFAULT_TIMEOUT = httpx.Timeout(5.0, read=90.0)  # read > sandbox wall limit (60 s) + queueing
DEFAULT_LIMITS = httpx.Limits(max_connections=64, max_keepalive_connections=64)
DEFAULT_CHUNK_SIZE = 512  # items per request: big enough for one round trip per GRPO step, small enough to spread
DEFAULT_MAX_CONCURRENCY = 8  # chunks in flight per call
DEADLINE_GRACE_S = 5.0  # past the server's deadline, time for its answer to come back

_UNAVAILABLE = frozenset({408, 429, 502, 503, 504})

ItemLike: TypeAlias = ScoreItem | Mapping[str, Any]
ScorerSpec: TypeAlias = str | Mapping[str, ScorerRequest | Mapping[str, Any] | float] | Sequence[str]
OnUnscored: TypeAlias = float | Literal["raise"] | None
"""Policy for items that are not `ok`: None (TRL masks them), a fallback value, or "raise".

A fallback value stands in for `unscorable` and `timeout` only: an `error` (our infrastructure)
is None under either policy, because an outage must never look like a reward."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a chunk is retried.

    `max_attempts` counts every try, failovers to another URL included. Waits grow as
    `backoff_base_s * 2**round` up to `backoff_max_s`, drawn uniformly below that (full jitter,
    so replicas coming back are not hit in lockstep). `cooldown_s`: how long a failed URL is
    skipped by later chunks while another URL is healthy.
    """

    max_attempts: int = 6
    backoff_base_s: float = 0.25
    backoff_max_s: float = 8.0
    cooldown_s: float = 10.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be at least 1")
        if self.backoff_base_s < 0 or self.backoff_max_s < self.backoff_base_s or self.cooldown_s < 0:
            raise ValueError("RetryPolicy needs 0 <= backoff_base_s <= backoff_max_s and cooldown_s >= 0")

    def backoff_s(self, round_: int, retry_after_s: float | None) -> float:
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2**round_)
        return max(random.uniform(0, ceiling), retry_after_s or 0.0)


DEFAULT_RETRY = RetryPolicy()


def _as_item(item: ItemLike, index: int) -> ScoreItem:
    """Items get their global index as id when they have none, so results survive chunking."""
    if not isinstance(item, ScoreItem):
        item = ScoreItem.model_validate(item)
    return item if item.id is not None else item.model_copy(update={"id": str(index)})


def normalize_scorers(scorers: ScorerSpec) -> dict[str, ScorerRequest]:
    """`"math:1,format:0.2"`, `["math", "format"]`, `{"math": 1.0}` or `{"math": {"weight": 1, "params": {...}}}`
    to the wire form."""
    if isinstance(scorers, str):
        return parse_scorer_spec(scorers)
    if not isinstance(scorers, Mapping):
        return {name: ScorerRequest() for name in scorers}
    # The same model as the REST API: the `{"math": 1.0}` shorthand is accepted, `True` or "1" as a weight refused.
    return {name: spec if isinstance(spec, ScorerRequest) else ScorerRequest.model_validate(spec) for name, spec in scorers.items()}


def _check_deadline(deadline_s: float | None) -> None:
    # NaN passes `<= 0`; as a deadline it would reach the server as a 422 only after the retries began.
    if deadline_s is not None and not (isinstance(deadline_s, (int, float)) and math.isfinite(deadline_s) and deadline_s > 0):
        raise ValueError(f"deadline_s must be a positive finite number of seconds, not {deadline_s!r}")


def _retry_after_s(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    with contextlib.suppress(ValueError):
        return max(0.0, float(value))
    with contextlib.suppress(TypeError, ValueError):
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    return None


def _error_body(response: httpx.Response) -> tuple[str, str]:
    """The gateway's `{"code", "detail"}`; a proxy in between may answer with anything."""
    try:
        body = response.json()
        return str(body["code"]), str(body["detail"])
    except (ValueError, KeyError, TypeError):
        return "http_error", response.text[:500]


@contextlib.contextmanager
def _mapped_transport_errors(url: str) -> Iterator[None]:
    """The one place httpx's exceptions become ours."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise ServiceTimeout(f"no answer from {url} in time ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise ServiceUnreachable(f"cannot reach {url}: {type(exc).__name__}: {exc}") from exc


class _Endpoints:
    """The URLs, their rotation and which are cooling down after a failure. Plain data: pickles."""

    def __init__(self, urls: Sequence[str]) -> None:
        self.urls = tuple(url.rstrip("/") for url in urls)
        self._down_until: dict[str, float] = {}
        self._turn = 0

    def start(self) -> int:
        """Where a new chunk starts in the rotation: consecutive chunks go to consecutive URLs."""
        self._turn += 1
        return self._turn

    def pick(self, start: int, tried: set[str]) -> str | None:
        """The first healthy untried URL from `start`; else the untried one that recovers soonest."""
        now = time.monotonic()
        rotation = [self.urls[(start + k) % len(self.urls)] for k in range(len(self.urls))]
        untried = [url for url in rotation if url not in tried]
        healthy = [url for url in untried if self._down_until.get(url, 0.0) <= now]
        if healthy:
            return healthy[0]
        return min(untried, key=lambda url: self._down_until.get(url, 0.0), default=None)

    def mark_down(self, url: str, for_s: float) -> None:
        self._down_until[url] = time.monotonic() + for_s

    def mark_up(self, url: str) -> None:
        self._down_until.pop(url, None)


class _Attempts:
    """The retry state of one chunk: which URL next, and how long to wait before it."""

    def __init__(self, endpoints: _Endpoints, retry: RetryPolicy, deadline: float | None) -> None:
        self.endpoints, self.retry, self.deadline = endpoints, retry, deadline
        self.start = endpoints.start()
        self.tried: set[str] = set()
        self.round = 0
        self.count = 0
        self.last_error: TransportError | None = None

    def remaining_s(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def next(self) -> tuple[str, float]:
        """The URL to try and the seconds to sleep first; raises the last error when out of tries."""
        if self.count >= self.retry.max_attempts:
            assert self.last_error is not None
            raise self.last_error
        self.count += 1
        url = self.endpoints.pick(self.start, self.tried)
        wait_s = 0.0
        if url is None:  # every URL failed this round: back off, then start a new round
            retry_after = getattr(self.last_error, "retry_after_s", None)
            wait_s = self.retry.backoff_s(self.round, retry_after)
            self.round += 1
            self.tried.clear()
            url = self.endpoints.pick(self.start, self.tried)
            assert url is not None
        remaining = self.remaining_s()
        if remaining is not None and remaining - wait_s <= 0:
            raise ServiceTimeout(f"the call's deadline passed while retrying; last error: {self.last_error}") from self.last_error
        return url, wait_s

    def failed(self, url: str, exc: TransportError) -> None:
        self.last_error = exc
        self.tried.add(url)
        retry_after = getattr(exc, "retry_after_s", None)
        self.endpoints.mark_down(url, max(self.retry.cooldown_s, retry_after or 0.0))


class _ClientBase:
    """What the two clients share: configuration, request building, retry decisions, reading."""

    def __init__(
        self,
        urls: str | Sequence[str],
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        limits: httpx.Limits = DEFAULT_LIMITS,
        retry: RetryPolicy = DEFAULT_RETRY,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        deadline_s: float | None = None,
        on_unscored: OnUnscored = None,
        api_token: str | None = None,
        transport: Any = None,
    ) -> None:
        urls = [urls] if isinstance(urls, str) else list(urls)
        if not urls:
            raise ValueError("give the reward service's URL, or a list of URLs")
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"reward service URL {url!r} must start with http:// or https://")
        if chunk_size < 1 or max_concurrency < 1:
            raise ValueError("chunk_size and max_concurrency must be at least 1")
        _check_deadline(deadline_s)
        valid_number = isinstance(on_unscored, (int, float)) and not isinstance(on_unscored, bool) and math.isfinite(on_unscored)
        if not (on_unscored is None or on_unscored == "raise" or valid_number):
            raise ValueError(f"on_unscored must be None, a finite number or 'raise', not {on_unscored!r}")
        self._endpoints = _Endpoints(urls)
        self.timeout, self.limits, self.retry = timeout, limits, retry
        self.chunk_size, self.max_concurrency = chunk_size, max_concurrency
        self.deadline_s, self.on_unscored = deadline_s, on_unscored
        self._headers = {"Authorization": f"Bearer {api_token}"} if api_token else {}
        self._transport = transport
        self._http: Any = None

    @property
    def urls(self) -> tuple[str, ...]:
        return self._endpoints.urls

    def __getstate__(self) -> dict[str, Any]:
        # The connection pool (sockets, locks, a bound event loop) cannot cross a process boundary;
        # a test transport need not either. The copy opens its own pool on first use.
        state = self.__dict__.copy()
        state["_http"] = None
        state["_transport"] = None
        state.pop("_http_loop", None)
        state.pop("_http_pid", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    # -- building the request --------------------------------------------------------------

    def _chunks(self, items: Sequence[ItemLike]) -> list[list[ScoreItem]]:
        if not items:
            raise ValueError("nothing to score: items is empty")
        wire_items = [_as_item(item, index) for index, item in enumerate(items)]
        return [wire_items[i : i + self.chunk_size] for i in range(0, len(wire_items), self.chunk_size)]

    def _deadline(self, deadline_s: float | None) -> float | None:
        _check_deadline(deadline_s)
        budget = self.deadline_s if deadline_s is None else deadline_s
        return None if budget is None else time.monotonic() + budget

    def _request(self, attempts: _Attempts, url: str, chunk: list[ScoreItem], scorers: dict[str, ScorerRequest]) -> dict[str, Any]:
        """Arguments of one POST; the server gets the time left, the socket a little more."""
        remaining = attempts.remaining_s()
        server_deadline_s = None if remaining is None else min(max(remaining, 0.001), 3600)  # the contract's bounds
        batch = ScoreBatch(items=chunk, scorers=scorers, deadline_s=server_deadline_s)
        timeout = self.timeout if remaining is None else httpx.Timeout(
            self.timeout.connect, read=remaining + DEADLINE_GRACE_S, write=self.timeout.write, pool=remaining + DEADLINE_GRACE_S
        )
        return {
            "url": f"{url}/v1/score",
            "content": batch.model_dump_json(),
            "headers": {"Content-Type": "application/json", **self._headers},
            "timeout": timeout,
        }

    # -- reading the answer ----------------------------------------------------------------

    def _read(self, response: httpx.Response, expected: int) -> ScoreBatchResult:
        url = str(response.request.url)
        if response.status_code in _UNAVAILABLE:
            code, detail = _error_body(response)
            raise ServiceUnavailable(f"{response.status_code} from {url}: {code}: {detail}", response.status_code, _retry_after_s(response))
        if response.is_server_error:
            code, detail = _error_body(response)
            raise ServerError(f"{response.status_code} from {url}: {code}: {detail}", response.status_code)
        if response.is_error:
            raise RequestRejected(response.status_code, *_error_body(response))
        try:
            result = ScoreBatchResult.model_validate_json(response.content)
        except ValidationError as exc:
            raise ServerError(f"{url} answered 200 with a body that is not a ScoreBatchResult: {exc}", response.status_code) from exc
        if len(result.results) != expected:
            raise ServerError(f"{url} answered {len(result.results)} results for {expected} items", response.status_code)
        return result

    @staticmethod
    def _merge(parts: Sequence[ScoreBatchResult]) -> ScoreBatchResult:
        versions: dict[str, str] = {}
        for part in parts:
            versions.update(part.versions)
        return ScoreBatchResult(results=[r for part in parts for r in part.results], versions=versions)

    def _scorer_list(self, response: httpx.Response) -> ScorerList:
        if response.is_error:
            code, detail = _error_body(response)
            if response.status_code in _UNAVAILABLE or response.is_server_error:
                raise ServiceUnavailable(f"{response.request.url} is not ready: {response.status_code} {code}: {detail}", response.status_code)
            raise RequestRejected(response.status_code, code, detail)
        return ScorerList.model_validate_json(response.content)

    @staticmethod
    def _require_scorers(url: str, served: ScorerList, wanted: Sequence[str]) -> None:
        known = {s.name for s in served.scorers}
        missing = [name for name in wanted if name not in known]
        if missing:
            raise RequestRejected(
                422, "unknown_scorer", f"{url} does not serve {', '.join(missing)}; it serves: {', '.join(sorted(known))}"
            )

    # -- the policy for items that are not ok ---------------------------------------------

    def _apply_policy(self, item_id: str, value: float | None, status: Status, detail: str) -> float | None:
        if status is Status.OK:
            return value
        if self.on_unscored == "raise":
            raise ItemNotScored(item_id, status.value, detail)
        if self.on_unscored is None or status is Status.ERROR:
            return None
        return float(self.on_unscored)

    def rewards(self, result: ScoreBatchResult) -> list[float | None]:
        """Each item's combined reward, with the policy applied to items that are not `ok`."""
        return [
            self._apply_policy(r.id, r.reward, r.status, "; ".join(f"{n}: {c.detail}" for n, c in r.components.items() if c.detail))
            for r in result.results
        ]

    def component(self, result: ScoreBatchResult, name: str) -> list[float | None]:
        """One scorer's value for each item, unweighted, with the policy applied."""
        out = []
        for r in result.results:
            c = r.components[name]
            out.append(self._apply_policy(r.id, c.value, c.status, c.detail))
        return out


def _unreachable_at_startup(url: str, exc: TransportError) -> ServiceUnreachable:
    return ServiceUnreachable(
        f"reward service at {url} did not answer GET /v1/scorers ({exc}). Is `rewardstack serve` running there, "
        "and is the URL (scheme, host, port) right?"
    )


class RewardClient(_ClientBase):
    """Synchronous client; chunks of one call go out on a small thread pool, one connection pool shared.

    >>> client = RewardClient(["http://127.0.0.1:8000", "http://127.0.0.1:8001"])  # doctest: +SKIP
    >>> result = client.score([{"completion": "<think>…</think><answer>4</answer>", "reference": "4"}], ["math"])  # doctest: +SKIP
    >>> client.rewards(result)  # doctest: +SKIP
    [1.0]
    """

    def _client(self) -> httpx.Client:
        # A forked child (verl's and Ray's workers fork) must not share the parent's sockets.
        if self._http is None or getattr(self, "_http_pid", None) != os.getpid():
            self._http = httpx.Client(timeout=self.timeout, limits=self.limits, transport=self._transport)
            self._http_pid = os.getpid()
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self) -> RewardClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def check(self, scorers: Sequence[str] = ()) -> None:
        """Fail fast at start-up: every URL must answer and serve every scorer named."""
        for url in self.urls:
            try:
                with _mapped_transport_errors(url):
                    response = self._client().get(f"{url}/v1/scorers", headers=self._headers, timeout=self.timeout.connect or 5.0)
            except TransportError as exc:
                raise _unreachable_at_startup(url, exc) from exc
            self._require_scorers(url, self._scorer_list(response), scorers)

    def score(self, items: Sequence[ItemLike], scorers: ScorerSpec, *, deadline_s: float | None = None) -> ScoreBatchResult:
        """Score every item with every scorer; results in request order. Raises after retries are spent."""
        wire_scorers = normalize_scorers(scorers)
        chunks = self._chunks(items)
        deadline = self._deadline(deadline_s)
        self._client()  # open the pool once, before threads race to open it
        if len(chunks) == 1:
            return self._send(chunks[0], wire_scorers, deadline)
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(chunks))) as pool:
            parts = list(pool.map(lambda chunk: self._send(chunk, wire_scorers, deadline), chunks))
        return self._merge(parts)

    def _send(self, chunk: list[ScoreItem], scorers: dict[str, ScorerRequest], deadline: float | None) -> ScoreBatchResult:
        attempts = _Attempts(self._endpoints, self.retry, deadline)
        while True:
            url, wait_s = attempts.next()
            if wait_s:
                time.sleep(wait_s)
            try:
                with _mapped_transport_errors(url):
                    response = self._client().post(**self._request(attempts, url, chunk, scorers))
                result = self._read(response, len(chunk))
            except TransportError as exc:
                attempts.failed(url, exc)
                continue
            self._endpoints.mark_up(url)
            return result


class AsyncRewardClient(_ClientBase):
    """Asynchronous client: the twin of `RewardClient`, with `async def` and `httpx.AsyncClient`.

    The connection pool belongs to the event loop it was opened on; used from another loop
    (a pickled copy, a new `asyncio.run`), the client opens a fresh pool there.
    """

    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._http is None or getattr(self, "_http_loop", None) is not loop:
            self._http = httpx.AsyncClient(timeout=self.timeout, limits=self.limits, transport=self._transport)
            self._http_loop = loop
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def __aenter__(self) -> AsyncRewardClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def check(self, scorers: Sequence[str] = ()) -> None:
        """Fail fast at start-up: every URL must answer and serve every scorer named."""
        for url in self.urls:
            try:
                with _mapped_transport_errors(url):
                    response = await self._client().get(f"{url}/v1/scorers", headers=self._headers, timeout=self.timeout.connect or 5.0)
            except TransportError as exc:
                raise _unreachable_at_startup(url, exc) from exc
            self._require_scorers(url, self._scorer_list(response), scorers)

    async def score(self, items: Sequence[ItemLike], scorers: ScorerSpec, *, deadline_s: float | None = None) -> ScoreBatchResult:
        """Score every item with every scorer; results in request order. Raises after retries are spent."""
        wire_scorers = normalize_scorers(scorers)
        chunks = self._chunks(items)
        deadline = self._deadline(deadline_s)
        gate = asyncio.Semaphore(self.max_concurrency)

        async def bounded(chunk: list[ScoreItem]) -> ScoreBatchResult:
            async with gate:
                return await self._send(chunk, wire_scorers, deadline)

        tasks = [asyncio.ensure_future(bounded(chunk)) for chunk in chunks]
        try:
            parts = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:  # one chunk failed for good: stop the others rather than leak them
                task.cancel()
            raise
        return parts[0] if len(parts) == 1 else self._merge(parts)

    async def _send(self, chunk: list[ScoreItem], scorers: dict[str, ScorerRequest], deadline: float | None) -> ScoreBatchResult:
        attempts = _Attempts(self._endpoints, self.retry, deadline)
        while True:
            url, wait_s = attempts.next()
            if wait_s:
                await asyncio.sleep(wait_s)
            try:
                with _mapped_transport_errors(url):
                    response = await self._client().post(**self._request(attempts, url, chunk, scorers))
                result = self._read(response, len(chunk))
            except TransportError as exc:
                attempts.failed(url, exc)
                continue
            self._endpoints.mark_up(url)
            return result


# One client (one connection pool) per configuration for the life of a process, for the reward-function
# files of OpenRLHF and verl, which are called once per batch. It lives here, in an importable module:
# those frameworks load their reward file by path and ship it to Ray workers with cloudpickle, which
# copies the file's own globals by value, so a cache kept in the file would be copied (and a
# functools cache wrapper cannot be pickled at all). Clients pickle without their sockets.
_SHARED_CLIENTS: dict[tuple[tuple[str, ...], OnUnscored], RewardClient] = {}


def shared_client(urls: Sequence[str], on_unscored: OnUnscored) -> RewardClient:
    """The process-wide client for these URLs and unscored policy, made on first use."""
    key = (tuple(urls), on_unscored)
    if key not in _SHARED_CLIENTS:
        _SHARED_CLIENTS[key] = RewardClient(list(urls), on_unscored=on_unscored)
    return _SHARED_CLIENTS[key]
