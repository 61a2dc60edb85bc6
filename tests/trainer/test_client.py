"""The client's logic against scripted servers (`httpx.MockTransport`): retries, failover, chunking, policy.

Real-server behaviour (timeouts, a killed replica, a real 503) is in `test_client_live.py`.
"""

from __future__ import annotations

import asyncio
import json
import pickle
import subprocess
import sys
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from rewardstack import (
    AsyncRewardClient,
    ItemNotScored,
    RequestRejected,
    RetryPolicy,
    RewardClient,
    ServerError,
    ServiceTimeout,
    ServiceUnavailable,
    ServiceUnreachable,
)

FAST_RETRY = RetryPolicy(max_attempts=4, backoff_base_s=0.001, backoff_max_s=0.002, cooldown_s=30)
A, B = "http://a.test", "http://b.test"


def answer(request: httpx.Request, status: str = "ok") -> httpx.Response:
    """A well-formed ScoreBatchResult: reward = len(completion), per the request's items."""
    body = json.loads(request.content)
    results = []
    for item in body["items"]:
        value = float(len(item["completion"])) if status == "ok" else None
        components = {name: {"value": value, "status": status, "detail": "" if status == "ok" else "why"} for name in body["scorers"]}
        results.append({"id": item["id"], "reward": value, "status": status, "components": components})
    return httpx.Response(200, json={"results": results, "versions": {n: f"{n}@1" for n in body["scorers"]}})


def scripted(*responses: Callable[[httpx.Request], httpx.Response]) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """Answers the n-th request with the n-th handler, and every later one with the last."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return responses[min(len(seen) - 1, len(responses) - 1)](request)

    return httpx.MockTransport(handler), seen


def items(n: int) -> list[dict[str, str]]:
    return [{"completion": "x" * k} for k in range(n)]


def test_sync_and_async_return_typed_results_in_order() -> None:
    transport, seen = scripted(answer)
    result = RewardClient(A, transport=transport).score(items(3), ["math"])
    assert [r.reward for r in result.results] == [0.0, 1.0, 2.0]
    assert result.versions == {"math": "math@1"}

    async def run() -> list[float | None]:
        async with AsyncRewardClient(A, transport=httpx.MockTransport(answer)) as client:
            return client.rewards(await client.score(items(3), {"math": 2.0}))

    assert asyncio.run(run()) == [0.0, 1.0, 2.0]
    sent = json.loads(seen[0].content)
    assert sent["scorers"] == {"math": {"weight": 1.0, "params": {}}}
    assert [i["id"] for i in sent["items"]] == ["0", "1", "2"]


def test_big_batches_are_chunked_with_global_ids_and_stitched_in_order() -> None:
    transport, seen = scripted(answer)
    client = RewardClient(A, transport=transport, chunk_size=3, max_concurrency=2)
    result = client.score(items(10), ["math"])
    assert len(seen) == 4
    assert [r.id for r in result.results] == [str(i) for i in range(10)]
    assert client.rewards(result) == [float(i) for i in range(10)]


def test_async_chunks_run_concurrently_under_the_limit() -> None:
    in_flight = peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return answer(request)

    async def run() -> None:
        client = AsyncRewardClient(A, transport=httpx.MockTransport(handler), chunk_size=2, max_concurrency=3)
        result = await client.score(items(20), ["math"])
        assert [r.id for r in result.results] == [str(i) for i in range(20)]

    asyncio.run(run())
    assert peak == 3


def test_chunks_spread_over_urls() -> None:
    transport, seen = scripted(answer)
    RewardClient([A, B], transport=transport, chunk_size=1, max_concurrency=1).score(items(6), ["math"])
    assert Counter(r.url.host for r in seen) == {"a.test": 3, "b.test": 3}


def test_503_is_retried_honouring_retry_after() -> None:
    busy = lambda r: httpx.Response(503, json={"code": "overloaded", "detail": "full"}, headers={"Retry-After": "0.05"})  # noqa: E731
    transport, seen = scripted(busy, answer)
    client = RewardClient(A, transport=transport, retry=FAST_RETRY)
    import time

    started = time.monotonic()
    assert client.rewards(client.score(items(2), ["math"])) == [0.0, 1.0]
    assert len(seen) == 2
    assert time.monotonic() - started >= 0.05  # waited at least Retry-After, not the 1-2 ms backoff


@pytest.mark.parametrize("status", [408, 429, 500, 502, 504])
def test_infrastructure_statuses_are_retried(status: int) -> None:
    transport, seen = scripted(lambda r: httpx.Response(status, text="upstream trouble"), answer)
    RewardClient(A, transport=transport, retry=FAST_RETRY).score(items(1), ["math"])
    assert len(seen) == 2


def test_retries_end_with_the_last_error() -> None:
    transport, seen = scripted(lambda r: httpx.Response(500, json={"code": "internal", "detail": "bug"}))
    with pytest.raises(ServerError, match="500 .*internal: bug"):
        RewardClient(A, transport=transport, retry=FAST_RETRY).score(items(1), ["math"])
    assert len(seen) == FAST_RETRY.max_attempts
    transport, seen = scripted(lambda r: httpx.Response(503, json={"code": "overloaded", "detail": "full"}))
    with pytest.raises(ServiceUnavailable) as info:
        RewardClient(A, transport=transport, retry=FAST_RETRY).score(items(1), ["math"])
    assert info.value.status_code == 503


@pytest.mark.parametrize("status", [400, 401, 404, 413, 422])
def test_client_errors_are_raised_at_once_with_code_and_detail(status: int) -> None:
    transport, seen = scripted(lambda r: httpx.Response(status, json={"code": "unknown_scorer", "detail": "no scorer 'mth'"}))
    with pytest.raises(RequestRejected) as info:
        RewardClient(A, transport=transport, retry=FAST_RETRY).score(items(1), ["mth"])
    assert len(seen) == 1
    assert (info.value.status_code, info.value.code, info.value.detail) == (status, "unknown_scorer", "no scorer 'mth'")


def test_a_non_json_error_body_still_gives_a_clear_error() -> None:
    transport, _ = scripted(lambda r: httpx.Response(403, text="<html>forbidden by proxy</html>"))
    with pytest.raises(RequestRejected, match="forbidden by proxy"):
        RewardClient(A, transport=transport).score(items(1), ["math"])


def test_a_dead_url_fails_over_and_is_skipped_afterwards() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.host)
        if request.url.host == "a.test":
            raise httpx.ConnectError("connection refused", request=request)
        return answer(request)

    client = RewardClient([A, B], transport=httpx.MockTransport(handler), retry=FAST_RETRY, chunk_size=1, max_concurrency=1)
    assert client.rewards(client.score(items(6), ["math"])) == [float(i) for i in range(6)]
    assert seen.count("a.test") == 1  # tried once, then cooled down while b answers
    assert seen.count("b.test") == 6


def test_every_url_unreachable_raises_after_the_attempts() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(ServiceUnreachable, match="cannot reach http://(a|b).test"):
        RewardClient([A, B], transport=httpx.MockTransport(handler), retry=FAST_RETRY).score(items(1), ["math"])


def test_the_deadline_goes_to_the_server_and_bounds_retries() -> None:
    transport, seen = scripted(answer)
    RewardClient(A, transport=transport, deadline_s=30).score(items(1), ["math"])
    assert 29 < json.loads(seen[0].content)["deadline_s"] <= 30

    slow_retry = RetryPolicy(max_attempts=50, backoff_base_s=0.05, backoff_max_s=0.05, cooldown_s=0)
    transport, seen = scripted(lambda r: httpx.Response(503, json={"code": "overloaded", "detail": "full"}))
    with pytest.raises(ServiceTimeout, match="deadline passed while retrying"):
        RewardClient(A, transport=transport, retry=slow_retry).score(items(1), ["math"], deadline_s=0.3)
    assert len(seen) < 50


def test_a_timeout_is_a_transport_error_that_fails_over() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "a.test":
            raise httpx.ReadTimeout("slow", request=request)
        return answer(request)

    client = RewardClient([A, B], transport=httpx.MockTransport(handler), retry=FAST_RETRY)
    assert client.rewards(client.score(items(2), ["math"])) == [0.0, 1.0]


def test_a_malformed_answer_is_a_server_error_not_a_reward() -> None:
    transport, _ = scripted(lambda r: httpx.Response(200, json={"results": [], "versions": {}}))
    with pytest.raises(ServerError, match="0 results for 2 items"):
        RewardClient(A, transport=transport, retry=FAST_RETRY).score(items(2), ["math"])


@pytest.mark.parametrize(
    ("policy", "status", "expected"),
    [
        pytest.param(None, "unscorable", None, id="none-unscorable"),
        pytest.param(None, "timeout", None, id="none-timeout"),
        pytest.param(-1.0, "unscorable", -1.0, id="fallback-unscorable"),
        pytest.param(-1.0, "timeout", -1.0, id="fallback-timeout"),
        pytest.param(-1.0, "error", None, id="fallback-never-covers-an-outage"),
    ],
)
def test_policy_for_items_that_are_not_ok(policy: float | None, status: str, expected: float | None) -> None:
    transport, _ = scripted(lambda r: answer(r, status))
    client = RewardClient(A, transport=transport, on_unscored=policy)
    result = client.score(items(1), ["math"])
    assert client.rewards(result) == [expected]
    assert client.component(result, "math") == [expected]


def test_policy_raise_names_the_item_and_why() -> None:
    transport, _ = scripted(lambda r: answer(r, "timeout"))
    client = RewardClient(A, transport=transport, on_unscored="raise")
    with pytest.raises(ItemNotScored, match="item '0' not scored: timeout"):
        client.rewards(client.score(items(1), ["math"]))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"urls": []}, {"urls": "localhost:8000"}, {"urls": A, "chunk_size": 0}, {"urls": A, "on_unscored": "zero"}, {"urls": A, "deadline_s": 0},
        {"urls": A, "deadline_s": float("nan")}, {"urls": A, "deadline_s": float("inf")}, {"urls": A, "on_unscored": float("nan")},
        {"urls": A, "on_unscored": True},
    ],
)
def test_bad_configuration_is_refused_up_front(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        RewardClient(**kwargs)


def test_scorers_as_a_compact_string_are_parsed_and_nonsense_refused() -> None:
    transport, requests = scripted(answer)
    RewardClient(A, transport=transport).score(items(1), "math:0.5")
    assert json.loads(requests[-1].content)["scorers"] == {"math": {"weight": 0.5, "params": {}}}
    with pytest.raises(ValueError, match="weight after ':'"):
        RewardClient(A, transport=transport).score(items(1), "math:heavy")


def test_clients_pickle_after_use_and_keep_their_configuration() -> None:
    transport, _ = scripted(answer)
    client = RewardClient([A, B], transport=transport, chunk_size=7, on_unscored=0.5, api_token="secret-token")
    client.score(items(1), ["math"])
    copy = pickle.loads(pickle.dumps(client))
    assert (copy.urls, copy.chunk_size, copy.on_unscored, copy._http) == ((A, B), 7, 0.5, None)
    async_copy = pickle.loads(pickle.dumps(AsyncRewardClient(A, deadline_s=3)))
    assert async_copy.deadline_s == 3


def test_bearer_token_is_sent() -> None:
    transport, seen = scripted(answer)
    RewardClient(A, transport=transport, api_token="secret-token").score(items(1), ["math"])
    assert seen[0].headers["authorization"] == "Bearer secret-token"


def test_importing_rewardstack_needs_only_the_base_install() -> None:
    code = (
        "import sys, rewardstack, rewardstack.client, rewardstack.errors, rewardstack.cli, rewardstack.verl, rewardstack.trl\n"
        "heavy = [m for m in ('fastapi', 'starlette', 'uvicorn', 'torch', 'transformers', 'trl', 'sympy', 'math_verify')"
        " if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_non_finite_call_deadline_is_refused_before_sending() -> None:
    transport, requests = scripted(answer)
    with pytest.raises(ValueError, match="deadline_s"):
        RewardClient(A, transport=transport).score(items(1), ["math"], deadline_s=float("nan"))
    assert requests == []
