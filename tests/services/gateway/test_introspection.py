"""`GET /v1/scorers`, `/healthz`, `/readyz`, `/metrics` and the OpenAPI docs."""

from __future__ import annotations

import httpx


def test_scorers_lists_names_versions_params_and_scale(client: httpx.Client) -> None:
    scorers = {s["name"]: s for s in client.get("/v1/scorers").json()["scorers"]}
    number = scorers["number"]
    assert number["version"] == "number@3"
    assert number["params"] == [{"name": "scale", "type": "float", "default": 1.0, "description": "multiplies the value"}]
    assert "Value = the completion read as a float" in number["description"]


def test_health_and_readiness(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready"
    assert ready["workers"] == 2
    assert "number" in ready["scorers"]


def test_metrics_count_outcomes_and_expose_the_pool(client: httpx.Client) -> None:
    client.post("/v1/score", json={"items": [{"completion": "1"}, {"completion": "none"}], "scorers": {"number": {}}})
    text = client.get("/metrics").text
    assert 'rewardstack_scorer_outcomes_total{scorer="number",status="ok"}' in text
    assert 'rewardstack_scorer_outcomes_total{scorer="number",status="unscorable"}' in text
    assert 'rewardstack_scorer_latency_seconds_bucket{le="0.001",scorer="number"}' in text
    for name in ("rewardstack_pool_size 2.0", "rewardstack_queue_depth", "rewardstack_worker_restarts_total"):
        assert name in text


def test_openapi_docs_are_served(client: httpx.Client) -> None:
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert "/v1/score" in spec["paths"] and "/v1/scorers" in spec["paths"]
