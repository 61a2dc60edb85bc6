"""`POST /get_reward` (OpenRLHF's remote reward protocol) on a real server, and its micro-batcher."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from rewardstack.services.contract import ItemResult, ScoreItem, Status
from rewardstack.services.decoded_text import NotLocated
from rewardstack.services.gateway.routes.openrlhf import MicroBatcher, RewardRequest, to_items


def test_concurrent_single_sample_requests_get_the_same_rewards_as_v1_score(gateway_url: str) -> None:
    completions = [str(i) for i in range(40)] + ["none", "7.5"]
    prompts = [f"Q{i}: " for i in range(len(completions))]

    async def run() -> tuple[list[dict], dict]:
        async with httpx.AsyncClient(base_url=gateway_url, timeout=60) as client:
            singles = await asyncio.gather(
                *(
                    client.post("/get_reward?scorers=number:2,chars:0", json={"query": [p + c], "prompts": [p], "labels": [None]})
                    for p, c in zip(prompts, completions, strict=True)
                )
            )
            batch = await client.post(
                "/v1/score",
                json={"items": [{"completion": c} for c in completions], "scorers": {"number": {"weight": 2}, "chars": {"weight": 0}}},
            )
        assert all(r.status_code == 200 for r in singles), [r.text for r in singles if r.status_code != 200]
        return [r.json() for r in singles], batch.json()

    singles, batch = asyncio.run(run())
    assert [s["rewards"][0] for s in singles] == [r["reward"] for r in batch["results"]]
    assert [s["extra_logs"]["number"][0] for s in singles] == [r["components"]["number"]["value"] for r in batch["results"]]
    assert [s["extra_logs"]["chars"][0] for s in singles] == [float(len(c)) for c in completions]  # prompt cut off the query
    assert singles[3]["rewards"] == singles[3]["scores"] == [6.0]
    assert singles[40]["rewards"] == [None]  # "none" is unscorable: null, never 0


def test_a_multi_sample_request_and_the_fallback(client: httpx.Client) -> None:
    body = {"query": ["p 1", "p none", "p 2"], "prompts": ["p ", "p ", "p "], "labels": ["1", "2", "3"]}
    data = client.post("/get_reward?scorers=number", json=body).json()
    assert data["rewards"] == [1.0, None, 2.0]
    data = client.post("/get_reward?scorers=number&fallback=-1", json=body).json()
    assert data["rewards"] == [1.0, -1.0, 2.0]
    assert data["extra_logs"] == {"number": [1.0, -1.0, 2.0]}


def test_an_infrastructure_error_stays_null_under_a_fallback(client: httpx.Client) -> None:
    data = client.post("/get_reward?scorers=number&fallback=0", json={"query": ["p raise", "p 3"], "prompts": ["p ", "p "]}).json()
    assert data["rewards"] == [None, 3.0]


@pytest.mark.parametrize(
    ("url", "body", "code", "field"),
    [
        pytest.param("/get_reward?scorers=number", {"query": ["1", "2"], "prompts": ["a"]}, "invalid_request", "prompts", id="ragged-lists"),
        pytest.param("/get_reward?scorers=number", {"query": ["1"], "labels": []}, "invalid_request", "labels", id="ragged-labels"),
        pytest.param("/get_reward?scorers=number:x", {"query": ["1"]}, "invalid_request", "query.scorers", id="bad-weight"),
        pytest.param("/get_reward?scorers=nosuch", {"query": ["1"]}, "unknown_scorer", "nosuch", id="unknown-scorer"),
        pytest.param("/get_reward?scorers=nosuch", {"query": []}, "unknown_scorer", "nosuch", id="unknown-scorer-empty-query"),
        pytest.param("/get_reward?scorers=number&fallback=nan", {"query": ["1"]}, "invalid_request", "fallback", id="nan-fallback"),
        pytest.param("/get_reward?scorers=number&fallback=inf", {"query": ["1"]}, "invalid_request", "fallback", id="inf-fallback"),
        pytest.param("/get_reward?scorers=number:nan", {"query": ["1"]}, "invalid_request", "query.scorers", id="nan-weight"),
        pytest.param("/get_reward?scorers=nosuch", {"query": ["no template"]}, "unknown_scorer", "nosuch", id="unknown-scorer-none-located"),
    ],
)
def test_bad_requests_are_a_clear_422(client: httpx.Client, url: str, body: dict, code: str, field: str) -> None:
    response = client.post(url, json=body)
    assert response.status_code == 422
    assert response.json()["code"] == code
    assert field in response.json()["detail"]


def test_to_items_cuts_the_prompt_and_maps_labels_to_reference() -> None:
    items = to_items(RewardRequest(query=["Q: 2+2? A: 4</s>", "unrelated"], prompts=["Q: 2+2? A:", "Q:"], labels=["4", {"tests": []}]))
    first, second = items
    assert isinstance(first, ScoreItem) and (first.prompt, first.completion, first.reference) == ("Q: 2+2? A:", " 4", "4")
    assert isinstance(second, NotLocated) and "prompt was not found" in second.reason  # never scored whole


def test_a_response_that_cannot_be_located_is_unscorable_with_the_reason(client: httpx.Client) -> None:
    body = {"query": ["Example: \\boxed{42}. Q: 5*5? I don't know.", "Q: 3 <|im_end|><|endoftext|>"], "prompts": ["Q: 6*7?", "Q: "]}
    data = client.post("/get_reward?scorers=number&fallback=-1", json=body).json()
    assert data["rewards"] == [-1.0, 3.0]  # the fallback stands in; the query was never graded whole
    assert client.post("/get_reward?scorers=number", json=body).json()["rewards"] == [None, 3.0]


def test_query_only_payloads_of_old_openrlhf_use_the_chat_template(client: httpx.Client) -> None:
    query = "<|endoftext|><|im_start|>user\nSay 7, as in \\boxed{42}<|im_end|>\n<|im_start|>assistant\n7<|im_end|><|endoftext|>"
    data = client.post("/get_reward?scorers=number,chars:0", json={"query": [query, "no template 5"]}).json()
    assert data["rewards"] == [7.0, None]
    assert data["extra_logs"]["chars"] == [1.0, None]


def test_extra_special_tokens_by_query_parameter(client: httpx.Client) -> None:
    body = {"query": ["p 9<|stop|><|fill|>"], "prompts": ["p "]}
    assert client.post("/get_reward?scorers=chars", json=body).json()["rewards"] == [len("9<|stop|><|fill|>")]
    url = "/get_reward?scorers=chars&special_tokens=<|stop|>,<|fill|>"
    assert client.post(url, json=body).json()["rewards"] == [1.0]


def test_the_batcher_joins_concurrent_requests_into_one_call_and_splits_the_results() -> None:
    calls: list[int] = []

    async def run(items: list[ScoreItem]) -> list[ItemResult]:
        calls.append(len(items))
        return [ItemResult(id=str(i), reward=float(item.completion), status=Status.OK, components={}) for i, item in enumerate(items)]

    async def main() -> list[list[float | None]]:
        batcher = MicroBatcher(window_s=0.05, max_items=100)
        requests = [[ScoreItem(completion=str(10 * k + j)) for j in range(k % 3 + 1)] for k in range(10)]
        answers = await asyncio.gather(*(batcher.submit("spec", items, run) for items in requests))
        return [[r.reward for r in answer] for answer in answers]

    answers = asyncio.run(main())
    assert calls == [sum(k % 3 + 1 for k in range(10))]
    assert answers == [[float(10 * k + j) for j in range(k % 3 + 1)] for k in range(10)]


def test_the_batcher_respects_the_item_limit_and_passes_errors_to_every_waiter() -> None:
    calls: list[int] = []

    async def run(items: list[ScoreItem]) -> list[ItemResult]:
        calls.append(len(items))
        if any(item.completion == "boom" for item in items):
            raise RuntimeError("pool gone")
        return [ItemResult(id="x", reward=1.0, status=Status.OK, components={}) for _ in items]

    async def main() -> list[object]:
        batcher = MicroBatcher(window_s=0.05, max_items=4)
        requests = [[ScoreItem(completion="a")] * 3, [ScoreItem(completion="b")] * 3, [ScoreItem(completion="c")] * 5]
        ok = await asyncio.gather(*(batcher.submit("k", items, run) for items in requests))
        failed = await asyncio.gather(
            batcher.submit("k", [ScoreItem(completion="boom")], run), batcher.submit("k", [ScoreItem(completion="d")], run),
            return_exceptions=True,
        )
        return [len(r) for r in ok] + [type(r).__name__ for r in failed]

    assert asyncio.run(main()) == [3, 3, 5, "RuntimeError", "RuntimeError"]
    assert sorted(calls) == [2, 3, 3, 5]


def test_an_empty_shard_is_answered_with_empty_lists(client: httpx.Client) -> None:
    """OpenRLHF 0.9.1-0.11 split one sample over several URLs: the others get empty lists, and must not fail."""
    data = client.post("/get_reward?scorers=number,chars", json={"query": [], "prompts": [], "labels": []})
    assert data.status_code == 200
    assert data.json() == {"rewards": [], "scores": [], "extra_logs": {"number": [], "chars": []}}
