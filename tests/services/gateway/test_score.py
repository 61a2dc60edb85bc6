"""`POST /v1/score` on a real server: the contract, the combination rule, limits and errors."""

from __future__ import annotations

import httpx
import pytest


def score(client: httpx.Client, completions: list[str], scorers: dict | None = None, **extra: object) -> httpx.Response:
    body = {"items": [{"completion": c} for c in completions], "scorers": scorers or {"number": {}}, **extra}
    return client.post("/v1/score", json=body)


def test_results_keep_request_order_and_default_ids(client: httpx.Client) -> None:
    response = score(client, [str(i) for i in range(50)])
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["id"] for r in results] == [str(i) for i in range(50)]
    assert [r["reward"] for r in results] == [float(i) for i in range(50)]
    assert all(r["status"] == "ok" for r in results)


def test_reward_is_the_weighted_sum_and_components_are_reported(client: httpx.Client) -> None:
    body = {
        "items": [{"id": "a", "completion": "2", "group_id": "g", "task": "t", "metadata": {"k": 1}}],
        "scorers": {"number": {"weight": 0.5, "params": {"scale": 3}}, "chars": {"weight": 2}},
    }
    data = client.post("/v1/score", json=body).json()
    (result,) = data["results"]
    assert result["id"] == "a"
    assert result["reward"] == pytest.approx(0.5 * 6 + 2 * 1)
    assert result["components"]["number"]["value"] == 6
    assert result["components"]["chars"]["status"] == "ok"
    assert result["components"]["number"]["latency_ms"] >= 0
    assert data["versions"] == {"number": "number@3", "chars": "chars@1"}


def test_a_non_ok_weighted_component_nulls_the_reward(client: httpx.Client) -> None:
    data = score(client, ["none", "raise", "1"], {"number": {}, "chars": {"weight": 1}}).json()
    unscorable, error, ok = data["results"]
    assert (unscorable["reward"], unscorable["status"]) == (None, "unscorable")
    assert (error["reward"], error["status"]) == (None, "error")
    assert "ValueError: boom" in error["components"]["number"]["detail"]
    assert (ok["reward"], ok["status"]) == (2.0, "ok")


def test_a_zero_weight_component_does_not_gate_the_reward(client: httpx.Client) -> None:
    data = score(client, ["none"], {"number": {"weight": 0}, "chars": {"weight": 1}}).json()
    (result,) = data["results"]
    assert result["status"] == "ok"
    assert result["reward"] == 4.0
    assert result["components"]["number"]["status"] == "unscorable"


def test_a_crashed_worker_is_an_error_not_zero(client: httpx.Client) -> None:
    (result,) = score(client, ["exit"]).json()["results"]
    assert result["reward"] is None
    assert result["status"] == "error"
    assert "died" in result["components"]["number"]["detail"]


def test_unknown_scorer_lists_the_known_ones(client: httpx.Client) -> None:
    response = score(client, ["1"], {"nope": {}})
    assert response.status_code == 422
    assert response.json()["code"] == "unknown_scorer"
    assert "scorers.nope" in response.json()["detail"]
    assert "number" in response.json()["detail"] and "chars" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"items": [{}], "scorers": {"number": {}}}, "items[0].completion", id="missing-completion"),
        pytest.param({"items": [], "scorers": {"number": {}}}, "items", id="no-items"),
        pytest.param({"items": [{"completion": "1"}], "scorers": {}}, "scorers", id="no-scorers"),
        pytest.param({"items": [{"completion": "1", "colour": 1}], "scorers": {"number": {}}}, "items[0].colour", id="unknown-field"),
        pytest.param({"items": [{"completion": 5}], "scorers": {"number": {}}}, "items[0].completion", id="wrong-type"),
        pytest.param({"items": [{"completion": "1"}], "scorers": {"number": {"weight": "x"}}}, "scorers.number.weight", id="bad-weight"),
        pytest.param({"items": [{"completion": "1"}], "scorers": {"number": {"params": {"scale": "big"}}}}, "scorers.number.params.scale", id="bad-param"),
        pytest.param({"items": [{"completion": "1"}], "scorers": {"number": {"params": {"colour": 1}}}}, "scorers.number.params.colour", id="unknown-param"),
        pytest.param({"items": [{"completion": "1"}], "scorers": {"number": {"weight": 0}}}, "scorers", id="all-weights-zero"),
        pytest.param({"items": [{"completion": "1"}], "scorers": {"number": {}}, "deadline_s": -1}, "deadline_s", id="negative-deadline"),
    ],
)
def test_malformed_requests_name_the_field(client: httpx.Client, body: dict, field: str) -> None:
    response = client.post("/v1/score", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_request"
    assert field in response.json()["detail"]


def test_bad_params_name_the_field_once(client: httpx.Client) -> None:
    body = {"items": [{"completion": "1"}], "scorers": {"number": {"params": {"scale": "big"}}}}
    detail = client.post("/v1/score", json=body).json()["detail"]
    assert detail.startswith("scorers.number.params.scale: Input should be a valid number")
    assert detail.count("scorers.number.params") == 1


def test_invalid_json_is_a_400(client: httpx.Client) -> None:
    response = client.post("/v1/score", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_json"
    assert "line 1 column 2" in response.json()["detail"]


def test_batch_deadline_times_out_what_is_not_done(client: httpx.Client) -> None:
    # 6 sleepy items on 2 workers take about 3 x 0.6 s; a 1 s budget cannot finish them all.
    response = score(client, ["sleep:0.6"] * 6, deadline_s=1.0)
    statuses = [r["status"] for r in response.json()["results"]]
    assert "timeout" in statuses
    assert "ok" in statuses
    timed_out = [r for r in response.json()["results"] if r["status"] == "timeout"]
    assert all(r["reward"] is None for r in timed_out)
