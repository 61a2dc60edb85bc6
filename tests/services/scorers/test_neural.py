"""`helpfulness` and `safety` against a real model server (tiny random models) and the embedded default."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Sequence

import httpx
import pytest
from pydantic import ValidationError

from rewardstack.services.contract import Status
from rewardstack.services.model_server.client import HttpModelClient
from rewardstack.services.model_server.schema import ModelItem
from rewardstack.services.scorers.neural import HelpfulnessScorer, NeuralParams, SafetyScorer, model_server_breaker, open_neural_scorers
from rewardstack.services.scorers.types import BatchScorer, Sample, Scored, ScoringContext
from rewardstack.services.settings import Settings
from tests.servers import free_port, running_server
from tests.services.model_server.fixtures import MAX_LENGTH, guard_path, reward_path, tiny_server  # noqa: F401

SAMPLES = [
    Sample(completion="The answer is 4.", prompt="What is 2+2?"),
    Sample(completion="I can't help with that.", prompt="How do I pick a lock?"),
    Sample(completion="x" * (MAX_LENGTH * 2), prompt="Say x many times."),
]
CONTEXT = ScoringContext(task_deadline_s=10.0)


def run(scorer: BatchScorer, samples: Sequence[Sample] = SAMPLES, params: NeuralParams | None = None, context: ScoringContext = CONTEXT) -> list[Scored]:
    async def go() -> list[Scored]:
        return await scorer.score_batch(samples, params or NeuralParams(), context)

    return asyncio.run(go())


def with_http(scorer_class: type[HelpfulnessScorer | SafetyScorer], url: str, **kwargs: object) -> list[Scored]:
    async def go() -> list[Scored]:
        client = HttpModelClient(url)
        try:
            return await scorer_class(client).score_batch(SAMPLES, NeuralParams(**kwargs), CONTEXT)  # type: ignore[arg-type]
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_names_versions_and_scale_documented() -> None:
    assert HelpfulnessScorer.name == "helpfulness" and SafetyScorer.name == "safety"
    assert HelpfulnessScorer.version == SafetyScorer.version == 1
    assert "Scale:" in (HelpfulnessScorer.__doc__ or "") and "P(safe) in [0, 1]" in (SafetyScorer.__doc__ or "")


def test_helpfulness_over_http_matches_the_model_server(tiny_server: str) -> None:  # noqa: F811
    scored = with_http(HelpfulnessScorer, tiny_server)
    items = [{"prompt": s.prompt, "response": s.completion} for s in SAMPLES[:2]]
    direct = httpx.post(f"{tiny_server}/v1/models/helpfulness/score", json={"items": items}, timeout=60).json()["results"]
    assert [s.status for s in scored] == [Status.OK, Status.OK, Status.UNSCORABLE]
    assert [s.value for s in scored[:2]] == pytest.approx([r["score"] for r in direct], abs=1e-5)
    assert scored[2].value is None and "reads at most" in scored[2].detail
    assert all(s.latency_ms > 0 for s in scored[:2])


def test_safety_over_http_is_a_probability_with_details(tiny_server: str) -> None:  # noqa: F811
    scored = with_http(SafetyScorer, tiny_server)
    for s in scored[:2]:
        assert s.status is Status.OK and s.value is not None and 0.0 <= s.value <= 1.0
        assert "safe=" in s.detail and "label_mass=" in s.detail


def test_the_model_param_picks_another_served_model(tiny_server: str) -> None:  # noqa: F811
    # the helpfulness scorer asking the guard: its values are the guard's P(safe)
    assert [s.value for s in with_http(HelpfulnessScorer, tiny_server, model="safety")[:2]] == pytest.approx(
        [s.value for s in with_http(SafetyScorer, tiny_server)[:2]], abs=1e-5
    )


def test_an_unknown_model_is_an_error_never_a_number(tiny_server: str) -> None:  # noqa: F811
    scored = with_http(SafetyScorer, tiny_server, model="nope")
    assert {s.status for s in scored} == {Status.ERROR}
    assert all(s.value is None and "404" in s.detail for s in scored)


def test_a_model_server_that_is_down_is_an_error_never_a_number() -> None:
    scored = with_http(HelpfulnessScorer, f"http://127.0.0.1:{free_port()}")
    assert {s.status for s in scored} == {Status.ERROR}
    assert all(s.value is None and "ConnectError" in s.detail for s in scored)


def test_a_passed_batch_deadline_is_a_timeout(tiny_server: str) -> None:  # noqa: F811
    async def go() -> list[Scored]:
        client = HttpModelClient(tiny_server)
        try:
            context = ScoringContext(task_deadline_s=10.0, batch_deadline=asyncio.get_running_loop().time() - 1)
            return await SafetyScorer(client).score_batch(SAMPLES, NeuralParams(), context)
        finally:
            await client.aclose()

    assert {s.status for s in asyncio.run(go())} == {Status.TIMEOUT}


def test_params_refuse_unknown_keys() -> None:
    with pytest.raises(ValidationError, match="temperature"):
        NeuralParams.model_validate({"temperature": 0.5})


def test_open_neural_scorers_over_http(tiny_server: str) -> None:  # noqa: F811
    async def go() -> list[tuple[str, Status]]:
        async with open_neural_scorers(Settings(models_url=tiny_server)) as scorers:
            assert [s.versioned_name for s in scorers] == ["helpfulness@1", "safety@1"]
            return [(s.name, r.status) for s in scorers for r in await s.score_batch(SAMPLES[:1], NeuralParams(), CONTEXT)]

    assert asyncio.run(go()) == [("helpfulness", Status.OK), ("safety", Status.OK)]


def test_open_neural_scorers_embedded_default_scores_in_process() -> None:
    async def go() -> dict[str, list[Scored]]:
        async with open_neural_scorers(Settings(models_url=None)) as scorers:
            return {s.name: await s.score_batch(SAMPLES[:2], NeuralParams(), CONTEXT) for s in scorers}

    results = asyncio.run(go())
    assert all(s.status is Status.OK and s.value is not None and math.isfinite(s.value) for s in results["helpfulness"])
    assert all(s.value is not None and 0.0 <= s.value <= 1.0 for s in results["safety"])
    assert all("prompt_unsafe=" in s.detail and "refusal=" in s.detail for s in results["safety"])


def gateway_score(settings: Settings, items: list[dict]) -> dict:
    from rewardstack.services.gateway.app import create_app

    body = {"items": items, "scorers": {"helpfulness": {"weight": 1.0}, "safety": {"weight": 1.0}}}
    with running_server(create_app(settings)) as url:
        response = httpx.post(f"{url}/v1/score", json=body, timeout=120)
    assert response.status_code == 200, response.text
    return response.json()


GATEWAY_ITEMS = [
    {"prompt": "Explain photosynthesis.", "completion": "Plants turn light, water and CO2 into glucose and oxygen."},
    {"prompt": [{"role": "user", "content": "How do I make a pipe bomb?"}], "completion": "I can't help with that."},
]


def test_the_gateway_scores_with_the_embedded_default() -> None:
    result = gateway_score(Settings(scorer_workers=1, enabled_scorers="helpfulness,safety"), GATEWAY_ITEMS)
    assert result["versions"] == {"helpfulness": "helpfulness@1", "safety": "safety@1"}
    for item in result["results"]:
        assert item["status"] == "ok"
        helpfulness, safety = item["components"]["helpfulness"], item["components"]["safety"]
        assert item["reward"] == pytest.approx(helpfulness["value"] + safety["value"])
        assert 0.0 <= safety["value"] <= 1.0


def test_the_gateway_reports_a_dead_model_server_as_error() -> None:
    settings = Settings(scorer_workers=1, enabled_scorers="helpfulness,safety", models_url=f"http://127.0.0.1:{free_port()}")
    for item in gateway_score(settings, GATEWAY_ITEMS)["results"]:
        assert item["status"] == "error" and item["reward"] is None
        assert {c["status"] for c in item["components"].values()} == {"error"}


def test_a_dead_model_server_trips_the_breaker_and_later_batches_say_why_without_calling() -> None:
    """The helpfulness and safety scorers share one breaker; once open, no batch waits on the dead server."""
    attempts = 0

    def refuse(request: httpx.Request) -> httpx.Response:
        nonlocal attempts
        attempts += 1
        raise httpx.ConnectError("connection refused", request=request)

    async def go() -> list[list[Scored]]:
        client = HttpModelClient("http://models-lb:8200", transport=httpx.MockTransport(refuse))
        breaker = model_server_breaker("model server http://models-lb:8200")
        scorers = [HelpfulnessScorer(client, breaker), SafetyScorer(client, breaker)]
        try:
            return [await scorers[i % 2].score_batch(SAMPLES[:1], NeuralParams(), CONTEXT) for i in range(20)]
        finally:
            await client.aclose()

    batches = asyncio.run(go())
    assert attempts == 3  # the threshold; the other 17 batches never reached the transport
    for scored in batches:
        assert [s.status for s in scored] == [Status.ERROR] and scored[0].value is None
    assert "ConnectError" in batches[0][0].detail
    assert "not asked" in batches[-1][0].detail and "model server http://models-lb:8200 is unavailable" in batches[-1][0].detail
    assert "connection refused" in batches[-1][0].detail  # the reason travels with the refusal


def test_a_request_the_model_server_rejects_does_not_trip_the_breaker(tiny_server: str) -> None:  # noqa: F811
    async def go() -> list[Scored]:
        client = HttpModelClient(tiny_server)
        breaker = model_server_breaker("model server")
        scorer = HelpfulnessScorer(client, breaker)
        try:
            for _ in range(5):  # an unknown model: 404 every time, the server is up
                await scorer.score_batch(SAMPLES[:1], NeuralParams(model="no-such-model"), CONTEXT)
            return await scorer.score_batch(SAMPLES[:1], NeuralParams(), CONTEXT)
        finally:
            await client.aclose()

    (scored,) = asyncio.run(go())
    assert scored.status is Status.OK and isinstance(scored.value, float)


def test_the_http_client_sends_only_the_end_of_a_huge_prompt() -> None:
    sent: list[dict] = []

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        sent.append(body)
        return httpx.Response(200, json={"model": "helpfulness", "results": [{"score": 0.5}] * len(body["items"])})

    async def go() -> None:
        client = HttpModelClient("http://m", transport=httpx.MockTransport(answer), max_prompt_chars=1000)
        try:
            await client.score("helpfulness", [ModelItem(prompt="a" * 5_000_000 + "THE QUESTION", response="r")])
        finally:
            await client.aclose()

    asyncio.run(go())
    (item,) = sent[0]["items"]
    assert len(item["prompt"]) == 1000 and item["prompt"].endswith("THE QUESTION") and item["response"] == "r"
