"""The client against real gateways: a real 503 retried, start-up checks, deadlines, policies."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from fastapi import FastAPI

from tests.servers import free_port, running_server
from tests.trainer.conftest import gateway_app
from rewardstack import ItemNotScored, RequestRejected, RetryPolicy, RewardClient, ServiceUnreachable


def test_scores_on_a_real_gateway_and_applies_the_policy(gateway_url: str) -> None:
    with RewardClient(gateway_url, chunk_size=3) as client:
        result = client.score([{"completion": c} for c in ["1", "2", "none", "sleep:5", "5", "raise", "7"]], {"number": 1.0})
        assert [r.id for r in result.results] == [str(i) for i in range(7)]
        assert [r.status.value for r in result.results] == ["ok", "ok", "unscorable", "timeout", "ok", "error", "ok"]
        assert client.rewards(result) == [1.0, 2.0, None, None, 5.0, None, 7.0]
        assert result.versions == {"number": "number@3"}
    fallback = RewardClient(gateway_url, on_unscored=-1.0)
    assert fallback.rewards(result) == [1.0, 2.0, -1.0, -1.0, 5.0, None, 7.0]  # an `error` is never given a number
    with pytest.raises(ItemNotScored, match="item '2' not scored: unscorable"):
        RewardClient(gateway_url, on_unscored="raise").rewards(result)


def test_the_call_deadline_reaches_the_server(gateway_url: str) -> None:
    # the per-item deadline is 1 s; a 0.5 s call deadline makes the server stop earlier, per item
    started = time.monotonic()
    result = RewardClient(gateway_url).score([{"completion": "sleep:0.8"}, {"completion": "3"}], ["number"], deadline_s=0.5)
    assert [r.status.value for r in result.results] in (["timeout", "ok"], ["timeout", "timeout"])
    assert time.monotonic() - started < 0.5 + 5.0  # answered, not abandoned by the client


def test_check_names_an_unreachable_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServiceUnreachable, match=f"reward service at {url} did not answer GET /v1/scorers"):
        RewardClient(url).check(["number"])


def test_check_names_a_scorer_the_service_does_not_serve(gateway_url: str) -> None:
    RewardClient(gateway_url).check(["number", "chars"])
    with pytest.raises(RequestRejected, match="does not serve nosuch; it serves: .*number"):
        RewardClient(gateway_url).check(["number", "nosuch"])


def test_an_unknown_scorer_is_rejected_once_not_retried(gateway_url: str) -> None:
    with pytest.raises(RequestRejected) as info:
        RewardClient(gateway_url).score([{"completion": "1"}], ["nosuch"])
    assert (info.value.status_code, info.value.code) == (422, "unknown_scorer")


class RecordingTransport(httpx.HTTPTransport):
    """The real transport, noting each response's status."""

    def __init__(self) -> None:
        super().__init__()
        self.statuses: list[int] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        self.statuses.append(response.status_code)
        return response


@pytest.fixture
def small_queue_gateway() -> tuple[FastAPI, str]:
    app = gateway_app(max_queued_calls=8)
    with running_server(app) as url:
        yield app, url


def test_a_full_gateway_answers_503_and_the_client_retries_until_it_drains(small_queue_gateway: tuple[FastAPI, str]) -> None:
    app, url = small_queue_gateway
    # 8 slow calls on the one worker: it takes them in two jobs of 4, so 4 wait in the queue for ~2.4 s
    filler = threading.Thread(
        target=lambda: httpx.post(f"{url}/v1/score", json={"items": [{"completion": "sleep:0.6"}] * 8, "scorers": {"number": {}}}, timeout=60)
    )
    filler.start()
    deadline = time.monotonic() + 30
    while app.state.pool.stats().queued_calls < 4:  # wait until the filler holds the queue
        assert time.monotonic() < deadline and filler.is_alive(), "the filler request never reached the pool"
        time.sleep(0.005)
    transport = RecordingTransport()
    client = RewardClient(url, transport=transport, retry=RetryPolicy(max_attempts=20, backoff_base_s=0.05, backoff_max_s=0.5))
    result = client.score([{"completion": str(i)} for i in range(6)], ["number"])  # 4 queued + 6 > 8: 503 until it drains
    filler.join(timeout=60)
    assert client.rewards(result) == [float(i) for i in range(6)]
    assert transport.statuses[0] == 503 and transport.statuses[-1] == 200


def test_a_forked_child_opens_its_own_connections(gateway_url: str) -> None:
    import multiprocessing

    client = RewardClient(gateway_url)
    client.score([{"completion": "1"}], ["number"])  # the parent's pool now holds a live connection
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    child = ctx.Process(target=lambda: out.put(client.rewards(client.score([{"completion": "9"}], ["number"]))))
    child.start()
    assert out.get(timeout=60) == [9.0]
    child.join(timeout=30)
    assert client.rewards(client.score([{"completion": "2"}], ["number"])) == [2.0]  # the parent's pool still works
