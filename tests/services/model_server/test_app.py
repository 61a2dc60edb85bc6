"""The model server over HTTP, on a real uvicorn server with tiny random models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rewardstack.services.model_server.backends.reward import RewardBackend
from rewardstack.services.model_server.schema import ModelItem
from tests.services.model_server.fixtures import MAX_LENGTH


@pytest.fixture
def client(tiny_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=tiny_server, timeout=60) as c:
        yield c


def test_probes_and_model_list(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready", "models": ["helpfulness", "safety"]}
    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    assert models["helpfulness"]["kind"] == "reward" and models["safety"]["kind"] == "guard"
    assert models["helpfulness"]["device"] == "cpu" and models["helpfulness"]["dtype"] == "float32"
    assert models["safety"]["max_length"] == MAX_LENGTH
    assert "P(safe)" in models["safety"]["scale"]


def test_scores_match_the_model_called_directly(client: httpx.Client, reward_path: Path) -> None:
    items = [{"prompt": "2+2?", "response": "4"}, {"prompt": None, "response": "just text"}]
    body = client.post("/v1/models/helpfulness/score", json={"items": items}).json()
    direct = RewardBackend(reward_path, max_length=MAX_LENGTH)
    expected = [o.score for o in direct.forward(direct.prepare([ModelItem(**i) for i in items]))]  # type: ignore[arg-type]
    assert body["model"] == "helpfulness"
    assert [r["status"] for r in body["results"]] == ["ok", "ok"]
    assert [r["score"] for r in body["results"]] == pytest.approx(expected, abs=1e-4)


def test_guard_scores_carry_class_probabilities(client: httpx.Client) -> None:
    body = client.post("/v1/models/safety/score", json={"items": [{"prompt": "hi", "response": "hello"}]}).json()
    (result,) = body["results"]
    assert 0.0 <= result["score"] <= 1.0
    assert set(result["outputs"]) == {"safe", "unsafe", "label_mass"}


def test_a_response_too_long_for_the_window_is_reported_not_cut(client: httpx.Client) -> None:
    items = [{"prompt": "q", "response": "x" * (MAX_LENGTH * 2)}, {"prompt": "q", "response": "fits"}]
    results = client.post("/v1/models/helpfulness/score", json={"items": items}).json()["results"]
    assert [r["status"] for r in results] == ["too_long", "ok"]
    assert results[0]["score"] is None


@pytest.mark.parametrize(
    ("path", "body", "status", "code", "needle"),
    [
        pytest.param("/v1/models/nope/score", {"items": [{"response": "a"}]}, 404, "unknown_model", "no model 'nope'; served: helpfulness, safety", id="unknown-model"),
        pytest.param("/v1/models/safety/score", {"items": []}, 422, "invalid_request", "items: List should have at least 1 item", id="no-items"),
        pytest.param("/v1/models/safety/score", {"items": [{"response": "a", "temperature": 1}]}, 422, "invalid_request", "items[0].temperature: Extra inputs", id="unknown-field"),
        pytest.param("/v1/models/safety/score", {"items": [{"prompt": "a"}]}, 422, "invalid_request", "items[0].response: Field required", id="missing-response"),
        pytest.param("/v1/models/safety/score", [1], 422, "invalid_request", "body: Input should be a valid dictionary", id="not-an-object"),
        pytest.param("/v1/models/safety/score", {"items": [{"response": "a"}] * 65}, 413, "request_too_large", "items: 65 items; at most 64", id="too-many-items"),
        pytest.param("/v1/models/safety/score", {"items": [{"response": "a" * 5001}]}, 413, "request_too_large", "items[0].response: 5001 characters", id="response-too-long"),
    ],
)
def test_bad_requests_name_the_problem(client: httpx.Client, path: str, body: object, status: int, code: str, needle: str) -> None:
    """The body is the gateway's and the sandbox's: `{"code", "detail"}`, the detail naming the field."""
    response = client.post(path, json=body)
    assert response.status_code == status
    assert set(response.json()) == {"code", "detail"} and response.json()["code"] == code
    assert needle in response.json()["detail"]


@pytest.mark.parametrize(("method", "path", "status", "code"), [("GET", "/v1/nothing", 404, "not_found"), ("GET", "/v1/models/safety/score", 405, "method_not_allowed")])
def test_routing_errors_use_the_same_body(client: httpx.Client, method: str, path: str, status: int, code: str) -> None:
    response = client.request(method, path)
    assert response.status_code == status and response.json()["code"] == code


def test_concurrent_requests_each_get_their_own_scores(tiny_server: str, reward_path: Path) -> None:
    """Many requests in flight share passes; every item's score still comes back to its own request."""
    import asyncio

    requests = [[{"prompt": f"request {r}", "response": "answer " * (1 + (r * 7 + i * 3) % 11)} for i in range(1 + r % 4)] for r in range(12)]

    async def send_all() -> list[list[float]]:
        async with httpx.AsyncClient(base_url=tiny_server, timeout=120) as client:
            responses = await asyncio.gather(*(client.post("/v1/models/helpfulness/score", json={"items": items}) for items in requests))
        return [[r["score"] for r in response.json()["results"]] for response in responses]

    direct = RewardBackend(reward_path, max_length=MAX_LENGTH)
    expected = [[direct.forward(direct.prepare([ModelItem(**i)]))[0].score for i in items] for items in requests]  # type: ignore[arg-type]
    for got, want in zip(asyncio.run(send_all()), expected, strict=True):
        assert got == pytest.approx(want, abs=1e-4)
