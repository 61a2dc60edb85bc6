"""One contract for the REST API and the client: weights, non-finite numbers, unreadable bodies, duplicate ids."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from rewardstack.client import normalize_scorers
from rewardstack.services.contract import MAX_NESTING, ScoreBatch, ScorerRequest

JSON = {"content-type": "application/json"}


def post_raw(client: httpx.Client, body: str | bytes, url: str = "/v1/score") -> httpx.Response:
    return client.post(url, content=body.encode() if isinstance(body, str) else body, headers=JSON)


def test_the_weight_shorthand_is_accepted_by_the_api_as_by_the_client(client: httpx.Client) -> None:
    short = client.post("/v1/score", json={"items": [{"completion": "3"}], "scorers": {"number": 2.0, "chars": 0}})
    long = client.post("/v1/score", json={"items": [{"completion": "3"}], "scorers": {"number": {"weight": 2.0}, "chars": {"weight": 0}}})
    assert short.status_code == 200, short.text
    def values(response: httpx.Response) -> list[tuple]:
        return [(r["reward"], {n: c["value"] for n, c in r["components"].items()}) for r in response.json()["results"]]

    assert values(short) == values(long) == [(6.0, {"number": 3.0, "chars": 1.0})]
    assert normalize_scorers({"number": 2.0, "chars": 0}) == {"number": ScorerRequest(weight=2.0), "chars": ScorerRequest(weight=0)}


@pytest.mark.parametrize("weight", [True, False, "1", "1.0", None, [1]], ids=repr)
def test_booleans_and_strings_are_not_weights_in_either(client: httpx.Client, weight: object) -> None:
    for scorers in ({"number": weight}, {"number": {"weight": weight}}):
        response = client.post("/v1/score", json={"items": [{"completion": "3"}], "scorers": scorers})
        assert response.status_code == 422, response.text
        assert "scorers.number" in response.json()["detail"]
        with pytest.raises(ValidationError):
            normalize_scorers(scorers)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param('{"items": [{"completion": "1"}], "scorers": {"number": {"weight": NaN}}}', "scorers.number.weight", id="nan-weight"),
        pytest.param('{"items": [{"completion": "1"}], "scorers": {"number": Infinity}}', "scorers.number", id="inf-shorthand"),
        pytest.param('{"items": [{"completion": "1"}], "scorers": {"number": {"weight": 1e400}}}', "scorers.number.weight", id="overflow-weight"),
        pytest.param('{"items": [{"completion": "1"}], "scorers": {"number": {}}, "deadline_s": NaN}', "deadline_s", id="nan-deadline"),
        pytest.param('{"items": [{"completion": "1"}], "scorers": {"number": {}}, "deadline_s": Infinity}', "deadline_s", id="inf-deadline"),
        pytest.param('{"items": [{"completion": "1", "reference": [1, -Infinity]}], "scorers": {"number": {}}}', "reference[1]", id="inf-reference"),
        pytest.param('{"items": [{"completion": "1", "metadata": {"completion_tokens": NaN}}], "scorers": {"number": {}}}',
                     "metadata.completion_tokens", id="nan-metadata"),
        pytest.param('{"items": [{"completion": "1"}], "scorers": {"number": {"params": {"scale": NaN}}}}', "params.scale", id="nan-param"),
    ],
)
def test_nan_and_infinity_anywhere_are_a_422_naming_the_field(client: httpx.Client, body: str, field: str) -> None:
    response = post_raw(client, body)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_request"
    assert field in response.json()["detail"]


def test_nan_labels_for_openrlhf_are_a_422(client: httpx.Client) -> None:
    response = post_raw(client, '{"query": ["p 1"], "prompts": ["p "], "labels": [NaN]}', "/get_reward?scorers=number")
    assert response.status_code == 422 and "labels[0]" in response.json()["detail"]


@pytest.mark.parametrize("url", ["/v1/score", "/get_reward"])
@pytest.mark.parametrize(
    ("body", "detail"),
    [
        pytest.param(b'{"items": [', "not valid JSON", id="truncated"),
        pytest.param(b"{'items': []}", "not valid JSON", id="single-quotes"),
        pytest.param(b'{"items": [{"completion": "\xff\xfe"}]}', "not valid UTF-8", id="invalid-utf8"),
        pytest.param(b"[" * 200_000 + b"]" * 200_000, "nested too deeply", id="deep-nesting"),
    ],
)
def test_unreadable_bodies_are_a_400_invalid_json(client: httpx.Client, url: str, body: bytes, detail: str) -> None:
    response = post_raw(client, body, url)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_json"
    assert detail in response.json()["detail"]


def test_nesting_past_the_limit_is_a_422_naming_the_field(client: httpx.Client) -> None:
    deep: object = 1
    for _ in range(MAX_NESTING + 5):
        deep = [deep]
    response = client.post("/v1/score", json={"items": [{"completion": "1", "metadata": {"x": deep}}], "scorers": {"number": {}}})
    assert response.status_code == 422 and "items[0]" in response.text and "metadata.x" in response.text
    fine = client.post("/v1/score", json={"items": [{"completion": "1", "reference": [[[["ok"]]]]}], "scorers": {"number": {}}})
    assert fine.status_code == 200


def test_duplicate_ids_are_a_422_in_the_api_and_refused_by_the_client(client: httpx.Client) -> None:
    items = [{"id": "a", "completion": "1"}, {"id": "b", "completion": "2"}, {"id": "a", "completion": "3"}]
    response = client.post("/v1/score", json={"items": items, "scorers": {"number": {}}})
    assert response.status_code == 422
    assert "items[2].id" in response.json()["detail"] and "items[0].id" in response.json()["detail"]
    with pytest.raises(ValidationError, match="duplicate id"):
        ScoreBatch(items=items, scorers={"number": {}})  # type: ignore[arg-type]
    unnamed = client.post("/v1/score", json={"items": [{"completion": "1"}, {"completion": "1"}], "scorers": {"number": {}}})
    assert unnamed.status_code == 200  # ids default to the index
