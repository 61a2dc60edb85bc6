"""The model server's HTTP plumbing, shared with the gateway and the sandbox (`rewardstack.services.web`), on real
uvicorn servers with tiny random models: probes while loading and after a failed load, the bearer
token, the streaming body-size limit, and the Prometheus metrics."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from rewardstack.services.contract import Status
from rewardstack.services.model_server import served
from rewardstack.services.model_server.app import create_model_app
from rewardstack.services.model_server.client import HttpModelClient, ModelUnavailable
from rewardstack.services.model_server.config import ModelServerSettings, ModelSpec
from rewardstack.services.model_server.schema import ModelItem
from rewardstack.services.scorers.neural import NeuralParams, open_neural_scorers
from rewardstack.services.scorers.types import Sample, ScoringContext
from rewardstack.services.settings import Settings
from tests.servers import running_server
from tests.services.model_server.fixtures import MAX_LENGTH, serving, tiny_specs, wait_ready

TOKEN = "models-token-0123456789"
ITEM = {"prompt": "2+2?", "response": "4"}


def test_probes_answer_while_the_models_load_and_v1_waits(monkeypatch: pytest.MonkeyPatch, reward_path: Path, guard_path: Path) -> None:
    """Loading is held at a gate (standing in for a multi-gigabyte load) to look at the server meanwhile."""
    gate, real_load = threading.Event(), served.load_backends

    def gated_load(specs: Mapping[str, ModelSpec]) -> object:
        assert gate.wait(60), "the test never opened the gate"
        return real_load(specs)

    monkeypatch.setattr(served, "load_backends", gated_load)
    try:
        with running_server(create_model_app(ModelServerSettings(), specs=tiny_specs(reward_path, guard_path))) as url:
            assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
            ready = httpx.get(f"{url}/readyz")
            assert ready.status_code == 503 and ready.json() == {"status": "loading", "models": ["helpfulness", "safety"]}
            early = httpx.post(f"{url}/v1/models/helpfulness/score", json={"items": [ITEM]})
            assert early.status_code == 503 and early.headers["retry-after"] == "5"
            assert early.json() == {"code": "not_ready", "detail": "models loading; retry shortly"}
            assert httpx.get(f"{url}/metrics").status_code == 200
            gate.set()
            assert wait_ready(url).json() == {"status": "ready", "models": ["helpfulness", "safety"]}
            assert httpx.post(f"{url}/v1/models/helpfulness/score", json={"items": [ITEM]}, timeout=60).status_code == 200
    finally:
        gate.set()


def test_a_failed_load_is_reported_by_both_probes(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    specs = {"rm": ModelSpec(kind="reward", path=tmp_path / "empty")}
    with running_server(create_model_app(ModelServerSettings(), specs=specs)) as url:
        ready = wait_ready(url)
        assert ready.status_code == 503 and ready.json()["status"] == "failed"
        assert "model 'rm' (reward at" in ready.json()["detail"]
        live = httpx.get(f"{url}/healthz")
        assert live.status_code == 503 and live.json()["status"] == "failed"  # restart me: I will never be ready
        refused = httpx.post(f"{url}/v1/models/rm/score", json={"items": [ITEM]})
        assert refused.status_code == 503 and refused.json()["code"] == "not_ready"
        assert refused.json()["detail"].startswith("models failed: ValueError: model 'rm'")


@pytest.fixture(scope="module")
def guarded(reward_path: Path, guard_path: Path) -> Iterator[str]:
    settings = ModelServerSettings(api_token=SecretStr(TOKEN), max_body_bytes=4096)
    with serving(settings, tiny_specs(reward_path, guard_path)) as url:
        yield url


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-the-token-at-all"}, {"Authorization": f"Basic {TOKEN}"}, {"Authorization": TOKEN}],
    ids=["none", "wrong", "wrong-scheme", "no-scheme"],
)
@pytest.mark.parametrize(("method", "path"), [("GET", "/v1/models"), ("POST", "/v1/models/safety/score")])
def test_v1_needs_the_token(guarded: str, headers: dict[str, str], method: str, path: str) -> None:
    response = httpx.request(method, f"{guarded}{path}", json={"items": [ITEM]}, headers=headers)
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"code": "unauthorized",
                               "detail": "missing or wrong bearer token: send `Authorization: Bearer <REWARDSTACK_MODELS_API_TOKEN>`"}


def test_probes_and_metrics_stay_open_and_the_token_lets_v1_through(guarded: str) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        assert httpx.get(f"{guarded}{path}").status_code == 200, path
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.get(f"{guarded}/v1/models", headers=auth).status_code == 200
    scored = httpx.post(f"{guarded}/v1/models/safety/score", json={"items": [ITEM]}, headers=auth, timeout=60)
    assert scored.status_code == 200 and scored.json()["results"][0]["status"] == "ok"


def test_the_gateway_side_sends_the_token(guarded: str) -> None:
    """`HttpModelClient` with the token scores; without it the 401 is an `error`, never a number."""

    async def go() -> None:
        with_token = HttpModelClient(guarded, api_token=SecretStr(TOKEN))
        without = HttpModelClient(guarded)
        try:
            (outcome,) = await with_token.score("helpfulness", [ModelItem(**ITEM)])
            assert outcome.score is not None
            with pytest.raises(ModelUnavailable, match="answered 401"):
                await without.score("helpfulness", [ModelItem(**ITEM)])
        finally:
            await with_token.aclose()
            await without.aclose()
        async with open_neural_scorers(Settings(models_url=guarded, models_api_token=SecretStr(TOKEN))) as scorers:
            context = ScoringContext(task_deadline_s=10.0)
            for scorer in scorers:
                (scored,) = await scorer.score_batch([Sample(completion="4", prompt="2+2?")], NeuralParams(), context)
                assert scored.status is Status.OK, (scorer.name, scored)

    asyncio.run(go())


def test_the_token_is_read_from_the_environment_by_both_sides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REWARDSTACK_MODELS_API_TOKEN", TOKEN)
    assert ModelServerSettings().api_token == Settings().models_api_token == SecretStr(TOKEN)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_the_limit_is_refused_as_it_streams(guarded: str, chunked: bool) -> None:
    body = httpx.Request("POST", "/", json={"items": [{"prompt": "p" * 5000, "response": "r"}]}).content
    content: bytes | Iterator[bytes] = iter([body[i : i + 1000] for i in range(0, len(body), 1000)]) if chunked else body
    response = httpx.post(f"{guarded}/v1/models/safety/score", content=content,
                          headers={"Authorization": f"Bearer {TOKEN}", "content-type": "application/json"})
    assert response.status_code == 413
    assert response.json() == {"code": "request_too_large", "detail": "request body: over 4096 bytes (REWARDSTACK_MODELS_MAX_BODY_BYTES)"}


def metric_samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{url}/metrics").text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_count_requests_items_passes_tokens_and_queue(reward_path: Path, guard_path: Path) -> None:
    with serving(ModelServerSettings(max_items_per_request=3), tiny_specs(reward_path, guard_path)) as url:
        helpful = [ITEM, {"prompt": "q", "response": "a longer answer " * 3}, {"prompt": "q", "response": "x" * (MAX_LENGTH * 2)}]
        assert httpx.post(f"{url}/v1/models/helpfulness/score", json={"items": helpful}, timeout=60).status_code == 200
        assert httpx.post(f"{url}/v1/models/safety/score", json={"items": [ITEM]}, timeout=60).status_code == 200
        assert httpx.post(f"{url}/v1/models/safety/score", json={"items": [ITEM] * 4}).status_code == 413
        assert httpx.post(f"{url}/v1/models/nope/score", json={"items": [ITEM]}).status_code == 404
        m = metric_samples(url)

    def get(name: str, **labels: str) -> float:
        return m.get((name, tuple(sorted(labels.items()))), 0.0)

    assert get("rewardstack_model_requests_total", model="helpfulness", outcome="ok") == 1
    assert get("rewardstack_model_requests_total", model="safety", outcome="ok") == 1
    assert get("rewardstack_model_requests_total", model="safety", outcome="too_large") == 1
    assert not any(labels and dict(labels).get("model") == "nope" for _, labels in m), "request paths never become labels"
    assert get("rewardstack_model_items_total", model="helpfulness", outcome="ok") == 2
    assert get("rewardstack_model_items_total", model="helpfulness", outcome="too_long") == 1
    assert get("rewardstack_model_items_total", model="safety", outcome="ok") == 1
    for model, forwarded in (("helpfulness", 2), ("safety", 1)):  # a too_long item never reaches a pass
        passes = get("rewardstack_model_batch_size_count", model=model)
        assert passes >= 1 and get("rewardstack_model_batch_size_sum", model=model) == forwarded
        assert get("rewardstack_model_forward_seconds_count", model=model) == passes
        assert get("rewardstack_model_forward_seconds_sum", model=model) > 0
        real, padded = get("rewardstack_model_real_tokens_total", model=model), get("rewardstack_model_padded_tokens_total", model=model)
        assert 0 < real <= padded
        assert get("rewardstack_model_failed_passes_total", model=model) == 0
        assert ("rewardstack_model_queue_depth", (("model", model),)) in m and get("rewardstack_model_queue_depth", model=model) == 0
    # one request's items are queued together, so they share a pass; a packed pass computes no padding
    assert get("rewardstack_model_batch_size_count", model="helpfulness") == 1
    assert get("rewardstack_model_padded_tokens_total", model="helpfulness") == get("rewardstack_model_real_tokens_total", model="helpfulness")


def test_each_app_has_its_own_registry(reward_path: Path, guard_path: Path) -> None:
    one = create_model_app(ModelServerSettings(), specs=tiny_specs(reward_path, guard_path))
    two = create_model_app(ModelServerSettings(), specs=tiny_specs(reward_path, guard_path))
    one.state.metrics.requests.labels("helpfulness", "ok").inc()
    assert b'rewardstack_model_requests_total{model="helpfulness",outcome="ok"} 1.0' in one.state.metrics.render()
    assert b"rewardstack_model_requests_total{" not in two.state.metrics.render()
