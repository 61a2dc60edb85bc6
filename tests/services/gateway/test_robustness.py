"""Nothing can hang the gateway: runaway scorers are killed at the deadline, the pool refills,
concurrent requests share the pool fairly, and a full queue answers 503."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator

import httpx
import pytest

from rewardstack.services.gateway.app import create_app
from tests.servers import running_server
from tests.services.gateway.conftest import TEST_DEADLINE_S, gateway_settings
from tests.services.gateway.scorers_for_tests import Number


def score(url: str, completions: list[str], **extra: object) -> httpx.Response:
    body = {"items": [{"completion": c} for c in completions], "scorers": {"number": {}}, **extra}
    return httpx.post(url + "/v1/score", json=body, timeout=60)


def wait_for_full_pool(url: str, size: int, within_s: float = 30) -> None:
    deadline = time.monotonic() + within_s
    while httpx.get(url + "/readyz").json()["workers_alive"] != size:
        assert time.monotonic() < deadline, "the pool did not return to full size"
        time.sleep(0.05)


def test_runaway_scorers_time_out_while_others_are_served(gateway_url: str) -> None:
    with concurrent.futures.ThreadPoolExecutor(2) as executor:
        started = time.monotonic()
        runaway = executor.submit(score, gateway_url, ["spin", "spin", "1"])
        time.sleep(0.2)  # both workers are now spinning
        ordinary = score(gateway_url, ["4"])
        ordinary_s = time.monotonic() - started
        response = runaway.result()
        runaway_s = time.monotonic() - started
    assert ordinary.json()["results"][0]["reward"] == 4.0
    spin_a, spin_b, fine = response.json()["results"]
    assert spin_a["status"] == spin_b["status"] == "timeout"
    assert spin_a["reward"] is None
    assert "killed after" in spin_a["components"]["number"]["detail"]
    assert fine["reward"] == 1.0
    # the ordinary request waited at most for the kill; the runaway one is bounded by deadline + 1 s
    assert ordinary_s < TEST_DEADLINE_S + 5
    assert runaway_s < TEST_DEADLINE_S + 5
    wait_for_full_pool(gateway_url, 2)
    metrics = httpx.get(gateway_url + "/metrics").text
    assert "rewardstack_worker_timeouts_total" in metrics


def test_a_big_request_does_not_starve_a_small_one(gateway_url: str) -> None:
    with concurrent.futures.ThreadPoolExecutor(1) as executor:
        big = executor.submit(score, gateway_url, ["sleep:0.05"] * 120)  # ~3 s of work on 2 workers
        time.sleep(0.3)
        small = score(gateway_url, ["7"])
        assert small.json()["results"][0]["reward"] == 7.0
        assert not big.done(), "the small request should be served between the big one's items"
        assert all(r["status"] == "ok" for r in big.result().json()["results"])


@pytest.fixture(scope="module")
def tight_url() -> Iterator[str]:
    settings = gateway_settings(scorer_workers=1, max_queued_calls=10, worker_max_memory_mb=128, worker_max_tasks=50)
    with running_server(create_app(settings, extra_cpu_scorers=[Number()])) as url:
        yield url


def test_a_full_queue_answers_503_with_retry_after(tight_url: str) -> None:
    response = score(tight_url, ["1"] * 11)
    assert response.status_code == 503
    assert response.json()["code"] == "overloaded"
    assert response.headers["retry-after"] == "1"
    assert score(tight_url, ["1"] * 10).status_code == 200


def test_workers_are_recycled_by_memory_and_by_task_count(tight_url: str) -> None:
    def restarts() -> float:
        line = next(l for l in httpx.get(tight_url + "/metrics").text.splitlines() if l.startswith("rewardstack_worker_restarts_total"))
        return float(line.split()[-1])

    before = restarts()
    assert score(tight_url, ["hoard:200"]).json()["results"][0]["status"] == "ok"
    wait_for_full_pool(tight_url, 1)
    assert restarts() == before + 1  # resident memory passed 128 MB
    for _ in range(6):
        assert score(tight_url, ["1"] * 10).status_code == 200
    wait_for_full_pool(tight_url, 1)
    assert restarts() >= before + 2  # 50 calls per worker


def test_memory_bomb_is_unscorable_not_a_crash(tight_url: str) -> None:
    # the address-space limit (4 x 128 MB) turns a huge allocation into MemoryError
    (result,) = score(tight_url, ["hoard:4000"]).json()["results"]
    assert result["status"] == "unscorable"
    assert "memory" in result["components"]["number"]["detail"]
    wait_for_full_pool(tight_url, 1)
    assert score(tight_url, ["2"]).json()["results"][0]["reward"] == 2.0
